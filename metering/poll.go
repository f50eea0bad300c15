package metering

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sources are what the pollsters sample, each a small interface that the
// host implements over the service that knows (compute and its
// hypervisors, block storage, images, the object store, the network). A
// nil source is not polled.
type Sources struct {
	Instances   Instances
	Volumes     Volumes
	Images      Images
	Accounts    Accounts
	FloatingIPs FloatingIPs
}

// Instances lists the servers that exist now, with their counters where a
// hypervisor measured them.
type Instances interface {
	Instances(ctx context.Context) ([]InstanceUsage, error)
}

// InstanceUsage is one server as the pollster sees it.
type InstanceUsage struct {
	ID, ProjectID, UserID                   string
	Name, FlavorID, FlavorName, Host, Image string
	Status                                  string
	// ServerGroup is the server's metering.server_group metadata (Heat
	// sets it on an autoscaling group's servers), the resource's
	// server_group attribute that alarms query.
	ServerGroup     string
	VCPUs, MemoryMB int
	// Counters are the hypervisor's, nil when the server does not run or
	// its driver does not measure.
	Counters *InstanceCounters
}

// InstanceCounters are a running server's usage counters since its domain
// started (they restart from zero when it restarts).
type InstanceCounters struct {
	CPUTime time.Duration
	// MemoryUsageMB is the memory the guest uses; 0 when unknown.
	MemoryUsageMB int
	Disks         []DiskCounters
	NICs          []NICCounters
}

// DiskCounters are one disk's counters.
type DiskCounters struct {
	Device                                             string
	ReadBytes, WriteBytes, ReadRequests, WriteRequests int64
}

// NICCounters are one NIC's counters.
type NICCounters struct {
	Device, PortID                         string
	RxBytes, TxBytes, RxPackets, TxPackets int64
}

// Volumes lists the volumes that exist now.
type Volumes interface {
	Volumes(ctx context.Context) ([]VolumeUsage, error)
}

// VolumeUsage is one volume.
type VolumeUsage struct {
	ID, ProjectID, UserID, Name, Type, Status string
	SizeGB                                    int
}

// Images lists the images that exist now.
type Images interface {
	Images(ctx context.Context) ([]ImageUsage, error)
}

// ImageUsage is one image.
type ImageUsage struct {
	ID, ProjectID, Name, ContainerFormat, DiskFormat string
	Size                                             int64
}

// Accounts lists the object-store accounts' usage.
type Accounts interface {
	Accounts(ctx context.Context) ([]AccountUsage, error)
}

// AccountUsage is one project's object-store account.
type AccountUsage struct {
	ProjectID      string
	Objects, Bytes int64
}

// FloatingIPs lists the floating IPs allocated now.
type FloatingIPs interface {
	FloatingIPs(ctx context.Context) ([]FloatingIPUsage, error)
}

// FloatingIPUsage is one floating IP.
type FloatingIPUsage struct {
	ID, ProjectID, Address, PortID string
}

// Poll samples every source once, at the clock's time, and records the
// samples in one batch. A source that fails is reported in the error; the
// others are recorded.
func (s *Service) Poll(ctx context.Context) error {
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	s.mu.Lock()
	src := s.sources
	s.mu.Unlock()
	now := s.now()
	var samples []Sample
	var errs []error
	add := func(meter, resID, typ, project, user string, v float64, attrs map[string]string) {
		samples = append(samples, Sample{Meter: meter, ResourceID: resID, ResourceType: typ, ProjectID: project,
			UserID: user, Time: now, Value: v, Attributes: attrs})
	}
	if src.Instances != nil {
		is, err := src.Instances.Instances(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("instances: %w", err))
		}
		for _, in := range is {
			attrs := map[string]string{"display_name": in.Name, "flavor_id": in.FlavorID, "flavor_name": in.FlavorName,
				"host": in.Host, "image_ref": in.Image, "status": in.Status}
			if in.ServerGroup != "" {
				attrs["server_group"] = in.ServerGroup
			}
			add("instance", in.ID, TypeInstance, in.ProjectID, in.UserID, 1, attrs)
			add("vcpus", in.ID, TypeInstance, in.ProjectID, in.UserID, float64(in.VCPUs), nil)
			add("memory", in.ID, TypeInstance, in.ProjectID, in.UserID, float64(in.MemoryMB), nil)
			c := in.Counters
			if c == nil {
				continue
			}
			add("cpu", in.ID, TypeInstance, in.ProjectID, in.UserID, float64(c.CPUTime.Nanoseconds()), nil)
			if c.MemoryUsageMB > 0 {
				add("memory.usage", in.ID, TypeInstance, in.ProjectID, in.UserID, float64(c.MemoryUsageMB), nil)
			}
			for _, d := range c.Disks {
				id := in.ID + "-" + d.Device
				attrs := map[string]string{"name": d.Device, "instance_id": in.ID}
				add("disk.device.read.bytes", id, TypeDisk, in.ProjectID, in.UserID, float64(d.ReadBytes), attrs)
				add("disk.device.write.bytes", id, TypeDisk, in.ProjectID, in.UserID, float64(d.WriteBytes), nil)
				add("disk.device.read.requests", id, TypeDisk, in.ProjectID, in.UserID, float64(d.ReadRequests), nil)
				add("disk.device.write.requests", id, TypeDisk, in.ProjectID, in.UserID, float64(d.WriteRequests), nil)
			}
			for _, n := range c.NICs {
				id := in.ID + "-" + n.Device
				attrs := map[string]string{"name": n.Device, "instance_id": in.ID}
				add("network.incoming.bytes", id, TypeInterface, in.ProjectID, in.UserID, float64(n.RxBytes), attrs)
				add("network.outgoing.bytes", id, TypeInterface, in.ProjectID, in.UserID, float64(n.TxBytes), nil)
				add("network.incoming.packets", id, TypeInterface, in.ProjectID, in.UserID, float64(n.RxPackets), nil)
				add("network.outgoing.packets", id, TypeInterface, in.ProjectID, in.UserID, float64(n.TxPackets), nil)
			}
		}
	}
	if src.Volumes != nil {
		vs, err := src.Volumes.Volumes(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("volumes: %w", err))
		}
		for _, v := range vs {
			add("volume.size", v.ID, TypeVolume, v.ProjectID, v.UserID, float64(v.SizeGB),
				map[string]string{"display_name": v.Name, "volume_type": v.Type})
		}
	}
	if src.Images != nil {
		is, err := src.Images.Images(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("images: %w", err))
		}
		for _, im := range is {
			add("image.size", im.ID, TypeImage, im.ProjectID, "", float64(im.Size),
				map[string]string{"name": im.Name, "container_format": im.ContainerFormat, "disk_format": im.DiskFormat})
		}
	}
	if src.Accounts != nil {
		as, err := src.Accounts.Accounts(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("accounts: %w", err))
		}
		for _, a := range as {
			add("storage.objects", a.ProjectID, TypeAccount, a.ProjectID, "", float64(a.Objects), nil)
			add("storage.objects.size", a.ProjectID, TypeAccount, a.ProjectID, "", float64(a.Bytes), nil)
		}
	}
	if src.FloatingIPs != nil {
		fs, err := src.FloatingIPs.FloatingIPs(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("floating IPs: %w", err))
		}
		for _, f := range fs {
			add("ip.floating", f.ID, TypeNetwork, f.ProjectID, "", 1, map[string]string{"floating_ip_address": f.Address})
		}
	}
	if err := s.Record(ctx, samples); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("metering: poll: %w", err)
	}
	return nil
}
