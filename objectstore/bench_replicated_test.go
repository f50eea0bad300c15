package objectstore_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/objectstore/fsobj"
)

// newReplicaEnv is a cloud on fsobj: one directory (replicas == 1, the
// default backend) or a fsobj.Cluster of three device directories with
// three replicas, all on the test's disk.
func newReplicaEnv(tb testing.TB, replicas int) *benchEnv {
	tb.Helper()
	root := tb.TempDir()
	var b objectstore.Backend
	var err error
	if replicas == 1 {
		b, err = fsobj.Open(filepath.Join(root, "objects"), nil)
	} else {
		var devs []string
		for i := range replicas {
			devs = append(devs, filepath.Join(root, fmt.Sprintf("dev%d", i)))
		}
		b, err = fsobj.OpenCluster(fsobj.ClusterConfig{Devices: devs, Replicas: replicas})
	}
	if err != nil {
		tb.Fatal(err)
	}
	return benchEnvOn(tb, b, root)
}

// BenchmarkReplicatedPut compares PUT through the Swift API on a
// 3-replica fsobj.Cluster (three device directories on one disk, so
// three times the bytes and fsyncs) with the one-directory fsobj.
func BenchmarkReplicatedPut(b *testing.B) {
	for _, sz := range benchSizes {
		data := randomBytes(sz.size)
		for _, n := range []int{1, 3} {
			b.Run(fmt.Sprintf("%s/%dreplica", sz.name, n), func(b *testing.B) {
				e := newReplicaEnv(b, n)
				b.SetBytes(int64(sz.size))
				b.ResetTimer()
				for i := range b.N {
					e.put(b, fmt.Sprintf("o%d", i%16), data)
				}
			})
		}
	}
}

// BenchmarkReplicatedGet compares GET through the Swift API on a
// 3-replica fsobj.Cluster (which asks every replica for its version and
// reads one) with the one-directory fsobj.
func BenchmarkReplicatedGet(b *testing.B) {
	for _, sz := range benchSizes {
		data := randomBytes(sz.size)
		for _, n := range []int{1, 3} {
			b.Run(fmt.Sprintf("%s/%dreplica", sz.name, n), func(b *testing.B) {
				e := newReplicaEnv(b, n)
				e.put(b, "o", data)
				b.SetBytes(int64(sz.size))
				b.ResetTimer()
				for range b.N {
					e.get(b, "o")
				}
			})
		}
	}
}
