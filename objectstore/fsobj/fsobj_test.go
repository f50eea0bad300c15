package fsobj_test

import (
	"testing"

	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/objectstore/drivertest"
	"github.com/stratuskit/stratus/objectstore/fsobj"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) objectstore.Backend {
		b, err := fsobj.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}
