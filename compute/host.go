package compute

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/stratuskit/stratus/compute/scheduler"
	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// Host is a compute host: its capacity, allocation ratios, availability
// zone and the operator's enabled switch. Usage lives in HostUsage, so
// that changing one never conflicts with the other.
type Host struct {
	store.Meta
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	AZ             string    `json:"availability_zone"`
	VCPUs          int       `json:"vcpus"`
	RAMMB          int       `json:"memory_mb"`
	DiskGB         int       `json:"local_gb"`
	ReservedRAMMB  int       `json:"reserved_memory_mb"`
	CPURatio       float64   `json:"cpu_allocation_ratio"`
	RAMRatio       float64   `json:"ram_allocation_ratio"`
	DiskRatio      float64   `json:"disk_allocation_ratio"`
	Enabled        bool      `json:"enabled"`
	DisabledReason string    `json:"disabled_reason,omitempty"`
	ForcedDown     bool      `json:"forced_down"`
	HypervisorType string    `json:"hypervisor_type"`
	HypervisorVer  int       `json:"hypervisor_version"`
	HostIP         string    `json:"host_ip"`
	Created        time.Time `json:"created"`
}

// StoreKey implements store.Record.
func (h *Host) StoreKey() string { return h.ID }

// HostUsage is what the claims on one host add up to. Only claims on this
// host write it, inside the claim's transaction, so claims on other hosts
// never conflict with it.
type HostUsage struct {
	store.Meta
	HostID    string `json:"host_id"`
	VCPUs     int    `json:"vcpus"`
	RAMMB     int    `json:"ram"`
	DiskGB    int    `json:"disk"`
	Instances int    `json:"instances"`
}

// StoreKey implements store.Record.
func (u *HostUsage) StoreKey() string { return u.HostID }

// Claim is a server's hold on a host's resources.
type Claim struct {
	store.Meta
	ServerID string `json:"server_id"`
	HostID   string `json:"host_id"`
	VCPUs    int    `json:"vcpus"`
	RAMMB    int    `json:"ram"`
	DiskGB   int    `json:"disk"`
}

// StoreKey implements store.Record.
func (c *Claim) StoreKey() string { return c.ServerID }

// Aggregate groups hosts, with metadata the scheduler matches against
// flavor extra_specs; its availability_zone metadata sets its hosts' AZ.
type Aggregate struct {
	store.Meta
	// ID is Nova's integer id, in decimal; UUID its uuid.
	ID       string            `json:"id"`
	UUID     string            `json:"uuid"`
	Name     string            `json:"name"`
	AZ       string            `json:"availability_zone,omitempty"`
	Hosts    []string          `json:"hosts"`
	Metadata map[string]string `json:"metadata"`
	Created  time.Time         `json:"created"`
}

// StoreKey implements store.Record.
func (a *Aggregate) StoreKey() string { return a.ID }

// HostOpts registers a compute host.
type HostOpts struct {
	// Name is the host name, unique; it is also the host's id.
	Name string
	// AZ is the availability zone; default "nova".
	AZ string
	// VCPUs, RAMMB and DiskGB are the capacity; zero asks the driver's
	// Stats.
	VCPUs, RAMMB, DiskGB int
	ReservedRAMMB        int
	// CPURatio, RAMRatio and DiskRatio default to Nova's 16, 1.5 and 1.
	CPURatio, RAMRatio, DiskRatio float64
	HostIP                        string
}

