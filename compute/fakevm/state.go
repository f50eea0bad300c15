package fakevm

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/stratuskit/stratus/compute"
)

// savedDomain is a domain as the state file keeps it (the spec without
// its image opener).
type savedDomain struct {
	ServerID, Name, ProjectID string
	VCPUs, MemoryMB, RootGB   int
	Image                     *compute.ImageInfo `json:",omitempty"`
	NICs                      []compute.NIC
	Volumes                   []compute.DiskAttachment
	Power                     compute.PowerState
	Console                   []string
}

// persist writes the Stratus domains to Options.StateFile (write to a
// temporary file, fsync, rename), when one is set. Errors are ignored: the
// file is a convenience of the fake, not a durability promise.
func (d *Driver) persist() {
	if d.opts.StateFile == "" {
		return
	}
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	d.mu.Lock()
	out := make([]savedDomain, 0, len(d.doms))
	for id, dm := range d.doms {
		if !dm.stratus {
			continue
		}
		sd := savedDomain{ServerID: id, Name: dm.spec.Name, ProjectID: dm.spec.ProjectID, VCPUs: dm.spec.VCPUs,
			MemoryMB: dm.spec.MemoryMB, RootGB: dm.spec.RootGB, Image: dm.spec.Image, Power: dm.power}
		for _, n := range dm.nics {
			sd.NICs = append(sd.NICs, n)
		}
		for _, v := range dm.volumes {
			sd.Volumes = append(sd.Volumes, v)
		}
		sd.Console = append(sd.Console, dm.console[max(0, len(dm.console)-50):]...)
		out = append(out, sd)
	}
	d.mu.Unlock()
	b, err := json.Marshal(out)
	if err != nil {
		return
	}
	tmp := d.opts.StateFile + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	_, werr := f.Write(b)
	serr := f.Sync()
	if cerr := f.Close(); werr != nil || serr != nil || cerr != nil {
		return
	}
	_ = os.Rename(tmp, d.opts.StateFile)
	if dir, err := os.Open(filepath.Dir(d.opts.StateFile)); err == nil {
		_ = dir.Sync()
		_ = dir.Close()
	}
}

// load reads Options.StateFile, if there is one.
func (d *Driver) load() {
	if d.opts.StateFile == "" {
		return
	}
	b, err := os.ReadFile(d.opts.StateFile)
	if err != nil {
		return
	}
	var in []savedDomain
	if json.Unmarshal(b, &in) != nil {
		return
	}
	for _, sd := range in {
		dm := &domain{spec: compute.DomainSpec{ServerID: sd.ServerID, Name: sd.Name, ProjectID: sd.ProjectID, VCPUs: sd.VCPUs,
			MemoryMB: sd.MemoryMB, RootGB: sd.RootGB, Image: sd.Image, NICs: sd.NICs, Volumes: sd.Volumes},
			power: sd.Power, stratus: true, name: "stratus-" + sd.ServerID, console: sd.Console,
			volumes: map[string]compute.DiskAttachment{}, nics: map[string]compute.NIC{}}
		for _, n := range sd.NICs {
			dm.nics[n.PortID] = n
		}
		for _, v := range sd.Volumes {
			dm.volumes[v.VolumeID] = v
		}
		d.doms[sd.ServerID] = dm
	}
}
