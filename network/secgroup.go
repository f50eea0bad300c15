package network

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// SecurityGroup is a named set of rules applied to ports.
type SecurityGroup struct {
	store.Meta
	Standard
	Stateful bool `json:"stateful"`
	// IsDefault marks the project's default group.
	IsDefault bool `json:"is_default"`
}

var sgTableDef = store.Table{Name: sgTable, New: func() store.Record { return new(SecurityGroup) },
	Indexes: []*memdb.IndexSchema{
		{Name: projectIndex, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "ProjectID"}},
	}}

// SecurityGroupRule allows traffic matching it into or out of the ports
// of its group.
type SecurityGroupRule struct {
	store.Meta
	Standard
	SecurityGroupID string  `json:"security_group_id"`
	Direction       string  `json:"direction"`
	Ethertype       string  `json:"ethertype"`
	Protocol        *string `json:"protocol"`
	PortRangeMin    *int    `json:"port_range_min"`
	PortRangeMax    *int    `json:"port_range_max"`
	RemoteIPPrefix  *string `json:"remote_ip_prefix"`
	RemoteGroupID   *string `json:"remote_group_id"`
}

var ruleTableDef = store.Table{Name: ruleTable, New: func() store.Record { return new(SecurityGroupRule) },
	Indexes: []*memdb.IndexSchema{
		{Name: sgIndex, Indexer: &memdb.StringFieldIndex{Field: "SecurityGroupID"}},
		{Name: remoteIndex, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "RemoteGroupID"}},
		{Name: projectIndex, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "ProjectID"}},
	}}

// CreateSecurityGroupOpts are the attributes of a new group.
type CreateSecurityGroupOpts struct {
	Name, Description string
	ProjectID         string
	Stateful          *bool
	Tags              []string
}

// UpdateSecurityGroupOpts change a group.
type UpdateSecurityGroupOpts struct {
	Name, Description *string
	IfRevision        *int
}

// CreateRuleOpts are the attributes of a new rule. Empty strings and nil
// pointers mean "any".
type CreateRuleOpts struct {
	SecurityGroupID string
	Description     string
	ProjectID       string
	Direction       string
	Ethertype       string
	Protocol        string
	PortRangeMin    *int
	PortRangeMax    *int
	RemoteIPPrefix  string
	RemoteGroupID   string
}

