package network

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// Port statuses.
const (
	StatusActive = "ACTIVE"
	StatusDown   = "DOWN"
	StatusBuild  = "BUILD"
	StatusError  = "ERROR"
)

// VIF types (binding:vif_type).
const (
	VIFTypeUnbound = "unbound"
	VIFTypeTap     = "tap"
)

// FixedIP is an address of a port on a subnet.
type FixedIP struct {
	SubnetID  string `json:"subnet_id"`
	IPAddress string `json:"ip_address"`
}

// AddressPair is an extra address (or CIDR) a port may send from.
type AddressPair struct {
	IPAddress  string `json:"ip_address"`
	MACAddress string `json:"mac_address"`
}

// DHCPOpt is an extra DHCP option handed to a port.
type DHCPOpt struct {
	OptName   string `json:"opt_name"`
	OptValue  string `json:"opt_value"`
	IPVersion int    `json:"ip_version"`
}

// Port is a virtual NIC on a network.
type Port struct {
	store.Meta
	Standard
	NetworkID           string         `json:"network_id"`
	MACAddress          string         `json:"mac_address"`
	AdminStateUp        bool           `json:"admin_state_up"`
	Status              string         `json:"status"`
	FixedIPs            []FixedIP      `json:"fixed_ips"`
	DeviceID            string         `json:"device_id"`
	DeviceOwner         string         `json:"device_owner"`
	HostID              string         `json:"binding:host_id"`
	VIFType             string         `json:"binding:vif_type"`
	VIFDetails          map[string]any `json:"binding:vif_details"`
	VNICType            string         `json:"binding:vnic_type"`
	Profile             map[string]any `json:"binding:profile"`
	PortSecurityEnabled bool           `json:"port_security_enabled"`
	SecurityGroups      []string       `json:"security_groups"`
	AllowedAddressPairs []AddressPair  `json:"allowed_address_pairs"`
	ExtraDHCPOpts       []DHCPOpt      `json:"extra_dhcp_opts"`
}

var portTableDef = store.Table{Name: portTable, New: func() store.Record { return new(Port) },
	Indexes: []*memdb.IndexSchema{
		{Name: projectIndex, AllowMissing: true, Indexer: strIndex[Port](func(p *Port) string { return p.ProjectID })},
		{Name: networkIndex, Indexer: strIndex[Port](func(p *Port) string { return p.NetworkID })},
		{Name: deviceIndex, AllowMissing: true, Indexer: strIndex[Port](func(p *Port) string { return p.DeviceID })},
		{Name: sgIndex, AllowMissing: true, Indexer: strsIndex[Port](func(p *Port) []string { return p.SecurityGroups })},
		{Name: ipIndex, AllowMissing: true, Indexer: portIPIndexer{}},
		{Name: macIndex, AllowMissing: true, Indexer: portMACIndexer{}},
	}}

// portMACIndexer indexes a port by "<network>/<mac>": a MAC is in use on a
// network exactly when a port there has it.
type portMACIndexer struct{}

func (portMACIndexer) FromObject(obj any) (bool, []byte, error) {
	p, ok := obj.(*Port)
	if !ok {
		return false, nil, fmt.Errorf("network: mac index: %T is not a port", obj)
	}
	if p.MACAddress == "" {
		return false, nil, nil
	}
	v := make([]byte, 0, len(p.NetworkID)+len(p.MACAddress)+2)
	v = append(v, p.NetworkID...)
	v = append(v, '/')
	v = append(v, p.MACAddress...)
	return true, append(v, 0), nil
}

func (portMACIndexer) FromArgs(args ...any) ([]byte, error) {
	k, err := stringArg(args)
	return append([]byte(k), 0), err
}

// macTaken reports whether a port on network has mac.
func macTaken(tx *store.Txn, network, mac string) bool {
	taken, err := store.Exists(tx, portTable, macIndex, network+"/"+mac)
	return taken || err != nil
}

// TapName returns the name of the port's host device: "tap" and the first
// 11 characters of its id, as Neutron names it (15 characters, the Linux
// limit).
func TapName(portID string) string {
	n := "tap" + portID
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}

