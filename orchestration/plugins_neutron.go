package orchestration

import (
	"context"
	"fmt"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
)

// neutronPlugin is one OS::Neutron type that maps onto one network
// resource kind: create through its own function, attributes from Show.
type neutronPlugin struct {
	n      Network
	kind   NetKind
	schema *TypeSchema
	create func(ctx context.Context, n Network, r *Resource) (string, error)
	// named types can be found again by name after a crash.
	named bool
}

func (p *neutronPlugin) Schema() *TypeSchema { return p.schema }

func (p *neutronPlugin) Create(ctx context.Context, r *Resource) (string, error) {
	return p.create(ctx, p.n, r)
}

func (p *neutronPlugin) Delete(ctx context.Context, r *Resource) error {
	return p.n.Delete(ctx, p.kind, r.PhysicalID)
}

func (p *neutronPlugin) Attribute(ctx context.Context, r *Resource, name string) (any, error) {
	m, err := p.n.Show(ctx, p.kind, r.PhysicalID)
	if err != nil {
		return nil, err
	}
	if name == "show" {
		return m, nil
	}
	return m[name], nil
}

// namedNeutron adds Find to the types whose resources carry the physical
// name.
type namedNeutron struct{ *neutronPlugin }

func (p namedNeutron) Find(ctx context.Context, r *Resource) (string, error) {
	return p.n.Find(ctx, p.kind, nameOf(r))
}

func ruleOf(m map[string]any, group string) RuleSpec {
	rs := RuleSpec{SecurityGroup: group, Direction: textOf(m["direction"]), EtherType: textOf(m["ethertype"]),
		Protocol: textOf(m["protocol"]), RemoteIPPrefix: textOf(m["remote_ip_prefix"]), RemoteGroup: textOf(m["remote_group_id"])}
	if rs.Direction == "" {
		rs.Direction = "ingress"
	}
	if rs.EtherType == "" {
		rs.EtherType = "IPv4"
	}
	if f, err := toNumber(m["port_range_min"]); err == nil {
		rs.PortMin = int(f)
	}
	if f, err := toNumber(m["port_range_max"]); err == nil {
		rs.PortMax = int(f)
	}
	return rs
}

var ruleProps = map[string]*PropSchema{
	"direction":        {Type: PropString, Default: "ingress", Constraints: []Constraint{{AllowedValues: []any{"ingress", "egress"}}}},
	"ethertype":        {Type: PropString, Default: "IPv4", Constraints: []Constraint{{AllowedValues: []any{"IPv4", "IPv6"}}}},
	"protocol":         str("Protocol: tcp, udp, icmp, a number or empty for any."),
	"port_range_min":   {Type: PropInteger, Constraints: []Constraint{{IsRange: true, Min: ptr(0), Max: ptr(65535)}}},
	"port_range_max":   {Type: PropInteger, Constraints: []Constraint{{IsRange: true, Min: ptr(0), Max: ptr(65535)}}},
	"remote_ip_prefix": str("CIDR the rule matches."),
	"remote_group":     {Type: PropString, Description: "Security group the rule matches."},
	"remote_mode":      {Type: PropString, Constraints: []Constraint{{AllowedValues: []any{"remote_ip_prefix", "remote_group_id"}}}},
}

