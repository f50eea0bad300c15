package fakevol_test

import (
	"testing"

	"github.com/stratuskit/stratus/blockstore"
	"github.com/stratuskit/stratus/blockstore/drivertest"
	"github.com/stratuskit/stratus/blockstore/fakevol"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(*testing.T) blockstore.Backend { return fakevol.New(&fakevol.Options{OverSubscription: 10}) })
}