// protocols maps Neutron's protocol names to IANA numbers.
var protocols = map[string]int{
	"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "icmp": 1, "icmpv6": 58, "ipv6-icmp": 58,
	"igmp": 2, "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-nonxt": 59, "ipv6-opts": 60,
	"ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}

// ParseRule validates a rule's match strictly and returns it normalized.
// Anything malformed is an *errdefs.ValidationError: a rule that cannot
// be parsed is refused, never widened to match everything
// (OSSA-2014-014).
func ParseRule(o CreateRuleOpts) (*SecurityGroupRule, error) {
	r := &SecurityGroupRule{SecurityGroupID: o.SecurityGroupID}
	switch o.Direction {
	case "ingress", "egress":
		r.Direction = o.Direction
	default:
		return nil, errdefs.Invalid("direction", "%q is not ingress or egress", o.Direction)
	}
	switch o.Ethertype {
	case "", "IPv4", "ipv4":
		r.Ethertype = "IPv4"
	case "IPv6", "ipv6":
		r.Ethertype = "IPv6"
	default:
		return nil, errdefs.Invalid("ethertype", "%q is not IPv4 or IPv6", o.Ethertype)
	}
	proto := strings.ToLower(o.Protocol)
	num := -1
	switch {
	case proto == "" || proto == "any":
		proto = ""
	case protocols[proto] != 0:
		num = protocols[proto]
	default:
		n, err := strconv.Atoi(proto)
		if err != nil || n < 0 || n > 255 || strconv.Itoa(n) != proto {
			return nil, errdefs.Invalid("protocol", "%q is not a protocol name or a number 0-255", o.Protocol)
		}
		num = n
	}
	if proto == "icmp" && r.Ethertype == "IPv6" {
		proto, num = "ipv6-icmp", 58
	}
	if (num == 58) && r.Ethertype == "IPv4" {
		return nil, errdefs.Invalid("protocol", "%s is an IPv6 protocol but ethertype is IPv4", o.Protocol)
	}
	if proto != "" {
		r.Protocol = &proto
	}
	min, max := o.PortRangeMin, o.PortRangeMax
	switch num {
	case 6, 17, 132, 136, 33:
		if min == nil && max != nil {
			return nil, errdefs.Invalid("port_range_min", "required when port_range_max is set")
		}
		if min != nil {
			if max == nil {
				max = min
			}
			if *min < 1 || *min > 65535 || *max < 1 || *max > 65535 {
				return nil, errdefs.Invalid("port_range_min", "ports must be between 1 and 65535")
			}
			if *min > *max {
				return nil, errdefs.Invalid("port_range_min", "port_range_min %d is greater than port_range_max %d", *min, *max)
			}
		}
	case 1, 58:
		if min == nil && max != nil {
			return nil, errdefs.Invalid("port_range_min", "an ICMP code needs an ICMP type")
		}
		if (min != nil && (*min < 0 || *min > 255)) || (max != nil && (*max < 0 || *max > 255)) {
			return nil, errdefs.Invalid("port_range_min", "ICMP type and code must be between 0 and 255")
		}
	default:
		if min != nil || max != nil {
			return nil, errdefs.Invalid("port_range_min", "port ranges need protocol tcp, udp, sctp, udplite, dccp, icmp or ipv6-icmp")
		}
	}
	r.PortRangeMin, r.PortRangeMax = cloneInt(min), cloneInt(max)
	if o.RemoteIPPrefix != "" && o.RemoteGroupID != "" {
		return nil, errdefs.Invalid("remote_ip_prefix", "remote_ip_prefix and remote_group_id are mutually exclusive")
	}
	if o.RemoteIPPrefix != "" {
		p, err := netip.ParsePrefix(o.RemoteIPPrefix)
		if err != nil {
			a, aerr := netip.ParseAddr(o.RemoteIPPrefix)
			if aerr != nil {
				return nil, errdefs.Invalid("remote_ip_prefix", "%q is not a valid CIDR", o.RemoteIPPrefix)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Zone() != "" || p.Addr().Is4In6() {
			return nil, errdefs.Invalid("remote_ip_prefix", "%q is not a valid CIDR", o.RemoteIPPrefix)
		}
		if p.Addr().Is4() != (r.Ethertype == "IPv4") {
			return nil, errdefs.Invalid("remote_ip_prefix", "%s does not match ethertype %s", o.RemoteIPPrefix, r.Ethertype)
		}
		v := p.Masked().String()
		r.RemoteIPPrefix = &v
	}
	if o.RemoteGroupID != "" {
		v := o.RemoteGroupID
		r.RemoteGroupID = &v
	}
	if len(o.Description) > maxDesc {
		return nil, errdefs.Invalid("description", "longer than %d characters", maxDesc)
	}
	return r, nil
}

func cloneInt(p *int) *int {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func (r *SecurityGroupRule) same(o *SecurityGroupRule) bool {
	eqS := func(a, b *string) bool { return deref(a) == deref(b) }
	eqI := func(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	return r.Direction == o.Direction && r.Ethertype == o.Ethertype && eqS(r.Protocol, o.Protocol) &&
		eqI(r.PortRangeMin, o.PortRangeMin) && eqI(r.PortRangeMax, o.PortRangeMax) &&
		eqS(r.RemoteIPPrefix, o.RemoteIPPrefix) && eqS(r.RemoteGroupID, o.RemoteGroupID)
}

func (s *Service) getSGTx(c *identity.Credentials, tx *store.Txn, id string) (*SecurityGroup, error) {
	return getVisible(tx, sgTable, "SecurityGroup", id, func(g *SecurityGroup) bool { return s.canRead(c, g.ProjectID) })
}

func newRule(now interface{ Now() time.Time }, g *SecurityGroup, dir, eth string, remoteSelf bool) *SecurityGroupRule {
	r := &SecurityGroupRule{Standard: newStandard(now.Now(), g.ProjectID, "", ""), SecurityGroupID: g.ID, Direction: dir, Ethertype: eth}
	if remoteSelf {
		id := g.ID
		r.RemoteGroupID = &id
	}
	return r
}

// insertGroupTxn inserts g with the default rules: egress to anywhere in
// IPv4 and IPv6 and, for the default group, ingress from its own members.
// The default rules count toward the rule quota but never exceed it.
func (s *Service) insertGroupTxn(tx *store.Txn, g *SecurityGroup) error {
	if err := tx.Insert(sgTable, g); err != nil {
		return err
	}
	n := 0
	for _, eth := range []string{"IPv4", "IPv6"} {
		if err := tx.Insert(ruleTable, newRule(tx, g, "egress", eth, false)); err != nil {
			return err
		}
		n++
		if g.IsDefault {
			if err := tx.Insert(ruleTable, newRule(tx, g, "ingress", eth, true)); err != nil {
				return err
			}
			n++
		}
	}
	if err := s.addUsageTxn(tx, g.ProjectID, resRule, n); err != nil {
		return err
	}
	markTxn(tx, workSG, g.ID)
	return nil
}

// defaultGroupTxn returns the project's default group, creating it.
func (s *Service) defaultGroupTxn(tx *store.Txn, project string) (*SecurityGroup, error) {
	it, err := store.List[SecurityGroup](nil, tx, sgTable, projectIndex, project)
	if err != nil {
		return nil, err
	}
	for g := range it {
		if g.IsDefault {
			return g, nil
		}
	}
	g := &SecurityGroup{Standard: newStandard(tx.Now(), project, "default", "Default security group"), Stateful: true, IsDefault: true}
	return g, s.insertGroupTxn(tx, g)
}

// EnsureDefaultSecurityGroup returns the project's default group, creating
// it with Neutron's default rules on first use.
func (s *Service) EnsureDefaultSecurityGroup(ctx context.Context, project string) (*SecurityGroup, error) {
	var g *SecurityGroup
	tx := s.st.Snapshot()
	it, err := store.List[SecurityGroup](nil, tx, sgTable, projectIndex, project)
	if err != nil {
		return nil, err
	}
	for x := range it {
		if x.IsDefault {
			return x, nil
		}
	}
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		var err error
		g, err = s.defaultGroupTxn(tx, project)
		return err
	})
	return g, err
}

// CreateSecurityGroup creates a group with the two default egress rules.
func (s *Service) CreateSecurityGroup(ctx context.Context, o CreateSecurityGroupOpts) (*SecurityGroup, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	project, err := s.creatable(c, o.ProjectID, o.Name, o.Description, o.Tags)
	if err != nil {
		return nil, err
	}
	if o.Name == "default" {
		if _, err := s.EnsureDefaultSecurityGroup(ctx, project); err != nil {
			return nil, err
		}
		return nil, fault("SecurityGroupDefaultAlreadyExists", errdefs.ErrConflict, "default security group already exists")
	}
	g := &SecurityGroup{Standard: newStandard(s.st.Now(), project, o.Name, o.Description), Stateful: boolOr(o.Stateful, true)}
	g.Tags = dedupe(o.Tags)
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		if _, err := s.defaultGroupTxn(tx, project); err != nil {
			return err
		}
		if err := s.chargeTxn(tx, project, resSecurityGroup, 1); err != nil {
			return err
		}
		ng := *g
		return s.insertGroupTxn(tx, &ng)
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// GetSecurityGroup returns a group of the caller's project.
func (s *Service) GetSecurityGroup(ctx context.Context, id string) (*SecurityGroup, error) {
	return snapshotGet(ctx, s, s.getSGTx, id)
}

// ListSecurityGroups returns the groups the caller can see, creating the
// caller's project's default group first, as Neutron does.
func (s *Service) ListSecurityGroups(ctx context.Context, o ListOpts) ([]*SecurityGroup, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if c.ProjectID != "" && s.allowed(c, ActionWrite, c.ProjectID) {
		if _, err := s.EnsureDefaultSecurityGroup(ctx, c.ProjectID); err != nil {
			return nil, err
		}
	}
	it, err := listIndex[SecurityGroup](s.st.Snapshot(), sgTable, projectIndex, o.ProjectID)
	return collect(it, err, func(g *SecurityGroup) bool { return s.canRead(c, g.ProjectID) })
}

// Rules returns the rules of a group the caller can see.
func (s *Service) Rules(ctx context.Context, group string) ([]*SecurityGroupRule, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	if _, err := s.getSGTx(c, tx, group); err != nil {
		return nil, err
	}
	return groupRules(tx, group)
}

func groupRules(tx *store.Txn, group string) ([]*SecurityGroupRule, error) {
	it, err := store.List[SecurityGroupRule](nil, tx, ruleTable, sgIndex, group)
	if err != nil {
		return nil, err
	}
	var out []*SecurityGroupRule
	for r := range it {
		out = append(out, r)
	}
	return out, nil
}

// UpdateSecurityGroup renames or describes a group.
func (s *Service) UpdateSecurityGroup(ctx context.Context, id string, o UpdateSecurityGroupOpts) (*SecurityGroup, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkStd(deref(o.Name), deref(o.Description)); err != nil {
		return nil, err
	}
	var out *SecurityGroup
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		g, err := writable(s, c, tx, s.getSGTx, id, o.IfRevision)
		if err != nil {
			return err
		}
		if g.IsDefault && o.Name != nil && *o.Name != "default" {
			return fault("SecurityGroupCannotUpdateDefault", errdefs.ErrConflict, "updating the name of the default security group is not allowed")
		}
		setIf(&g.Name, o.Name)
		setIf(&g.Description, o.Description)
		touch(g, tx.Now())
		out = g
		return tx.Update(sgTable, g)
	})
	return out, err
}

// DeleteSecurityGroup deletes a group no port uses, with its rules and
// the rules of other groups that name it as remote group.
func (s *Service) DeleteSecurityGroup(ctx context.Context, id string, ifRevision *int) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		g, err := writable(s, c, tx, s.getSGTx, id, ifRevision)
		if err != nil {
			return err
		}
		if g.IsDefault && !s.isAdmin(c) {
			return fault("SecurityGroupCannotRemoveDefault", errdefs.ErrConflict, "insufficient rights for removing default security group")
		}
		ports, err := store.List[Port](nil, tx, portTable, sgIndex, id)
		if err != nil {
			return err
		}
		for range ports {
			return fault("SecurityGroupInUse", errdefs.ErrConflict, "security group %s in use", id)
		}
		var doomed []*SecurityGroupRule
		for _, ix := range []string{sgIndex, remoteIndex} {
			it, err := store.List[SecurityGroupRule](nil, tx, ruleTable, ix, id)
			if err != nil {
				return err
			}
			for r := range it {
				doomed = append(doomed, r)
			}
		}
		for _, r := range doomed {
			if err := tx.Delete(ruleTable, r.ID); err != nil && !errdefs.IsNotFound(err) {
				return err
			}
			if r.SecurityGroupID != id {
				markTxn(tx, workSG, r.SecurityGroupID)
			}
			if err := s.chargeTxn(tx, r.ProjectID, resRule, -1); err != nil {
				return err
			}
		}
		if !g.IsDefault {
			if err := s.chargeTxn(tx, g.ProjectID, resSecurityGroup, -1); err != nil {
				return err
			}
		}
		markTxn(tx, workSG, id)
		return tx.Delete(sgTable, id)
	})
}

