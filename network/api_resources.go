package network

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/internal/httpapi"
)

// render turns a record into its wire object: tenant_id beside
// project_id, and the admin-only attributes hidden from others.
func (a *api) render(ctx context.Context, rec any) map[string]any {
	m := toMap(rec)
	if p, ok := m["project_id"]; ok {
		m["tenant_id"] = p
	}
	admin := a.svc.isAdmin(identity.CredentialsFrom(ctx))
	switch rec := rec.(type) {
	case *Network:
		m["availability_zones"] = []string{a.svc.cfg.AvailabilityZone}
		m["ipv4_address_scope"], m["ipv6_address_scope"], m["qos_policy_id"], m["dns_domain"] = nil, nil, nil, nil
		m["is_default"], m["l2_adjacency"] = false, true
		if !admin {
			delete(m, "provider:network_type")
			delete(m, "provider:physical_network")
			delete(m, "provider:segmentation_id")
		}
		if rec.NetworkType == TypeFlat {
			m["provider:segmentation_id"] = nil
			if !admin {
				delete(m, "provider:segmentation_id")
			}
		}
	case *Subnet:
		m["subnetpool_id"], m["segment_id"] = nil, nil
		m["service_types"] = []string{}
	case *Port:
		if !admin {
			for _, k := range []string{"binding:host_id", "binding:vif_type", "binding:vif_details", "binding:profile"} {
				delete(m, k)
			}
		}
		m["propagate_uplink_status"] = false
	case *Router:
		delete(m, "gw_port_id")
		m["availability_zones"] = []string{a.svc.cfg.AvailabilityZone}
		m["availability_zone_hints"] = []string{}
		m["distributed"], m["ha"] = false, false
	case *FloatingIP:
		delete(m, "fip_port_id")
		delete(m, "name")
		for _, k := range []string{"port_id", "fixed_ip_address", "router_id"} {
			if m[k] == "" {
				m[k] = nil
			}
		}
		m["port_details"] = nil
		m["qos_policy_id"] = nil
	case *SecurityGroup:
		delete(m, "is_default")
		rules, _ := a.svc.Rules(ctx, rec.ID)
		rs := make([]map[string]any, 0, len(rules))
		for _, r := range rules {
			rs = append(rs, a.render(ctx, r))
		}
		m["security_group_rules"] = rs
	case *SecurityGroupRule:
		delete(m, "name")
		delete(m, "tags")
		m["remote_address_group_id"] = nil
	}
	return m
}

func renderAll[T any](ctx context.Context, a *api, recs []*T) []map[string]any {
	out := make([]map[string]any, 0, len(recs))
	for _, r := range recs {
		out = append(out, a.render(ctx, r))
	}
	return out
}

// owner returns the project a create names (project_id or tenant_id).
func owner(project, tenant string) string {
	if project != "" {
		return project
	}
	return tenant
}

// one decodes {key: obj} into obj, or, for a bulk create, {plural: […]}
// into a list.
func decodeOne(w http.ResponseWriter, r *http.Request, key, plural string) ([]json.RawMessage, bool, error) {
	var body map[string]json.RawMessage
	if err := decode(w, r, &body); err != nil {
		return nil, false, err
	}
	if raw, ok := body[key]; ok {
		return []json.RawMessage{raw}, false, nil
	}
	if raw, ok := body[plural]; ok && plural != "" {
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, false, errdefs.Invalid(plural, "must be a list of objects")
		}
		if len(list) == 0 || len(list) > 1000 {
			return nil, false, errdefs.Invalid(plural, "must hold 1 to 1000 objects")
		}
		return list, true, nil
	}
	return nil, false, errdefs.Invalid(key, "the request body must hold %q", key)
}

func strict(raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return errdefs.Invalid("body", "%v", err)
	}
	return nil
}

// strictThen decodes raw (strictly) into a fresh B and passes it to f.
func strictThen[B, T any](raw json.RawMessage, f func(*B) (*T, error)) (*T, error) {
	var b B
	if err := strict(raw, &b); err != nil {
		return nil, err
	}
	return f(&b)
}

