// Package scheduler chooses compute hosts for servers, as Nova's filter
// scheduler does: filters drop the hosts that cannot take a request, then
// weighers rank the rest. It is pure: functions over host states, with no
// store and no I/O. The caller (compute's claim) rechecks capacity inside
// the store transaction that commits the placement.
//
// Filters: host up and enabled, RAM, cores and disk (with allocation
// ratios), availability zone, aggregate extra_specs
// ("aggregate_instance_extra_specs:" keys), server group affinity and
// anti-affinity (hard), same_host and different_host hints, image
// properties (hypervisor_type, architecture) and hosts already tried.
// Weighers: free RAM, free vCPUs and free disk with multipliers (positive
// spreads, negative packs) and soft affinity and anti-affinity.
//
// With Options.Limit, Select samples like Nomad's limit iterator: it visits
// hosts from a random offset and ranks the first Limit that pass, which
// keeps the cost flat on large clouds.
package scheduler

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
)

// Host is one compute host's state as the scheduler sees it. Treat it as
// immutable once shared.
type Host struct {
	ID   string
	Name string
	AZ   string
	// Enabled is the operator's switch; Up comes from heartbeats.
	Enabled, Up bool
	VCPUs       int
	RAMMB       int
	DiskGB      int
	// CPURatio, RAMRatio and DiskRatio overcommit capacity (Nova's
	// *_allocation_ratio); zero means 1.
	CPURatio, RAMRatio, DiskRatio float64
	// ReservedRAMMB is kept for the host itself.
	ReservedRAMMB                    int
	UsedVCPUs, UsedRAMMB, UsedDiskGB int
	Instances                        int
	HypervisorType, Architecture     string
	// AggregateMetadata merges the metadata of the host's aggregates.
	AggregateMetadata map[string]string

	// Capacities under the ratios and inverse sizes, computed by Init.
	init                      bool
	capVCPUs, capRAM, capDisk int
	invVCPUs, invRAM, invDisk float64
}

// Init precomputes what the filters and weighers use on every request.
// Call it once the host's fields are set (Select and Best work without it,
// more slowly).
func (h *Host) Init() {
	h.capVCPUs = int(float64(h.VCPUs) * ratio(h.CPURatio))
	h.capRAM = int(float64(h.RAMMB-h.ReservedRAMMB) * ratio(h.RAMRatio))
	h.capDisk = int(float64(h.DiskGB) * ratio(h.DiskRatio))
	h.invVCPUs, h.invRAM, h.invDisk = inv(h.VCPUs), inv(h.RAMMB), inv(h.DiskGB)
	h.init = true
}

func inv(n int) float64 {
	if n <= 0 {
		return 0
	}
	return 1 / float64(n)
}

func ratio(r float64) float64 {
	if r <= 0 {
		return 1
	}
	return r
}

// FreeVCPUs returns the vCPUs left under the allocation ratio.
func (h *Host) FreeVCPUs() int {
	if h.init {
		return h.capVCPUs - h.UsedVCPUs
	}
	return int(float64(h.VCPUs)*ratio(h.CPURatio)) - h.UsedVCPUs
}

// FreeRAMMB returns the RAM left under the allocation ratio.
func (h *Host) FreeRAMMB() int {
	if h.init {
		return h.capRAM - h.UsedRAMMB
	}
	return int(float64(h.RAMMB-h.ReservedRAMMB)*ratio(h.RAMRatio)) - h.UsedRAMMB
}

// FreeDiskGB returns the disk left under the allocation ratio.
func (h *Host) FreeDiskGB() int {
	if h.init {
		return h.capDisk - h.UsedDiskGB
	}
	return int(float64(h.DiskGB)*ratio(h.DiskRatio)) - h.UsedDiskGB
}

// Fits reports whether a request of the given size fits on h now.
func (h *Host) Fits(vcpus, ramMB, diskGB int) bool {
	return vcpus <= h.FreeVCPUs() && ramMB <= h.FreeRAMMB() && diskGB <= h.FreeDiskGB()
}

// GroupPolicy is a server group's policy.
type GroupPolicy string

// Server group policies.
const (
	Affinity         GroupPolicy = "affinity"
	AntiAffinity     GroupPolicy = "anti-affinity"
	SoftAffinity     GroupPolicy = "soft-affinity"
	SoftAntiAffinity GroupPolicy = "soft-anti-affinity"
)

