package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/internal/reconcile"
	"github.com/stratuskit/stratus/store"
)

// Table names.
const (
	networkTable = "network.networks"
	segmentTable = "network.segments"
	subnetTable  = "network.subnets"
	portTable    = "network.ports"
	ipTable      = "network.ip_allocations"
	macTable     = "network.mac_allocations"
	routerTable  = "network.routers"
	fipTable     = "network.floatingips"
	sgTable      = "network.security_groups"
	ruleTable    = "network.security_group_rules"
	quotaTable   = "network.quotas"
	usageTable   = "network.usage"
	workTable    = "network.work"
	guardTable   = "network.alloc_guards"
)

// Index names.
const (
	projectIndex = "project"
	networkIndex = "network"
	deviceIndex  = "device"
	sgIndex      = "security_group"
	remoteIndex  = "remote_group"
	portIndex    = "port"
	ipIndex      = "ip"
	macIndex     = "mac"
)

// Device owners Neutron uses for the ports it creates itself.
const (
	OwnerDHCP            = "network:dhcp"
	OwnerRouterInterface = "network:router_interface"
	OwnerRouterGateway   = "network:router_gateway"
	OwnerFloatingIP      = "network:floatingip"
	OwnerCompute         = "compute:nova"
)

// Tables returns the store tables of the network service, for store.Open.
func Tables() []store.Table {
	return []store.Table{
		networkTableDef, segmentTableDef, subnetTableDef, portTableDef, ipTableDef, macTableDef,
		routerTableDef, fipTableDef, sgTableDef, ruleTableDef, quotaTableDef, usageTableDef, workTableDef,
		guardTableDef,
	}
}

// SegmentRange is a range of segmentation ids the service may allocate
// for one network type (and physical network, for vlan).
type SegmentRange struct {
	// NetworkType is "vlan" or "vxlan".
	NetworkType string
	// PhysicalNetwork names the physical network of a vlan range.
	PhysicalNetwork string
	// Min and Max bound the range, inclusive.
	Min, Max int
}

// Config configures a Service.
type Config struct {
	// Store holds the network tables (see Tables). Required.
	Store *store.Store
	// Backend is the dataplane. Required (fakenet.New() for tests).
	Backend Backend
	// Logger receives the service's log lines. Default: slog.Default().
	Logger *slog.Logger
	// Policy overrides rules of DefaultPolicy by action name.
	Policy identity.Policy
	// MACBase is the first three octets of allocated MAC addresses.
	// Default: "fa:16:3e", Neutron's.
	MACBase string
	// DefaultMTU is the MTU of a network created without one. Default 1500
	// for flat and vlan, 1450 for vxlan (its 50-byte overhead).
	DefaultMTU int
	// TenantNetworkType is the type of a network created by a non-admin:
	// "vxlan" (default), "vlan" or "flat".
	TenantNetworkType string
	// SegmentRanges are the ranges segmentation ids come from. Default:
	// vxlan 1-65535 and vlan 1-4094 on physical network "physnet1".
	SegmentRanges []SegmentRange
	// PhysicalNetworks are the valid provider:physical_network names.
	// Default: "physnet1" and "external".
	PhysicalNetworks []string
	// DefaultQuota is the quota of a project with no quota of its own;
	// zero fields take Neutron's defaults.
	DefaultQuota Quota
	// AvailabilityZone names the one zone of this service. Default "nova".
	AvailabilityZone string
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	if c.Store == nil {
		return errors.New("network: Config.Store is required")
	}
	if c.Backend == nil {
		return errors.New("network: Config.Backend is required")
	}
	if c.MACBase != "" {
		if _, err := parseMACBase(c.MACBase); err != nil {
			return err
		}
	}
	switch c.TenantNetworkType {
	case "", TypeVXLAN, TypeVLAN, TypeFlat:
	default:
		return errdefs.Invalid("TenantNetworkType", "must be vxlan, vlan or flat, not %q", c.TenantNetworkType)
	}
	for _, r := range c.SegmentRanges {
		if r.Min < 1 || r.Max < r.Min || (r.NetworkType == TypeVLAN && r.Max > 4094) || (r.NetworkType == TypeVXLAN && r.Max > 1<<24-1) {
			return errdefs.Invalid("SegmentRanges", "bad range %+v", r)
		}
	}
	return nil
}

// Service is the network service: Neutron's networks, subnets, ports,
// routers, floating IPs, security groups and quotas, with IPAM, driving a
// dataplane Backend through reconcilers. Its methods enforce policy and
// tenant isolation on the identity.Credentials found in the context.
type Service struct {
	cfg     Config
	st      *store.Store
	log     *slog.Logger
	policy  identity.Policy
	backend Backend
	macBase [3]byte
	quota   Quota

	ipam ipamSet

	mu    sync.Mutex
	loops []*reconcile.Loop
	deps  Deps
}