// VIF is what a hypervisor needs to attach a port: with vif type "tap",
// libvirt's <interface type='ethernet'> with <target dev='DevName'
// managed='no'/>, <mac address='MAC'/> and <mtu size='MTU'/>.
type VIF struct {
	PortID  string
	Type    string
	DevName string
	MAC     string
	MTU     int
	// FixedIPs are the port's addresses, for config drives and metadata.
	FixedIPs []FixedIP
}

// isServicePort reports whether owner is a device owner of the network
// service itself (DHCP, routers, floating IPs).
func isServicePort(owner string) bool { return strings.HasPrefix(owner, "network:") }

// CreatePortOpts are the attributes of a new port.
type CreatePortOpts struct {
	NetworkID         string
	Name, Description string
	ProjectID         string
	AdminStateUp      *bool
	MACAddress        string
	// FixedIPs request addresses; nil means automatic ones, and NoFixedIPs
	// (fixed_ips: []) none.
	FixedIPs            []FixedIP
	NoFixedIPs          bool
	DeviceID            string
	DeviceOwner         string
	HostID              string
	VNICType            string
	Profile             map[string]any
	PortSecurityEnabled *bool
	// SecurityGroups nil means the project's default group.
	SecurityGroups      *[]string
	AllowedAddressPairs []AddressPair
	ExtraDHCPOpts       []DHCPOpt
	Tags                []string
}

// UpdatePortOpts change a port; nil fields are left alone.
type UpdatePortOpts struct {
	Name, Description   *string
	AdminStateUp        *bool
	MACAddress          *string
	FixedIPs            *[]FixedIP
	DeviceID            *string
	DeviceOwner         *string
	HostID              *string
	VNICType            *string
	Profile             *map[string]any
	PortSecurityEnabled *bool
	SecurityGroups      *[]string
	AllowedAddressPairs *[]AddressPair
	ExtraDHCPOpts       *[]DHCPOpt
	IfRevision          *int
}

func (s *Service) seePort(c *identity.Credentials, tx *store.Txn, p *Port) bool {
	if s.canRead(c, p.ProjectID) {
		return true
	}
	// A network's owner sees every port on it, as in Neutron.
	n, err := store.Get[Network](nil, tx, networkTable, p.NetworkID)
	return err == nil && n.ProjectID != "" && s.canRead(c, n.ProjectID)
}

func (s *Service) getPortTx(c *identity.Credentials, tx *store.Txn, id string) (*Port, error) {
	return getVisible(tx, portTable, "Port", id, func(p *Port) bool { return s.seePort(c, tx, p) })
}

func parseMACBase(b string) ([3]byte, error) {
	hw, err := net.ParseMAC(b + ":00:00:00")
	if err != nil || len(hw) != 6 || hw[0]&1 == 1 {
		return [3]byte{}, errdefs.Invalid("MACBase", "%q is not three unicast MAC octets", b)
	}
	return [3]byte{hw[0], hw[1], hw[2]}, nil
}

// allocMACTxn returns want (if given and free) or a random free MAC of the
// base on network, for a port the caller writes in the same transaction.
func (s *Service) allocMACTxn(tx *store.Txn, network, want string) (string, error) {
	if want != "" {
		hw, err := net.ParseMAC(want)
		if err != nil || len(hw) != 6 || hw[0]&1 == 1 || hw.String() == "00:00:00:00:00:00" {
			return "", errdefs.Invalid("mac_address", "%q is not a unicast MAC address", want)
		}
		if macTaken(tx, network, hw.String()) {
			return "", fault("MacAddressInUse", errdefs.ErrConflict, "unable to complete operation for network %s: the mac address %s is in use", network, hw)
		}
		return hw.String(), guardTxn(tx, network)
	}
	for range 32 {
		var b [3]byte
		_, _ = rand.Read(b[:])
		hw := net.HardwareAddr{s.macBase[0], s.macBase[1], s.macBase[2], b[0], b[1], b[2]}
		if mac := hw.String(); !macTaken(tx, network, mac) {
			return mac, guardTxn(tx, network)
		}
	}
	return "", fault("MacAddressGenerationFailure", errdefs.ErrConflict, "unable to generate a unique mac on network %s", network)
}

