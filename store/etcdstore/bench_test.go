package etcdstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"testing"

	"github.com/stratuskit/stratus/internal/etcdtest"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/boltstore"
	"github.com/stratuskit/stratus/store/etcdstore"
	"github.com/stratuskit/stratus/store/storetest"
)

func etcdConfig(endpoints []string) storetest.Config {
	return storetest.Config{Open: func(ctx context.Context, dir string) (store.Backend, error) {
		sum := sha256.Sum256([]byte(dir))
		return etcdstore.Open(ctx, endpoints, &etcdstore.Options{Prefix: "/bench/" + hex.EncodeToString(sum[:8]) + "/"})
	}}
}

// BenchmarkCommit16 compares acknowledged transactions per second with 16
// concurrent writers on bbolt, on a 1-member and on a 3-member etcd cluster
// on loopback, in the same run.
func BenchmarkCommit16(b *testing.B) {
	bolt := storetest.Config{Open: func(ctx context.Context, dir string) (store.Backend, error) {
		return boltstore.Open(ctx, filepath.Join(dir, "stratus.db"), &boltstore.Options{Preallocate: 64 << 20})
	}}
	b.Run("bbolt", func(b *testing.B) { storetest.BenchCommit(b, bolt, 16) })
	b.Run("etcd-1", func(b *testing.B) { storetest.BenchCommit(b, config(), 16) })
	three, err := etcdtest.Start(b.TempDir(), 3)
	if err != nil {
		b.Fatal(err)
	}
	defer three.Stop()
	b.Run("etcd-3", func(b *testing.B) { storetest.BenchCommit(b, etcdConfig(three.Endpoints()), 16) })
}

// BenchmarkStore measures acknowledged transactions per second on the
// shared 1-member cluster with one and with 16 writers.
func BenchmarkStore(b *testing.B) {
	b.Run("Commit/writers=1", func(b *testing.B) { storetest.BenchCommit(b, config(), 1) })
	b.Run("Commit/writers=16", func(b *testing.B) { storetest.BenchCommit(b, config(), 16) })
}