// Deps are what the service needs of other services. Each is optional.
type Deps struct {
	// Devices tells who owns a device (a server) named by a port's
	// device_id, so that a port cannot be attached to another project's
	// server (OSSA-2014-008). Nil: only routers are checked.
	Devices DeviceOwners
	// Notify is told when a floating IP of a server's port changes, as
	// Neutron's nova notifier sends network-changed. Nil: nobody is told.
	Notify DeviceNotifier
}

// DeviceNotifier is told when the network side of a device changes.
type DeviceNotifier interface {
	// NetworkChanged reports that the ports of device (a server) changed.
	NetworkChanged(ctx context.Context, deviceID string) error
}

// DeviceOwners is what the network service needs of compute.
type DeviceOwners interface {
	// DeviceProject returns the project owning the device (server) id, or
	// an error matching errdefs.ErrNotFound.
	DeviceProject(ctx context.Context, id string) (string, error)
}

// New returns a Service on cfg.Store, whose network tables must be open.
// Call Start to run the reconcilers.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(Tables()))
	for _, t := range Tables() {
		names = append(names, t.Name)
	}
	if err := cfg.Store.HasTables(names...); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MACBase == "" {
		cfg.MACBase = "fa:16:3e"
	}
	if cfg.TenantNetworkType == "" {
		cfg.TenantNetworkType = TypeVXLAN
	}
	if len(cfg.SegmentRanges) == 0 {
		cfg.SegmentRanges = []SegmentRange{
			{NetworkType: TypeVXLAN, Min: 1, Max: 65535},
			{NetworkType: TypeVLAN, PhysicalNetwork: "physnet1", Min: 1, Max: 4094},
		}
	}
	if len(cfg.PhysicalNetworks) == 0 {
		cfg.PhysicalNetworks = []string{"physnet1", "external"}
	}
	if cfg.AvailabilityZone == "" {
		cfg.AvailabilityZone = "nova"
	}
	base, _ := parseMACBase(cfg.MACBase)
	s := &Service{
		cfg: cfg, st: cfg.Store, log: cfg.Logger, backend: cfg.Backend,
		policy: DefaultPolicy().With(cfg.Policy), macBase: base,
		quota: cfg.DefaultQuota.withDefaults(),
	}
	s.ipam.m = map[string]*allocator{}
	if err := s.dropLegacyAllocations(context.Background()); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	return s, nil
}

// legacyAlloc is a record of the tables ip_allocations ("<subnet>/<ip>")
// and mac_allocations ("<network>/<mac>"), where earlier versions kept one
// record per address beside each port. The tables stay declared so that an
// existing data directory opens; New deletes their records.
type legacyAlloc struct {
	store.Meta
	Key    string `json:"key"`
	PortID string `json:"port_id"`
}

func (a *legacyAlloc) StoreKey() string { return a.Key }

var (
	ipTableDef  = store.Table{Name: ipTable, New: func() store.Record { return new(legacyAlloc) }}
	macTableDef = store.Table{Name: macTable, New: func() store.Record { return new(legacyAlloc) }}
)

// dropLegacyAllocations deletes the records of the ip_allocations and
// mac_allocations tables that earlier versions kept beside each port: the
// ports hold the same addresses, and the ports table indexes them now. It
// does nothing once they are gone.
func (s *Service) dropLegacyAllocations(ctx context.Context) error {
	races := 0
	for _, table := range []string{ipTable, macTable} {
		for {
			var keys []string
			it, err := store.List[legacyAlloc](nil, s.st.Snapshot(), table, store.IDIndex)
			if err != nil {
				return err
			}
			for r := range it {
				if keys = append(keys, r.Key); len(keys) == 1000 {
					break
				}
			}
			if len(keys) == 0 {
				break
			}
			err = s.st.Update(ctx, func(tx *store.Txn) error {
				for _, k := range keys {
					if err := tx.Delete(table, k); err != nil && !errdefs.IsNotFound(err) {
						return err
					}
				}
				return nil
			})
			if errors.Is(err, errdefs.ErrConflict) && races < 100 {
				// Another controller sharing the backend is deleting them
				// too: wait for its commit to reach this replica.
				races++
				time.Sleep(20 * time.Millisecond)
				continue
			}
			if err != nil {
				return fmt.Errorf("drop legacy %s records: %w", table, err)
			}
		}
	}
	return nil
}

