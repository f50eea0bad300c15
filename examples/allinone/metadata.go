package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/network"
	"github.com/stratuskit/stratus/network/linuxnet"
)

// portFinder is the network service as the metadata service needs it.
type portFinder interface {
	PortByAddress(ctx context.Context, networkID, ip string) (*network.Port, error)
}

// guestServers is the compute service as the metadata service needs it.
type guestServers interface {
	GuestMetadata(ctx context.Context, serverID, networkID, portID string) (http.Handler, error)
}

// guestMetadata is the Linux dataplane's metadata service wired to
// compute: the dataplane says which network a request came from and its
// source address (which the port's anti-spoofing guarantees), the network
// service says which port holds that address, and compute serves the
// server that port belongs to, provided compute's own record of the
// server holds the port. Nothing the guest sends (headers, paths) takes
// part in telling who it is.
//
// The dataplane is built before the services it asks, so they are set
// later (use); until then every request is answered 404.
type guestMetadata struct {
	// log, when set, records refused requests (at debug level: a guest
	// may ask as often as it likes).
	log     *slog.Logger
	ports   atomic.Pointer[portFinder]
	servers atomic.Pointer[guestServers]
}

var _ linuxnet.Metadata = (*guestMetadata)(nil)

// use connects the metadata service to the network and compute services.
func (m *guestMetadata) use(ports portFinder, servers guestServers) {
	m.ports.Store(&ports)
	m.servers.Store(&servers)
}

// MetadataHandler implements linuxnet.Metadata.
func (m *guestMetadata) MetadataHandler(ctx context.Context, networkID string, addr netip.Addr) (http.Handler, error) {
	h, err := m.handler(ctx, networkID, addr)
	if err != nil && m.log != nil {
		m.log.Debug("metadata request refused", "network", networkID, "addr", addr, "err", err)
	}
	return h, err
}

func (m *guestMetadata) handler(ctx context.Context, networkID string, addr netip.Addr) (http.Handler, error) {
	ports, servers := m.ports.Load(), m.servers.Load()
	if ports == nil || servers == nil {
		return nil, errdefs.Wrap(errdefs.ErrUnavailable, fmt.Errorf("metadata: services not started"))
	}
	p, err := (*ports).PortByAddress(asSystem(ctx), networkID, addr.String())
	if err != nil {
		return nil, err
	}
	if p.DeviceID == "" || !strings.HasPrefix(p.DeviceOwner, "compute:") {
		return nil, errdefs.Wrap(errdefs.ErrNotFound, fmt.Errorf("metadata: port %s of %s belongs to no server", p.ID, addr))
	}
	return (*servers).GuestMetadata(ctx, p.DeviceID, networkID, p.ID)
}
