package network_test

import (
	"errors"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
	. "github.com/stratuskit/stratus/network"
)

// TestRuleValidation: a malformed CIDR or port range is a 400 naming the
// field, never a rule that matches everything (OSSA-2014-014).
func TestRuleValidation(t *testing.T) {
	e := newEnv(t)
	ctx := member("p1")
	sg := must(e.svc.CreateSecurityGroup(ctx, CreateSecurityGroupOpts{Name: "web"}))
	before := len(must(e.svc.Rules(ctx, sg.ID)))
	p := func(n int) *int { return &n }
	bad := []struct {
		name  string
		opts  CreateRuleOpts
		field string
	}{
		{"cidr prefix too long", CreateRuleOpts{Direction: "ingress", Protocol: "tcp", PortRangeMin: p(22), RemoteIPPrefix: "10.0.0.0/33"}, "remote_ip_prefix"},
		{"cidr garbage", CreateRuleOpts{Direction: "ingress", Protocol: "tcp", PortRangeMin: p(22), RemoteIPPrefix: "10.0.0.0/24; drop"}, "remote_ip_prefix"},
		{"cidr of words", CreateRuleOpts{Direction: "ingress", RemoteIPPrefix: "any"}, "remote_ip_prefix"},
		{"cidr of the other family", CreateRuleOpts{Direction: "ingress", Ethertype: "IPv6", RemoteIPPrefix: "10.0.0.0/8"}, "remote_ip_prefix"},
		{"min above max", CreateRuleOpts{Direction: "ingress", Protocol: "tcp", PortRangeMin: p(30), PortRangeMax: p(20)}, "port_range_min"},
		{"port zero", CreateRuleOpts{Direction: "ingress", Protocol: "tcp", PortRangeMin: p(0), PortRangeMax: p(80)}, "port_range_min"},
		{"port too big", CreateRuleOpts{Direction: "ingress", Protocol: "udp", PortRangeMin: p(1), PortRangeMax: p(65536)}, "port_range_min"},
		{"negative port", CreateRuleOpts{Direction: "ingress", Protocol: "tcp", PortRangeMin: p(-1)}, "port_range_min"},
		{"max without min", CreateRuleOpts{Direction: "ingress", Protocol: "tcp", PortRangeMax: p(80)}, "port_range_min"},
		{"ports without protocol", CreateRuleOpts{Direction: "ingress", PortRangeMin: p(22), PortRangeMax: p(22)}, "port_range_min"},
		{"ports on gre", CreateRuleOpts{Direction: "ingress", Protocol: "gre", PortRangeMin: p(22)}, "port_range_min"},
		{"icmp type 256", CreateRuleOpts{Direction: "ingress", Protocol: "icmp", PortRangeMin: p(256)}, "port_range_min"},
		{"protocol garbage", CreateRuleOpts{Direction: "ingress", Protocol: "tcp or 1=1"}, "protocol"},
		{"protocol 256", CreateRuleOpts{Direction: "ingress", Protocol: "256"}, "protocol"},
		{"protocol padded number", CreateRuleOpts{Direction: "ingress", Protocol: "06"}, "protocol"},
		{"no direction", CreateRuleOpts{Protocol: "tcp"}, "direction"},
		{"bad ethertype", CreateRuleOpts{Direction: "ingress", Ethertype: "IPX"}, "ethertype"},
		{"prefix and group", CreateRuleOpts{Direction: "ingress", RemoteIPPrefix: "10.0.0.0/8", RemoteGroupID: sg.ID}, "remote_ip_prefix"},
	}
	for _, c := range bad {
		c.opts.SecurityGroupID = sg.ID
		_, err := e.svc.CreateSecurityGroupRule(ctx, c.opts)
		var ve *errdefs.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("%s: %v, want a validation error on %s", c.name, err, c.field)
		}
	}
	if after := len(must(e.svc.Rules(ctx, sg.ID))); after != before {
		t.Fatalf("%d rules after refused creates, want %d", after, before)
	}
	// Valid ones are normalized, not widened.
	r := must(e.svc.CreateSecurityGroupRule(ctx, CreateRuleOpts{SecurityGroupID: sg.ID, Direction: "ingress", Protocol: "tcp",
		PortRangeMin: p(22), RemoteIPPrefix: "192.0.2.77/24"}))
	if *r.RemoteIPPrefix != "192.0.2.0/24" || *r.PortRangeMax != 22 || *r.Protocol != "tcp" {
		t.Fatalf("rule %+v", r)
	}
	_, err := e.svc.CreateSecurityGroupRule(ctx, CreateRuleOpts{SecurityGroupID: sg.ID, Direction: "ingress", Protocol: "tcp",
		PortRangeMin: p(22), PortRangeMax: p(22), RemoteIPPrefix: "192.0.2.0/24"})
	wantFault(t, err, "SecurityGroupRuleExists")
	// A new group has two egress rules; the default group also admits
	// its own members.
	if n := before; n != 2 {
		t.Fatalf("new group has %d rules, want 2", n)
	}
	def := must(e.svc.EnsureDefaultSecurityGroup(ctx, "p1"))
	rules := must(e.svc.Rules(ctx, def.ID))
	ingressFromSelf := 0
	for _, r := range rules {
		if r.Direction == "ingress" && r.RemoteGroupID != nil && *r.RemoteGroupID == def.ID {
			ingressFromSelf++
		}
	}
	if len(rules) != 4 || ingressFromSelf != 2 {
		t.Fatalf("default group rules %d (%d from itself), want 4 (2)", len(rules), ingressFromSelf)
	}
	// The default group cannot be deleted by its project, nor a group in use.
	wantFault(t, e.svc.DeleteSecurityGroup(ctx, def.ID, nil), "SecurityGroupCannotRemoveDefault")
	n, _ := e.net(t, ctx, "n", "10.0.0.0/24")
	must(e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: n.ID, SecurityGroups: &[]string{sg.ID}}))
	wantFault(t, e.svc.DeleteSecurityGroup(ctx, sg.ID, nil), "SecurityGroupInUse")
}