func checkPairs(pairs []AddressPair) error {
	if len(pairs) > 10 {
		return errdefs.Invalid("allowed_address_pairs", "more than 10 pairs")
	}
	for i, p := range pairs {
		if _, err := netip.ParsePrefix(p.IPAddress); err != nil {
			if _, err := parseAddr("allowed_address_pairs", p.IPAddress); err != nil {
				return err
			}
		} else if _, err := ParseCIDR("allowed_address_pairs", p.IPAddress); err != nil {
			return err
		}
		if p.MACAddress != "" {
			if hw, err := net.ParseMAC(p.MACAddress); err != nil || len(hw) != 6 {
				return errdefs.Invalid("allowed_address_pairs", "%q is not a MAC address", p.MACAddress)
			}
		}
		for _, q := range pairs[:i] {
			if q == p {
				return errdefs.Invalid("allowed_address_pairs", "duplicate pair %s", p.IPAddress)
			}
		}
	}
	return nil
}

func checkDHCPOpts(opts []DHCPOpt) error {
	if len(opts) > 20 {
		return errdefs.Invalid("extra_dhcp_opts", "more than 20 options")
	}
	for _, o := range opts {
		if o.OptName == "" || len(o.OptName) > 64 || strings.ContainsFunc(o.OptName, func(r rune) bool {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == ':' || r == '.'
			return !ok
		}) {
			return errdefs.Invalid("extra_dhcp_opts", "%q is not a valid option name", o.OptName)
		}
		if len(o.OptValue) > 255 || strings.ContainsAny(o.OptValue, "\n\r\x00") {
			return errdefs.Invalid("extra_dhcp_opts", "value of %s is not a single line of at most 255 bytes", o.OptName)
		}
		if o.IPVersion != 0 && o.IPVersion != 4 && o.IPVersion != 6 {
			return errdefs.Invalid("extra_dhcp_opts", "ip_version must be 4 or 6")
		}
	}
	return nil
}

func checkDevice(id, owner string) error {
	if len(id) > 255 || len(owner) > 255 {
		return errdefs.Invalid("device_id", "longer than 255 characters")
	}
	return nil
}

// checkDeviceOwnerTxn refuses a device_id that names another project's
// router or server (OSSA-2014-008).
func (s *Service) checkDeviceOwnerTxn(ctx context.Context, tx *store.Txn, c *identity.Credentials, project, deviceID, owner string) error {
	if deviceID == "" || s.isAdmin(c) {
		return nil
	}
	if r, err := store.Get[Router](nil, tx, routerTable, deviceID); err == nil {
		if r.ProjectID != project {
			return fault("DeviceIDNotOwnedByTenant", errdefs.ErrConflict, "the following device_id %s is not owned by your tenant or matches another tenant's router", deviceID)
		}
		return nil
	}
	if isServicePort(owner) {
		return nil
	}
	if d := s.devices(); d != nil {
		pj, err := d.DeviceProject(ctx, deviceID)
		if err == nil && pj != project {
			return fault("DeviceIDNotOwnedByTenant", errdefs.ErrConflict, "the following device_id %s is not owned by your tenant", deviceID)
		}
	}
	return nil
}

// CreatePort creates a port with its MAC and fixed IPs.
func (s *Service) CreatePort(ctx context.Context, o CreatePortOpts) (*Port, error) {
	ps, err := s.CreatePorts(ctx, []CreatePortOpts{o})
	if err != nil {
		return nil, err
	}
	return ps[0], nil
}