// createHandler answers a create of one object or a bulk create; a bulk
// create that fails part-way deletes what it created.
func createHandler[T, B any](a *api, key, plural string, create func(ctx context.Context, b *B) (*T, error), del func(ctx context.Context, v *T) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raws, bulk, err := decodeOne(w, r, key, plural)
		if err != nil {
			fail(w, r, err)
			return
		}
		var made []*T
		for _, raw := range raws {
			v, err := strictThen(raw, func(b *B) (*T, error) { return create(r.Context(), b) })
			if err != nil {
				for _, m := range made {
					_ = del(r.Context(), m)
				}
				fail(w, r, err)
				return
			}
			made = append(made, v)
		}
		if !bulk {
			a.show(w, r, key, a.render(r.Context(), made[0]), http.StatusCreated)
			return
		}
		reply(w, http.StatusCreated, map[string]any{plural: renderAll(r.Context(), a, made)})
	}
}

func deleteHandler(del func(ctx context.Context, id string, rev *int) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rev, err := ifMatch(r)
		if err != nil {
			fail(w, r, err)
			return
		}
		if err := del(r.Context(), r.PathValue("id"), rev); err != nil {
			fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func getHandler[T any](a *api, key string, get func(ctx context.Context, id string) (*T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := get(r.Context(), r.PathValue("id"))
		if err != nil {
			fail(w, r, err)
			return
		}
		a.show(w, r, key, a.render(r.Context(), v), http.StatusOK)
	}
}

func listHandler[T any](a *api, coll string, list func(ctx context.Context, o ListOpts) ([]*T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		o := ListOpts{NetworkID: q.Get("network_id"), DeviceID: q.Get("device_id")}
		if len(q["network_id"]) > 1 {
			o.NetworkID = ""
		}
		if len(q["device_id"]) > 1 {
			o.DeviceID = ""
		}
		recs, err := list(r.Context(), o)
		if err != nil {
			fail(w, r, err)
			return
		}
		a.list(w, r, coll, renderAll(r.Context(), a, recs), true)
	}
}

func updateHandler[T, B any](a *api, key string, update func(ctx context.Context, id string, b *B, rev *int) (*T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rev, err := ifMatch(r)
		if err != nil {
			fail(w, r, err)
			return
		}
		raws, _, err := decodeOne(w, r, key, "")
		if err != nil {
			fail(w, r, err)
			return
		}
		v, err := strictThen(raws[0], func(b *B) (*T, error) { return update(r.Context(), r.PathValue("id"), b, rev) })
		if err != nil {
			fail(w, r, err)
			return
		}
		a.show(w, r, key, a.render(r.Context(), v), http.StatusOK)
	}
}

type networkBody struct {
	Name                  *string  `json:"name"`
	Description           *string  `json:"description"`
	AdminStateUp          *bool    `json:"admin_state_up"`
	Shared                *bool    `json:"shared"`
	External              *bool    `json:"router:external"`
	MTU                   *flexInt `json:"mtu"`
	PortSecurityEnabled   *bool    `json:"port_security_enabled"`
	NetworkType           string   `json:"provider:network_type"`
	PhysicalNetwork       string   `json:"provider:physical_network"`
	SegmentationID        flexInt  `json:"provider:segmentation_id"`
	ProjectID             string   `json:"project_id"`
	TenantID              string   `json:"tenant_id"`
	Tags                  []string `json:"tags"`
	AvailabilityZoneHints []string `json:"availability_zone_hints"`
}

func (a *api) routeNetworks(rt *httpapi.Router) {
	s := a.svc
	rt.HandleFunc("GET /v2.0/networks", listHandler(a, "networks", s.ListNetworks))
	rt.HandleFunc("GET /v2.0/networks/{id}", getHandler(a, "network", s.GetNetwork))
	rt.HandleFunc("DELETE /v2.0/networks/{id}", deleteHandler(s.DeleteNetwork))
	rt.HandleFunc("POST /v2.0/networks", createHandler(a, "network", "networks", func(ctx context.Context, b *networkBody) (*Network, error) {
		return s.CreateNetwork(ctx, CreateNetworkOpts{Name: deref(b.Name), Description: deref(b.Description), ProjectID: owner(b.ProjectID, b.TenantID),
			AdminStateUp: b.AdminStateUp, Shared: deref(b.Shared), External: deref(b.External), MTU: deref(intPtr(b.MTU)),
			PortSecurityEnabled: b.PortSecurityEnabled, NetworkType: b.NetworkType, PhysicalNetwork: b.PhysicalNetwork,
			SegmentationID: int(b.SegmentationID), Tags: b.Tags, AvailabilityZoneHints: b.AvailabilityZoneHints})
	}, func(ctx context.Context, n *Network) error { return s.DeleteNetwork(ctx, n.ID, nil) }))
	rt.HandleFunc("PUT /v2.0/networks/{id}", updateHandler(a, "network", func(ctx context.Context, id string, b *networkBody, rev *int) (*Network, error) {
		if b.NetworkType != "" || b.PhysicalNetwork != "" || b.SegmentationID != 0 {
			return nil, errdefs.Invalid("provider:network_type", "provider attributes cannot be changed")
		}
		return s.UpdateNetwork(ctx, id, UpdateNetworkOpts{Name: b.Name, Description: b.Description, AdminStateUp: b.AdminStateUp,
			Shared: b.Shared, External: b.External, MTU: intPtr(b.MTU), PortSecurityEnabled: b.PortSecurityEnabled, IfRevision: rev})
	}))
}

type subnetBody struct {
	NetworkID       string          `json:"network_id"`
	Name            *string         `json:"name"`
	Description     *string         `json:"description"`
	ProjectID       string          `json:"project_id"`
	TenantID        string          `json:"tenant_id"`
	IPVersion       flexInt         `json:"ip_version"`
	CIDR            string          `json:"cidr"`
	GatewayIP       json.RawMessage `json:"gateway_ip"`
	AllocationPools *[]Pool         `json:"allocation_pools"`
	DNSNameservers  *[]string       `json:"dns_nameservers"`
	HostRoutes      *[]HostRoute    `json:"host_routes"`
	EnableDHCP      *bool           `json:"enable_dhcp"`
	IPv6RAMode      *string         `json:"ipv6_ra_mode"`
	IPv6AddressMode *string         `json:"ipv6_address_mode"`
	SubnetPoolID    *string         `json:"subnetpool_id"`
	Tags            []string        `json:"tags"`
}

// gateway decodes gateway_ip: absent, null (no gateway) or an address.
func (b *subnetBody) gateway() (*string, bool, error) {
	if len(b.GatewayIP) == 0 {
		return nil, false, nil
	}
	if string(b.GatewayIP) == "null" {
		return nil, true, nil
	}
	var g string
	if err := json.Unmarshal(b.GatewayIP, &g); err != nil {
		return nil, false, errdefs.Invalid("gateway_ip", "must be an address or null")
	}
	return &g, false, nil
}

func (a *api) routeSubnets(rt *httpapi.Router) {
	s := a.svc
	rt.HandleFunc("GET /v2.0/subnets", listHandler(a, "subnets", s.ListSubnets))
	rt.HandleFunc("GET /v2.0/subnets/{id}", getHandler(a, "subnet", s.GetSubnet))
	rt.HandleFunc("DELETE /v2.0/subnets/{id}", deleteHandler(s.DeleteSubnet))
	rt.HandleFunc("POST /v2.0/subnets", createHandler(a, "subnet", "subnets", func(ctx context.Context, b *subnetBody) (*Subnet, error) {
		if b.SubnetPoolID != nil && *b.SubnetPoolID != "" {
			return nil, fault("NotImplemented", errdefs.ErrUnsupported, "subnet pools are not supported")
		}
		gw, none, err := b.gateway()
		if err != nil {
			return nil, err
		}
		return s.CreateSubnet(ctx, CreateSubnetOpts{NetworkID: b.NetworkID, Name: deref(b.Name), Description: deref(b.Description),
			ProjectID: owner(b.ProjectID, b.TenantID), IPVersion: int(b.IPVersion), CIDR: b.CIDR, GatewayIP: gw, NoGateway: none,
			AllocationPools: deref(b.AllocationPools), DNSNameservers: deref(b.DNSNameservers), HostRoutes: deref(b.HostRoutes),
			EnableDHCP: b.EnableDHCP, IPv6RAMode: deref(b.IPv6RAMode), IPv6AddressMode: deref(b.IPv6AddressMode), Tags: b.Tags})
	}, func(ctx context.Context, v *Subnet) error { return s.DeleteSubnet(ctx, v.ID, nil) }))
	rt.HandleFunc("PUT /v2.0/subnets/{id}", updateHandler(a, "subnet", func(ctx context.Context, id string, b *subnetBody, rev *int) (*Subnet, error) {
		gw, none, err := b.gateway()
		if err != nil {
			return nil, err
		}
		return s.UpdateSubnet(ctx, id, UpdateSubnetOpts{Name: b.Name, Description: b.Description, GatewayIP: gw, NoGateway: none,
			AllocationPools: b.AllocationPools, DNSNameservers: b.DNSNameservers, HostRoutes: b.HostRoutes, EnableDHCP: b.EnableDHCP, IfRevision: rev})
	}))
}

type portBody struct {
	NetworkID           string          `json:"network_id"`
	Name                *string         `json:"name"`
	Description         *string         `json:"description"`
	ProjectID           string          `json:"project_id"`
	TenantID            string          `json:"tenant_id"`
	AdminStateUp        *bool           `json:"admin_state_up"`
	MACAddress          *string         `json:"mac_address"`
	FixedIPs            *[]FixedIP      `json:"fixed_ips"`
	DeviceID            *string         `json:"device_id"`
	DeviceOwner         *string         `json:"device_owner"`
	HostID              *string         `json:"binding:host_id"`
	VNICType            *string         `json:"binding:vnic_type"`
	Profile             *map[string]any `json:"binding:profile"`
	PortSecurityEnabled *bool           `json:"port_security_enabled"`
	SecurityGroups      *[]string       `json:"security_groups"`
	AllowedAddressPairs *[]AddressPair  `json:"allowed_address_pairs"`
	ExtraDHCPOpts       *[]DHCPOpt      `json:"extra_dhcp_opts"`
	Tags                []string        `json:"tags"`
}

func (a *api) routePorts(rt *httpapi.Router) {
	s := a.svc
	rt.HandleFunc("GET /v2.0/ports", listHandler(a, "ports", s.ListPorts))
	rt.HandleFunc("GET /v2.0/ports/{id}", getHandler(a, "port", s.GetPort))
	rt.HandleFunc("DELETE /v2.0/ports/{id}", deleteHandler(s.DeletePort))
	rt.HandleFunc("POST /v2.0/ports", func(w http.ResponseWriter, r *http.Request) {
		raws, bulk, err := decodeOne(w, r, "port", "ports")
		if err != nil {
			fail(w, r, err)
			return
		}
		opts := make([]CreatePortOpts, len(raws))
		for i, raw := range raws {
			if opts[i], err = portCreateOpts(raw); err != nil {
				fail(w, r, err)
				return
			}
		}
		// A bulk create is one transaction: all or none.
		made, err := s.CreatePorts(r.Context(), opts)
		if err != nil {
			fail(w, r, err)
			return
		}
		if !bulk {
			a.show(w, r, "port", a.render(r.Context(), made[0]), http.StatusCreated)
			return
		}
		reply(w, http.StatusCreated, map[string]any{"ports": renderAll(r.Context(), a, made)})
	})
	rt.HandleFunc("PUT /v2.0/ports/{id}", updateHandler(a, "port", func(ctx context.Context, id string, b *portBody, rev *int) (*Port, error) {
		return s.UpdatePort(ctx, id, UpdatePortOpts{Name: b.Name, Description: b.Description, AdminStateUp: b.AdminStateUp, MACAddress: b.MACAddress,
			FixedIPs: b.FixedIPs, DeviceID: b.DeviceID, DeviceOwner: b.DeviceOwner, HostID: b.HostID, VNICType: b.VNICType, Profile: b.Profile,
			PortSecurityEnabled: b.PortSecurityEnabled, SecurityGroups: b.SecurityGroups, AllowedAddressPairs: b.AllowedAddressPairs,
			ExtraDHCPOpts: b.ExtraDHCPOpts, IfRevision: rev})
	}))
}

func portCreateOpts(raw json.RawMessage) (CreatePortOpts, error) {
	var b portBody
	if err := strict(raw, &b); err != nil {
		return CreatePortOpts{}, err
	}
	o := CreatePortOpts{NetworkID: b.NetworkID, Name: deref(b.Name), Description: deref(b.Description), ProjectID: owner(b.ProjectID, b.TenantID),
		AdminStateUp: b.AdminStateUp, MACAddress: deref(b.MACAddress), DeviceID: deref(b.DeviceID), DeviceOwner: deref(b.DeviceOwner),
		HostID: deref(b.HostID), VNICType: deref(b.VNICType), PortSecurityEnabled: b.PortSecurityEnabled, SecurityGroups: b.SecurityGroups,
		AllowedAddressPairs: deref(b.AllowedAddressPairs), ExtraDHCPOpts: deref(b.ExtraDHCPOpts), Tags: b.Tags}
	if b.Profile != nil {
		o.Profile = *b.Profile
	}
	if b.FixedIPs != nil {
		o.FixedIPs, o.NoFixedIPs = *b.FixedIPs, len(*b.FixedIPs) == 0
	}
	return o, nil
}

type gatewayBody struct {
	NetworkID        string     `json:"network_id"`
	EnableSNAT       *bool      `json:"enable_snat"`
	ExternalFixedIPs *[]FixedIP `json:"external_fixed_ips"`
}

type routerBody struct {
	Name         *string         `json:"name"`
	Description  *string         `json:"description"`
	ProjectID    string          `json:"project_id"`
	TenantID     string          `json:"tenant_id"`
	AdminStateUp *bool           `json:"admin_state_up"`
	Gateway      json.RawMessage `json:"external_gateway_info"`
	Routes       *[]Route        `json:"routes"`
	Tags         []string        `json:"tags"`
}

// gateway decodes external_gateway_info: absent, cleared (null or {}) or
// set.
func (b *routerBody) gateway() (*GatewayOpts, bool, error) {
	if len(b.Gateway) == 0 {
		return nil, false, nil
	}
	if string(b.Gateway) == "null" {
		return nil, true, nil
	}
	var g gatewayBody
	if err := json.Unmarshal(b.Gateway, &g); err != nil {
		return nil, false, errdefs.Invalid("external_gateway_info", "%v", err)
	}
	if g.NetworkID == "" {
		return nil, true, nil
	}
	o := &GatewayOpts{NetworkID: g.NetworkID, EnableSNAT: g.EnableSNAT}
	if g.ExternalFixedIPs != nil {
		o.FixedIPs = nonNil(*g.ExternalFixedIPs)
	}
	return o, false, nil
}

func (a *api) routeRouters(rt *httpapi.Router) {
	s := a.svc
	rt.HandleFunc("GET /v2.0/routers", listHandler(a, "routers", s.ListRouters))
	rt.HandleFunc("GET /v2.0/routers/{id}", getHandler(a, "router", s.GetRouter))
	rt.HandleFunc("DELETE /v2.0/routers/{id}", deleteHandler(s.DeleteRouter))
	rt.HandleFunc("POST /v2.0/routers", createHandler(a, "router", "routers", func(ctx context.Context, b *routerBody) (*Router, error) {
		gw, _, err := b.gateway()
		if err != nil {
			return nil, err
		}
		return s.CreateRouter(ctx, CreateRouterOpts{Name: deref(b.Name), Description: deref(b.Description), ProjectID: owner(b.ProjectID, b.TenantID),
			AdminStateUp: b.AdminStateUp, Gateway: gw, Tags: b.Tags})
	}, func(ctx context.Context, v *Router) error { return s.DeleteRouter(ctx, v.ID, nil) }))
	rt.HandleFunc("PUT /v2.0/routers/{id}", updateHandler(a, "router", func(ctx context.Context, id string, b *routerBody, rev *int) (*Router, error) {
		gw, clear, err := b.gateway()
		if err != nil {
			return nil, err
		}
		return s.UpdateRouter(ctx, id, UpdateRouterOpts{Name: b.Name, Description: b.Description, AdminStateUp: b.AdminStateUp,
			Gateway: gw, ClearGateway: clear, Routes: b.Routes, IfRevision: rev})
	}))
	iface := func(add bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var b struct {
				SubnetID string `json:"subnet_id"`
				PortID   string `json:"port_id"`
			}
			if err := decode(w, r, &b); err != nil {
				fail(w, r, err)
				return
			}
			f := s.RemoveRouterInterface
			if add {
				f = s.AddRouterInterface
			}
			info, err := f(r.Context(), r.PathValue("id"), b.SubnetID, b.PortID)
			if err != nil {
				fail(w, r, err)
				return
			}
			info.TenantID = info.ProjectID
			reply(w, http.StatusOK, info)
		}
	}
	rt.HandleFunc("PUT /v2.0/routers/{id}/add_router_interface", iface(true))
	rt.HandleFunc("PUT /v2.0/routers/{id}/remove_router_interface", iface(false))
	routes := func(add bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var b struct {
				Router struct {
					Routes []Route `json:"routes"`
				} `json:"router"`
			}
			if err := decode(w, r, &b); err != nil {
				fail(w, r, err)
				return
			}
			rtr, err := s.EditRoutes(r.Context(), r.PathValue("id"), b.Router.Routes, add)
			if err != nil {
				fail(w, r, err)
				return
			}
			reply(w, http.StatusOK, map[string]any{"router": a.render(r.Context(), rtr)})
		}
	}
	rt.HandleFunc("PUT /v2.0/routers/{id}/add_extraroutes", routes(true))
	rt.HandleFunc("PUT /v2.0/routers/{id}/remove_extraroutes", routes(false))
}

