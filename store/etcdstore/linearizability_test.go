package etcdstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/hashicorp/go-memdb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/internal/etcdtest"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/storetest"
)

var (
	linRuns = flag.Int("etcdstore.linruns", 20, "randomized runs of TestLinearizableCAS")
	linDur  = flag.Duration("etcdstore.lindur", 800*time.Millisecond, "how long each run of TestLinearizableCAS crashes members (its clients go on until the last member is back and enough CAS committed)")
	linSeed = flag.Uint64("etcdstore.linseed", 0, "seed of TestLinearizableCAS's choices (0: from the clock)")
)

const (
	linTable   = "test.counters"
	linKeys    = 2 // counter records per run
	linClients = 3 // client goroutines per controller
	// linMinCAS is the least number of successful CAS operations a run must
	// record for its check to mean something.
	linMinCAS = 20
)

// linKind is the kind of a recorded operation.
type linKind int

const (
	// linCAS is a CAS that committed: the register held From and now holds To.
	linCAS linKind = iota
	// linCASMaybe is a CAS whose outcome is unknown (an error the backend's
	// contract does not classify): it may or may not have taken effect.
	linCASMaybe
	// linRead is a linearizable read that observed the output value.
	linRead
)

// linInput is a porcupine operation's input: an operation on one counter.
type linInput struct {
	Key      string
	Kind     linKind
	From, To int    // for CAS
	How      string // how the operation was done, for the visualization
}

// casModel is a set of registers (one per key, initially 0) with
// compare-and-swap and read, partitioned by key.
//
// The output of a read is the int it observed; CAS operations have no
// output (only successful or unknown ones are recorded, see
// TestLinearizableCAS).
var casModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(linInput).Key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range slices.Sorted(maps.Keys(byKey)) {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return 0 },
	Step: func(state, input, output any) (bool, any) {
		v, in := state.(int), input.(linInput)
		switch in.Kind {
		case linCAS:
			return v == in.From, in.To
		case linCASMaybe:
			// Taking effect where the register holds From, a no-op
			// elsewhere. An operation of unknown outcome returns at
			// +infinity, so the checker may always place it after every
			// other operation, where its effect is unobserved: forcing the
			// effect where v == From never rejects a history that a
			// "did not happen" outcome would accept.
			if v == in.From {
				return true, in.To
			}
			return true, v
		case linRead:
			return v == output.(int), v
		}
		return false, v
	},
	DescribeOperation: func(input, output any) string {
		in := input.(linInput)
		switch in.Kind {
		case linCAS:
			return fmt.Sprintf("%s: cas(%d→%d) ok [%s]", in.Key, in.From, in.To, in.How)
		case linCASMaybe:
			return fmt.Sprintf("%s: cas(%d→%d) unknown [%s]", in.Key, in.From, in.To, in.How)
		case linRead:
			return fmt.Sprintf("%s: read → %d [%s]", in.Key, output.(int), in.How)
		}
		return fmt.Sprintf("%+v → %v", in, output)
	},
	DescribeState: func(state any) string { return fmt.Sprint(state.(int)) },
}

// errValueDiffers is returned by a CAS function whose (replica) read did
// not match the expected value. It returns before writing.
var errValueDiffers = errors.New("test: value differs from the expected one")