// CreatePorts creates several ports in one transaction: all or none, as
// Neutron's bulk create.
func (s *Service) CreatePorts(ctx context.Context, opts []CreatePortOpts) ([]*Port, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if len(opts) == 0 || len(opts) > 10000 {
		return nil, errdefs.Invalid("ports", "give 1 to 10000 ports")
	}
	ports := make([]*Port, len(opts))
	for i := range opts {
		if ports[i], err = s.newPort(c, &opts[i]); err != nil {
			return nil, err
		}
	}
	var picks []ipRef
	var kept []FixedIP
	out := make([]*Port, len(opts))
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		kept = kept[:0]
		for i, p := range ports {
			np := *p
			if err := s.createPortTxn(ctx, tx, c, &np, &opts[i], &picks); err != nil {
				return err
			}
			kept = append(kept, np.FixedIPs...)
			out[i] = &np
		}
		return nil
	})
	s.ipam.settle(picks, kept)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// newPort checks a create request and returns the port it makes.
func (s *Service) newPort(c *identity.Credentials, o *CreatePortOpts) (*Port, error) {
	project, err := s.creatable(c, o.ProjectID, o.Name, o.Description, o.Tags)
	if err != nil {
		return nil, err
	}
	if err := checkDevice(o.DeviceID, o.DeviceOwner); err != nil {
		return nil, err
	}
	if o.HostID != "" || o.Profile != nil || o.VNICType != "" && o.VNICType != "normal" {
		if err := s.requireAdmin(c, "binding attributes"); err != nil {
			return nil, err
		}
	}
	if err := checkPairs(o.AllowedAddressPairs); err != nil {
		return nil, err
	}
	if err := checkDHCPOpts(o.ExtraDHCPOpts); err != nil {
		return nil, err
	}
	p := &Port{Standard: newStandard(s.st.Now(), project, o.Name, o.Description), NetworkID: o.NetworkID,
		AdminStateUp: boolOr(o.AdminStateUp, true), Status: StatusDown, DeviceID: o.DeviceID, DeviceOwner: o.DeviceOwner,
		HostID: o.HostID, VIFType: VIFTypeUnbound, VIFDetails: map[string]any{}, VNICType: "normal", Profile: o.Profile,
		AllowedAddressPairs: nonNil(o.AllowedAddressPairs), ExtraDHCPOpts: nonNil(o.ExtraDHCPOpts)}
	p.Tags = dedupe(o.Tags)
	if p.Profile == nil {
		p.Profile = map[string]any{}
	}
	return p, nil
}

func (s *Service) createPortTxn(ctx context.Context, tx *store.Txn, c *identity.Credentials, p *Port, o *CreatePortOpts, picks *[]ipRef) error {
	n, err := s.getNetworkTx(c, tx, p.NetworkID)
	if err != nil {
		return err
	}
	admin := s.isAdmin(c)
	if !admin && n.ProjectID != p.ProjectID && !n.Shared {
		// Visible (external) but not the caller's to plug into.
		return notFound("Network", n.ID)
	}
	if isServicePort(p.DeviceOwner) && !admin && n.ProjectID != p.ProjectID {
		return fault("PolicyNotAuthorized", errdefs.ErrForbidden, "only the network's owner may create a %s port", p.DeviceOwner)
	}
	if err := s.checkDeviceOwnerTxn(ctx, tx, c, p.ProjectID, p.DeviceID, p.DeviceOwner); err != nil {
		return err
	}
	p.PortSecurityEnabled = boolOr(o.PortSecurityEnabled, n.PortSecurityEnabled)
	sgs, err := s.portGroupsTxn(tx, c, p, o.SecurityGroups)
	if err != nil {
		return err
	}
	p.SecurityGroups = sgs
	if !p.PortSecurityEnabled && len(p.AllowedAddressPairs) > 0 {
		return fault("AddressPairAndPortSecurityRequired", errdefs.ErrConflict, "port security must be enabled to have allowed address pairs on a port")
	}
	if !isServicePort(p.DeviceOwner) {
		if err := s.chargeTxn(tx, p.ProjectID, resPort, 1); err != nil {
			return err
		}
	}
	mac, err := s.allocMACTxn(tx, n.ID, o.MACAddress)
	if err != nil {
		return err
	}
	p.MACAddress = mac
	ips, err := s.allocFixedIPsTxn(tx, n, p, o.FixedIPs, o.NoFixedIPs, picks)
	if err != nil {
		return err
	}
	p.FixedIPs = ips
	if p.HostID != "" {
		p.Status = StatusBuild
	}
	if err := tx.Insert(portTable, p); err != nil {
		return err
	}
	s.markPortTxn(tx, p, false)
	return tx.Emit("network.port.create", p.ID, p.ProjectID, nil)
}

