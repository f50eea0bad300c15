package etcdstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stratuskit/stratus/internal/etcdtest"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/etcdstore"
	"github.com/stratuskit/stratus/store/storetest"
)

// endpointsEnv carries the test cluster's endpoints to the crash test's
// child process.
const endpointsEnv = "STRATUS_TEST_ETCD_ENDPOINTS"

// cluster is the one-member cluster most tests share; each test directory
// gets its own key prefix.
var cluster *etcdtest.Cluster

func config() storetest.Config {
	return storetest.Config{
		Open: func(ctx context.Context, dir string) (store.Backend, error) {
			sum := sha256.Sum256([]byte(dir))
			return etcdstore.Open(ctx, strings.Split(os.Getenv(endpointsEnv), ","),
				&etcdstore.Options{Prefix: "/test/" + hex.EncodeToString(sum[:8]) + "/"})
		},
	}
}

func TestMain(m *testing.M) {
	if storetest.IsCrashChild() {
		storetest.Main(m, config())
	}
	dir, err := os.MkdirTemp("", "etcdstore-test")
	if err != nil {
		panic(err)
	}
	cluster, err = etcdtest.Start(dir, 1)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv(endpointsEnv, strings.Join(cluster.Endpoints(), ","))
	code := storetest.RunMain(m)
	cluster.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestConformance(t *testing.T) { storetest.Run(t, config()) }