// TestLinearizableCAS checks that compare-and-swap updates of counter
// records, done concurrently through three controllers (each connected to
// a different member of a 3-member cluster) while members crash and
// restart one at a time, form a linearizable history of a register with
// CAS (porcupine). There are -etcdstore.linruns runs (default 20) on one
// cluster, each with its own key prefix, controllers and fresh counters,
// and about 1-2 s of operations (longer when a leader crash stalls commits
// for etcd's request timeout). The controllers and the test's etcd client
// reach the members through crashProxy, which cuts their connections when
// the member crashes.
//
// Each run records these operations, and only these; why each is sound:
//
//   - CAS committed (st.Update returned nil), recorded as cas(From→To).
//     The function read the record inside the transaction, found From,
//     and wrote To through tx.Update. The replica it read may be stale,
//     but the commit is one etcd transaction that compares the record's
//     mod revision with the revision of the copy read (the batch's
//     pre-image: a function later in the same group-commit batch reads
//     the earlier one's write, and both take effect at the same etcd
//     revision, inside both their intervals, in batch order). So at the
//     commit's linearization point etcd held exactly the value read: From.
//     To is unique in the run, so a lost or duplicated update shows.
//   - Read confirmed by a write, recorded as read→v: the function read v
//     inside the transaction and wrote the record back unchanged. Its
//     commit compares the revision like a CAS, so v was etcd's value at
//     the commit (a cas(v→v)). A failed one is not recorded: writing the
//     same value back has no effect on the register whatever happened.
//   - Linearizable etcd read (clientv3 Get, not serializable) of the
//     record's key through a separate client, recorded as read→v. Failed
//     reads are not recorded: a read has no effect.
//   - A final linearizable etcd read of each key after all operations.
//
// Not recorded, because they are not evidence or have no effect:
//
//   - replica reads (store.Get on a Snapshot): a replica may lag, so they
//     are not linearizable. They are used only to choose the expected
//     value of the next CAS.
//   - CAS refused by the function (errValueDiffers): the replica's value
//     differed. The replica may be stale, so this does not show that
//     etcd's value differed; the function returned before writing, so
//     nothing was committed: a no-op, which any history accepts.
//   - CAS failed with errdefs.ErrConflict or errdefs.ErrUnavailable (or
//     the context's error): not committed. ErrConflict is etcd's compare
//     failing (or an earlier replica check, before any commit); a conflict
//     is not evidence that the value differed (a batch fails as a whole,
//     and the revision moves on any write, even of the same value), so it
//     is recorded as nothing rather than as "value differed". ErrUnavailable
//     comes after the backend resolved an ambiguous commit as not
//     committed (etcdstore's contract: an error means "not committed";
//     store.Update: on a backend error nothing of fn's is applied). A
//     breach of that contract would make a value appear that no recorded
//     operation wrote, which the check rejects as soon as it is observed.
//   - Any other error is not covered by those contracts: the CAS is
//     recorded as of unknown outcome (linCASMaybe, returning at +infinity).
//
// Every run also checks that every controller's replica converges to the
// value (and revision) etcd holds at the end.
func TestLinearizableCAS(t *testing.T) {
	checkModelRejectsLostUpdate(t)

	c := threeMembers(t)
	proxies := make([]*crashProxy, len(c.Members()))
	var proxied []string
	for i, m := range c.Members() {
		proxies[i] = newCrashProxy(t, m.Client)
		proxied = append(proxied, proxies[i].endpoint())
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: proxied, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })

	seed := *linSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("%d runs of %v, seed %d (-etcdstore.linseed to repeat the choices)", *linRuns, *linDur, seed)
	var total linStats
	for run := range *linRuns {
		t.Run(fmt.Sprintf("run%02d", run), func(t *testing.T) {
			s := linRun(t, c, proxies, cli, run, seed)
			total.add(s)
		})
		if t.Failed() {
			break
		}
	}
	t.Logf("total: %s", total)
}

// linStats counts a run's operations.
type linStats struct {
	cas, casValueDiffers, casConflict, casUnavailable, casUnknown int
	confirmedReads, etcdReads, failedReads                        int
	faults                                                        int
}

func (s *linStats) add(o linStats) {
	s.cas += o.cas
	s.casValueDiffers += o.casValueDiffers
	s.casConflict += o.casConflict
	s.casUnavailable += o.casUnavailable
	s.casUnknown += o.casUnknown
	s.confirmedReads += o.confirmedReads
	s.etcdReads += o.etcdReads
	s.failedReads += o.failedReads
	s.faults += o.faults
}

func (s linStats) String() string {
	return fmt.Sprintf("CAS committed %d, refused by replica check %d, conflict %d, unavailable %d, unknown %d; "+
		"write-confirmed reads %d, etcd reads %d, failed reads %d; member restarts %d",
		s.cas, s.casValueDiffers, s.casConflict, s.casUnavailable, s.casUnknown,
		s.confirmedReads, s.etcdReads, s.failedReads, s.faults)
}

