//go:build cgo

package libvirtvm

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
)

// MetadataNamespace is the XML namespace of Stratus's element in a
// domain's <metadata>.
const MetadataNamespace = "https://stratuskit.github.io/stratus/xmlns/libvirt/1"

// mark is Stratus's element in a domain's <metadata>: the domains that
// carry it are Stratus's, and only those are listed and swept. StateDir
// scopes them to one driver: several clouds (or tests) sharing a libvirtd
// each see only the domains whose files are in their own state directory.
type mark struct {
	XMLName   xml.Name `xml:"https://stratuskit.github.io/stratus/xmlns/libvirt/1 instance"`
	ServerID  string   `xml:"server"`
	ProjectID string   `xml:"project"`
	Name      string   `xml:"name"`
	Created   string   `xml:"created"`
	StateDir  string   `xml:"statedir"`
}

// markRead reads a mark back: libvirt returns the element without its
// namespace.
type markRead struct {
	XMLName   xml.Name `xml:"instance"`
	ServerID  string   `xml:"server"`
	ProjectID string   `xml:"project"`
	Name      string   `xml:"name"`
	Created   string   `xml:"created"`
	StateDir  string   `xml:"statedir"`
}

// readMark returns the mark of a domain of this driver.
func (d *Driver) readMark(dom *libvirt.Domain) (mark, bool) {
	s, err := dom.GetMetadata(libvirt.DOMAIN_METADATA_ELEMENT, MetadataNamespace, libvirt.DOMAIN_AFFECT_CURRENT)
	if err != nil || s == "" {
		return mark{}, false
	}
	var m markRead
	if err := xml.Unmarshal([]byte(s), &m); err != nil || m.ServerID == "" || m.StateDir != d.opts.StateDir {
		return mark{}, false
	}
	return mark{ServerID: m.ServerID, ProjectID: m.ProjectID, Name: m.Name, Created: m.Created, StateDir: m.StateDir}, true
}

// Spawn implements compute.Hypervisor: it prepares the server's disks,
// defines the domain and starts it. Spawning an existing domain makes sure
// it runs. A failed spawn removes what it made.
func (d *Driver) Spawn(ctx context.Context, spec *compute.DomainSpec) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	id := spec.ServerID
	if err := validID(id); err != nil {
		return err
	}
	if spec.VCPUs <= 0 || spec.MemoryMB <= 0 {
		return fmt.Errorf("libvirtvm: server %s: vcpus and memory must be positive: %w", id, errdefs.ErrInvalid)
	}
	unlock := d.locks.lock("server/" + id)
	defer unlock()
	if dom, err := d.lookup(id); err == nil {
		defer func() { _ = dom.Free() }()
		switch p, _ := powerOf(dom); p {
		case compute.PowerRunning:
			return nil
		case compute.PowerPaused:
			return classify(dom.Resume(), "libvirtvm: resume server %s", id)
		}
		return d.start(id, dom)
	} else if !errdefs.IsNotFound(err) {
		return err
	}

	var dom *libvirt.Domain
	defer func() {
		if err == nil {
			return
		}
		if dom != nil {
			_ = d.undefine(id, dom)
			_ = dom.Free()
		}
		_ = d.removeFiles(id)
	}()
	if err := os.MkdirAll(d.serverDir(id), 0o755); err != nil {
		return fmt.Errorf("libvirtvm: server %s: %w", id, err)
	}
	plan, err := d.prepare(ctx, spec)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	doc, err := d.domainXML(spec, plan)
	if err != nil {
		return err
	}
	dom, err = d.conn.DomainDefineXML(doc)
	if err != nil {
		return classify(err, "libvirtvm: define domain of server %s", id)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.start(id, dom); err != nil {
		return err
	}
	_ = dom.Free()
	return nil
}

// disk is one disk of a domain plan.
type disk struct {
	path     string
	format   string // raw or qcow2
	dev      string // vda ...
	readonly bool
	serial   string
	alias    string // user alias ("ua-..."), to find the disk again
	boot     uint   // boot order, 0 for none
}

// plan is what prepare made for a domain.
type plan struct {
	disks                   []disk
	kernel, initrd, cmdline string
	console                 string
}

