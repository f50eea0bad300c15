package boltstore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/boltstore"
	"github.com/stratuskit/stratus/store/storetest"
)

func config() storetest.Config { return configWith(nil) }

func configWith(opts *boltstore.Options) storetest.Config {
	return storetest.Config{
		Open: func(ctx context.Context, dir string) (store.Backend, error) {
			return boltstore.Open(ctx, filepath.Join(dir, "stratus.db"), opts)
		},
		Check: func(dir string) error { return boltstore.Check(filepath.Join(dir, "stratus.db")) },
	}
}

func TestMain(m *testing.M) {
	if path := os.Getenv("BOLTSTORE_LOCK_PATH"); path != "" {
		lockHelper(path)
		return
	}
	storetest.Main(m, config())
}

func TestConformance(t *testing.T) { storetest.Run(t, config()) }