func neutronPlugins(n Network) map[string]Plugin {
	netAttrs := map[string]string{"name": "Name.", "status": "Status.", "subnets": "Subnet ids.", "admin_state_up": "Administrative state.", "shared": "Shared."}
	out := map[string]Plugin{}
	add := func(typ string, p *neutronPlugin) {
		p.n = n
		if p.named {
			out[typ] = namedNeutron{p}
		} else {
			out[typ] = p
		}
	}
	add("OS::Neutron::Net", &neutronPlugin{kind: KindNetwork, named: true, schema: &TypeSchema{
		Description: "A network.",
		Properties: map[string]*PropSchema{"name": str("Network name; default the physical name."),
			"admin_state_up": {Type: PropBoolean, Default: true}, "shared": {Type: PropBoolean, Default: false},
			"port_security_enabled": {Type: PropBoolean}, "value_specs": {Type: PropMap}, "tags": {Type: PropList},
			"dhcp_agent_ids": {Type: PropList}, "tenant_id": str("Unused here.")},
		Attributes: netAttrs},
		create: func(ctx context.Context, n Network, r *Resource) (string, error) {
			return n.CreateNetwork(ctx, NetSpec{Name: nameOf(r), AdminStateUp: r.Bool("admin_state_up"), Shared: r.Bool("shared")})
		}})
	add("OS::Neutron::Subnet", &neutronPlugin{kind: KindSubnet, named: true, schema: &TypeSchema{
		Description: "A subnet of a network.",
		Properties: map[string]*PropSchema{"name": str("Subnet name; default the physical name."),
			"network":          {Type: PropString, Required: true, Constraints: []Constraint{{Custom: "neutron.network"}}},
			"cidr":             str("CIDR."),
			"ip_version":       {Type: PropInteger, Default: 4, Constraints: []Constraint{{AllowedValues: []any{4, 6}}}},
			"gateway_ip":       str("Gateway address; empty or null for none."),
			"enable_dhcp":      {Type: PropBoolean, Default: true},
			"dns_nameservers":  {Type: PropList},
			"allocation_pools": {Type: PropList},
			"host_routes":      {Type: PropList}, "value_specs": {Type: PropMap}, "tags": {Type: PropList},
			"subnetpool": str("Unused here."), "prefixlen": {Type: PropInteger}, "ipv6_address_mode": str(""), "ipv6_ra_mode": str(""),
			"network_id": str("Deprecated: network."), "tenant_id": str("Unused here.")},
		Attributes: map[string]string{"name": "Name.", "cidr": "CIDR.", "gateway_ip": "Gateway.", "network_id": "Network.",
			"allocation_pools": "Pools.", "ip_version": "IP version.", "enable_dhcp": "DHCP."}},
		create: func(ctx context.Context, n Network, r *Resource) (string, error) {
			spec := SubnetSpec{Name: nameOf(r), Network: r.Str("network"), CIDR: r.Str("cidr"), IPVersion: r.Int("ip_version"),
				EnableDHCP: r.Bool("enable_dhcp"), DNSNameservers: strList(r.List("dns_nameservers"))}
			if g, ok := r.Properties["gateway_ip"]; ok {
				spec.GatewayIP = textOf(g)
				spec.NoGateway = g == nil || spec.GatewayIP == ""
			}
			for _, p := range r.List("allocation_pools") {
				m, _ := p.(map[string]any)
				spec.AllocationPools = append(spec.AllocationPools, Pool{Start: textOf(m["start"]), End: textOf(m["end"])})
			}
			if spec.CIDR == "" {
				return "", invalid("cidr", "a subnet needs a cidr")
			}
			return n.CreateSubnet(ctx, spec)
		}})
	add("OS::Neutron::Port", &neutronPlugin{kind: KindPort, named: true, schema: &TypeSchema{
		Description: "A port on a network.",
		Properties: map[string]*PropSchema{"name": str("Port name; default the physical name."),
			"network":         {Type: PropString, Required: true, Constraints: []Constraint{{Custom: "neutron.network"}}},
			"fixed_ips":       {Type: PropList, Description: "Maps with subnet and/or ip_address."},
			"security_groups": {Type: PropList},
			"mac_address":     str("MAC address."),
			"admin_state_up":  {Type: PropBoolean, Default: true},
			"device_owner":    str("Unused here."), "device_id": str("Unused here."), "binding:vnic_type": str("Unused here."),
			"port_security_enabled": {Type: PropBoolean}, "allowed_address_pairs": {Type: PropList}, "value_specs": {Type: PropMap},
			"tags": {Type: PropList}, "qos_policy": str("Unused here."), "replacement_policy": str("Unused here.")},
		Attributes: map[string]string{"name": "Name.", "fixed_ips": "Fixed IPs.", "mac_address": "MAC address.",
			"network_id": "Network.", "status": "Status.", "security_groups": "Security groups.", "device_id": "Device.",
			"admin_state_up": "Administrative state."}},
		create: func(ctx context.Context, n Network, r *Resource) (string, error) {
			spec := PortSpec{Name: nameOf(r), Network: r.Str("network"), SecurityGroups: strList(r.List("security_groups")),
				MACAddress: r.Str("mac_address"), AdminStateUp: r.Bool("admin_state_up")}
			if sg, ok := r.Properties["security_groups"]; ok && sg != nil && len(r.List("security_groups")) == 0 {
				spec.NoSecurityGroups = true
			}
			for _, f := range r.List("fixed_ips") {
				m, _ := f.(map[string]any)
				sub := textOf(m["subnet"])
				if sub == "" {
					sub = textOf(m["subnet_id"])
				}
				spec.FixedIPs = append(spec.FixedIPs, FixedIP{Subnet: sub, IP: textOf(m["ip_address"])})
			}
			return n.CreatePort(ctx, spec)
		}})
	add("OS::Neutron::Router", &neutronPlugin{kind: KindRouter, named: true, schema: &TypeSchema{
		Description: "A router.",
		Properties: map[string]*PropSchema{"name": str("Router name; default the physical name."),
			"external_gateway_info": {Type: PropMap, Description: "A map with network (the external network)."},
			"admin_state_up":        {Type: PropBoolean, Default: true}, "value_specs": {Type: PropMap}, "tags": {Type: PropList},
			"distributed": {Type: PropBoolean}, "ha": {Type: PropBoolean}, "l3_agent_ids": {Type: PropList}},
		Attributes: map[string]string{"name": "Name.", "status": "Status.", "external_gateway_info": "Gateway.", "admin_state_up": "Administrative state."}},
		create: func(ctx context.Context, n Network, r *Resource) (string, error) {
			spec := RouterSpec{Name: nameOf(r), AdminStateUp: r.Bool("admin_state_up")}
			if g := r.Map("external_gateway_info"); g != nil {
				spec.ExternalNetwork = textOf(g["network"])
			}
			return n.CreateRouter(ctx, spec)
		}})
	out["OS::Neutron::RouterInterface"] = routerInterface{n}
	add("OS::Neutron::FloatingIP", &neutronPlugin{kind: KindFloatingIP, schema: &TypeSchema{
		Description: "A floating IP, optionally associated with a port.",
		Properties: map[string]*PropSchema{
			"floating_network":    {Type: PropString, Required: true, Constraints: []Constraint{{Custom: "neutron.network"}}},
			"port_id":             str("Port to associate."),
			"fixed_ip_address":    str("Fixed IP of the port."),
			"floating_ip_address": str("The address to allocate."),
			"value_specs":         {Type: PropMap}, "dns_name": str("Unused here."), "dns_domain": str("Unused here."), "floating_subnet": str("Unused here.")},
		Attributes: map[string]string{"floating_ip_address": "Address.", "fixed_ip_address": "Fixed IP.", "port_id": "Port.",
			"floating_network_id": "Network.", "router_id": "Router.", "status": "Status."}},
		create: func(ctx context.Context, n Network, r *Resource) (string, error) {
			return n.CreateFloatingIP(ctx, FloatingIPSpec{FloatingNetwork: r.Str("floating_network"), Port: r.Str("port_id"),
				FixedIP: r.Str("fixed_ip_address"), FloatingIP: r.Str("floating_ip_address")})
		}})
	out["OS::Neutron::FloatingIPAssociation"] = fipAssociation{n}
	add("OS::Neutron::SecurityGroup", &neutronPlugin{kind: KindSecurityGroup, named: true, schema: &TypeSchema{
		Description: "A security group with rules.",
		Properties: map[string]*PropSchema{"name": str("Group name; default the physical name."),
			"description": str("Description."),
			"rules":       {Type: PropList, Description: "Rules: maps with direction, ethertype, protocol, port_range_min, port_range_max, remote_ip_prefix, remote_group_id."}},
		Attributes: map[string]string{"name": "Name.", "security_group_rules": "Rules."}},
		create: func(ctx context.Context, n Network, r *Resource) (string, error) {
			id, err := n.CreateSecurityGroup(ctx, nameOf(r), r.Str("description"))
			if err != nil {
				return "", err
			}
			for i, rv := range r.List("rules") {
				m, ok := rv.(map[string]any)
				if !ok {
					return id, invalid("rules", "rule %d must be a map", i)
				}
				if _, err := n.CreateRule(ctx, ruleOf(m, id)); err != nil {
					return id, err
				}
			}
			return id, nil
		}})
	ruleSchema := &TypeSchema{Description: "A rule of a security group.", Properties: map[string]*PropSchema{
		"security_group": {Type: PropString, Required: true, Constraints: []Constraint{{Custom: "neutron.security_group"}}}},
		Attributes: map[string]string{}}
	for k, v := range ruleProps {
		ruleSchema.Properties[k] = v
	}
	add("OS::Neutron::SecurityGroupRule", &neutronPlugin{kind: KindRule, schema: ruleSchema,
		create: func(ctx context.Context, n Network, r *Resource) (string, error) {
			m := map[string]any{}
			for k, v := range r.Properties {
				m[k] = v
			}
			m["remote_group_id"] = r.Properties["remote_group"]
			return n.CreateRule(ctx, ruleOf(m, r.Str("security_group")))
		}})
	return out
}

