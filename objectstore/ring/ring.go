// Package ring maps partitions of a name space to devices, as Swift's ring
// does: 2^PartPower partitions, each placed on Replicas devices, in
// distinct zones where there are enough zones, with each device holding a
// share of the partitions proportional to its weight.
//
// A ring is rebuilt (Rebalance) when devices are added, removed or
// reweighted; rebalancing moves only the partition replicas it must: those
// of removed devices and the excess of devices that hold more than their
// share, which go to devices that hold less. Adding a fourth device of
// equal weight to three therefore moves a quarter of the replicas.
//
// A Ring is immutable once built; Save and Load persist it as versioned
// JSON.
package ring

import (
	"cmp"
	"crypto/md5"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
)

// DefaultPartPower is the partition power of a ring built with zero: 1024
// partitions, enough to spread a few dozen devices evenly.
const DefaultPartPower = 10

// DefaultReplicas is the number of replicas of a ring built with zero.
const DefaultReplicas = 3

// Device is one place partitions are stored: for fsobj, a directory.
type Device struct {
	// ID names the device for good; it survives moves of its path.
	ID string `json:"id"`
	// Zone groups devices that fail together (a disk, a host, a rack);
	// replicas of a partition go to distinct zones where possible.
	Zone int `json:"zone"`
	// Weight is the device's relative share; zero means 1.
	Weight float64 `json:"weight,omitempty"`
	// Path is where the device is (a directory for fsobj).
	Path string `json:"path"`
}

func (d Device) weight() float64 {
	if d.Weight <= 0 {
		return 1
	}
	return d.Weight
}

// Ring maps partitions to devices.
type Ring struct {
	// Version increases with every rebalance.
	Version int `json:"version"`
	// PartPower is log2 of the number of partitions.
	PartPower int `json:"part_power"`
	// Replicas is the number of devices each partition is placed on (fewer
	// if there are fewer devices).
	Replicas int `json:"replicas"`
	// Devices are the ring's devices; assignments index this slice.
	Devices []Device `json:"devices"`
	// Assign[r][p] is the index in Devices of partition p's r-th replica.
	Assign [][]int32 `json:"assign"`
}

// Build builds a new ring (Version 1) of devs. partPower and replicas
// of zero take the defaults.
func Build(devs []Device, partPower, replicas int) (*Ring, error) {
	if partPower == 0 {
		partPower = DefaultPartPower
	}
	if replicas == 0 {
		replicas = DefaultReplicas
	}
	if partPower < 1 || partPower > 20 {
		return nil, fmt.Errorf("ring: partition power %d is outside 1..20", partPower)
	}
	if replicas < 1 {
		return nil, fmt.Errorf("ring: %d replicas", replicas)
	}
	r := &Ring{PartPower: partPower, Replicas: replicas}
	nr, _, err := r.Rebalance(devs)
	if err != nil {
		return nil, err
	}
	return nr, nil
}

// Parts returns the number of partitions.
func (r *Ring) Parts() int { return 1 << r.PartPower }

// Part returns the partition of name: the top PartPower bits of its MD5.
func (r *Ring) Part(name string) int {
	s := md5.Sum([]byte(name))
	return int(binary.BigEndian.Uint32(s[:4]) >> (32 - r.PartPower))
}

// Nodes returns the devices of partition part, primary first.
func (r *Ring) Nodes(part int) []Device {
	out := make([]Device, 0, len(r.Assign))
	for _, row := range r.Assign {
		out = append(out, r.Devices[row[part]])
	}
	return out
}

// Handoffs returns the devices that are not partition part's primaries,
// in the order writes fall back to them: devices in zones the primaries
// do not use first, then the rest, each group in an order that depends on
// the partition so that handoff load spreads.
func (r *Ring) Handoffs(part int) []Device {
	primary := map[int]bool{}
	zones := map[int]bool{}
	for _, row := range r.Assign {
		primary[int(row[part])] = true
		zones[r.Devices[row[part]].Zone] = true
	}
	var out []Device
	for i, d := range r.Devices {
		if !primary[i] {
			out = append(out, d)
		}
	}
	key := func(d Device) uint32 {
		return crc32.ChecksumIEEE(fmt.Appendf(nil, "%d/%s", part, d.ID))
	}
	slices.SortStableFunc(out, func(a, b Device) int {
		if za, zb := zones[a.Zone], zones[b.Zone]; za != zb {
			if za {
				return 1
			}
			return -1
		}
		return cmp.Compare(key(a), key(b))
	})
	return out
}

