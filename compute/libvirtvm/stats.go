//go:build cgo

package libvirtvm

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/stratuskit/stratus/compute"
)

// Stats implements compute.Hypervisor: the host's CPUs and memory as
// libvirt reports them, the state directory's file system for disk, and
// what the running Stratus domains use.
func (d *Driver) Stats(ctx context.Context) (*compute.HostStats, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ni, err := d.conn.GetNodeInfo()
	if err != nil {
		return nil, classify(err, "libvirtvm: node info")
	}
	st := &compute.HostStats{
		VCPUs:    int(ni.Cpus),
		MemoryMB: int(ni.Memory / 1024),
		CPUInfo: map[string]any{"arch": ni.Model, "mhz": ni.MHz, "topology": map[string]any{
			"sockets": ni.Sockets, "cores": ni.Cores, "threads": ni.Threads}},
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(d.opts.StateDir, &fs); err == nil {
		st.DiskGB = int(fs.Blocks * uint64(fs.Bsize) >> 30) //nolint:gosec // block size is positive
	}
	if b, err := os.ReadFile("/proc/uptime"); err == nil {
		if f, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64); err == nil {
			st.Uptime = time.Duration(f * float64(time.Second))
		}
	}
	doms, err := d.conn.ListAllDomains(libvirt.CONNECT_LIST_DOMAINS_ACTIVE)
	if err != nil {
		return nil, classify(err, "libvirtvm: list domains")
	}
	for i := range doms {
		dom := &doms[i]
		if _, ok := d.readMark(dom); ok {
			if info, err := dom.GetInfo(); err == nil {
				st.RunningVMs++
				st.VCPUsUsed += int(info.NrVirtCpu)
				st.MemoryUsed += int(info.MaxMem / 1024)
			}
		}
		_ = dom.Free()
	}
	return st, nil
}

// DomainStats implements compute.DomainStatsReader: CPU time, memory, and
// the counters of each disk and NIC of every running Stratus domain.
func (d *Driver) DomainStats(ctx context.Context) ([]compute.DomainStats, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	doms, err := d.conn.ListAllDomains(libvirt.CONNECT_LIST_DOMAINS_ACTIVE)
	if err != nil {
		return nil, classify(err, "libvirtvm: list domains")
	}
	var out []compute.DomainStats
	for i := range doms {
		dom := &doms[i]
		if s, ok := d.domainStats(dom); ok {
			out = append(out, s)
		}
		_ = dom.Free()
	}
	return out, nil
}

func (d *Driver) domainStats(dom *libvirt.Domain) (compute.DomainStats, bool) {
	m, ok := d.readMark(dom)
	if !ok {
		return compute.DomainStats{}, false
	}
	info, err := dom.GetInfo()
	if err != nil {
		return compute.DomainStats{}, false
	}
	s := compute.DomainStats{ServerID: m.ServerID, CPUTime: time.Duration(info.CpuTime), VCPUs: int(info.NrVirtCpu), MemoryMB: int(info.Memory / 1024)}
	def, err := domainDef(dom, 0)
	if err != nil || def.Devices == nil {
		return s, true
	}
	for _, x := range def.Devices.Disks {
		if x.Target == nil || x.Target.Dev == "" {
			continue
		}
		b, err := dom.BlockStats(x.Target.Dev)
		if err != nil {
			continue
		}
		s.Disks = append(s.Disks, compute.DiskStats{Device: x.Target.Dev, ReadBytes: b.RdBytes, WriteBytes: b.WrBytes,
			ReadRequests: b.RdReq, WriteRequests: b.WrReq})
	}
	for _, x := range def.Devices.Interfaces {
		if x.Target == nil || x.Target.Dev == "" {
			continue
		}
		n, err := dom.InterfaceStats(x.Target.Dev)
		if err != nil {
			continue
		}
		port := ""
		if x.Alias != nil {
			port = strings.TrimPrefix(x.Alias.Name, "ua-port-")
		}
		s.NICs = append(s.NICs, compute.NICStats{PortID: port, Device: x.Target.Dev, RxBytes: n.RxBytes, TxBytes: n.TxBytes,
			RxPackets: n.RxPackets, TxPackets: n.TxPackets, RxDropped: n.RxDrop, TxDropped: n.TxDrop})
	}
	return s, true
}