// routerInterface is OS::Neutron::RouterInterface; its physical id is
// router:subnet=… or router:port=…, as Heat's.
type routerInterface struct{ n Network }

func (routerInterface) Schema() *TypeSchema {
	return &TypeSchema{Description: "A router's interface on a subnet or port.",
		Properties: map[string]*PropSchema{
			"router": {Type: PropString, Required: true, Constraints: []Constraint{{Custom: "neutron.router"}}},
			"subnet": {Type: PropString, Constraints: []Constraint{{Custom: "neutron.subnet"}}},
			"port":   {Type: PropString, Constraints: []Constraint{{Custom: "neutron.port"}}},
		}, Attributes: map[string]string{}}
}

func (p routerInterface) Create(ctx context.Context, r *Resource) (string, error) {
	router, subnet, port := r.Str("router"), r.Str("subnet"), r.Str("port")
	if (subnet == "") == (port == "") {
		return "", invalid("subnet", "give exactly one of subnet and port")
	}
	r.Data["router"], r.Data["subnet"], r.Data["port"] = router, subnet, port
	if err := p.n.AddRouterInterface(ctx, router, subnet, port); err != nil && !errdefs.IsConflict(err) {
		return "", err
	}
	if subnet != "" {
		return router + ":subnet_id=" + subnet, nil
	}
	return router + ":port_id=" + port, nil
}

