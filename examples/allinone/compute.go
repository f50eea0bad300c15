package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/compute/fakevm"
	"github.com/stratuskit/stratus/compute/standin"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// computePort is Nova's conventional port.
const computePort = 8774

// Until the image, network and blockstore services land, the all-in-one
// gives compute the TEMPORARY in-memory stand-ins of compute/standin: one
// public image and one shared network, forgotten at exit. They are to be
// replaced by adapters to those services.
const (
	// StandinImageID is the id of the stand-in's one image, "cirros".
	StandinImageID = "5bcd9d6e-4cb8-4d1c-9a65-2d7c1f6f3a11"
	// StandinNetworkID is the id of the stand-in's one network, "private".
	StandinNetworkID = "0c6f8a4e-3f0b-4a8e-9d7c-1b2a3c4d5e6f"
)

// computeComponent builds the compute service with its hosts: -fake-hosts
// fake hypervisors named host1, host2 ...
// volumes is the block storage service as compute uses it; nil means the
// stand-in.
func computeComponent(cfg Config, st *store.Store, tokens identity.TokenValidator, logger *slog.Logger, volumes compute.Volumes) (component, error) {
	if cfg.Hypervisor != "fake" {
		return component{}, fmt.Errorf("-hypervisor %q: only \"fake\" exists until compute/libvirtvm lands", cfg.Hypervisor)
	}
	if cfg.FakeHosts < 1 || cfg.FakeHosts > 1000 {
		return component{}, fmt.Errorf("-fake-hosts %d: must be between 1 and 1000", cfg.FakeHosts)
	}
	svc, err := compute.New(compute.Config{Store: st, Logger: logger})
	if err != nil {
		return component{}, err
	}
	images := standin.NewImages()
	images.Add(compute.ImageInfo{ID: StandinImageID, Name: "cirros", DiskFormat: "qcow2"}, []byte("stand-in image"), "")
	ports := standin.NewPorts()
	if err := ports.AddNetwork(standin.Network{ID: StandinNetworkID, Name: "private", CIDR: "10.0.0.0/16"}); err != nil {
		return component{}, err
	}
	if volumes == nil {
		volumes = standin.NewVolumes()
	}
	svc.Use(compute.Deps{Images: images, Ports: ports, Volumes: volumes})
	start := func(ctx context.Context) error {
		for i := range cfg.FakeHosts {
			name := fmt.Sprintf("host%d", i+1)
			if _, err := svc.AddHost(ctx, compute.HostOpts{Name: name}, fakevm.New(&fakevm.Options{Name: name, PerOp: map[fakevm.Op]time.Duration{fakevm.OpSpawn: cfg.FakeSpawnDelay}})); err != nil {
				return err
			}
		}
		return svc.Start(ctx)
	}
	return component{name: "compute", port: computePort, handler: compute.NewHandler(svc, tokens, logger), start: start, close: svc.Close}, nil
}
