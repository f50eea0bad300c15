package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/compute/fakevm"
	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/image"
	"github.com/stratuskit/stratus/store"
)

// computePort is Nova's conventional port.
const computePort = 8774

// computeComponent builds the compute service with its hosts: with
// -hypervisor fake, -fake-hosts fake hypervisors named host1, host2 ...;
// otherwise one host, host1, on libvirt (or on the fake when -hypervisor
// auto finds no libvirt). Servers boot from the image service, on ports of
// the network service, with volumes of the block storage service.
func computeComponent(cfg Config, st *store.Store, tokens identity.TokenValidator, hosts *hostDrivers, deps compute.Deps, logger *slog.Logger) (component, *compute.Service, error) {
	switch cfg.Hypervisor {
	case hypervisorFake:
		if cfg.FakeHosts < 1 || cfg.FakeHosts > 1000 {
			return component{}, nil, fmt.Errorf("-fake-hosts %d: must be between 1 and 1000", cfg.FakeHosts)
		}
	case hypervisorLibvirt, hypervisorAuto:
	default:
		return component{}, nil, fmt.Errorf("-hypervisor %q: want auto, libvirt or fake", cfg.Hypervisor)
	}
	svc, err := compute.New(compute.Config{Store: st, Logger: logger, ResizeConfirmWindow: cfg.ResizeConfirmWindow})
	if err != nil {
		return component{}, nil, err
	}
	svc.Use(deps)
	var hv compute.Hypervisor
	start := func(ctx context.Context) error {
		if cfg.Hypervisor == hypervisorFake {
			for i := range cfg.FakeHosts {
				name := fmt.Sprintf("host%d", i+1)
				d := fakevm.New(&fakevm.Options{Name: name, PerOp: fakeDelays(cfg), StateFile: filepath.Join(cfg.DataDir, "fakevm-"+name+".json")})
				if _, err := svc.AddHost(ctx, compute.HostOpts{Name: name}, d); err != nil {
					return err
				}
				hosts.add(name, d)
			}
			return svc.Start(ctx)
		}
		var err error
		if hv, err = newHypervisor(ctx, cfg, logger); err != nil {
			return err
		}
		if _, err := svc.AddHost(ctx, compute.HostOpts{Name: "host1"}, hv); err != nil {
			return err
		}
		hosts.add("host1", hv)
		return svc.Start(ctx)
	}
	closeAll := func() error {
		err := svc.Close()
		if hv != nil {
			err = errors.Join(err, hv.Close())
		}
		return err
	}
	return component{name: "compute", port: computePort, handler: compute.NewHandler(svc, tokens, logger), start: start, close: closeAll}, svc, nil
}

// computeImages is compute's view of the image service: compute asks on
// behalf of the server's project.
type computeImages struct{ svc *image.Service }

func (a computeImages) as(ctx context.Context, project string) context.Context {
	return identity.WithCredentials(ctx, &identity.Credentials{UserID: "compute", ProjectID: project, Roles: []string{"member", "reader"}})
}

// GetImage implements compute.Images.
func (a computeImages) GetImage(ctx context.Context, project, id string) (*compute.ImageInfo, error) {
	img, err := a.svc.GetImage(a.as(ctx, project), id)
	if err != nil {
		return nil, err
	}
	if img.Status != image.StatusActive {
		return nil, fmt.Errorf("image %s is %s, not active: %w", id, img.Status, errdefs.ErrConflict)
	}
	info := &compute.ImageInfo{ID: img.ID, Name: img.Name, DiskFormat: img.DiskFormat, Checksum: img.Checksum,
		KernelID: img.KernelID(), RamdiskID: img.RamdiskID(), MinDiskGB: int(img.MinDisk), MinRAMMB: int(img.MinRAM),
		Properties: maps.Clone(img.Properties)}
	if img.HashAlgo == "sha512" && img.HashValue != "" {
		info.Checksum = img.HashValue
	}
	if img.Size != nil {
		info.Size = *img.Size
	}
	return info, nil
}

// OpenImage implements compute.Images.
func (a computeImages) OpenImage(ctx context.Context, project, id string) (io.ReadCloser, error) {
	_, rc, err := a.svc.OpenData(a.as(ctx, project), id, 0, -1)
	return rc, err
}
