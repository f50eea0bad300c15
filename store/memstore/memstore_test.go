package memstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
	"github.com/stratuskit/stratus/store/storetest"
)

// config keeps one in-memory state per directory, so that reopening a
// directory finds what was committed there.
func config() storetest.Config {
	var mu sync.Mutex
	states := map[string]*memstore.Backend{}
	return storetest.Config{
		Open: func(_ context.Context, dir string) (store.Backend, error) {
			mu.Lock()
			defer mu.Unlock()
			b, ok := states[dir]
			if ok {
				b = b.Reopen()
			} else {
				b = memstore.New()
			}
			states[dir] = b
			return b, nil
		},
	}
}

func TestMain(m *testing.M) { storetest.Main(m, config()) }

func TestConformance(t *testing.T) { storetest.Run(t, config()) }
