package compute_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
)

// TestNetworkChangedShowsFloatingIPs: after the network service reports a
// change, the server's addresses list its floating IP after the fixed one
// with OS-EXT-IPS:type floating, and lose it again on the next report.
// Only the cloud may report; the server's owner gets a 404.
func TestNetworkChangedShowsFloatingIPs(t *testing.T) {
	c := newCloud(t, envOpts{})
	code, _, body := c.raw(t, "POST", "/servers", fmt.Sprintf(`{"server":{"name":"s","imageRef":%q,"flavorRef":%q,"networks":[{"uuid":%q}]}}`, imageID, c.flavor.ID, netID), nil)
	if code != 202 {
		t.Fatalf("create: %d %v", code, body)
	}
	id := body["server"].(map[string]any)["id"].(string)
	srv := c.settle(c.env.admin, id)
	if len(srv.Ports) != 1 {
		t.Fatalf("ports %+v", srv.Ports)
	}
	fixed := srv.Ports[0].FixedIPs[0].IPAddress
	addrs := func() []string {
		t.Helper()
		code, _, body := c.raw(t, "GET", "/servers/"+id+"/ips", "", nil)
		if code != 200 {
			t.Fatalf("ips: %d %v", code, body)
		}
		var out []string
		for _, a := range body["addresses"].(map[string]any)["private"].([]any) {
			m := a.(map[string]any)
			out = append(out, fmt.Sprint(m["addr"], " ", m["OS-EXT-IPS:type"]))
		}
		return out
	}

	if err := c.ports.SetFloatingIPs(srv.Ports[0].ID, "203.0.113.7"); err != nil {
		t.Fatal(err)
	}
	if got, want := addrs(), []string{fixed + " fixed"}; !slices.Equal(got, want) {
		t.Fatalf("before the report: %q, want %q", got, want)
	}
	if err := c.svc.NetworkChanged(user(c.p1), id); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("member reports: %v, want not found", err)
	}
	if err := c.svc.NetworkChanged(c.env.admin, id); err != nil {
		t.Fatal(err)
	}
	if got, want := addrs(), []string{fixed + " fixed", "203.0.113.7 floating"}; !slices.Equal(got, want) {
		t.Fatalf("after association: %q, want %q", got, want)
	}
	if err := c.ports.SetFloatingIPs(srv.Ports[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := c.svc.NetworkChanged(c.env.admin, id); err != nil {
		t.Fatal(err)
	}
	if got, want := addrs(), []string{fixed + " fixed"}; !slices.Equal(got, want) {
		t.Fatalf("after disassociation: %q, want %q", got, want)
	}
	if err := c.svc.NetworkChanged(c.env.admin, "no-such-server"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("unknown server: %v, want not found", err)
	}
}