// Use sets the service's dependencies. Call it before Start.
func (s *Service) Use(d Deps) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deps = d
}

func (s *Service) devices() DeviceOwners {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deps.Devices
}

// notify tells Deps.Notify that the servers owning ports changed, after
// the change committed. A failure is logged, not returned: the change
// stands, and the next one refreshes the server again.
func (s *Service) notify(ctx context.Context, devices []string) {
	s.mu.Lock()
	n := s.deps.Notify
	s.mu.Unlock()
	if n == nil {
		return
	}
	for _, d := range dedupe(devices) {
		if d == "" {
			continue
		}
		if err := n.NetworkChanged(context.WithoutCancel(ctx), d); err != nil {
			s.log.Warn("network-changed not delivered", "device", d, "err", err)
		}
	}
}

// serverOfPortTxn returns the server that owns port id, or "".
func serverOfPortTxn(tx *store.Txn, id string) string {
	if id == "" {
		return ""
	}
	p, err := store.Get[Port](nil, tx, portTable, id)
	if err != nil || !strings.HasPrefix(p.DeviceOwner, "compute:") {
		return ""
	}
	return p.DeviceID
}

// Start runs the reconcilers that drive the Backend from the store. It
// first marks every network, port, router, security group and DHCP
// configuration for a resync, so that the dataplane converges to the store
// after a restart, and sweeps what the Backend holds that no record owns.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.loops) > 0 {
		return nil
	}
	if err := s.resync(ctx); err != nil {
		return err
	}
	l := reconcile.New("network.dataplane", s.st, &dataplane{s: s}, &reconcile.Options{Logger: s.log, Workers: 4, Resync: 5 * time.Minute})
	l.Start(context.WithoutCancel(ctx))
	s.loops = append(s.loops, l)
	return nil
}

// Close stops the reconcilers. It does not close the store or the backend.
func (s *Service) Close() error {
	s.mu.Lock()
	loops := s.loops
	s.loops = nil
	s.mu.Unlock()
	for _, l := range loops {
		l.Stop()
	}
	return nil
}

// Standard holds the attributes every Neutron resource has.
type Standard struct {
	// ID identifies the resource.
	ID string `json:"id"`
	// Name is the resource's name; it need not be unique.
	Name string `json:"name"`
	// Description is free text.
	Description string `json:"description"`
	// ProjectID is the owning project ("" for ports the service owns, such
	// as router gateways and floating IP ports).
	ProjectID string `json:"project_id"`
	// Tags are the resource's tags.
	Tags []string `json:"tags"`
	// CreatedAt and UpdatedAt are the times of creation and last change.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// RevisionNumber counts the resource's changes; it starts at 0... and
	// increases by one at every update (Neutron's revision_number).
	RevisionNumber int `json:"revision_number"`
}

func (s *Standard) std() *Standard { return s }

// StoreKey implements store.Record.
func (s *Standard) StoreKey() string { return s.ID }

// record is what every resource record implements.
type record interface {
	store.Record
	std() *Standard
}

func newStandard(now time.Time, project, name, description string) Standard {
	now = now.UTC().Truncate(time.Second)
	return Standard{ID: newID(), Name: name, Description: description, ProjectID: project,
		Tags: []string{}, CreatedAt: now, UpdatedAt: now, RevisionNumber: 0}
}

// touch bumps a record's revision_number and updated_at before an update.
func touch(r record, now time.Time) {
	st := r.std()
	st.RevisionNumber++
	st.UpdatedAt = now.UTC().Truncate(time.Second)
}

// Fault is an error that names Neutron's error type (NeutronError.type),
// such as "IpAddressGenerationFailure" or "RevisionNumberConstraintFailed",
// beside its errdefs kind.
type Fault struct {
	// Type is Neutron's exception name.
	Type string
	// Err carries the message and the errdefs kind.
	Err error
}

// Error implements error.
func (f *Fault) Error() string { return f.Err.Error() }

// Unwrap returns Err.
func (f *Fault) Unwrap() error { return f.Err }

func fault(typ string, kind error, format string, args ...any) error {
	return &Fault{Type: typ, Err: errdefs.Wrap(kind, fmt.Errorf("network: "+format, args...))}
}

func notFound(kind, id string) error {
	return fault(kind+"NotFound", errdefs.ErrNotFound, "%s %s could not be found", strings.ToLower(kind), id)
}

// ErrIPAddressGenerationFailure is matched (errors.Is) by the error of an
// allocation from a subnet with no free address left.
var ErrIPAddressGenerationFailure = errors.New("no more IP addresses available")

