package memobj_test

import (
	"testing"

	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/objectstore/drivertest"
	"github.com/stratuskit/stratus/objectstore/memobj"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(*testing.T) objectstore.Backend { return memobj.New() })
}
