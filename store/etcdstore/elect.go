package etcdstore

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/stratuskit/stratus/store"
)

var (
	_ store.Elector         = (*Backend)(nil)
	_ store.FencedCommitter = (*Backend)(nil)
)

// LeaseTTL is how long a leader that stops renewing its lease (stalled,
// partitioned, killed) keeps its leadership.
const LeaseTTL = 5 * time.Second

// Campaign implements store.Elector with etcd's concurrency package: each
// campaign holds a lease; the leader is the campaigner with the oldest key
// under <prefix>elect/<name>/. The lease's key and creation revision are
// the fencing token.
func (b *Backend) Campaign(ctx context.Context, name string) (store.Leadership, error) {
	sess, err := concurrency.NewSession(b.cli, concurrency.WithTTL(int(LeaseTTL/time.Second)), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, fmt.Errorf("etcdstore: session: %w", classify(err))
	}
	e := concurrency.NewElection(sess, b.prefix+"elect/"+name)
	if err := e.Campaign(ctx, b.id); err != nil {
		sess.Close()
		return nil, fmt.Errorf("etcdstore: campaign %q: %w", name, classify(err))
	}
	return &leadership{sess: sess, e: e}, nil
}

type leadership struct {
	sess *concurrency.Session
	e    *concurrency.Election
}

func (l *leadership) Lost() <-chan struct{} { return l.sess.Done() }

func (l *leadership) Fence() store.Fence {
	return store.Fence{Key: l.e.Key(), Rev: uint64(l.e.Rev())}
}

func (l *leadership) Resign(ctx context.Context) error {
	err := l.e.Resign(ctx)
	if cerr := l.sess.Close(); err == nil {
		err = cerr
	}
	return err
}
