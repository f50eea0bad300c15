// Package standin holds small in-memory implementations of what compute
// needs of the image, network and block storage services (compute.Images,
// compute.Ports, compute.Volumes).
//
// They are TEMPORARY: the all-in-one uses them only until the image,
// network and blockstore packages land, when the host program wires
// adapters to those services instead. Tests use them as doubles. They keep
// everything in memory and persist nothing, do no real networking and
// serve no REST API.
package standin

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"sync"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
)

// Images is an in-memory compute.Images.
type Images struct {
	mu      sync.Mutex
	imgs    map[string]image
	pending map[string]image // created by compute, not uploaded yet
}

type image struct {
	info    compute.ImageInfo
	data    []byte
	project string // "" = public
}

var _ compute.Images = (*Images)(nil)

// NewImages returns an empty image registry.
func NewImages() *Images { return &Images{imgs: map[string]image{}, pending: map[string]image{}} }

// Add registers an image; project "" makes it public.
func (m *Images) Add(info compute.ImageInfo, data []byte, project string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if info.Size == 0 {
		info.Size = int64(len(data))
	}
	info.Properties = maps.Clone(info.Properties)
	m.imgs[info.ID] = image{info: info, data: bytes.Clone(data), project: project}
}

func (m *Images) get(project, id string) (image, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	im, ok := m.imgs[id]
	if !ok || (im.project != "" && im.project != project) {
		return image{}, fmt.Errorf("standin: image %s: %w", id, errdefs.ErrNotFound)
	}
	return im, nil
}

// GetImage implements compute.Images.
func (m *Images) GetImage(_ context.Context, project, id string) (*compute.ImageInfo, error) {
	im, err := m.get(project, id)
	if err != nil {
		return nil, err
	}
	info := im.info
	info.Properties = maps.Clone(info.Properties)
	return &info, nil
}

// OpenImage implements compute.Images.
func (m *Images) OpenImage(_ context.Context, project, id string) (io.ReadCloser, error) {
	im, err := m.get(project, id)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(im.data)), nil
}

// Network is a network of Ports with one IPv4 subnet.
type Network struct {
	ID, Name, CIDR, Gateway string
	// Project "" makes the network shared.
	Project string
}

// Ports is an in-memory compute.Ports with sequential IPv4 allocation.
type Ports struct {
	mu    sync.Mutex
	nets  map[string]*netState
	ports map[string]*compute.Port
	// FailCreate, if set, is asked before each CreatePort.
	FailCreate func(req compute.PortRequest) error
}

type netState struct {
	Network
	prefix netip.Prefix
	next   netip.Addr
	free   []netip.Addr
}

var _ compute.Ports = (*Ports)(nil)

// NewPorts returns a port service with no networks.
func NewPorts() *Ports {
	return &Ports{nets: map[string]*netState{}, ports: map[string]*compute.Port{}}
}

// AddNetwork adds a network whose addresses come from cidr (the first
// host address is the gateway).
func (p *Ports) AddNetwork(n Network) error {
	pfx, err := netip.ParsePrefix(n.CIDR)
	if err != nil || !pfx.Addr().Is4() {
		return errdefs.Invalid("cidr", "must be an IPv4 CIDR")
	}
	pfx = pfx.Masked()
	gw := pfx.Addr().Next()
	n.Gateway = gw.String()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nets[n.ID] = &netState{Network: n, prefix: pfx, next: gw.Next()}
	return nil
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func mac() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", b[0], b[1], b[2])
}

func (n *netState) alloc() (netip.Addr, error) {
	if len(n.free) > 0 {
		a := n.free[0]
		n.free = n.free[1:]
		return a, nil
	}
	a := n.next
	if !n.prefix.Contains(a) || !n.prefix.Contains(a.Next()) {
		return netip.Addr{}, fmt.Errorf("standin: no more addresses on network %s: %w", n.ID, errdefs.ErrConflict)
	}
	n.next = a.Next()
	return a, nil
}

