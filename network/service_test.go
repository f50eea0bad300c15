package network_test

import (
	"errors"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
	. "github.com/stratuskit/stratus/network"
)

func TestSubnetValidation(t *testing.T) {
	e := newEnv(t)
	ctx := member("p1")
	n := must(e.svc.CreateNetwork(ctx, CreateNetworkOpts{Name: "n"}))
	gw := func(s string) *string { return &s }
	bad := []struct {
		name  string
		opts  CreateSubnetOpts
		field string
	}{
		{"host bits", CreateSubnetOpts{CIDR: "10.0.0.1/24"}, "cidr"},
		{"not a cidr", CreateSubnetOpts{CIDR: "10.0.0.0"}, "cidr"},
		{"prefix 33", CreateSubnetOpts{CIDR: "10.0.0.0/33"}, "cidr"},
		{"too small", CreateSubnetOpts{CIDR: "10.0.0.0/31"}, "cidr"},
		{"version mismatch", CreateSubnetOpts{CIDR: "10.0.0.0/24", IPVersion: 6}, "ip_version"},
		{"gateway outside", CreateSubnetOpts{CIDR: "10.0.0.0/24", GatewayIP: gw("10.0.1.1")}, "gateway_ip"},
		{"gateway is broadcast", CreateSubnetOpts{CIDR: "10.0.0.0/24", GatewayIP: gw("10.0.0.255")}, "gateway_ip"},
		{"pool outside", CreateSubnetOpts{CIDR: "10.0.0.0/24", AllocationPools: []Pool{{"10.0.0.10", "10.0.1.10"}}}, "allocation_pools"},
		{"pool with gateway", CreateSubnetOpts{CIDR: "10.0.0.0/24", AllocationPools: []Pool{{"10.0.0.1", "10.0.0.10"}}}, "allocation_pools"},
		{"pools overlap", CreateSubnetOpts{CIDR: "10.0.0.0/24", AllocationPools: []Pool{{"10.0.0.10", "10.0.0.20"}, {"10.0.0.15", "10.0.0.30"}}}, "allocation_pools"},
		{"pool reversed", CreateSubnetOpts{CIDR: "10.0.0.0/24", AllocationPools: []Pool{{"10.0.0.20", "10.0.0.10"}}}, "allocation_pools"},
		{"bad dns", CreateSubnetOpts{CIDR: "10.0.0.0/24", DNSNameservers: []string{"dns.example"}}, "dns_nameservers"},
		{"bad route", CreateSubnetOpts{CIDR: "10.0.0.0/24", HostRoutes: []HostRoute{{"10.1.0.0/33", "10.0.0.1"}}}, "host_routes"},
		{"v6 mode on v4", CreateSubnetOpts{CIDR: "10.0.0.0/24", IPv6AddressMode: ModeSLAAC}, "ipv6_address_mode"},
		{"slaac not /64", CreateSubnetOpts{CIDR: "2001:db8::/80", IPv6AddressMode: ModeSLAAC}, "cidr"},
		{"modes differ", CreateSubnetOpts{CIDR: "2001:db8::/64", IPv6AddressMode: ModeSLAAC, IPv6RAMode: ModeDHCPv6Stateful}, "ipv6_ra_mode"},
		{"unknown mode", CreateSubnetOpts{CIDR: "2001:db8::/64", IPv6AddressMode: "magic"}, "ipv6_address_mode"},
	}
	for _, c := range bad {
		c.opts.NetworkID = n.ID
		_, err := e.svc.CreateSubnet(ctx, c.opts)
		var ve *errdefs.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("%s: %v, want a validation error on %s", c.name, err, c.field)
		}
	}
	// No gateway: the pool spans every host.
	s := must(e.svc.CreateSubnet(ctx, CreateSubnetOpts{NetworkID: n.ID, CIDR: "10.5.0.0/29", NoGateway: true, EnableDHCP: new(false)}))
	if s.GatewayIP != nil || len(s.AllocationPools) != 1 || s.AllocationPools[0] != (Pool{"10.5.0.1", "10.5.0.6"}) {
		t.Fatalf("no-gateway subnet %+v %v", s.AllocationPools, s.GatewayIP)
	}
	// A gateway in the middle splits the pool.
	s2 := must(e.svc.CreateSubnet(ctx, CreateSubnetOpts{NetworkID: n.ID, CIDR: "10.6.0.0/29", GatewayIP: gw("10.6.0.3"), EnableDHCP: new(false)}))
	if len(s2.AllocationPools) != 2 || s2.AllocationPools[0] != (Pool{"10.6.0.1", "10.6.0.2"}) || s2.AllocationPools[1] != (Pool{"10.6.0.4", "10.6.0.6"}) {
		t.Fatalf("split pools %+v", s2.AllocationPools)
	}
	// Overlap inside a network is refused; across networks it is fine.
	_, err := e.svc.CreateSubnet(ctx, CreateSubnetOpts{NetworkID: n.ID, CIDR: "10.5.0.0/24"})
	wantKind(t, err, errdefs.ErrInvalid)
	n2 := must(e.svc.CreateNetwork(ctx, CreateNetworkOpts{Name: "n2"}))
	must(e.svc.CreateSubnet(ctx, CreateSubnetOpts{NetworkID: n2.ID, CIDR: "10.5.0.0/24"}))
	// Toggling DHCP adds and removes the DHCP port's address.
	must(e.svc.UpdateSubnet(ctx, s.ID, UpdateSubnetOpts{EnableDHCP: new(true)}))
	dhcp := must(e.svc.ListPorts(ctx, ListOpts{DeviceID: "dhcp-" + n.ID}))
	if len(dhcp) != 1 || len(dhcp[0].FixedIPs) != 1 || dhcp[0].FixedIPs[0].SubnetID != s.ID {
		t.Fatalf("dhcp port %+v", dhcp)
	}
	must(e.svc.UpdateSubnet(ctx, s.ID, UpdateSubnetOpts{EnableDHCP: new(false)}))
	if got := must(e.svc.ListPorts(ctx, ListOpts{DeviceID: "dhcp-" + n.ID})); len(got) != 0 {
		t.Fatalf("dhcp port left after DHCP was disabled: %+v", got)
	}
}