// CreateSecurityGroupRule adds a rule to a group of the caller's.
func (s *Service) CreateSecurityGroupRule(ctx context.Context, o CreateRuleOpts) (*SecurityGroupRule, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	r, err := ParseRule(o)
	if err != nil {
		return nil, err
	}
	var out *SecurityGroupRule
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		g, err := s.getSGTx(c, tx, o.SecurityGroupID)
		if err != nil {
			return err
		}
		if err := s.mayWrite(c, g.ProjectID); err != nil {
			return err
		}
		if o.ProjectID != "" && o.ProjectID != g.ProjectID {
			return errdefs.Invalid("project_id", "must be the security group's project")
		}
		if r.RemoteGroupID != nil {
			if _, err := s.getSGTx(c, tx, *r.RemoteGroupID); err != nil {
				return err
			}
		}
		existing, err := groupRules(tx, g.ID)
		if err != nil {
			return err
		}
		for _, e := range existing {
			if e.same(r) {
				return fault("SecurityGroupRuleExists", errdefs.ErrConflict, "security group rule already exists. Rule id is %s", e.ID)
			}
		}
		if err := s.chargeTxn(tx, g.ProjectID, resRule, 1); err != nil {
			return err
		}
		nr := *r
		nr.Standard = newStandard(tx.Now(), g.ProjectID, "", o.Description)
		if err := tx.Insert(ruleTable, &nr); err != nil {
			return err
		}
		markTxn(tx, workSG, g.ID)
		out = &nr
		return nil
	})
	return out, err
}