// CreatePort implements compute.Ports.
func (p *Ports) CreatePort(_ context.Context, req compute.PortRequest) (*compute.Port, error) {
	if p.FailCreate != nil {
		if err := p.FailCreate(req); err != nil {
			return nil, err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if req.PortID != "" {
		pt, ok := p.ports[req.PortID]
		if !ok {
			return nil, fmt.Errorf("standin: port %s: %w", req.PortID, errdefs.ErrNotFound)
		}
		if pt.DeviceID != "" && pt.DeviceID != req.DeviceID {
			return nil, fmt.Errorf("standin: port %s is in use by %s: %w", req.PortID, pt.DeviceID, errdefs.ErrConflict)
		}
		pt.DeviceID = req.DeviceID
		c := *pt
		return &c, nil
	}
	n, ok := p.nets[req.NetworkID]
	if !ok || (n.Project != "" && n.Project != req.ProjectID) {
		return nil, fmt.Errorf("standin: network %s: %w", req.NetworkID, errdefs.ErrNotFound)
	}
	a, err := n.alloc()
	if err != nil {
		return nil, err
	}
	pt := &compute.Port{ID: uuid(), NetworkID: n.ID, NetworkName: n.Name, MAC: mac(), MTU: 1500, DeviceID: req.DeviceID, Created: true,
		FixedIPs: []compute.FixedIP{{SubnetID: n.ID + "-subnet", IPAddress: a.String(), Version: 4, CIDR: n.prefix.String(), Gateway: n.Gateway}}}
	p.ports[pt.ID] = pt
	c := *pt
	return &c, nil
}

// AddPort creates a free port on a network, as a user would before giving
// it to a server.
func (p *Ports) AddPort(ctx context.Context, project, networkID string) (*compute.Port, error) {
	pt, err := p.CreatePort(ctx, compute.PortRequest{ProjectID: project, NetworkID: networkID})
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.ports[pt.ID].Created = false
	p.mu.Unlock()
	pt.Created = false
	return pt, nil
}

// BindPort implements compute.Ports: no device, vif_type "fake".
func (p *Ports) BindPort(_ context.Context, id, host string) (*compute.Port, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pt, ok := p.ports[id]
	if !ok {
		return nil, fmt.Errorf("standin: port %s: %w", id, errdefs.ErrNotFound)
	}
	pt.Host, pt.VIFType, pt.VIFDetails = host, "fake", map[string]string{}
	c := *pt
	return &c, nil
}

// UnbindPort implements compute.Ports.
func (p *Ports) UnbindPort(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pt, ok := p.ports[id]; ok {
		pt.Host, pt.VIFType, pt.VIFDetails = "", "", nil
	}
	return nil
}

// DeletePort implements compute.Ports.
func (p *Ports) DeletePort(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	pt, ok := p.ports[id]
	if !ok {
		return nil
	}
	delete(p.ports, id)
	if n, ok := p.nets[pt.NetworkID]; ok {
		for _, f := range pt.FixedIPs {
			if a, err := netip.ParseAddr(f.IPAddress); err == nil {
				n.free = append(n.free, a)
			}
		}
	}
	return nil
}

// ReleasePort implements compute.Ports.
func (p *Ports) ReleasePort(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pt, ok := p.ports[id]; ok {
		pt.DeviceID, pt.Host, pt.VIFType, pt.VIFDetails = "", "", "", nil
	}
	return nil
}

// SetFloatingIPs associates floating addresses with the first fixed IP
// of a port, as the network service does when a floating IP is attached.
func (p *Ports) SetFloatingIPs(id string, floating ...string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	pt, ok := p.ports[id]
	if !ok || len(pt.FixedIPs) == 0 {
		return fmt.Errorf("standin: port %s: %w", id, errdefs.ErrNotFound)
	}
	pt.FixedIPs = slices.Clone(pt.FixedIPs)
	pt.FixedIPs[0].FloatingIPs = slices.Clone(floating)
	return nil
}

// ListPorts implements compute.Ports.
func (p *Ports) ListPorts(_ context.Context, deviceID string) ([]compute.Port, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []compute.Port
	for _, pt := range p.ports {
		if pt.DeviceID == deviceID && deviceID != "" {
			out = append(out, *pt)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Count returns how many ports exist and how many are owned by a device.
func (p *Ports) Count() (total, owned int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pt := range p.ports {
		total++
		if pt.DeviceID != "" {
			owned++
		}
	}
	return total, owned
}

// Volumes is an in-memory compute.Volumes following Cinder's attachment
// flow; connections are of driver_volume_type "file".
type Volumes struct {
	mu   sync.Mutex
	vols map[string]*vol
	atts map[string]*compute.Attachment
	Dir  string // where the "file" connections point; default /var/lib/stratus/volumes
}

type vol struct {
	compute.Volume
	project string
}

var (
	_ compute.Volumes       = (*Volumes)(nil)
	_ compute.VolumeDeleter = (*Volumes)(nil)
)

// NewVolumes returns a volume service with no volumes.
func NewVolumes() *Volumes {
	return &Volumes{vols: map[string]*vol{}, atts: map[string]*compute.Attachment{}, Dir: "/var/lib/stratus/volumes"}
}

// AddVolume creates an available volume of project.
func (v *Volumes) AddVolume(project string, sizeGB int) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	id := uuid()
	v.vols[id] = &vol{Volume: compute.Volume{ID: id, SizeGB: sizeGB, Status: "available", Bootable: true}, project: project}
	return id
}

// Status returns a volume's status.
func (v *Volumes) Status(id string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if x, ok := v.vols[id]; ok {
		return x.Status
	}
	return ""
}

// Attachments returns how many attachments exist.
func (v *Volumes) Attachments() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.atts)
}

// GetVolume implements compute.Volumes.
func (v *Volumes) GetVolume(_ context.Context, project, id string) (*compute.Volume, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	x, ok := v.vols[id]
	if !ok || x.project != project {
		return nil, fmt.Errorf("standin: volume %s: %w", id, errdefs.ErrNotFound)
	}
	c := x.Volume
	return &c, nil
}

// ReserveAttachment implements compute.Volumes.
func (v *Volumes) ReserveAttachment(_ context.Context, project, volumeID, serverID string) (*compute.Attachment, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	x, ok := v.vols[volumeID]
	if !ok || x.project != project {
		return nil, fmt.Errorf("standin: volume %s: %w", volumeID, errdefs.ErrNotFound)
	}
	for _, a := range v.atts {
		if a.VolumeID == volumeID {
			if a.ServerID == serverID {
				c := *a
				return &c, nil
			}
			return nil, fmt.Errorf("standin: volume %s is attached to %s: %w", volumeID, a.ServerID, errdefs.ErrConflict)
		}
	}
	a := &compute.Attachment{ID: uuid(), VolumeID: volumeID, ServerID: serverID}
	v.atts[a.ID] = a
	x.Status = "reserved"
	c := *a
	return &c, nil
}

// ConnectAttachment implements compute.Volumes.
func (v *Volumes) ConnectAttachment(_ context.Context, id string, conn compute.HostConnector) (*compute.Attachment, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	a, ok := v.atts[id]
	if !ok {
		return nil, fmt.Errorf("standin: attachment %s: %w", id, errdefs.ErrNotFound)
	}
	if conn.Host == "" {
		return nil, errdefs.Invalid("connector.host", "is required")
	}
	a.Connection = &compute.ConnectionInfo{DriverVolumeType: "file", File: &compute.FileConnection{Path: v.Dir + "/volume-" + a.VolumeID, Format: "raw"}}
	v.vols[a.VolumeID].Status = "attaching"
	c := *a
	return &c, nil
}

// CompleteAttachment implements compute.Volumes.
func (v *Volumes) CompleteAttachment(_ context.Context, id string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	a, ok := v.atts[id]
	if !ok {
		return fmt.Errorf("standin: attachment %s: %w", id, errdefs.ErrNotFound)
	}
	v.vols[a.VolumeID].Status = "in-use"
	return nil
}

// DeleteAttachment implements compute.Volumes.
func (v *Volumes) DeleteAttachment(_ context.Context, id string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	a, ok := v.atts[id]
	if !ok {
		return nil
	}
	delete(v.atts, id)
	if x, ok := v.vols[a.VolumeID]; ok {
		x.Status = "available"
	}
	return nil
}

// DeleteVolume implements compute.VolumeDeleter: an attached volume is
// refused, an absent one is nil.
func (v *Volumes) DeleteVolume(_ context.Context, project, id string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	x, ok := v.vols[id]
	if !ok || x.project != project {
		return nil
	}
	for _, a := range v.atts {
		if a.VolumeID == id {
			return fmt.Errorf("standin: volume %s is attached: %w", id, errdefs.ErrConflict)
		}
	}
	delete(v.vols, id)
	return nil
}

// Networks returns the networks' ids, sorted.
func (p *Ports) Networks() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Sorted(maps.Keys(p.nets))
}