func TestSegmentsAndQuotas(t *testing.T) {
	e := newEnv(t)
	admin := e.admin
	a := must(e.svc.CreateNetwork(admin, CreateNetworkOpts{Name: "a", ProjectID: "p1", NetworkType: TypeVLAN, PhysicalNetwork: "physnet1"}))
	b := must(e.svc.CreateNetwork(admin, CreateNetworkOpts{Name: "b", ProjectID: "p1", NetworkType: TypeVLAN, PhysicalNetwork: "physnet1"}))
	if a.SegmentationID == b.SegmentationID || a.SegmentationID < 1 || a.MTU != 1500 {
		t.Fatalf("vlan segments %d %d mtu %d", a.SegmentationID, b.SegmentationID, a.MTU)
	}
	_, err := e.svc.CreateNetwork(admin, CreateNetworkOpts{Name: "c", NetworkType: TypeVLAN, PhysicalNetwork: "physnet1", SegmentationID: a.SegmentationID})
	wantFault(t, err, "SegmentationIdInUse")
	must(e.svc.CreateNetwork(admin, CreateNetworkOpts{Name: "flat", NetworkType: TypeFlat, PhysicalNetwork: "external"}))
	_, err = e.svc.CreateNetwork(admin, CreateNetworkOpts{Name: "flat2", NetworkType: TypeFlat, PhysicalNetwork: "external"})
	wantFault(t, err, "FlatNetworkInUse")
	_, err = e.svc.CreateNetwork(admin, CreateNetworkOpts{NetworkType: TypeVLAN, PhysicalNetwork: "nowhere"})
	wantKind(t, err, errdefs.ErrInvalid)
	if err := e.svc.DeleteNetwork(admin, a.ID, nil); err != nil {
		t.Fatal(err)
	}
	c := must(e.svc.CreateNetwork(admin, CreateNetworkOpts{Name: "c", NetworkType: TypeVLAN, PhysicalNetwork: "physnet1", SegmentationID: a.SegmentationID}))
	if c.SegmentationID != a.SegmentationID {
		t.Fatal("a freed segment was not reusable")
	}
	v := must(e.svc.CreateNetwork(member("p1"), CreateNetworkOpts{Name: "tenant"}))
	if v.NetworkType != TypeVXLAN || v.MTU != 1450 || v.SegmentationID < 1 {
		t.Fatalf("tenant network %+v", v)
	}

	// Quotas count exactly, and refusals take nothing.
	ctx := member("p2")
	must(e.svc.UpdateQuota(admin, "p2", Quota{"network": 2, "port": 3}))
	n := must(e.svc.CreateNetwork(ctx, CreateNetworkOpts{Name: "1"}))
	must(e.svc.CreateSubnet(ctx, CreateSubnetOpts{NetworkID: n.ID, CIDR: "10.0.0.0/24"}))
	must(e.svc.CreateNetwork(ctx, CreateNetworkOpts{Name: "2"}))
	_, err = e.svc.CreateNetwork(ctx, CreateNetworkOpts{Name: "3"})
	wantKind(t, err, errdefs.ErrQuotaExceeded)
	wantFault(t, err, "OverQuota")
	// A failed bulk create takes nothing.
	_, err = e.svc.CreatePorts(admin, []CreatePortOpts{{NetworkID: n.ID, ProjectID: "p2"}, {NetworkID: "missing", ProjectID: "p2"}})
	wantKind(t, err, errdefs.ErrNotFound)
	var ports []*Port
	for range 3 {
		ports = append(ports, must(e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: n.ID})))
	}
	_, err = e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: n.ID})
	wantKind(t, err, errdefs.ErrQuotaExceeded)
	d := must(e.svc.QuotaDetails(ctx, "p2"))
	if d["port"].Used != 3 || d["network"].Used != 2 || d["subnet"].Used != 1 || d["security_group_rule"].Used != 4 {
		t.Fatalf("usage %+v", d)
	}
	for _, p := range ports {
		if err := e.svc.DeletePort(ctx, p.ID, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.svc.DeleteNetwork(ctx, n.ID, nil); err != nil {
		t.Fatal(err)
	}
	d = must(e.svc.QuotaDetails(ctx, "p2"))
	if d["port"].Used != 0 || d["network"].Used != 1 || d["subnet"].Used != 0 {
		t.Fatalf("usage after deletes %+v", d)
	}
	if _, err := e.svc.GetQuota(member("p1"), "p2"); !errors.Is(err, errdefs.ErrForbidden) {
		t.Fatalf("p1 reads p2's quota: %v", err)
	}
}

func TestRevisions(t *testing.T) {
	e := newEnv(t)
	ctx := member("p1")
	n, _ := e.net(t, ctx, "n", "10.0.0.0/24")
	rev := n.RevisionNumber
	n2 := must(e.svc.UpdateNetwork(ctx, n.ID, UpdateNetworkOpts{Name: new("x"), IfRevision: &rev}))
	if n2.RevisionNumber != rev+1 {
		t.Fatalf("revision %d after update, want %d", n2.RevisionNumber, rev+1)
	}
	_, err := e.svc.UpdateNetwork(ctx, n.ID, UpdateNetworkOpts{Name: new("y"), IfRevision: &rev})
	wantFault(t, err, "RevisionNumberConstraintFailed")
	wantFault(t, e.svc.DeleteNetwork(ctx, n.ID, &rev), "RevisionNumberConstraintFailed")
	must(e.svc.ReplaceTags(ctx, KindNetworks, n.ID, []string{"t"}))
	if got := must(e.svc.GetNetwork(ctx, n.ID)); got.RevisionNumber != rev+2 {
		t.Fatalf("a tag change did not bump the revision: %d", got.RevisionNumber)
	}
}

func TestPortUpdates(t *testing.T) {
	e := newEnv(t)
	ctx := member("p1")
	n, sub := e.net(t, ctx, "n", "10.0.0.0/24")
	p := must(e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: n.ID, FixedIPs: []FixedIP{{SubnetID: sub.ID, IPAddress: "10.0.0.10"}},
		AllowedAddressPairs: []AddressPair{{IPAddress: "10.0.0.100"}}, ExtraDHCPOpts: []DHCPOpt{{OptName: "mtu", OptValue: "1400"}}}))
	// Swap the address: the old one is free again.
	must(e.svc.UpdatePort(ctx, p.ID, UpdatePortOpts{FixedIPs: &[]FixedIP{{SubnetID: sub.ID, IPAddress: "10.0.0.11"}}}))
	must(e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: n.ID, FixedIPs: []FixedIP{{IPAddress: "10.0.0.10"}}}))
	_, err := e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: n.ID, FixedIPs: []FixedIP{{IPAddress: "10.0.0.11"}}})
	wantFault(t, err, "IpAddressAlreadyAllocated")
	_, err = e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: n.ID, MACAddress: p.MACAddress})
	wantFault(t, err, "MacAddressInUse")
	_, err = e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: n.ID, ExtraDHCPOpts: []DHCPOpt{{OptName: "x", OptValue: "a\nb"}}})
	wantKind(t, err, errdefs.ErrInvalid)
	_, err = e.svc.UpdatePort(ctx, p.ID, UpdatePortOpts{PortSecurityEnabled: new(false)})
	wantFault(t, err, "PortSecurityPortHasSecurityGroup")
	q := must(e.svc.UpdatePort(ctx, p.ID, UpdatePortOpts{SecurityGroups: &[]string{}, AllowedAddressPairs: &[]AddressPair{}, PortSecurityEnabled: new(false)}))
	if q.PortSecurityEnabled || len(q.SecurityGroups) != 0 {
		t.Fatalf("port %+v", q)
	}
	// Router interface ports are not deleted through the port API.
	r := must(e.svc.CreateRouter(ctx, CreateRouterOpts{Name: "r"}))
	info := must(e.svc.AddRouterInterface(ctx, r.ID, sub.ID, ""))
	wantFault(t, e.svc.DeletePort(ctx, info.PortID, nil), "L3PortInUse")
	_, err = e.svc.AddRouterInterface(ctx, r.ID, sub.ID, "")
	wantKind(t, err, errdefs.ErrInvalid) // a second interface on the subnet
}