func (p routerInterface) Delete(ctx context.Context, r *Resource) error {
	router, subnet, port := r.Data["router"], r.Data["subnet"], r.Data["port"]
	if router == "" {
		var rest string
		router, rest, _ = strings.Cut(r.PhysicalID, ":")
		if s, ok := strings.CutPrefix(rest, "subnet_id="); ok {
			subnet = s
		} else {
			port, _ = strings.CutPrefix(rest, "port_id=")
		}
	}
	err := p.n.RemoveRouterInterface(ctx, router, subnet, port)
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

func (routerInterface) Attribute(context.Context, *Resource, string) (any, error) { return nil, nil }

// fipAssociation is OS::Neutron::FloatingIPAssociation; its physical id is
// the floating IP's.
type fipAssociation struct{ n Network }

func (fipAssociation) Schema() *TypeSchema {
	return &TypeSchema{Description: "A floating IP's association with a port.",
		Properties: map[string]*PropSchema{
			"floatingip_id":    {Type: PropString, Required: true},
			"port_id":          {Type: PropString, Required: true, Constraints: []Constraint{{Custom: "neutron.port"}}},
			"fixed_ip_address": str("Fixed IP of the port."),
		}, Attributes: map[string]string{}}
}

func (p fipAssociation) Create(ctx context.Context, r *Resource) (string, error) {
	if err := p.n.AssociateFloatingIP(ctx, r.Str("floatingip_id"), r.Str("port_id"), r.Str("fixed_ip_address")); err != nil {
		return "", err
	}
	return r.Str("floatingip_id"), nil
}

func (p fipAssociation) Delete(ctx context.Context, r *Resource) error {
	err := p.n.AssociateFloatingIP(ctx, r.PhysicalID, "", "")
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

func (p fipAssociation) Attribute(ctx context.Context, r *Resource, name string) (any, error) {
	if name == "show" {
		return p.n.Show(ctx, KindFloatingIP, r.PhysicalID)
	}
	return nil, fmt.Errorf("no attribute %q", name)
}