// linRun is one randomized run under its own key prefix.
func linRun(t *testing.T, c *etcdtest.Cluster, proxies []*crashProxy, cli *clientv3.Client, run int, seed uint64) linStats {
	prefix := fmt.Sprintf("/lin/%02d/", run)
	ctls := make([]*store.Store, len(proxies))
	for i, p := range proxies {
		ctls[i] = controller(t, []string{p.endpoint()}, prefix)
	}
	ctx := t.Context()
	keys := make([]string, linKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
		if err := ctls[0].Update(ctx, func(tx *store.Txn) error {
			return tx.Insert(linTable, &storetest.Counter{ID: keys[i]})
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i, st := range ctls {
		waitFor(t, st, fmt.Sprintf("the counters on controller %d", i), func(tx *store.Txn, ws memdb.WatchSet) bool {
			for _, k := range keys {
				if _, err := store.Get[storetest.Counter](ws, tx, linTable, k); err != nil {
					return false
				}
			}
			return true
		})
	}

	var (
		mu      sync.Mutex
		history []porcupine.Operation
		stats   linStats
		next    atomic.Int64 // source of unique values written by CAS
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		start   = time.Now()
	)
	now := func() int64 { return int64(time.Since(start)) }
	record := func(op *porcupine.Operation, count func(*linStats)) {
		mu.Lock()
		defer mu.Unlock()
		if op != nil {
			history = append(history, *op)
		}
		count(&stats)
	}
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}

	for ci, st := range ctls {
		for j := range linClients {
			client := ci*linClients + j
			rng := rand.New(rand.NewPCG(seed, uint64(run)<<16|uint64(client)))
			wg.Go(func() {
				for !stopped() && ctx.Err() == nil {
					key := keys[rng.IntN(len(keys))]
					switch p := rng.IntN(100); {
					case p < 65:
						linCASOp(ctx, st, client, key, ci, rng, &next, now, record, t)
					case p < 80:
						linConfirmedRead(ctx, st, client, key, ci, now, record, t)
					default:
						linEtcdRead(ctx, cli, prefix, client, key, now, record)
					}
				}
			})
		}
	}

	// The fault injector: crashes one member at a time (its proxy cuts its
	// client connections, then the member stops) and restarts it, so that a
	// quorum always remains; the leader is chosen a third of the time. It
	// starts no crash after -etcdstore.lindur, and restarts the member it
	// stopped before it returns, so every member is up at the end of the
	// run.
	frng := rand.New(rand.NewPCG(seed, uint64(run)<<16|0xffff))
	faultsEnd := time.After(*linDur)
	faultsDone := make(chan struct{})
	var faults int
	go func() {
		defer close(faultsDone)
		ms := c.Members()
		for {
			select {
			case <-faultsEnd:
				return
			case <-time.After(time.Duration(20+frng.IntN(200)) * time.Millisecond):
			}
			i := frng.IntN(len(ms))
			if frng.IntN(3) == 0 {
				if l := slices.Index(ms, c.Leader()); l >= 0 {
					i = l
				}
			}
			m := ms[i]
			proxies[i].crash()
			m.Stop()
			faults++
			time.Sleep(time.Duration(50+frng.IntN(250)) * time.Millisecond)
			if err := m.Restart(); err != nil {
				t.Errorf("restart %s: %v", m.Name, err)
				return
			}
			proxies[i].recover()
		}
	}()

	// The clients go on after the faults, until enough CAS committed: a
	// leader crash stalls every commit in flight for etcd's request
	// timeout (~5 s), which may take the whole fault period.
	<-faultsDone
	time.Sleep(150 * time.Millisecond)
	for enough := time.Now().Add(20 * time.Second); time.Now().Before(enough) && !t.Failed(); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := stats.cas
		mu.Unlock()
		if n >= linMinCAS {
			break
		}
	}
	close(stop)
	wg.Wait()
	stats.faults = faults
	if t.Failed() {
		t.FailNow()
	}
	// Every member is up and answers again.
	for _, m := range c.Members() {
		deadline := time.Now().Add(20 * time.Second)
		for {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := cli.Status(sctx, m.Client)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("member %s does not answer after the run: %v", m.Name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// The final value of each key, read from etcd, closes the history;
	// every replica converges to it.
	for _, k := range keys {
		call := now()
		v, modRev := linEtcdGet(t, cli, prefix, k)
		history = append(history, porcupine.Operation{
			ClientId: len(ctls) * linClients, Input: linInput{Key: k, Kind: linRead, How: "final etcd get"},
			Output: v, Call: call, Return: now(),
		})
		for i, st := range ctls {
			waitFor(t, st, fmt.Sprintf("controller %d's replica of %s to converge to %d (etcd revision %d)", i, k, v, modRev),
				func(tx *store.Txn, ws memdb.WatchSet) bool {
					cn, err := store.Get[storetest.Counter](ws, tx, linTable, k)
					return err == nil && cn.Value == v && cn.Revision == uint64(modRev)
				})
		}
	}

	t.Logf("%d operations in the history; %s", len(history), stats)
	res, info := porcupine.CheckOperationsVerbose(casModel, history, 30*time.Second)
	if res != porcupine.Ok {
		path := filepath.Join(t.ArtifactDir(), "history.html")
		if err := porcupine.VisualizePath(casModel, info, path); err != nil {
			t.Logf("visualize: %v", err)
		}
		if res == porcupine.Illegal {
			t.Errorf("run %d: the history of %d operations is NOT linearizable; visualization: %s (kept with -artifacts)", run, len(history), path)
		} else {
			t.Errorf("run %d: linearizability check inconclusive (%s) on %d operations; visualization: %s (kept with -artifacts)", run, res, len(history), path)
		}
	}
	if stats.cas < linMinCAS || stats.confirmedReads+stats.etcdReads == 0 {
		t.Errorf("run %d: too few operations succeeded to mean anything: %s (want at least %d CAS and one read)", run, stats, linMinCAS)
	}
	if stats.faults == 0 {
		t.Errorf("run %d: no member was restarted", run)
	}
	return stats
}

// linRecorder adds op (if not nil) to the history and counts it.
type linRecorder func(op *porcupine.Operation, count func(*linStats))

// linCASOp does cas(expected→unique) on key through st, with expected
// taken from st's replica (usually right, sometimes stale) or, now and
// then, deliberately off by one.
func linCASOp(ctx context.Context, st *store.Store, client int, key string, ctl int, rng *rand.Rand, next *atomic.Int64, now func() int64, record linRecorder, t *testing.T) {
	cur, err := store.Get[storetest.Counter](nil, st.Snapshot(), linTable, key)
	if err != nil {
		t.Errorf("replica read of %s: %v", key, err)
		return
	}
	expected := cur.Value
	if rng.IntN(10) == 0 {
		expected++
	}
	to := int(next.Add(1))
	in := linInput{Key: key, Kind: linCAS, From: expected, To: to, How: fmt.Sprintf("controller %d", ctl)}
	call := now()
	err = st.Update(ctx, func(tx *store.Txn) error {
		cn, err := store.Get[storetest.Counter](nil, tx, linTable, key)
		if err != nil {
			return err
		}
		if cn.Value != expected {
			return errValueDiffers
		}
		cn.Value = to
		return tx.Update(linTable, cn)
	})
	ret := now()
	switch {
	case err == nil:
		record(&porcupine.Operation{ClientId: client, Input: in, Call: call, Return: ret}, func(s *linStats) { s.cas++ })
	case errors.Is(err, errValueDiffers):
		record(nil, func(s *linStats) { s.casValueDiffers++ })
	case errors.Is(err, errdefs.ErrConflict):
		record(nil, func(s *linStats) { s.casConflict++ })
	case errors.Is(err, errdefs.ErrUnavailable), ctx.Err() != nil && errors.Is(err, ctx.Err()):
		record(nil, func(s *linStats) { s.casUnavailable++ })
	default:
		t.Logf("client %d: cas(%d→%d) on %s: outcome unknown: %v", client, expected, to, key, err)
		in.Kind = linCASMaybe
		record(&porcupine.Operation{ClientId: client, Input: in, Call: call, Return: math.MaxInt64}, func(s *linStats) { s.casUnknown++ })
	}
}

// linConfirmedRead reads key inside a transaction on st and writes it back
// unchanged, so that etcd's compare confirms what was read.
func linConfirmedRead(ctx context.Context, st *store.Store, client int, key string, ctl int, now func() int64, record linRecorder, t *testing.T) {
	var seen int
	call := now()
	err := st.Update(ctx, func(tx *store.Txn) error {
		cn, err := store.Get[storetest.Counter](nil, tx, linTable, key)
		if err != nil {
			return err
		}
		seen = cn.Value // the last run of the function is the one committed
		return tx.Update(linTable, cn)
	})
	ret := now()
	if err != nil {
		if errdefs.Kind(err) == nil && ctx.Err() == nil {
			t.Logf("client %d: confirmed read of %s: %v", client, key, err)
		}
		record(nil, func(s *linStats) { s.failedReads++ })
		return
	}
	in := linInput{Key: key, Kind: linRead, How: fmt.Sprintf("controller %d, confirmed by a write", ctl)}
	record(&porcupine.Operation{ClientId: client, Input: in, Output: seen, Call: call, Return: ret}, func(s *linStats) { s.confirmedReads++ })
}

// linEtcdRead reads key with a linearizable etcd Get.
func linEtcdRead(ctx context.Context, cli *clientv3.Client, prefix string, client int, key string, now func() int64, record linRecorder) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	call := now()
	resp, err := cli.Get(rctx, prefix+"t/"+linTable+"/"+key)
	ret := now()
	var cn storetest.Counter
	if err != nil || len(resp.Kvs) != 1 || json.Unmarshal(resp.Kvs[0].Value, &cn) != nil {
		record(nil, func(s *linStats) { s.failedReads++ })
		return
	}
	in := linInput{Key: key, Kind: linRead, How: "etcd get"}
	record(&porcupine.Operation{ClientId: client, Input: in, Output: cn.Value, Call: call, Return: ret}, func(s *linStats) { s.etcdReads++ })
}

// linEtcdGet returns key's value and mod revision in etcd, retrying for a
// while.
func linEtcdGet(t *testing.T, cli *clientv3.Client, prefix, key string) (int, int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		resp, err := cli.Get(ctx, prefix+"t/"+linTable+"/"+key)
		cancel()
		if err == nil {
			if len(resp.Kvs) != 1 {
				t.Fatalf("%s is missing from etcd", key)
			}
			var cn storetest.Counter
			if err := json.Unmarshal(resp.Kvs[0].Value, &cn); err != nil {
				t.Fatalf("%s in etcd: %v", key, err)
			}
			return cn.Value, resp.Kvs[0].ModRevision
		}
		if time.Now().After(deadline) {
			t.Fatalf("final read of %s: %v", key, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkModelRejectsLostUpdate makes sure the model and checker can fail:
// two CAS from the same value that both succeed one after the other (a lost
// update), and a read of a value nobody wrote, are not linearizable, while
// the same CAS concurrent with a failed-and-unrecorded one is.
func checkModelRejectsLostUpdate(t *testing.T) {
	t.Helper()
	op := func(client int, in linInput, out any, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret}
	}
	cases := []struct {
		name    string
		history []porcupine.Operation
		want    porcupine.CheckResult
	}{
		{"lost update", []porcupine.Operation{
			op(0, linInput{Key: "k", Kind: linCAS, From: 0, To: 1}, nil, 0, 10),
			op(1, linInput{Key: "k", Kind: linCAS, From: 0, To: 2}, nil, 20, 30),
		}, porcupine.Illegal},
		{"stale read after a CAS", []porcupine.Operation{
			op(0, linInput{Key: "k", Kind: linCAS, From: 0, To: 1}, nil, 0, 10),
			op(1, linInput{Key: "k", Kind: linRead}, 0, 20, 30),
		}, porcupine.Illegal},
		{"concurrent CAS and read", []porcupine.Operation{
			op(0, linInput{Key: "k", Kind: linCAS, From: 0, To: 1}, nil, 0, 30),
			op(1, linInput{Key: "k", Kind: linRead}, 0, 10, 20),
			op(2, linInput{Key: "k", Kind: linCAS, From: 1, To: 2}, nil, 40, 50),
			op(3, linInput{Key: "j", Kind: linRead}, 0, 40, 50),
		}, porcupine.Ok},
		{"unknown CAS observed", []porcupine.Operation{
			op(0, linInput{Key: "k", Kind: linCASMaybe, From: 0, To: 1}, nil, 0, math.MaxInt64),
			op(1, linInput{Key: "k", Kind: linRead}, 1, 20, 30),
			op(1, linInput{Key: "k", Kind: linCAS, From: 1, To: 2}, nil, 40, 50),
		}, porcupine.Ok},
		{"unknown CAS not taken", []porcupine.Operation{
			op(0, linInput{Key: "k", Kind: linCASMaybe, From: 0, To: 1}, nil, 0, math.MaxInt64),
			op(1, linInput{Key: "k", Kind: linRead}, 0, 20, 30),
		}, porcupine.Ok},
	}
	for _, tc := range cases {
		if got := porcupine.CheckOperationsTimeout(casModel, tc.history, 10*time.Second); got != tc.want {
			t.Fatalf("model self-check %q: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// crashProxy forwards TCP connections to one member's client port. The
// controllers and the test's client reach the members through these
// proxies, so that a member crash can look like one to them: crash cuts
// every open connection, as a killed process's would be. (etcdtest's
// Member.Stop shuts the member's gRPC server down gracefully, which waits
// ~5 s for open watch streams to end.) Connections made while the member is
// down are held, not refused, until it is back (as a network that delays
// the handshake would), so that the clients do not sit in gRPC's reconnect
// backoff for seconds after each restart.
type crashProxy struct {
	ln     net.Listener
	target string
	closed chan struct{}

	mu    sync.Mutex
	up    chan struct{} // closed while the member is up
	conns map[net.Conn]struct{}
}

func newCrashProxy(t *testing.T, clientURL string) *crashProxy {
	t.Helper()
	u, err := url.Parse(clientURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &crashProxy{ln: ln, target: u.Host, closed: make(chan struct{}), up: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(p.up)
	var wg sync.WaitGroup
	wg.Go(func() { p.accept(&wg) })
	t.Cleanup(func() {
		close(p.closed)
		ln.Close()
		p.crash()
		wg.Wait()
	})
	return p
}

func (p *crashProxy) endpoint() string { return "http://" + p.ln.Addr().String() }

func (p *crashProxy) accept(wg *sync.WaitGroup) {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		wg.Go(func() { p.serve(c) })
	}
}

func (p *crashProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// serve forwards c once the member is up, until either side closes or the
// member crashes.
func (p *crashProxy) serve(c net.Conn) {
	defer p.untrack(c)
	p.mu.Lock()
	up := p.up
	p.mu.Unlock()
	select {
	case <-up:
	case <-p.closed:
		return
	}
	d, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		return
	}
	p.mu.Lock()
	_, open := p.conns[c] // not cut by a crash meanwhile
	if open {
		p.conns[d] = struct{}{}
	}
	p.mu.Unlock()
	if !open {
		d.Close()
		return
	}
	defer p.untrack(d)
	done := make(chan struct{}, 2)
	go func() { io.Copy(d, c); done <- struct{}{} }()
	go func() { io.Copy(c, d); done <- struct{}{} }()
	<-done
}

// crash cuts every connection through the proxy; new ones wait for
// recover.
func (p *crashProxy) crash() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.up:
		p.up = make(chan struct{})
	default:
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// recover lets connections through again.
func (p *crashProxy) recover() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.up:
	default:
		close(p.up)
	}
}