// Request is what one server needs.
type Request struct {
	VCPUs, RAMMB, DiskGB int
	// AZ, if set, restricts to hosts of that availability zone.
	AZ string
	// ExtraSpecs are the flavor's; keys prefixed
	// "aggregate_instance_extra_specs:" must match the host's aggregate
	// metadata.
	ExtraSpecs map[string]string
	// ImageProperties are the image's; hypervisor_type and architecture
	// must match the host when set.
	ImageProperties map[string]string
	// GroupPolicy and GroupHosts describe the server's group: the hosts of
	// its other members, with how many members each holds.
	GroupPolicy GroupPolicy
	GroupHosts  map[string]int
	// MaxServerPerHost bounds members per host under anti-affinity
	// (rules.max_server_per_host, default 1).
	MaxServerPerHost int
	// SameHost and DifferentHost are host ids from the hints of those
	// names (the hosts of the servers named).
	SameHost, DifferentHost []string
	// Ignore are hosts already tried for this server.
	Ignore []string
}

// Options tunes Select.
type Options struct {
	// RAMWeight, CPUWeight and DiskWeight multiply the normalised free
	// resource: positive spreads, negative packs. All zero means RAM 1.
	RAMWeight, CPUWeight, DiskWeight float64
	// SoftAffinityWeight multiplies the soft (anti-)affinity weigher.
	// Default 1.
	SoftAffinityWeight float64
	// Limit, if positive, samples: Select stops after Limit hosts pass the
	// filters, visiting hosts from a random offset.
	Limit int
	// Rand is the randomness for the offset; nil means math/rand/v2.
	Rand *rand.Rand
}

const aggPrefix = "aggregate_instance_extra_specs:"

// Pass reports whether h passes every filter for r.
func Pass(h *Host, r *Request) bool {
	if !h.Up || !h.Enabled {
		return false
	}
	if !h.Fits(r.VCPUs, r.RAMMB, r.DiskGB) {
		return false
	}
	if r.AZ != "" && r.AZ != h.AZ {
		return false
	}
	if !r.needsRest() {
		return true
	}
	return passRest(h, r) == ""
}

// needsRest reports whether any filter beyond capacity and zone applies.
func (r *Request) needsRest() bool {
	return len(r.Ignore) > 0 || len(r.ExtraSpecs) > 0 || len(r.ImageProperties) > 0 ||
		r.GroupPolicy == Affinity || r.GroupPolicy == AntiAffinity || len(r.SameHost) > 0 || len(r.DifferentHost) > 0
}

// passRest runs the less common filters and returns why h fails, or "".
func passRest(h *Host, r *Request) string {
	for _, id := range r.Ignore {
		if id == h.ID {
			return "RetryFilter"
		}
	}
	for k, v := range r.ExtraSpecs {
		if key, ok := strings.CutPrefix(k, aggPrefix); ok && h.AggregateMetadata[key] != v {
			return "AggregateInstanceExtraSpecsFilter"
		}
	}
	if t := r.ImageProperties["hypervisor_type"]; t != "" && !strings.EqualFold(t, h.HypervisorType) {
		return "ImagePropertiesFilter"
	}
	if a := r.ImageProperties["architecture"]; a != "" && h.Architecture != "" && !strings.EqualFold(a, h.Architecture) {
		return "ImagePropertiesFilter"
	}
	switch r.GroupPolicy {
	case Affinity:
		if len(r.GroupHosts) > 0 && r.GroupHosts[h.ID] == 0 {
			return "ServerGroupAffinityFilter"
		}
	case AntiAffinity:
		maxPer := max(r.MaxServerPerHost, 1)
		if r.GroupHosts[h.ID] >= maxPer {
			return "ServerGroupAntiAffinityFilter"
		}
	}
	if len(r.SameHost) > 0 && !contains(r.SameHost, h.ID) {
		return "SameHostFilter"
	}
	if contains(r.DifferentHost, h.ID) {
		return "DifferentHostFilter"
	}
	return ""
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Why returns the name of the first filter that h fails for r, or "".
func Why(h *Host, r *Request) string {
	switch {
	case !h.Enabled:
		return "ComputeFilter (disabled)"
	case !h.Up:
		return "ComputeFilter (down)"
	case r.RAMMB > h.FreeRAMMB():
		return "RamFilter"
	case r.VCPUs > h.FreeVCPUs():
		return "CoreFilter"
	case r.DiskGB > h.FreeDiskGB():
		return "DiskFilter"
	case r.AZ != "" && r.AZ != h.AZ:
		return "AvailabilityZoneFilter"
	}
	return passRest(h, r)
}

// Reasons summarises why no host passed: each failing filter with the
// number of hosts it rejected, in Nova's "No valid host" style.
func Reasons(hosts []Host, r *Request) string {
	if len(hosts) == 0 {
		return "there are no compute hosts"
	}
	counts := map[string]int{}
	for i := range hosts {
		if w := Why(&hosts[i], r); w != "" {
			counts[w]++
		}
	}
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s rejected %d of %d hosts", n, counts[n], len(hosts)))
	}
	return strings.Join(parts, "; ")
}

