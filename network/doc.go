// Package network is the Stratus network service: OpenStack Neutron's
// networking API v2.0 (networks, subnets, ports, routers, floating IPs,
// security groups and their rules, quotas, tags, revisions, network IP
// availability, availability zones), served on port 9696 by NewHandler
// and usable directly as a Go API.
//
// What works today:
//
//   - Networks with admin_state_up, shared, router:external, MTU,
//     port_security_enabled and provider attributes (flat, vlan, vxlan),
//     segmentation ids allocated from configured ranges without collision.
//   - IPv4 and IPv6 subnets (SLAAC, dhcpv6-stateful, dhcpv6-stateless)
//     with strict CIDR validation, no overlap inside a network, gateway,
//     allocation pools, DNS servers, host routes and DHCP; every subnet
//     with DHCP gets an address on the network's network:dhcp port.
//   - IPAM: requested or automatic fixed IPs, never a duplicate (the
//     ports' fixed IPs, indexed in the store, are the truth, checked in
//     the same transaction; a port is one record, its addresses and MAC
//     indexes on it), constant cost per allocation as a /16 fills (a bitmap
//     hint with a next-free cursor), EUI-64 addresses for SLAAC, and
//     IpAddressGenerationFailure (409) when a pool is full.
//   - Ports with MACs unique per network from a configurable base, device
//     ownership checks (a port cannot name another project's router or
//     server), binding (binding:host_id, vif_type tap, vif_details), port
//     security, security groups, allowed address pairs, extra DHCP options.
//   - Routers with an external gateway (SNAT on or off), interfaces by
//     subnet or port and static routes; floating IPs from external
//     networks, associated with a port's fixed IP through a router.
//   - Security groups with a default group per project (created on first
//     use with Neutron's default rules) and strictly parsed rules.
//   - Tags on every resource, under the resource's own policy;
//     revision_number with If-Match; quotas with usage counted in the same
//     transaction as the resources.
//   - Tenant isolation: a project sees its own resources plus shared and
//     external networks; anything else is "not found".
//
// The dataplane is a Backend (driver.go): reconcilers drive it from the
// store, level-triggered, so that a restart converges the host to the
// store. network/fakenet is an in-memory Backend for tests;
// network/drivertest is the conformance suite every Backend passes.
//
// # For compute
//
// Nova's use of ports maps onto these methods (compute declares its own
// small interface over them):
//
//	p, _ := svc.CreatePort(ctx, network.CreatePortOpts{NetworkID: netID})       // or a port the user gave
//	p, _ = svc.BindPort(sysCtx, p.ID, host, serverID, "")                       // device_id, compute:nova, binding:host_id
//	vif, _ := svc.WaitPortActive(sysCtx, p.ID)                                  // plugged: tap device, MAC, MTU, fixed IPs
//	ports, _ := svc.ListPorts(ctx, network.ListOpts{DeviceID: serverID})         // a server's NICs
//	_ = svc.DeletePort(sysCtx, p.ID, nil)                                       // on server delete
//
// The VIF is what libvirt needs for <interface type='ethernet'> with
// <target dev='VIF.DevName' managed='no'/>.
package network