type fipBody struct {
	FloatingNetworkID string          `json:"floating_network_id"`
	Description       *string         `json:"description"`
	ProjectID         string          `json:"project_id"`
	TenantID          string          `json:"tenant_id"`
	FloatingIPAddress string          `json:"floating_ip_address"`
	SubnetID          string          `json:"subnet_id"`
	PortID            json.RawMessage `json:"port_id"`
	FixedIPAddress    string          `json:"fixed_ip_address"`
	Tags              []string        `json:"tags"`
}

func (b *fipBody) port() (*string, error) {
	if len(b.PortID) == 0 {
		return nil, nil
	}
	if string(b.PortID) == "null" {
		empty := ""
		return &empty, nil
	}
	var p string
	if err := json.Unmarshal(b.PortID, &p); err != nil {
		return nil, errdefs.Invalid("port_id", "must be a port id or null")
	}
	return &p, nil
}

func (a *api) routeFloatingIPs(rt *httpapi.Router) {
	s := a.svc
	rt.HandleFunc("GET /v2.0/floatingips", listHandler(a, "floatingips", s.ListFloatingIPs))
	rt.HandleFunc("GET /v2.0/floatingips/{id}", getHandler(a, "floatingip", s.GetFloatingIP))
	rt.HandleFunc("DELETE /v2.0/floatingips/{id}", deleteHandler(s.DeleteFloatingIP))
	rt.HandleFunc("POST /v2.0/floatingips", createHandler(a, "floatingip", "floatingips", func(ctx context.Context, b *fipBody) (*FloatingIP, error) {
		p, err := b.port()
		if err != nil {
			return nil, err
		}
		return s.CreateFloatingIP(ctx, CreateFloatingIPOpts{FloatingNetworkID: b.FloatingNetworkID, Description: deref(b.Description),
			ProjectID: owner(b.ProjectID, b.TenantID), FloatingIPAddress: b.FloatingIPAddress, SubnetID: b.SubnetID, PortID: deref(p),
			FixedIPAddress: b.FixedIPAddress, Tags: b.Tags})
	}, func(ctx context.Context, v *FloatingIP) error { return s.DeleteFloatingIP(ctx, v.ID, nil) }))
	rt.HandleFunc("PUT /v2.0/floatingips/{id}", updateHandler(a, "floatingip", func(ctx context.Context, id string, b *fipBody, rev *int) (*FloatingIP, error) {
		p, err := b.port()
		if err != nil {
			return nil, err
		}
		return s.UpdateFloatingIP(ctx, id, UpdateFloatingIPOpts{Description: b.Description, PortID: p, FixedIPAddress: b.FixedIPAddress, IfRevision: rev})
	}))
}

