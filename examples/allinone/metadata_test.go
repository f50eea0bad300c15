package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/network"
)

// fakePorts holds ports by network and address; like the network
// service, it answers only the system.
type fakePorts map[string]*network.Port

func (f fakePorts) PortByAddress(ctx context.Context, networkID, ip string) (*network.Port, error) {
	if c := identity.CredentialsFrom(ctx); c == nil || !c.IsCloudAdmin() {
		return nil, errdefs.ErrForbidden
	}
	if p, ok := f[networkID+" "+ip]; ok {
		return p, nil
	}
	return nil, errdefs.ErrNotFound
}

// fakeServers serves "server=<id>" for the (server, network, port)
// triples compute recorded.
type fakeServers map[string]bool

func (f fakeServers) GuestMetadata(_ context.Context, server, networkID, port string) (http.Handler, error) {
	if !f[server+" "+networkID+" "+port] {
		return nil, errdefs.ErrNotFound
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "server=", server) }), nil
}

func TestGuestMetadataAdapter(t *testing.T) {
	ctx := context.Background()
	md := &guestMetadata{}
	addr := netip.MustParseAddr("10.0.0.5")
	if _, err := md.MetadataHandler(ctx, "n1", addr); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("before use: %v, want unavailable", err)
	}
	ports := fakePorts{
		"n1 10.0.0.5": {Standard: network.Standard{ID: "p1"}, NetworkID: "n1", DeviceID: "s1", DeviceOwner: network.OwnerCompute},
		"n1 10.0.0.6": {Standard: network.Standard{ID: "p2"}, NetworkID: "n1", DeviceID: "r1", DeviceOwner: network.OwnerRouterInterface},
		"n1 10.0.0.7": {Standard: network.Standard{ID: "p3"}, NetworkID: "n1"},
		// A port whose device_id names s1 although compute never gave it
		// to s1 (a tenant may write device_id on its own ports).
		"n1 10.0.0.8": {Standard: network.Standard{ID: "p4"}, NetworkID: "n1", DeviceID: "s1", DeviceOwner: network.OwnerCompute},
		"n2 10.0.0.5": {Standard: network.Standard{ID: "p5"}, NetworkID: "n2", DeviceID: "s2", DeviceOwner: network.OwnerCompute},
	}
	md.use(ports, fakeServers{"s1 n1 p1": true, "s2 n2 p5": true})
	serve := func(networkID, ip string) (string, error) {
		h, err := md.MetadataHandler(ctx, networkID, netip.MustParseAddr(ip))
		if err != nil {
			return "", err
		}
		rec := httptest.NewRecorder()
		// Headers that name another guest change nothing.
		req := httptest.NewRequest("GET", "/openstack/latest/meta_data.json", nil)
		req.Header.Set("X-Instance-ID", "s2")
		req.Header.Set("X-Forwarded-For", "10.0.0.5")
		h.ServeHTTP(rec, req)
		b, _ := io.ReadAll(rec.Body)
		return string(b), nil
	}
	for _, c := range []struct{ network, ip, want string }{
		{"n1", "10.0.0.5", "server=s1"},
		{"n2", "10.0.0.5", "server=s2"},
	} {
		if got, err := serve(c.network, c.ip); err != nil || got != c.want {
			t.Errorf("%s %s: %q %v, want %q", c.network, c.ip, got, err, c.want)
		}
	}
	for _, c := range []struct{ name, network, ip string }{
		{"unknown address", "n1", "10.0.0.9"},
		{"router port", "n1", "10.0.0.6"},
		{"unbound port", "n1", "10.0.0.7"},
		{"device_id naming another's server", "n1", "10.0.0.8"},
		{"unknown network", "n3", "10.0.0.5"},
	} {
		if got, err := serve(c.network, c.ip); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("%s: %q %v, want not found", c.name, got, err)
		}
	}
}