// markPortTxn records the dataplane work a port change causes: the port
// itself when it is (or was, wasBound) bound to a host, its network's DHCP
// and its groups' member sets.
func (s *Service) markPortTxn(tx *store.Txn, p *Port, wasBound bool) {
	if wasBound || p.HostID != "" {
		markTxn(tx, workPort, p.ID)
	}
	markTxn(tx, workDHCP, p.NetworkID)
	for _, g := range p.SecurityGroups {
		markTxn(tx, workSG, g)
	}
}

// portGroupsTxn resolves a port's security groups: those requested (which
// must be the port's project's), or the project's default group.
func (s *Service) portGroupsTxn(tx *store.Txn, c *identity.Credentials, p *Port, want *[]string) ([]string, error) {
	if want == nil {
		if !p.PortSecurityEnabled || isServicePort(p.DeviceOwner) || p.ProjectID == "" {
			return []string{}, nil
		}
		g, err := s.defaultGroupTxn(tx, p.ProjectID)
		if err != nil {
			return nil, err
		}
		return []string{g.ID}, nil
	}
	if len(*want) > 0 && !p.PortSecurityEnabled {
		return nil, fault("PortSecurityAndIPRequiredForSecurityGroups", errdefs.ErrInvalid, "port security must be enabled and port must have an IP address in order to use security groups")
	}
	out := dedupe(*want)
	for _, id := range out {
		g, err := store.Get[SecurityGroup](nil, tx, sgTable, id)
		if err != nil || (g.ProjectID != p.ProjectID && !s.isAdmin(c)) {
			return nil, notFound("SecurityGroup", id)
		}
	}
	return out, nil
}

// allocFixedIPsTxn allocates the requested addresses, or one address of
// the first IPv4 subnet and each IPv6 subnet when none is requested.
func (s *Service) allocFixedIPsTxn(tx *store.Txn, n *Network, p *Port, req []FixedIP, none bool, picks *[]ipRef) ([]FixedIP, error) {
	out := []FixedIP{}
	if none {
		return out, nil
	}
	subs := make([]*Subnet, 0, len(n.Subnets))
	for _, id := range n.Subnets {
		sub, err := store.Get[Subnet](nil, tx, subnetTable, id)
		if err != nil {
			return nil, err
		}
		subs = append(subs, sub)
	}
	if req == nil {
		var last error
		got4 := false
		for _, sub := range subs {
			if sub.IPVersion == 4 && got4 {
				continue
			}
			ip, err := s.allocIPTxn(tx, sub, p.ID, p.MACAddress, "", picks)
			if err != nil {
				last = err
				continue
			}
			got4 = got4 || sub.IPVersion == 4
			out = append(out, FixedIP{sub.ID, ip.String()})
		}
		if len(out) == 0 && last != nil {
			return nil, last
		}
		return out, nil
	}
	if len(req) > 16 {
		return nil, errdefs.Invalid("fixed_ips", "more than 16 addresses")
	}
	for _, r := range req {
		var sub *Subnet
		for _, x := range subs {
			if r.SubnetID == x.ID {
				sub = x
				break
			}
			if r.SubnetID == "" && r.IPAddress != "" {
				if ip, err := netip.ParseAddr(r.IPAddress); err == nil {
					if pf, _ := netip.ParsePrefix(x.CIDR); pf.Contains(ip) {
						sub = x
						break
					}
				}
			}
		}
		if sub == nil {
			if r.SubnetID != "" {
				return nil, errdefs.Invalid("fixed_ips", "subnet %s is not on network %s", r.SubnetID, n.ID)
			}
			return nil, errdefs.Invalid("fixed_ips", "no subnet of network %s contains %s", n.ID, r.IPAddress)
		}
		ip, err := s.allocIPTxn(tx, sub, p.ID, p.MACAddress, r.IPAddress, picks)
		if err != nil {
			return nil, err
		}
		out = append(out, FixedIP{sub.ID, ip.String()})
	}
	return out, nil
}