// AddHost registers a compute host with its driver (or updates its
// capacity after a restart; the enabled switch is kept). Call it before or
// after Start; each host gets an agent that heartbeats, syncs power states
// and sweeps orphan domains.
func (s *Service) AddHost(ctx context.Context, o HostOpts, d Hypervisor) (*Host, error) {
	if err := checkName("host", o.Name); err != nil {
		return nil, err
	}
	if d == nil {
		return nil, errdefs.Invalid("driver", "is required")
	}
	if o.VCPUs == 0 || o.RAMMB == 0 || o.DiskGB == 0 {
		st, err := d.Stats(ctx)
		if err != nil {
			return nil, fmt.Errorf("compute: host %s: stats: %w", o.Name, err)
		}
		o.VCPUs, o.RAMMB, o.DiskGB = cmpOr(o.VCPUs, st.VCPUs), cmpOr(o.RAMMB, st.MemoryMB), cmpOr(o.DiskGB, st.DiskGB)
	}
	if o.AZ == "" {
		o.AZ = "nova"
	}
	caps := d.Capabilities()
	h := &Host{ID: o.Name, Name: o.Name, AZ: o.AZ, VCPUs: o.VCPUs, RAMMB: o.RAMMB, DiskGB: o.DiskGB,
		ReservedRAMMB: o.ReservedRAMMB, CPURatio: cmpOrF(o.CPURatio, 16), RAMRatio: cmpOrF(o.RAMRatio, 1.5),
		DiskRatio: cmpOrF(o.DiskRatio, 1), Enabled: true, HypervisorType: caps.Type, HypervisorVer: caps.Version,
		HostIP: o.HostIP, Created: s.st.Now().UTC()}
	err := s.update(ctx, func(tx *store.Txn) error {
		if old, err := store.Get[Host](nil, tx, hostTable, h.ID); err == nil {
			h.Enabled, h.DisabledReason, h.ForcedDown, h.Created = old.Enabled, old.DisabledReason, old.ForcedDown, old.Created
			h.Revision = old.Revision
			return tx.Update(hostTable, h)
		}
		if err := tx.Insert(hostTable, h); err != nil {
			return err
		}
		if _, err := store.Get[HostUsage](nil, tx, usageTable, h.ID); err != nil {
			return tx.Insert(usageTable, &HostUsage{HostID: h.ID})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.drivers[h.ID] = d
	s.beats[h.ID] = time.Now()
	started := s.started
	s.mu.Unlock()
	s.sched.refresh()
	if started {
		s.startAgent(h.ID)
	}
	return h, nil
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

func cmpOrF(a, b float64) float64 {
	if a > 0 {
		return a
	}
	return b
}

// Heartbeat marks a host up until HeartbeatTTL passes. The host agents
// call it; heartbeats live in memory only.
func (s *Service) Heartbeat(hostID string) {
	s.mu.Lock()
	s.beats[hostID] = time.Now()
	s.mu.Unlock()
}

// hostUp reports whether a host heartbeated within the TTL.
func (s *Service) hostUp(h *Host) bool {
	if h.ForcedDown {
		return false
	}
	s.mu.RLock()
	t, ok := s.beats[h.ID]
	s.mu.RUnlock()
	return ok && time.Since(t) < s.cfg.HeartbeatTTL
}

// hostCache is the scheduler's view of every host, kept in memory and
// refreshed from the store: the host list when hosts or aggregates change,
// one host's usage after each claim or release this process commits, and
// everything periodically. It may be stale; the claim rechecks inside its
// transaction. Hosts are values in one slice, scanned under a read lock,
// so that a scan over thousands of hosts reads memory in order.
type hostCache struct {
	s     *Service
	mu    sync.RWMutex
	hosts []scheduler.Host
	byID  map[string]int
}

func newHostCache(s *Service) *hostCache { return &hostCache{s: s, byID: map[string]int{}} }

// refresh rebuilds the cache from a snapshot.
func (c *hostCache) refresh() {
	tx := c.s.st.Snapshot()
	it, err := store.List[Host](nil, tx, hostTable, store.IDIndex)
	if err != nil {
		return
	}
	aggMeta := map[string]map[string]string{}
	if ait, err := store.List[Aggregate](nil, tx, aggregateTable, store.IDIndex); err == nil {
		for a := range ait {
			for _, h := range a.Hosts {
				m := aggMeta[h]
				if m == nil {
					m = map[string]string{}
					aggMeta[h] = m
				}
				maps.Copy(m, a.Metadata)
			}
		}
	}
	var hosts []scheduler.Host
	byID := map[string]int{}
	for h := range it {
		u, err := store.Get[HostUsage](nil, tx, usageTable, h.ID)
		if err != nil {
			u = &HostUsage{HostID: h.ID}
		}
		byID[h.ID] = len(hosts)
		hosts = append(hosts, c.s.schedHost(h, u, aggMeta[h.ID]))
	}
	c.mu.Lock()
	c.hosts, c.byID = hosts, byID
	c.mu.Unlock()
}

func (s *Service) schedHost(h *Host, u *HostUsage, agg map[string]string) scheduler.Host {
	sh := scheduler.Host{ID: h.ID, Name: h.Name, AZ: h.AZ, Enabled: h.Enabled, Up: s.hostUp(h),
		VCPUs: h.VCPUs, RAMMB: h.RAMMB, DiskGB: h.DiskGB, CPURatio: h.CPURatio, RAMRatio: h.RAMRatio,
		DiskRatio: h.DiskRatio, ReservedRAMMB: h.ReservedRAMMB, UsedVCPUs: u.VCPUs, UsedRAMMB: u.RAMMB,
		UsedDiskGB: u.DiskGB, Instances: u.Instances, HypervisorType: h.HypervisorType, AggregateMetadata: agg}
	sh.Init()
	return sh
}

// setUsage replaces one host's usage in the cache (after a commit).
func (c *hostCache) setUsage(u *HostUsage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.byID[u.HostID]; ok {
		h := &c.hosts[i]
		h.UsedVCPUs, h.UsedRAMMB, h.UsedDiskGB, h.Instances = u.VCPUs, u.RAMMB, u.DiskGB, u.Instances
	}
}

// best picks a host for r, or returns "" and why none fits.
func (c *hostCache) best(r *scheduler.Request, o *scheduler.Options) (id, reasons string) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if i := scheduler.Best(c.hosts, r, o); i >= 0 {
		return c.hosts[i].ID, ""
	}
	return "", scheduler.Reasons(c.hosts, r)
}

// claimTxn places a claim for server on host inside tx, rechecking the
// host's free capacity against its usage as of this transaction.
func claimTxn(tx *store.Txn, srv *Server, hostID string) (*HostUsage, error) {
	h, err := store.Get[Host](nil, tx, hostTable, hostID)
	if err != nil {
		return nil, notFound("host", hostID)
	}
	if old, err := store.Get[Claim](nil, tx, claimTable, srv.ID); err == nil {
		if old.HostID == hostID {
			u, _ := store.Get[HostUsage](nil, tx, usageTable, hostID)
			return u, nil
		}
		return nil, fmt.Errorf("compute: server %s already holds a claim on %s: %w", srv.ID, old.HostID, errdefs.ErrConflict)
	}
	u, err := store.Get[HostUsage](nil, tx, usageTable, hostID)
	if err != nil {
		u = &HostUsage{HostID: hostID}
	}
	sh := scheduler.Host{VCPUs: h.VCPUs, RAMMB: h.RAMMB, DiskGB: h.DiskGB, CPURatio: h.CPURatio, RAMRatio: h.RAMRatio,
		DiskRatio: h.DiskRatio, ReservedRAMMB: h.ReservedRAMMB, UsedVCPUs: u.VCPUs, UsedRAMMB: u.RAMMB, UsedDiskGB: u.DiskGB}
	disk := srv.Flavor.DiskGB + srv.Flavor.EphemeralGB + (srv.Flavor.SwapMB+1023)/1024
	if srv.BootFromVolume {
		disk = srv.Flavor.EphemeralGB + (srv.Flavor.SwapMB+1023)/1024
	}
	if !sh.Fits(srv.Flavor.VCPUs, srv.Flavor.RAMMB, disk) {
		return nil, fmt.Errorf("compute: host %s no longer has room for server %s: %w", hostID, srv.ID, errClaimFailed)
	}
	u.VCPUs += srv.Flavor.VCPUs
	u.RAMMB += srv.Flavor.RAMMB
	u.DiskGB += disk
	u.Instances++
	if err := tx.Put(usageTable, u); err != nil {
		return nil, err
	}
	if err := tx.Insert(claimTable, &Claim{ServerID: srv.ID, HostID: hostID, VCPUs: srv.Flavor.VCPUs, RAMMB: srv.Flavor.RAMMB, DiskGB: disk}); err != nil {
		return nil, err
	}
	return u, nil
}

// errClaimFailed marks a claim that lost the race for a host's last room.
var errClaimFailed = fmt.Errorf("claim failed: %w", errdefs.ErrConflict)

// releaseTxn drops a server's claim inside tx; no claim is not an error.
func releaseTxn(tx *store.Txn, serverID string) (*HostUsage, error) {
	cl, err := store.Get[Claim](nil, tx, claimTable, serverID)
	if err != nil {
		return nil, nil //nolint:nilerr // nothing claimed
	}
	u, err := store.Get[HostUsage](nil, tx, usageTable, cl.HostID)
	if err != nil {
		u = &HostUsage{HostID: cl.HostID}
	}
	u.VCPUs -= cl.VCPUs
	u.RAMMB -= cl.RAMMB
	u.DiskGB -= cl.DiskGB
	u.Instances--
	if err := tx.Put(usageTable, u); err != nil {
		return nil, err
	}
	return u, tx.Delete(claimTable, serverID)
}

// HostInfo is a host with its usage and liveness, for os-hypervisors and
// os-services.
type HostInfo struct {
	Host
	Usage HostUsage
	Up    bool
}

// ListHosts returns every compute host (system readers).
func (s *Service) ListHosts(ctx context.Context) ([]HostInfo, error) {
	if _, err := s.enforce(ctx, "compute:host:read", ""); err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	it, err := store.List[Host](nil, tx, hostTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	var out []HostInfo
	for h := range it {
		u, err := store.Get[HostUsage](nil, tx, usageTable, h.ID)
		if err != nil {
			u = &HostUsage{HostID: h.ID}
		}
		out = append(out, HostInfo{Host: *h, Usage: *u, Up: s.hostUp(h)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// SetHostEnabled enables or disables a host for scheduling (admin only).
func (s *Service) SetHostEnabled(ctx context.Context, hostID string, enabled bool, reason string) (*Host, error) {
	return s.updateHost(ctx, hostID, func(h *Host) {
		h.Enabled, h.DisabledReason = enabled, reason
		if enabled {
			h.DisabledReason = ""
		}
	})
}

// updateHost applies change to a host (admin only) and refreshes the
// scheduler's view.
func (s *Service) updateHost(ctx context.Context, hostID string, change func(*Host)) (*Host, error) {
	if _, err := s.enforce(ctx, "compute:host:write", ""); err != nil {
		return nil, err
	}
	var out *Host
	err := s.update(ctx, func(tx *store.Txn) error {
		h, err := store.Get[Host](nil, tx, hostTable, hostID)
		if err != nil {
			return notFound("host", hostID)
		}
		change(h)
		out = h
		return tx.Update(hostTable, h)
	})
	if err != nil {
		return nil, err
	}
	s.sched.refresh()
	return out, nil
}

// SetHostForcedDown marks a host down regardless of heartbeats (admin).
func (s *Service) SetHostForcedDown(ctx context.Context, hostID string, down bool) (*Host, error) {
	return s.updateHost(ctx, hostID, func(h *Host) { h.ForcedDown = down })
}

// CreateAggregateOpts creates a host aggregate.
type CreateAggregateOpts struct {
	Name string
	AZ   string
}

// CreateAggregate creates a host aggregate (admin only).
func (s *Service) CreateAggregate(ctx context.Context, o CreateAggregateOpts) (*Aggregate, error) {
	if _, err := s.enforce(ctx, "compute:host:write", ""); err != nil {
		return nil, err
	}
	if err := checkName("name", o.Name); err != nil {
		return nil, err
	}
	a := &Aggregate{UUID: newUUID(), Name: o.Name, AZ: o.AZ, Hosts: []string{}, Metadata: map[string]string{}, Created: s.st.Now().UTC()}
	if o.AZ != "" {
		a.Metadata["availability_zone"] = o.AZ
	}
	err := s.st.Update(ctx, func(tx *store.Txn) error {
		it, err := store.List[Aggregate](nil, tx, aggregateTable, store.IDIndex)
		if err != nil {
			return err
		}
		next := 1
		for g := range it {
			if n, err := strconv.Atoi(g.ID); err == nil && n >= next {
				next = n + 1
			}
			if g.Name == a.Name {
				return fmt.Errorf("compute: aggregate %s already exists: %w", a.Name, errdefs.ErrConflict)
			}
		}
		a.ID = strconv.Itoa(next)
		return tx.Insert(aggregateTable, a)
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// UpdateAggregate adds or removes a host, or merges metadata (a nil value
// removes a key), in one call (admin only).
func (s *Service) UpdateAggregate(ctx context.Context, id string, addHost, removeHost string, meta map[string]*string) (*Aggregate, error) {
	if _, err := s.enforce(ctx, "compute:host:write", ""); err != nil {
		return nil, err
	}
	var out *Aggregate
	err := s.update(ctx, func(tx *store.Txn) error {
		a, err := store.Get[Aggregate](nil, tx, aggregateTable, id)
		if err != nil {
			return notFound("aggregate", id)
		}
		if addHost != "" {
			if _, err := store.Get[Host](nil, tx, hostTable, addHost); err != nil {
				return notFound("compute host", addHost)
			}
			if slices.Contains(a.Hosts, addHost) {
				return fmt.Errorf("compute: host %s already in aggregate %s: %w", addHost, id, errdefs.ErrConflict)
			}
			a.Hosts = append(slices.Clone(a.Hosts), addHost)
		}
		if removeHost != "" {
			i := slices.Index(a.Hosts, removeHost)
			if i < 0 {
				return notFound("host in aggregate", removeHost)
			}
			a.Hosts = slices.Delete(slices.Clone(a.Hosts), i, i+1)
		}
		if meta != nil {
			m := maps.Clone(a.Metadata)
			if m == nil {
				m = map[string]string{}
			}
			for k, v := range meta {
				if v == nil {
					delete(m, k)
				} else {
					m[k] = *v
				}
			}
			a.Metadata = m
			a.AZ = m["availability_zone"]
		}
		out = a
		if err := tx.Update(aggregateTable, a); err != nil {
			return err
		}
		return s.syncAZTxn(tx)
	})
	if err != nil {
		return nil, err
	}
	s.sched.refresh()
	return out, nil
}

// syncAZTxn sets each host's AZ from the aggregates that name one.
func (s *Service) syncAZTxn(tx *store.Txn) error {
	az := map[string]string{}
	it, err := store.List[Aggregate](nil, tx, aggregateTable, store.IDIndex)
	if err != nil {
		return err
	}
	for a := range it {
		if a.AZ == "" {
			continue
		}
		for _, h := range a.Hosts {
			az[h] = a.AZ
		}
	}
	hit, err := store.List[Host](nil, tx, hostTable, store.IDIndex)
	if err != nil {
		return err
	}
	for h := range hit {
		want := cmpOrS(az[h.ID], "nova")
		if h.AZ != want {
			h.AZ = want
			if err := tx.Update(hostTable, h); err != nil {
				return err
			}
		}
	}
	return nil
}

func cmpOrS(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// ListAggregates returns every aggregate (system readers).
func (s *Service) ListAggregates(ctx context.Context) ([]*Aggregate, error) {
	if _, err := s.enforce(ctx, "compute:host:read", ""); err != nil {
		return nil, err
	}
	it, err := store.List[Aggregate](nil, s.st.Snapshot(), aggregateTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	return slices.Collect(it), nil
}

// DeleteAggregate deletes an empty aggregate (admin only).
func (s *Service) DeleteAggregate(ctx context.Context, id string) error {
	if _, err := s.enforce(ctx, "compute:host:write", ""); err != nil {
		return err
	}
	err := s.st.Update(ctx, func(tx *store.Txn) error {
		a, err := store.Get[Aggregate](nil, tx, aggregateTable, id)
		if err != nil {
			return notFound("aggregate", id)
		}
		if len(a.Hosts) > 0 {
			return fmt.Errorf("compute: aggregate %s still has hosts: %w", id, errdefs.ErrConflict)
		}
		return tx.Delete(aggregateTable, id)
	})
	if err == nil {
		s.sched.refresh()
	}
	return err
}

// AvailabilityZones returns each zone with its hosts.
func (s *Service) AvailabilityZones(ctx context.Context) (map[string][]HostInfo, error) {
	if _, err := s.enforce(ctx, "compute:az:list", ""); err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	it, err := store.List[Host](nil, tx, hostTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	out := map[string][]HostInfo{}
	for h := range it {
		out[h.AZ] = append(out[h.AZ], HostInfo{Host: *h, Up: s.hostUp(h)})
	}
	return out, nil
}

func (s *Service) getHost(id string) (*Host, error) {
	h, err := store.Get[Host](nil, s.st.Snapshot(), hostTable, id)
	if err != nil {
		return nil, notFound("host", id)
	}
	return h, nil
}