type sgBody struct {
	Name        *string  `json:"name"`
	Description *string  `json:"description"`
	ProjectID   string   `json:"project_id"`
	TenantID    string   `json:"tenant_id"`
	Stateful    *bool    `json:"stateful"`
	Tags        []string `json:"tags"`
}

type ruleBody struct {
	SecurityGroupID string          `json:"security_group_id"`
	Description     *string         `json:"description"`
	ProjectID       string          `json:"project_id"`
	TenantID        string          `json:"tenant_id"`
	Direction       string          `json:"direction"`
	Ethertype       string          `json:"ethertype"`
	Protocol        json.RawMessage `json:"protocol"`
	PortRangeMin    *flexInt        `json:"port_range_min"`
	PortRangeMax    *flexInt        `json:"port_range_max"`
	RemoteIPPrefix  *string         `json:"remote_ip_prefix"`
	RemoteGroupID   *string         `json:"remote_group_id"`
}

// protocol decodes a protocol given as a name, a number, a numeric
// string or null.
func (b *ruleBody) protocol() (string, error) {
	if len(b.Protocol) == 0 || string(b.Protocol) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(b.Protocol, &s); err == nil {
		return s, nil
	}
	var n int
	if err := json.Unmarshal(b.Protocol, &n); err != nil {
		return "", errdefs.Invalid("protocol", "must be a name, a number or null")
	}
	return strconv.Itoa(n), nil
}

