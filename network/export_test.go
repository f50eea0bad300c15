package network

import (
	"context"
	"testing"

	"github.com/stratuskit/stratus/internal/etcdtest"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/etcdstore"
)

// Internals for the external tests.
const (
	TestPortTable = portTable
	TestIPIndex   = ipIndex
	TestMACIndex  = macIndex
	TestIPTable   = ipTable
	TestMACTable  = macTable
)

// TestLegacyAlloc is the record type of the legacy allocation tables.
type TestLegacyAlloc = legacyAlloc

// EUI64 exposes eui64.
var EUI64 = eui64

// EtcdReplicas starts a one-member etcd cluster and returns a function
// that opens a new store replica of the network tables on it, as another
// controller would; the cluster and the replicas stop when the test ends.
func EtcdReplicas(t *testing.T) func() *store.Store {
	t.Helper()
	cl, err := etcdtest.Start(t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Stop)
	return func() *store.Store {
		t.Helper()
		ctx := context.Background()
		b, err := etcdstore.Open(ctx, cl.Endpoints(), nil)
		if err != nil {
			t.Fatal(err)
		}
		st, err := store.Open(ctx, b, Tables(), &store.Options{CompactInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
}