// GetPort returns a port the caller can see.
func (s *Service) GetPort(ctx context.Context, id string) (*Port, error) {
	return snapshotGet(ctx, s, s.getPortTx, id)
}

// ListPorts returns the ports the caller can see, by network, device or
// project when given.
func (s *Service) ListPorts(ctx context.Context, o ListOpts) ([]*Port, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	var it func(func(*Port) bool)
	switch {
	case o.DeviceID != "":
		it, err = listIndex[Port](tx, portTable, deviceIndex, o.DeviceID)
	case o.NetworkID != "":
		it, err = listIndex[Port](tx, portTable, networkIndex, o.NetworkID)
	default:
		it, err = listIndex[Port](tx, portTable, projectIndex, o.ProjectID)
	}
	return collect(it, err, func(p *Port) bool {
		return (o.NetworkID == "" || p.NetworkID == o.NetworkID) && (o.ProjectID == "" || p.ProjectID == o.ProjectID) && s.seePort(c, tx, p)
	})
}

// UpdatePort changes a port the caller owns. Changing HostID binds the
// port to a host (admin only): the reconciler plugs it there and sets it
// ACTIVE with its VIF details.
func (s *Service) UpdatePort(ctx context.Context, id string, o UpdatePortOpts) (*Port, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkStd(deref(o.Name), deref(o.Description)); err != nil {
		return nil, err
	}
	if o.HostID != nil || o.Profile != nil || o.VNICType != nil || o.MACAddress != nil {
		if err := s.requireAdmin(c, "binding attributes and mac_address"); err != nil {
			return nil, err
		}
	}
	if o.AllowedAddressPairs != nil {
		if err := checkPairs(*o.AllowedAddressPairs); err != nil {
			return nil, err
		}
	}
	if o.ExtraDHCPOpts != nil {
		if err := checkDHCPOpts(*o.ExtraDHCPOpts); err != nil {
			return nil, err
		}
	}
	if err := checkDevice(deref(o.DeviceID), deref(o.DeviceOwner)); err != nil {
		return nil, err
	}
	var picks, released []ipRef
	var kept []FixedIP
	var out *Port
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		released, kept = nil, nil
		p, err := writable(s, c, tx, s.getPortTx, id, o.IfRevision)
		if err != nil {
			return err
		}
		oldGroups, wasBound := p.SecurityGroups, p.HostID != ""
		setIf(&p.Name, o.Name)
		setIf(&p.Description, o.Description)
		setIf(&p.AdminStateUp, o.AdminStateUp)
		if o.DeviceOwner != nil && isServicePort(*o.DeviceOwner) && !s.isAdmin(c) {
			return fault("PolicyNotAuthorized", errdefs.ErrForbidden, "only an admin may set device_owner %s", *o.DeviceOwner)
		}
		if o.DeviceID != nil && *o.DeviceID != p.DeviceID {
			if err := s.checkDeviceOwnerTxn(ctx, tx, c, p.ProjectID, *o.DeviceID, deref(o.DeviceOwner)); err != nil {
				return err
			}
		}
		setIf(&p.DeviceID, o.DeviceID)
		setIf(&p.DeviceOwner, o.DeviceOwner)
		if o.HostID != nil && *o.HostID != p.HostID {
			p.HostID = *o.HostID
			p.VIFType, p.VIFDetails, p.Status = VIFTypeUnbound, map[string]any{}, StatusDown
			if p.HostID != "" {
				p.Status = StatusBuild
			}
		}
		setIf(&p.VNICType, o.VNICType)
		setIf(&p.Profile, o.Profile)
		setIf(&p.PortSecurityEnabled, o.PortSecurityEnabled)
		if o.SecurityGroups != nil {
			sgs, err := s.portGroupsTxn(tx, c, p, o.SecurityGroups)
			if err != nil {
				return err
			}
			p.SecurityGroups = sgs
		} else if o.PortSecurityEnabled != nil && !*o.PortSecurityEnabled && len(p.SecurityGroups) > 0 {
			return fault("PortSecurityPortHasSecurityGroup", errdefs.ErrConflict, "port has security group associated; cannot disable port security or IP address until the security group is removed")
		}
		if o.AllowedAddressPairs != nil {
			p.AllowedAddressPairs = nonNil(*o.AllowedAddressPairs)
		}
		if !p.PortSecurityEnabled && len(p.AllowedAddressPairs) > 0 {
			return fault("AddressPairAndPortSecurityRequired", errdefs.ErrConflict, "port security must be enabled to have allowed address pairs on a port")
		}
		if o.ExtraDHCPOpts != nil {
			p.ExtraDHCPOpts = nonNil(*o.ExtraDHCPOpts)
		}
		if o.MACAddress != nil && *o.MACAddress != p.MACAddress {
			if p.HostID != "" {
				return fault("PortBound", errdefs.ErrConflict, "unable to change the mac address of bound port %s", p.ID)
			}
			mac, err := s.allocMACTxn(tx, p.NetworkID, *o.MACAddress)
			if err != nil {
				return err
			}
			p.MACAddress = mac
		}
		if o.FixedIPs != nil {
			n, err := store.Get[Network](nil, tx, networkTable, p.NetworkID)
			if err != nil {
				return err
			}
			// Keep what stays, release what goes, allocate what is new.
			var want []FixedIP
			var keep []FixedIP
			for _, r := range *o.FixedIPs {
				if i := slices.IndexFunc(p.FixedIPs, func(f FixedIP) bool {
					return f.IPAddress == r.IPAddress && (r.SubnetID == "" || r.SubnetID == f.SubnetID)
				}); i >= 0 && r.IPAddress != "" {
					keep = append(keep, p.FixedIPs[i])
					continue
				}
				want = append(want, r)
			}
			for _, f := range p.FixedIPs {
				if !slices.Contains(keep, f) {
					r, err := releaseIP(f.SubnetID, f.IPAddress)
					if err != nil {
						return err
					}
					released = append(released, r)
				}
			}
			got := []FixedIP{}
			if len(want) > 0 {
				if got, err = s.allocFixedIPsTxn(tx, n, p, want, false, &picks); err != nil {
					return err
				}
			}
			p.FixedIPs = append(nonNil(keep), got...)
			kept = p.FixedIPs
		}
		touch(p, tx.Now())
		if err := tx.Update(portTable, p); err != nil {
			return err
		}
		for _, g := range oldGroups {
			markTxn(tx, workSG, g)
		}
		s.markPortTxn(tx, p, wasBound)
		out = p
		return tx.Emit("network.port.update", p.ID, p.ProjectID, nil)
	})
	s.ipam.settle(picks, kept)
	if err != nil {
		return nil, err
	}
	s.ipam.release(released)
	return out, nil
}

