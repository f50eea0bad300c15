package fakenet_test

import (
	"context"
	"testing"

	"github.com/stratuskit/stratus/network"
	"github.com/stratuskit/stratus/network/drivertest"
	"github.com/stratuskit/stratus/network/fakenet"
)

type harness struct{ b *fakenet.Backend }

func (h harness) MakeBackend(context.Context) (network.Backend, error) { return h.b, nil }
func (h harness) Close()                                               {}

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(context.Context, *testing.T) (drivertest.Harness, error) {
		return harness{fakenet.New()}, nil
	})
}