// RuleFromJSON decodes a security group rule body ({"security_group_rule":
// …}'s object) and validates it: the parser the rule API and its fuzz
// test share.
func RuleFromJSON(raw []byte) (*SecurityGroupRule, CreateRuleOpts, error) {
	var b ruleBody
	if err := strict(raw, &b); err != nil {
		return nil, CreateRuleOpts{}, err
	}
	return ruleFromBody(&b)
}

// ruleFromBody validates a decoded rule body, as RuleFromJSON does.
func ruleFromBody(b *ruleBody) (*SecurityGroupRule, CreateRuleOpts, error) {
	proto, err := b.protocol()
	if err != nil {
		return nil, CreateRuleOpts{}, err
	}
	o := CreateRuleOpts{SecurityGroupID: b.SecurityGroupID, Description: deref(b.Description), ProjectID: owner(b.ProjectID, b.TenantID),
		Direction: b.Direction, Ethertype: b.Ethertype, Protocol: proto, PortRangeMin: intPtr(b.PortRangeMin), PortRangeMax: intPtr(b.PortRangeMax),
		RemoteIPPrefix: deref(b.RemoteIPPrefix), RemoteGroupID: deref(b.RemoteGroupID)}
	r, err := ParseRule(o)
	return r, o, err
}

func (a *api) routeSecurityGroups(rt *httpapi.Router) {
	s := a.svc
	rt.HandleFunc("GET /v2.0/security-groups", listHandler(a, "security_groups", s.ListSecurityGroups))
	rt.HandleFunc("GET /v2.0/security-groups/{id}", getHandler(a, "security_group", s.GetSecurityGroup))
	rt.HandleFunc("DELETE /v2.0/security-groups/{id}", deleteHandler(s.DeleteSecurityGroup))
	rt.HandleFunc("POST /v2.0/security-groups", createHandler(a, "security_group", "security_groups", func(ctx context.Context, b *sgBody) (*SecurityGroup, error) {
		return s.CreateSecurityGroup(ctx, CreateSecurityGroupOpts{Name: deref(b.Name), Description: deref(b.Description),
			ProjectID: owner(b.ProjectID, b.TenantID), Stateful: b.Stateful, Tags: b.Tags})
	}, func(ctx context.Context, v *SecurityGroup) error { return s.DeleteSecurityGroup(ctx, v.ID, nil) }))
	rt.HandleFunc("PUT /v2.0/security-groups/{id}", updateHandler(a, "security_group", func(ctx context.Context, id string, b *sgBody, rev *int) (*SecurityGroup, error) {
		return s.UpdateSecurityGroup(ctx, id, UpdateSecurityGroupOpts{Name: b.Name, Description: b.Description, IfRevision: rev})
	}))

	rt.HandleFunc("GET /v2.0/security-group-rules", listHandler(a, "security_group_rules", s.ListSecurityGroupRules))
	rt.HandleFunc("GET /v2.0/security-group-rules/{id}", getHandler(a, "security_group_rule", s.GetSecurityGroupRule))
	rt.HandleFunc("DELETE /v2.0/security-group-rules/{id}", deleteHandler(func(ctx context.Context, id string, _ *int) error {
		return s.DeleteSecurityGroupRule(ctx, id)
	}))
	rt.HandleFunc("POST /v2.0/security-group-rules", createHandler(a, "security_group_rule", "security_group_rules", func(ctx context.Context, b *ruleBody) (*SecurityGroupRule, error) {
		_, o, err := ruleFromBody(b)
		if err != nil {
			return nil, err
		}
		return s.CreateSecurityGroupRule(ctx, o)
	}, func(ctx context.Context, v *SecurityGroupRule) error { return s.DeleteSecurityGroupRule(ctx, v.ID) }))
}

