package linuxnet

import (
	"context"
	"net/http"
	"net/netip"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/network"
	"github.com/stratuskit/stratus/network/drivertest"
)

type harness struct{ e *env }

func (h harness) MakeBackend(context.Context) (network.Backend, error) {
	h.e.start()
	return h.e.b, nil
}

func (h harness) Close() {}

type noMetadata struct{}

func (noMetadata) MetadataHandler(context.Context, string, netip.Addr) (http.Handler, error) {
	return nil, errdefs.ErrNotFound
}

func TestConformance(t *testing.T) {
	requireRoot(t)
	drivertest.Run(t, func(_ context.Context, t *testing.T) (drivertest.Harness, error) {
		e := newEnv(t, func(c *Config) { c.VethPorts = false; c.Metadata = noMetadata{} })
		return harness{e}, nil
	})
}