// domainXML builds the domain definition of a server.
func (d *Driver) domainXML(spec *compute.DomainSpec, p *plan) (string, error) {
	m, err := xml.Marshal(mark{ServerID: spec.ServerID, ProjectID: spec.ProjectID, Name: spec.Name,
		Created: time.Now().UTC().Format(time.RFC3339), StateDir: d.opts.StateDir})
	if err != nil {
		return "", err
	}
	dom := &libvirtxml.Domain{
		Type:     d.virtType,
		Name:     domainName(spec.ServerID),
		UUID:     spec.ServerID,
		Title:    title(spec.Name),
		Metadata: &libvirtxml.DomainMetadata{XML: string(m)},
		Memory:   &libvirtxml.DomainMemory{Value: uint(spec.MemoryMB), Unit: "MiB"},
		VCPU:     &libvirtxml.DomainVCPU{Value: uint(spec.VCPUs)},
		OS: &libvirtxml.DomainOS{
			Type:    &libvirtxml.DomainOSType{Type: "hvm", Arch: "x86_64"},
			Kernel:  p.kernel,
			Initrd:  p.initrd,
			Cmdline: p.cmdline,
		},
		Features:   &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}},
		Clock:      &libvirtxml.DomainClock{Offset: "utc"},
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		Devices:    &libvirtxml.DomainDeviceList{},
	}
	if d.virtType == VirtKVM {
		dom.CPU = &libvirtxml.DomainCPU{Mode: "host-passthrough"}
	}
	for _, dk := range p.disks {
		dom.Devices.Disks = append(dom.Devices.Disks, diskXML(dk))
	}
	for _, n := range spec.NICs {
		iface, err := nicXML(n)
		if err != nil {
			return "", fmt.Errorf("libvirtvm: server %s: %w", spec.ServerID, err)
		}
		if iface != nil {
			dom.Devices.Interfaces = append(dom.Devices.Interfaces, *iface)
		}
	}
	port := uint(0)
	dom.Devices.Serials = []libvirtxml.DomainSerial{{
		Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
		Target: &libvirtxml.DomainSerialTarget{Port: &port},
		Log:    &libvirtxml.DomainChardevLog{File: p.console, Append: "on"},
	}}
	dom.Devices.Consoles = []libvirtxml.DomainConsole{{
		Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
		Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: &port},
	}}
	return dom.Marshal()
}

func diskXML(dk disk) libvirtxml.DomainDisk {
	x := libvirtxml.DomainDisk{
		Device: "disk",
		Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: dk.format},
		Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: dk.path}},
		Target: &libvirtxml.DomainDiskTarget{Dev: dk.dev, Bus: "virtio"},
		Serial: dk.serial,
	}
	if dk.readonly {
		x.ReadOnly = &libvirtxml.DomainDiskReadOnly{}
	}
	if dk.alias != "" {
		x.Alias = &libvirtxml.DomainAlias{Name: dk.alias}
	}
	if dk.boot > 0 {
		x.Boot = &libvirtxml.DomainDeviceBoot{Order: dk.boot}
	}
	return x
}

// nicXML is the interface of a NIC: type ethernet on the tap the network
// backend made (VIFType "tap"), nothing for VIFType "fake".
func nicXML(n compute.NIC) (*libvirtxml.DomainInterface, error) {
	switch n.VIFType {
	case "fake":
		return nil, nil
	case "tap":
	default:
		return nil, fmt.Errorf("port %s: vif_type %q is not supported by the libvirt driver: %w", n.PortID, n.VIFType, errdefs.ErrUnsupported)
	}
	tap := n.VIFDetails["tap_name"]
	if !validTap(tap) {
		return nil, fmt.Errorf("port %s: tap_name %q is not a valid device name: %w", n.PortID, tap, errdefs.ErrInvalid)
	}
	if !validMAC(n.MAC) {
		return nil, fmt.Errorf("port %s: mac %q is not valid: %w", n.PortID, n.MAC, errdefs.ErrInvalid)
	}
	iface := &libvirtxml.DomainInterface{
		Source: &libvirtxml.DomainInterfaceSource{Ethernet: &libvirtxml.DomainInterfaceSourceEthernet{}},
		MAC:    &libvirtxml.DomainInterfaceMAC{Address: strings.ToLower(n.MAC)},
		Target: &libvirtxml.DomainInterfaceTarget{Dev: tap, Managed: "no"},
		Model:  &libvirtxml.DomainInterfaceModel{Type: "virtio"},
		Alias:  &libvirtxml.DomainAlias{Name: portAlias(n.PortID)},
	}
	if n.MTU > 0 {
		iface.MTU = &libvirtxml.DomainInterfaceMTU{Size: uint(n.MTU)}
	}
	return iface, nil
}

// portAlias and volumeAlias are the user aliases ("ua-" prefix) that find
// a port's NIC and a volume's disk again.
func portAlias(portID string) string  { return "ua-port-" + aliasSafe(portID) }
func volumeAlias(volID string) string { return "ua-vol-" + aliasSafe(volID) }
func aliasSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_') {
			return r
		}
		return '_'
	}, s)
}

func validTap(s string) bool {
	if s == "" || len(s) > 15 {
		return false
	}
	for _, r := range s {
		if r > 127 || !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' && r != '_' && r != '.' {
			return false
		}
	}
	return true
}

func validMAC(s string) bool {
	if len(s) != 17 {
		return false
	}
	for i, r := range s {
		if i%3 == 2 {
			if r != ':' {
				return false
			}
		} else if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

// title makes a server name fit a libvirt title (one line).
func title(name string) string {
	t := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, name)
	if len(t) > 200 {
		t = t[:200]
		for !utf8.ValidString(t) {
			t = t[:len(t)-1]
		}
	}
	return t
}