// DeletePort deletes a port, releasing its addresses and disassociating
// its floating IPs. Ports of routers and floating IPs go with them, not
// here.
func (s *Service) DeletePort(ctx context.Context, id string, ifRevision *int) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	var released []ipRef
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		released = nil
		p, err := writable(s, c, tx, s.getPortTx, id, ifRevision)
		if err != nil {
			return err
		}
		switch p.DeviceOwner {
		case OwnerRouterInterface, OwnerRouterGateway, OwnerFloatingIP:
			return fault("L3PortInUse", errdefs.ErrConflict, "port %s cannot be deleted directly via the port API: has device owner %s", p.ID, p.DeviceOwner)
		}
		released, err = s.deletePortTxn(tx, p)
		return err
	})
	if err == nil {
		s.ipam.release(released)
	}
	return err
}

// deletePortTxn deletes p and what hangs on it.
func (s *Service) deletePortTxn(tx *store.Txn, p *Port) ([]ipRef, error) {
	var rel []ipRef
	for _, f := range p.FixedIPs {
		r, err := releaseIP(f.SubnetID, f.IPAddress)
		if err != nil {
			return nil, err
		}
		rel = append(rel, r)
	}
	it, err := store.List[FloatingIP](nil, tx, fipTable, portIndex, p.ID)
	if err != nil {
		return nil, err
	}
	for f := range it {
		if f.RouterID != "" {
			markTxn(tx, workRouter, f.RouterID)
		}
		f.PortID, f.FixedIPAddress, f.RouterID, f.Status = "", "", "", StatusDown
		touch(f, tx.Now())
		if err := tx.Update(fipTable, f); err != nil {
			return nil, err
		}
	}
	if !isServicePort(p.DeviceOwner) {
		if err := s.chargeTxn(tx, p.ProjectID, resPort, -1); err != nil {
			return nil, err
		}
	}
	if err := tx.Delete(portTable, p.ID); err != nil {
		return nil, err
	}
	s.markPortTxn(tx, p, false)
	return rel, tx.Emit("network.port.delete", p.ID, p.ProjectID, nil)
}

