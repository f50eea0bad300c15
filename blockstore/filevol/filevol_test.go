package filevol_test

import (
	"testing"

	"github.com/stratuskit/stratus/blockstore"
	"github.com/stratuskit/stratus/blockstore/drivertest"
	"github.com/stratuskit/stratus/blockstore/filevol"
)

func open(t *testing.T, opts *filevol.Options) blockstore.Backend {
	t.Helper()
	b, err := filevol.Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformanceRaw(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) blockstore.Backend { return open(t, nil) })
}

func TestConformanceQcow2(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) blockstore.Backend { return open(t, &filevol.Options{Format: "qcow2"}) })
}

func TestConformanceQcow2FullCopy(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) blockstore.Backend {
		return open(t, &filevol.Options{Format: "qcow2", FullCopy: true})
	})
}
