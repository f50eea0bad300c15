package etcdstore_test

import (
	"errors"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/etcdstore"
	"github.com/stratuskit/stratus/store/storetest"
)

// TestLostLeadershipIsFenced: controller a leads; its lease is revoked (as
// when a stalled leader stops renewing it); b takes over; a's commits with
// its old fencing token are refused by etcd.
func TestLostLeadershipIsFenced(t *testing.T) {
	ep := []string{os.Getenv(endpointsEnv)}
	ctx := t.Context()
	ba, err := etcdstore.Open(ctx, ep, &etcdstore.Options{Prefix: "/elect/"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := store.Open(ctx, ba, storetest.Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b := controller(t, ep, "/elect/")

	la, err := a.Campaign(ctx, "gc")
	if err != nil {
		t.Fatal(err)
	}
	won := make(chan *store.Leader, 1)
	go func() {
		lb, err := b.Campaign(ctx, "gc")
		if err != nil {
			t.Error(err)
			return
		}
		won <- lb
	}()

	// Find a's leadership key and revoke its lease.
	resp, err := ba.Client().Get(ctx, "/elect/elect/gc/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("election keys: %v %v", resp, err)
	}
	oldFence := store.Fence{Key: string(resp.Kvs[0].Key), Rev: uint64(resp.Kvs[0].CreateRevision)}
	if _, err := ba.Client().Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-la.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("a did not notice it lost the leadership")
	}
	var lb *store.Leader
	select {
	case lb = <-won:
	case <-time.After(10 * time.Second):
		t.Fatal("b did not take over")
	}
	defer lb.Resign(ctx)

	// a's old term cannot commit, even if a has not noticed yet.
	_, err = ba.CommitFenced(ctx, []store.Change{{Table: "test.widgets", Key: "stale", Value: []byte(`{"id":"stale"}`)}}, oldFence)
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("commit fenced by a lost term: %v, want ErrConflict", err)
	}
	if err := la.Update(ctx, func(tx *store.Txn) error { return nil }); !errors.Is(err, store.ErrNotLeader) {
		t.Fatalf("update by a's lost leadership: %v, want ErrNotLeader", err)
	}
	if err := lb.Update(ctx, func(tx *store.Txn) error {
		return tx.Insert("test.widgets", &storetest.Widget{ID: "by-b", Project: "p", Name: "by-b"})
	}); err != nil {
		t.Fatalf("the new leader's fenced update: %v", err)
	}
}