func (a *api) routeQuotas(rt *httpapi.Router) {
	s := a.svc
	rt.HandleFunc("GET /v2.0/quotas", func(w http.ResponseWriter, r *http.Request) {
		qs, err := s.ListQuotas(r.Context())
		if err != nil {
			fail(w, r, err)
			return
		}
		out := []map[string]any{}
		for p, q := range qs {
			m := map[string]any{"project_id": p, "tenant_id": p}
			for k, v := range q {
				m[k] = v
			}
			out = append(out, m)
		}
		reply(w, http.StatusOK, map[string]any{"quotas": out})
	})
	rt.HandleFunc("GET /v2.0/quotas/{project}", func(w http.ResponseWriter, r *http.Request) {
		q, err := s.GetQuota(r.Context(), r.PathValue("project"))
		if err != nil {
			fail(w, r, err)
			return
		}
		reply(w, http.StatusOK, map[string]any{"quota": q})
	})
	rt.HandleFunc("GET /v2.0/quotas/{project}/default", func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.GetQuota(r.Context(), r.PathValue("project")); err != nil {
			fail(w, r, err)
			return
		}
		reply(w, http.StatusOK, map[string]any{"quota": s.DefaultQuota()})
	})
	rt.HandleFunc("GET /v2.0/quotas/{project}/details", func(w http.ResponseWriter, r *http.Request) {
		d, err := s.QuotaDetails(r.Context(), r.PathValue("project"))
		if err != nil {
			fail(w, r, err)
			return
		}
		reply(w, http.StatusOK, map[string]any{"quota": d})
	})
	rt.HandleFunc("PUT /v2.0/quotas/{project}", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Quota map[string]json.RawMessage `json:"quota"`
		}
		if err := decode(w, r, &b); err != nil {
			fail(w, r, err)
			return
		}
		q := Quota{}
		for k, raw := range b.Quota {
			var n int
			if err := json.Unmarshal(raw, &n); err != nil {
				var str string
				if json.Unmarshal(raw, &str) != nil {
					fail(w, r, errdefs.Invalid(k, "must be an integer"))
					return
				}
				if n, err = strconv.Atoi(str); err != nil {
					fail(w, r, errdefs.Invalid(k, "must be an integer"))
					return
				}
			}
			q[k] = n
		}
		out, err := s.UpdateQuota(r.Context(), r.PathValue("project"), q)
		if err != nil {
			fail(w, r, err)
			return
		}
		reply(w, http.StatusOK, map[string]any{"quota": out})
	})
	rt.HandleFunc("DELETE /v2.0/quotas/{project}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.ResetQuota(r.Context(), r.PathValue("project")); err != nil {
			fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// flexInt is an integer sent as a JSON number or a numeric string, as
// Neutron's convert_to_int accepts (the CLI sends "mtu": "1400").
type flexInt int

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexInt) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*f = flexInt(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errdefs.Invalid("body", "%s is not an integer", b)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return errdefs.Invalid("body", "%q is not an integer", s)
	}
	*f = flexInt(n)
	return nil
}

func intPtr(f *flexInt) *int {
	if f == nil {
		return nil
	}
	n := int(*f)
	return &n
}