// GetSecurityGroupRule returns a rule of the caller's project.
func (s *Service) GetSecurityGroupRule(ctx context.Context, id string) (*SecurityGroupRule, error) {
	return snapshotGet(ctx, s, s.getRuleTx, id)
}

func (s *Service) getRuleTx(c *identity.Credentials, tx *store.Txn, id string) (*SecurityGroupRule, error) {
	return getVisible(tx, ruleTable, "SecurityGroupRule", id, func(r *SecurityGroupRule) bool { return s.canRead(c, r.ProjectID) })
}

// ListSecurityGroupRules returns the rules the caller can see.
func (s *Service) ListSecurityGroupRules(ctx context.Context, o ListOpts) ([]*SecurityGroupRule, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	it, err := listIndex[SecurityGroupRule](s.st.Snapshot(), ruleTable, projectIndex, o.ProjectID)
	return collect(it, err, func(r *SecurityGroupRule) bool { return s.canRead(c, r.ProjectID) })
}

// DeleteSecurityGroupRule deletes a rule of the caller's.
func (s *Service) DeleteSecurityGroupRule(ctx context.Context, id string) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		r, err := writable(s, c, tx, s.getRuleTx, id, nil)
		if err != nil {
			return err
		}
		if err := s.chargeTxn(tx, r.ProjectID, resRule, -1); err != nil {
			return err
		}
		markTxn(tx, workSG, r.SecurityGroupID)
		return tx.Delete(ruleTable, id)
	})
}