// BindPort binds a port to a host for a device, as Nova does before
// spawning: it sets device_id, device_owner (compute:nova by default) and
// binding:host_id. The reconciler then plugs the port on that host; wait
// for it with WaitPortActive and attach the NIC with the VIF it returns.
// The caller must be allowed to set binding attributes (an admin, or the
// system credentials compute uses).
func (s *Service) BindPort(ctx context.Context, id, host, deviceID, deviceOwner string) (*Port, error) {
	if deviceOwner == "" {
		deviceOwner = OwnerCompute
	}
	return s.UpdatePort(ctx, id, UpdatePortOpts{HostID: &host, DeviceID: &deviceID, DeviceOwner: &deviceOwner})
}

// UnbindPort clears a port's binding and device, as Nova does when it
// detaches a port the user created; the reconciler unplugs it.
func (s *Service) UnbindPort(ctx context.Context, id string) (*Port, error) {
	empty := ""
	return s.UpdatePort(ctx, id, UpdatePortOpts{HostID: &empty, DeviceID: &empty, DeviceOwner: &empty})
}

// WaitPortActive waits until the port is plugged (ACTIVE) and returns its
// VIF. It fails when the port goes to ERROR, is deleted, or ctx ends.
func (s *Service) WaitPortActive(ctx context.Context, id string) (*VIF, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	for {
		ws := memdb.NewWatchSet()
		tx := s.st.Snapshot()
		p, err := store.Get[Port](ws, tx, portTable, id)
		if err != nil || !s.seePort(c, tx, p) {
			return nil, notFound("Port", id)
		}
		switch p.Status {
		case StatusActive:
			return s.vifTx(tx, p), nil
		case StatusError:
			return nil, fault("PortBindingFailed", errdefs.ErrConflict, "binding of port %s on host %s failed", id, p.HostID)
		}
		if err := ws.WatchCtx(ctx); err != nil {
			return nil, err
		}
	}
}

func (s *Service) vifTx(tx *store.Txn, p *Port) *VIF {
	mtu := 1500
	if n, err := store.Get[Network](nil, tx, networkTable, p.NetworkID); err == nil {
		mtu = n.MTU
	}
	return &VIF{PortID: p.ID, Type: VIFTypeTap, DevName: TapName(p.ID), MAC: p.MACAddress, MTU: mtu, FixedIPs: slices.Clone(p.FixedIPs)}
}

// PortByAddress returns the port holding address ip on network: how the
// metadata service tells a guest by (network, source address). Only a
// cloud admin (the system credentials the dataplane uses) may ask.
func (s *Service) PortByAddress(ctx context.Context, networkID, ip string) (*Port, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.requireAdmin(c, "port lookups by address"); err != nil {
		return nil, err
	}
	addr, err := parseAddr("ip_address", ip)
	if err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	n, err := store.Get[Network](nil, tx, networkTable, networkID)
	if err != nil {
		return nil, notFound("Network", networkID)
	}
	for _, sid := range n.Subnets {
		if p := ipHolder(tx, ipKey(sid, addr)); p != nil {
			return p, nil
		}
	}
	return nil, fault("PortNotFound", errdefs.ErrNotFound, "no port has address %s on network %s", ip, networkID)
}