// Rebalance returns a new ring (Version+1) over devs, which may add,
// remove or reweight devices (matched by ID), and the number of partition
// replicas it moved to another device. Replicas of removed devices move;
// devices holding more than their weight's share give up their excess,
// one replica per partition at a time, to the devices holding the least.
func (r *Ring) Rebalance(devs []Device) (*Ring, int, error) {
	if len(devs) == 0 {
		return nil, 0, errors.New("ring: no devices")
	}
	seen := map[string]bool{}
	for _, d := range devs {
		if d.ID == "" || seen[d.ID] {
			return nil, 0, fmt.Errorf("ring: device id %q is empty or repeated", d.ID)
		}
		seen[d.ID] = true
	}
	parts := r.Parts()
	reps := min(r.Replicas, len(devs))
	nr := &Ring{Version: r.Version + 1, PartPower: r.PartPower, Replicas: r.Replicas, Devices: slices.Clone(devs)}
	index := map[string]int{}
	for i, d := range devs {
		index[d.ID] = i
	}
	// Carry over the assignments to devices that remain; -1 is a hole.
	nr.Assign = make([][]int32, reps)
	for rep := range reps {
		nr.Assign[rep] = make([]int32, parts)
		for p := range parts {
			nr.Assign[rep][p] = -1
			if rep < len(r.Assign) {
				if i, ok := index[r.Devices[r.Assign[rep][p]].ID]; ok {
					nr.Assign[rep][p] = int32(i)
				}
			}
		}
	}
	// A partition may have lost its distinctness when the replica count
	// shrank: drop duplicate devices of a partition.
	for p := range parts {
		held := map[int32]bool{}
		for rep := range reps {
			if d := nr.Assign[rep][p]; d >= 0 {
				if held[d] {
					nr.Assign[rep][p] = -1
				}
				held[d] = true
			}
		}
	}
	// Each device's share of the parts*reps replicas.
	var total float64
	for _, d := range devs {
		total += d.weight()
	}
	want := make([]float64, len(devs))
	have := make([]int, len(devs))
	for i, d := range devs {
		want[i] = float64(parts*reps) * d.weight() / total
	}
	for rep := range reps {
		for p := range parts {
			if d := nr.Assign[rep][p]; d >= 0 {
				have[d]++
			}
		}
	}
	// Take the excess away, visiting partitions in a fixed pseudo-random
	// order and taking at most one replica of a partition per sweep, so
	// that the replicas freed are of distinct partitions and can all go
	// to a new device.
	order := make([]int, parts)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Compare(crc32.ChecksumIEEE(binary.BigEndian.AppendUint32(nil, uint32(a))), crc32.ChecksumIEEE(binary.BigEndian.AppendUint32(nil, uint32(b))))
	})
	over := func(d int) float64 { return float64(have[d]) - math.Ceil(want[d]) }
	for changed := true; changed; {
		changed = false
		for _, p := range order {
			best, bestRep := -1, -1
			for rep := range reps {
				d := int(nr.Assign[rep][p])
				if d >= 0 && over(d) > 0 && (best < 0 || over(d) > over(best)) {
					best, bestRep = d, rep
				}
			}
			if best >= 0 {
				nr.Assign[bestRep][p] = -1
				have[best]--
				changed = true
			}
		}
	}
	// Zone spread: a partition with two replicas in one zone while an
	// unused zone exists frees one of them.
	zonesTotal := map[int]bool{}
	for _, d := range devs {
		zonesTotal[d.Zone] = true
	}
	for _, p := range order {
		used := map[int]bool{}
		for rep := range reps {
			d := nr.Assign[rep][p]
			if d < 0 {
				continue
			}
			z := devs[d].Zone
			if used[z] && len(used) < len(zonesTotal) {
				nr.Assign[rep][p] = -1
				have[d]--
				continue
			}
			used[z] = true
		}
	}
	// Fill the holes: each goes to the device that wants the most among
	// those in a zone the partition does not use yet (any device not
	// holding the partition if every zone is used).
	for _, p := range order {
		for rep := range reps {
			if nr.Assign[rep][p] >= 0 {
				continue
			}
			heldDev := map[int]bool{}
			heldZone := map[int]bool{}
			for r2 := range reps {
				if d := nr.Assign[r2][p]; d >= 0 {
					heldDev[int(d)] = true
					heldZone[devs[d].Zone] = true
				}
			}
			best := -1
			for d := range devs {
				if heldDev[d] {
					continue
				}
				if best < 0 {
					best = d
					continue
				}
				nz, bz := !heldZone[devs[d].Zone], !heldZone[devs[best].Zone]
				if nz != bz {
					if nz {
						best = d
					}
					continue
				}
				if want[d]-float64(have[d]) > want[best]-float64(have[best]) {
					best = d
				}
			}
			nr.Assign[rep][p] = int32(best)
			have[best]++
		}
	}
	moved := 0
	for rep := range reps {
		for p := range parts {
			if rep >= len(r.Assign) || r.Devices[r.Assign[rep][p]].ID != devs[nr.Assign[rep][p]].ID {
				moved++
			}
		}
	}
	if len(r.Assign) == 0 {
		moved = 0 // a new ring moves nothing
	}
	return nr, moved, nil
}

// Counts returns how many partition replicas each device holds, by ID.
func (r *Ring) Counts() map[string]int {
	out := map[string]int{}
	for _, row := range r.Assign {
		for _, d := range row {
			out[r.Devices[d].ID]++
		}
	}
	return out
}

// Save writes the ring to path atomically and durably.
func (r *Ring) Save(path string) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("ring: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("ring: save: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Load reads a ring that Save wrote and checks that it is consistent.
func Load(path string) (*Ring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ring: %w", err)
	}
	var r Ring
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("ring: %s: %w", path, err)
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("ring: %s: %w", path, err)
	}
	return &r, nil
}

func (r *Ring) check() error {
	if r.PartPower < 1 || r.PartPower > 20 || r.Replicas < 1 || len(r.Devices) == 0 {
		return errors.New("malformed ring")
	}
	if len(r.Assign) != min(r.Replicas, len(r.Devices)) {
		return errors.New("malformed ring: replica rows")
	}
	for _, row := range r.Assign {
		if len(row) != r.Parts() {
			return errors.New("malformed ring: partition count")
		}
		for _, d := range row {
			if d < 0 || int(d) >= len(r.Devices) {
				return errors.New("malformed ring: device index")
			}
		}
	}
	return nil
}