// Weigh returns h's weight for r; higher is better.
func Weigh(h *Host, r *Request, o *Options) float64 {
	rw, cw, dw := o.RAMWeight, o.CPUWeight, o.DiskWeight
	if rw == 0 && cw == 0 && dw == 0 {
		rw = 1
	}
	iv, ir, id := h.invVCPUs, h.invRAM, h.invDisk
	if !h.init {
		iv, ir, id = inv(h.VCPUs), inv(h.RAMMB), inv(h.DiskGB)
	}
	var w float64
	if rw != 0 {
		w += rw * float64(h.FreeRAMMB()-r.RAMMB) * ir
	}
	if cw != 0 {
		w += cw * float64(h.FreeVCPUs()-r.VCPUs) * iv
	}
	if dw != 0 {
		w += dw * float64(h.FreeDiskGB()-r.DiskGB) * id
	}
	if r.GroupPolicy != SoftAffinity && r.GroupPolicy != SoftAntiAffinity {
		return w
	}
	sw := o.SoftAffinityWeight
	if sw == 0 {
		sw = 1
	}
	switch r.GroupPolicy {
	case SoftAffinity:
		w += sw * 10 * float64(r.GroupHosts[h.ID])
	case SoftAntiAffinity:
		w -= sw * 10 * float64(r.GroupHosts[h.ID])
	}
	return w
}

// Candidate is a host that passed, with its weight.
type Candidate struct {
	Index  int // in the hosts given
	Weight float64
}

func startAt(n int, o *Options) int {
	if o.Limit <= 0 || n <= o.Limit {
		return 0
	}
	if o.Rand != nil {
		return o.Rand.IntN(n)
	}
	return rand.IntN(n)
}

// Select returns the hosts that pass every filter for r, best first (at
// most o.Limit of them when sampling). It returns an empty slice when none
// passes; Reasons then says why. hosts is read, never written.
func Select(hosts []Host, r *Request, o *Options) []Candidate {
	if o == nil {
		o = &Options{}
	}
	n := len(hosts)
	start := startAt(n, o)
	var out []Candidate
	for i := range n {
		j := (start + i) % n
		h := &hosts[j]
		if !Pass(h, r) {
			continue
		}
		out = append(out, Candidate{Index: j, Weight: Weigh(h, r, o)})
		if o.Limit > 0 && len(out) >= o.Limit {
			break
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Weight > out[j].Weight })
	return out
}

// Best returns the index in hosts of the best host for r, or -1 when none
// passes. It is Select without the sort, for the common case of taking the
// first, with the capacity filters and the default weigher inlined for
// hosts that went through Init. hosts is read, never written.
func Best(hosts []Host, r *Request, o *Options) int {
	if o == nil {
		o = &Options{}
	}
	n := len(hosts)
	start := startAt(n, o)
	rest := r.needsRest()
	// The default weigher (free RAM only) is computed inline.
	plainRAM := o.CPUWeight == 0 && o.DiskWeight == 0 && r.GroupPolicy != SoftAffinity && r.GroupPolicy != SoftAntiAffinity
	rw := o.RAMWeight
	if rw == 0 && plainRAM {
		rw = 1
	}
	best, seen := -1, 0
	var bestW float64
	for i := range n {
		j := start + i
		if j >= n {
			j -= n
		}
		h := &hosts[j]
		if !h.Up || !h.Enabled {
			continue
		}
		var w float64
		if h.init {
			freeRAM := h.capRAM - h.UsedRAMMB - r.RAMMB
			if r.VCPUs > h.capVCPUs-h.UsedVCPUs || freeRAM < 0 || r.DiskGB > h.capDisk-h.UsedDiskGB ||
				(r.AZ != "" && r.AZ != h.AZ) || (rest && passRest(h, r) != "") {
				continue
			}
			if plainRAM {
				w = rw * float64(freeRAM) * h.invRAM
			} else {
				w = Weigh(h, r, o)
			}
		} else {
			if !Pass(h, r) {
				continue
			}
			w = Weigh(h, r, o)
		}
		if best < 0 || w > bestW {
			best, bestW = j, w
		}
		seen++
		if o.Limit > 0 && seen >= o.Limit {
			break
		}
	}
	return best
}