// getVisible returns the record of table with id when see lets the caller
// see it, else kind's NotFound (hidden and missing look the same).
func getVisible[T any](tx *store.Txn, table, kind, id string, see func(*T) bool) (*T, error) {
	v, err := store.Get[T](nil, tx, table, id)
	if err != nil || !see(v) {
		return nil, notFound(kind, id)
	}
	return v, nil
}

// snapshotGet runs get as the caller on a snapshot of the store: what
// every Get method does.
func snapshotGet[R any](ctx context.Context, s *Service, get func(*identity.Credentials, *store.Txn, string) (R, error), id string) (R, error) {
	c, err := caller(ctx)
	if err != nil {
		var zero R
		return zero, err
	}
	return get(c, s.st.Snapshot(), id)
}

// writable returns what get finds for id in tx once the caller may write
// it and, when ifRevision is set, its revision is that one.
func writable[R record](s *Service, c *identity.Credentials, tx *store.Txn, get func(*identity.Credentials, *store.Txn, string) (R, error), id string, ifRevision *int) (R, error) {
	var zero R
	r, err := get(c, tx, id)
	if err != nil {
		return zero, err
	}
	if err := s.mayWrite(c, r.std().ProjectID); err != nil {
		return zero, err
	}
	if err := checkRevision(ifRevision, r); err != nil {
		return zero, err
	}
	return r, nil
}

// collect gathers the records it yields that keep accepts; err is the
// error that came with it (a List method's shape).
func collect[T any](it func(func(*T) bool), err error, keep func(*T) bool) ([]*T, error) {
	if err != nil {
		return nil, err
	}
	var out []*T
	for v := range it {
		if keep(v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// creatable checks what every create request carries (the owning project,
// the caller's right to write there, name, description, tags) and returns
// the owning project.
func (s *Service) creatable(c *identity.Credentials, project, name, desc string, tags []string) (string, error) {
	project, err := ownerFor(c, project)
	if err != nil {
		return "", err
	}
	if err := s.mayWrite(c, project); err != nil {
		return "", err
	}
	if err := checkStd(name, desc); err != nil {
		return "", err
	}
	if err := checkTags(tags); err != nil {
		return "", err
	}
	return project, nil
}

// checkRevision compares an If-Match revision with the record's.
func checkRevision(want *int, r record) error {
	if want != nil && *want != r.std().RevisionNumber {
		return fault("RevisionNumberConstraintFailed", errdefs.ErrConflict,
			"constrained to %d, but current revision is %d", *want, r.std().RevisionNumber)
	}
	return nil
}

const (
	maxName = 255
	maxDesc = 255
	maxTags = 50
	maxTag  = 255
)

func checkName(field, v string, limit int) error {
	if len(v) > limit {
		return errdefs.Invalid(field, "longer than %d characters", limit)
	}
	if !utf8.ValidString(v) {
		return errdefs.Invalid(field, "not valid UTF-8")
	}
	return nil
}

func checkStd(name, desc string) error {
	if err := checkName("name", name, maxName); err != nil {
		return err
	}
	return checkName("description", desc, maxDesc)
}

func checkTags(tags []string) error {
	if len(tags) > maxTags {
		return errdefs.Invalid("tags", "more than %d tags", maxTags)
	}
	for _, t := range tags {
		if t == "" || len(t) > maxTag || strings.Contains(t, ",") || strings.Contains(t, "/") || !utf8.ValidString(t) {
			return errdefs.Invalid("tags", "%q is not a valid tag", t)
		}
	}
	return nil
}

func dedupe(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// caller returns the context's credentials, or an ErrUnauthenticated
// error.
func caller(ctx context.Context) (*identity.Credentials, error) {
	c := identity.CredentialsFrom(ctx)
	if c == nil {
		return nil, errdefs.Wrap(errdefs.ErrUnauthenticated, errors.New("network: the request you have made requires authentication"))
	}
	return c, nil
}

// ownerFor returns the project a new resource belongs to: the caller's, or
// the one an admin names.
func ownerFor(c *identity.Credentials, requested string) (string, error) {
	if requested != "" && requested != c.ProjectID {
		if !c.IsCloudAdmin() {
			return "", fault("PolicyNotAuthorized", errdefs.ErrForbidden, "only an admin may create a resource in another project")
		}
		return requested, nil
	}
	if c.ProjectID == "" {
		if c.IsCloudAdmin() {
			return "", errdefs.Invalid("project_id", "a system-scoped request must name the project")
		}
		return "", fault("PolicyNotAuthorized", errdefs.ErrForbidden, "a project-scoped token is required")
	}
	return c.ProjectID, nil
}
