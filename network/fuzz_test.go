package network_test

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
	. "github.com/stratuskit/stratus/network"
)

// FuzzParseCIDR: a CIDR is accepted only if it is a canonical network
// address, and then round-trips.
func FuzzParseCIDR(f *testing.F) {
	for _, s := range []string{"10.0.0.0/24", "10.0.0.1/24", "::/0", "2001:db8::/64", "10.0.0.0/33", "fe80::%eth0/64", "::ffff:10.0.0.0/104", "", "1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseCIDR("cidr", s)
		if err != nil {
			var ve *errdefs.ValidationError
			if !errors.As(err, &ve) || ve.Field != "cidr" {
				t.Fatalf("%q: %v is not a validation error on cidr", s, err)
			}
			return
		}
		if p.Masked() != p || p.Addr().Zone() != "" {
			t.Fatalf("%q accepted as %s", s, p)
		}
		if q, err := netip.ParsePrefix(p.String()); err != nil || q != p {
			t.Fatalf("%q does not round-trip", s)
		}
	})
}

// FuzzListQuery: any query either fails validation or yields filters that
// match without panicking.
func FuzzListQuery(f *testing.F) {
	for _, s := range []string{"name=a&tags=x,y&not-tags-any=z&sort_key=name&sort_dir=desc&fields=id", "fixed_ips=ip_address%3D10.0.0.1", "sort_dir=up", "tags=,", "admin_state_up=True&limit=2"} {
		f.Add(s)
	}
	item := map[string]any{"id": "x", "name": "a", "tags": []any{"x", "y"}, "admin_state_up": true, "mtu": float64(1500),
		"fixed_ips": []any{map[string]any{"ip_address": "10.0.0.1", "subnet_id": "s"}}, "gateway_ip": nil}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		lq, err := ParseListQuery(q)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("%q: %v", raw, err)
			}
			return
		}
		lq.Match(item)
		items := []map[string]any{item, {"id": "y"}}
		lq.Sort(items)
		lq.Select(item)
	})
}

// FuzzRuleFromJSON: a rule body is refused with a validation error, or
// gives a rule whose match is exactly what it says: never an "any" that
// the body did not ask for (OSSA-2014-014).
func FuzzRuleFromJSON(f *testing.F) {
	for _, s := range []string{
		`{"direction":"ingress","protocol":"tcp","port_range_min":22,"port_range_max":22,"remote_ip_prefix":"10.0.0.0/8"}`,
		`{"direction":"ingress","protocol":"tcp","port_range_min":30,"port_range_max":20}`,
		`{"direction":"egress","ethertype":"IPv6","protocol":58}`,
		`{"direction":"ingress","remote_ip_prefix":"10.0.0.0/33"}`,
		`{"direction":"ingress","protocol":"6","port_range_min":"80"}`,
		`{"direction":"ingress","protocol":null,"remote_ip_prefix":"::/0","ethertype":"IPv6"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, o, err := RuleFromJSON(raw)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("%s: %v is not a validation error", raw, err)
			}
			return
		}
		if o.RemoteIPPrefix != "" && r.RemoteIPPrefix == nil {
			t.Fatalf("%s: prefix %q dropped", raw, o.RemoteIPPrefix)
		}
		if o.Protocol != "" && !strings.EqualFold(o.Protocol, "any") && r.Protocol == nil {
			t.Fatalf("%s: protocol %q dropped", raw, o.Protocol)
		}
		if (o.PortRangeMin != nil) != (r.PortRangeMin != nil) {
			t.Fatalf("%s: port range changed", raw)
		}
		if r.PortRangeMin != nil && r.PortRangeMax != nil && *r.PortRangeMin > *r.PortRangeMax && (r.Protocol == nil || (*r.Protocol != "icmp" && *r.Protocol != "ipv6-icmp")) {
			t.Fatalf("%s: inverted port range accepted", raw)
		}
		if r.RemoteIPPrefix != nil {
			if _, err := ParseCIDR("x", *r.RemoteIPPrefix); err != nil {
				t.Fatalf("%s: stored prefix %q is not canonical", raw, *r.RemoteIPPrefix)
			}
		}
	})
}
