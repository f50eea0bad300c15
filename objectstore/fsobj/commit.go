package fsobj

import (
	"errors"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// maxBatch bounds the writes one index transaction commits.
const maxBatch = 256

// committer group-commits index writes: a write that arrives while a
// commit is in flight joins the next one, so concurrent small PUTs share
// one bbolt transaction (and its fsyncs), and a lone writer never waits
// for company. As in bbolt's DB.Batch, a function that fails is dropped
// with its error and the rest of its batch runs again, so functions must
// be idempotent.
type committer struct {
	db   *bolt.DB
	reqs chan *commitReq
	wg   sync.WaitGroup
	once sync.Once
}

type commitReq struct {
	fn   func(*bolt.Tx) error
	done chan error
}

var errBatchMember = errors.New("fsobj: a function of the batch failed")

func newCommitter(db *bolt.DB) *committer {
	c := &committer{db: db, reqs: make(chan *commitReq, maxBatch)}
	c.wg.Go(c.loop)
	return c
}

// update runs fn in a write transaction of the index, possibly shared.
func (c *committer) update(fn func(*bolt.Tx) error) error {
	r := &commitReq{fn: fn, done: make(chan error, 1)}
	c.reqs <- r
	return <-r.done
}

func (c *committer) close() {
	c.once.Do(func() { close(c.reqs) })
	c.wg.Wait()
}

func (c *committer) loop() {
	for r := range c.reqs {
		batch := []*commitReq{r}
	gather:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-c.reqs:
				if !ok {
					break gather
				}
				batch = append(batch, r)
			default:
				break gather
			}
		}
		c.run(batch)
	}
}

// run commits batch, dropping and answering each function that fails.
func (c *committer) run(batch []*commitReq) {
	for len(batch) > 0 {
		failed := -1
		var failErr error
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, r := range batch {
				if err := r.fn(tx); err != nil {
					failed, failErr = i, err
					return errBatchMember
				}
			}
			return nil
		})
		if failed < 0 {
			for _, r := range batch {
				r.done <- err
			}
			return
		}
		batch[failed].done <- failErr
		batch = append(batch[:failed:failed], batch[failed+1:]...)
	}
}
