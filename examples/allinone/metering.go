package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/stratuskit/stratus/alarming"
	"github.com/stratuskit/stratus/blockstore"
	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/image"
	"github.com/stratuskit/stratus/internal/httpapi"
	"github.com/stratuskit/stratus/metering"
	"github.com/stratuskit/stratus/metering/tsdb"
	"github.com/stratuskit/stratus/network"
	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/rating"
	"github.com/stratuskit/stratus/store"
)

// meteringPort is Gnocchi's conventional port.
const meteringPort = 8777

// MeteringOptions configure metering in the all-in-one.
type MeteringOptions struct {
	// Interval is how often the pollsters sample; default 5 minutes.
	Interval time.Duration
	// MetricsListen is the Prometheus listener's address (no token; keep
	// it on loopback); empty: none; "auto": port 9180 on -listen's address
	// when that is a loopback address, else on 127.0.0.1. Its port moves
	// with -port-offset.
	MetricsListen string
	// Clock is the metering clock (tests); default time.Now.
	Clock func() time.Time
}

func meteringFlags(fs *flag.FlagSet, o *MeteringOptions) {
	fs.DurationVar(&o.Interval, "metering-interval", 5*time.Minute, "how often metering polls servers, volumes, images, object-store accounts and floating IPs")
	fs.StringVar(&o.MetricsListen, "metrics-listen", "auto", "address of the Prometheus /metrics listener (no token: keep it on loopback); auto: port 9180 on -listen's address if it is loopback, else on 127.0.0.1; empty: none")
}

// meteringCatalog is metering's catalog entry (Gnocchi's: clients append
// v1/).
func meteringCatalog(cfg Config) identity.ServiceEndpoints {
	return identity.ServiceEndpoints{Type: "metric", Name: "gnocchi", PublicURL: serviceURL(cfg, meteringPort, "")}
}

// meteringSources are the services metering samples.
type meteringSources struct {
	compute *compute.Service
	hosts   *hostDrivers
	volumes *blockstore.Service
	images  *image.Service
	objects *objectstore.Service
	ident   *identity.Service
	network *network.Service
}

// meteringComponent builds metering: its measures in DATA/metering (a
// time-series store of its own), the Gnocchi API, and the Prometheus
// listener started and stopped with it.
func meteringComponent(cfg Config, st *store.Store, tokens identity.TokenValidator, src meteringSources, adminPassword string, logger *slog.Logger) (component, *metering.Service, *alarming.Service, error) {
	db, err := tsdb.Open(filepath.Join(cfg.DataDir, "metering"), &tsdb.Options{Logger: logger})
	if err != nil {
		return component{}, nil, nil, err
	}
	svc, err := metering.New(metering.Config{Store: st, DB: db, Clock: cfg.Metering.Clock, PollInterval: cfg.Metering.Interval, Logger: logger})
	if err != nil {
		db.Close()
		return component{}, nil, nil, err
	}
	alarms, err := newAlarming(cfg, st, svc, src.ident, adminPassword, logger)
	if err != nil {
		db.Close()
		return component{}, nil, nil, err
	}
	book, err := loadPrices(cfg.Alarming.Prices)
	if err != nil {
		db.Close()
		return component{}, nil, nil, err
	}
	rater, err := rating.New(rating.Config{Usage: svc, Flavors: ratingFlavors{src.compute}, Prices: book, Clock: cfg.Metering.Clock})
	if err != nil {
		db.Close()
		return component{}, nil, nil, err
	}
	svc.Use(metering.Sources{Instances: meterInstances(src), Volumes: meterVolumes(src), Images: meterImages(src),
		Accounts: meterAccounts(src), FloatingIPs: meterFIPs(src)})
	var prom *http.Server
	var promWG sync.WaitGroup
	start := func(ctx context.Context) error {
		if err := svc.Start(ctx); err != nil {
			return err
		}
		if err := alarms.Start(ctx); err != nil {
			return err
		}
		addr, err := offsetAddr(metricsAddr(cfg), cfg.PortOffset)
		if err != nil || addr == "" {
			return err
		}
		ln, err := httpapi.Listen(addr)
		if err != nil {
			return fmt.Errorf("prometheus listener: %w", err)
		}
		prom = &http.Server{Handler: metering.NewPrometheusHandler(svc, logger), ReadHeaderTimeout: 10 * time.Second}
		promWG.Go(func() { _ = prom.Serve(ln) })
		logger.Info("prometheus metrics", "url", "http://"+ln.Addr().String()+"/metrics")
		return nil
	}
	closeAll := func() error {
		var err error
		if prom != nil {
			err = prom.Close()
			promWG.Wait()
		}
		return errors.Join(err, alarms.Close(), svc.Close(), db.Close())
	}
	return component{name: "metering", port: meteringPort, handler: meteringMux(metering.NewHandler(svc, tokens, logger), alarming.NewHandler(alarms, tokens, logger),
		rating.NewHandler(rater, tokens, logger)), start: start, close: closeAll}, svc, alarms, nil
}

// metricsAddr resolves -metrics-listen's "auto".
func metricsAddr(cfg Config) string {
	if cfg.Metering.MetricsListen != "auto" {
		return cfg.Metering.MetricsListen
	}
	if ip := net.ParseIP(cfg.Listen); ip != nil && ip.IsLoopback() {
		return net.JoinHostPort(cfg.Listen, "9180")
	}
	return "127.0.0.1:9180"
}

// offsetAddr adds the port offset to addr's port.
func offsetAddr(addr string, offset int) (string, error) {
	if addr == "" || offset == 0 {
		return addr, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("-metrics-listen: %w", err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", fmt.Errorf("-metrics-listen: port %q", port)
	}
	return net.JoinHostPort(host, strconv.Itoa(p+offset)), nil
}

// hostDrivers are the compute hosts' drivers, by host name, so that
// metering reads their domains' counters.
type hostDrivers struct {
	mu sync.Mutex
	m  map[string]compute.Hypervisor
}

func (h *hostDrivers) add(name string, d compute.Hypervisor) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]compute.Hypervisor{}
	}
	h.m[name] = d
}

func (h *hostDrivers) all() map[string]compute.Hypervisor {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]compute.Hypervisor, len(h.m))
	for k, v := range h.m {
		out[k] = v
	}
	return out
}

// system is the credentials metering's sources ask with: they read every
// project.
func system(ctx context.Context) context.Context {
	return identity.WithCredentials(ctx, identity.SystemAdmin())
}

type sourceFunc[T any] func(ctx context.Context) ([]T, error)

type instancesFunc sourceFunc[metering.InstanceUsage]

func (f instancesFunc) Instances(ctx context.Context) ([]metering.InstanceUsage, error) {
	return f(ctx)
}

type volumesFunc sourceFunc[metering.VolumeUsage]

func (f volumesFunc) Volumes(ctx context.Context) ([]metering.VolumeUsage, error) { return f(ctx) }

type imagesFunc sourceFunc[metering.ImageUsage]

func (f imagesFunc) Images(ctx context.Context) ([]metering.ImageUsage, error) { return f(ctx) }

type accountsFunc sourceFunc[metering.AccountUsage]

func (f accountsFunc) Accounts(ctx context.Context) ([]metering.AccountUsage, error) { return f(ctx) }

type fipsFunc sourceFunc[metering.FloatingIPUsage]

func (f fipsFunc) FloatingIPs(ctx context.Context) ([]metering.FloatingIPUsage, error) { return f(ctx) }

// meterInstances lists the servers that are not deleted, with the
// counters of the hosts' drivers that measure them (libvirt).
func meterInstances(src meteringSources) metering.Instances {
	return instancesFunc(func(ctx context.Context) ([]metering.InstanceUsage, error) {
		srvs, err := src.compute.ListServers(system(ctx), compute.ListServersOpts{AllProjects: true})
		if err != nil {
			return nil, err
		}
		counters := map[string]*metering.InstanceCounters{}
		// A host that cannot be measured costs its servers' counters, not
		// the other samples.
		var errs []error
		for name, d := range src.hosts.all() {
			r, ok := d.(compute.DomainStatsReader)
			if !ok {
				continue
			}
			stats, err := r.DomainStats(ctx)
			if err != nil {
				errs = append(errs, fmt.Errorf("host %s: %w", name, err))
				continue
			}
			for _, s := range stats {
				c := &metering.InstanceCounters{CPUTime: s.CPUTime, MemoryUsageMB: s.MemoryMB}
				for _, d := range s.Disks {
					c.Disks = append(c.Disks, metering.DiskCounters{Device: d.Device, ReadBytes: d.ReadBytes, WriteBytes: d.WriteBytes,
						ReadRequests: d.ReadRequests, WriteRequests: d.WriteRequests})
				}
				for _, n := range s.NICs {
					c.NICs = append(c.NICs, metering.NICCounters{Device: n.Device, PortID: n.PortID, RxBytes: n.RxBytes, TxBytes: n.TxBytes,
						RxPackets: n.RxPackets, TxPackets: n.TxPackets})
				}
				counters[s.ServerID] = c
			}
		}
		var out []metering.InstanceUsage
		for _, s := range srvs {
			if s.VMState == compute.VMDeleted || s.VMState == compute.VMBuilding || s.VMState == compute.VMError {
				continue
			}
			out = append(out, metering.InstanceUsage{ID: s.ID, ProjectID: s.ProjectID, UserID: s.UserID, Name: s.Name,
				FlavorID: s.Flavor.ID, FlavorName: s.Flavor.Name, Host: s.HostID, Image: s.ImageID, Status: string(s.VMState),
				ServerGroup: s.Metadata["metering.server_group"],
				VCPUs:       s.Flavor.VCPUs, MemoryMB: s.Flavor.RAMMB, Counters: counters[s.ID]})
		}
		return out, errors.Join(errs...)
	})
}

func meterVolumes(src meteringSources) metering.Volumes {
	return volumesFunc(func(ctx context.Context) ([]metering.VolumeUsage, error) {
		vs, err := src.volumes.ListVolumes(system(ctx), blockstore.ListVolumesOpts{AllTenants: true})
		if err != nil {
			return nil, err
		}
		var out []metering.VolumeUsage
		for _, v := range vs {
			out = append(out, metering.VolumeUsage{ID: v.ID, ProjectID: v.ProjectID, UserID: v.UserID, Name: v.Name,
				Type: v.TypeID, Status: string(v.Status), SizeGB: v.SizeGiB})
		}
		return out, nil
	})
}

func meterImages(src meteringSources) metering.Images {
	return imagesFunc(func(ctx context.Context) ([]metering.ImageUsage, error) {
		is, _, err := src.images.ListImages(system(ctx), image.ListImagesOpts{Visibility: "all"})
		if err != nil {
			return nil, err
		}
		var out []metering.ImageUsage
		for _, im := range is {
			if im.Size == nil {
				continue
			}
			out = append(out, metering.ImageUsage{ID: im.ID, ProjectID: im.Owner, Name: im.Name,
				ContainerFormat: im.ContainerFormat, DiskFormat: im.DiskFormat, Size: *im.Size})
		}
		return out, nil
	})
}

// meterAccounts reads the object-store account of every project.
func meterAccounts(src meteringSources) metering.Accounts {
	return accountsFunc(func(ctx context.Context) ([]metering.AccountUsage, error) {
		ps, err := src.ident.ListProjects(system(ctx), identity.ListProjectsOpts{})
		if err != nil {
			return nil, err
		}
		var out []metering.AccountUsage
		for _, p := range ps {
			a, err := src.objects.GetAccount(system(ctx), "AUTH_"+p.ID)
			if err != nil {
				return nil, err
			}
			if a.Containers > 0 {
				out = append(out, metering.AccountUsage{ProjectID: p.ID, Objects: a.Objects, Bytes: a.Bytes})
			}
		}
		return out, nil
	})
}

func meterFIPs(src meteringSources) metering.FloatingIPs {
	return fipsFunc(func(ctx context.Context) ([]metering.FloatingIPUsage, error) {
		fs, err := src.network.ListFloatingIPs(system(ctx), network.ListOpts{})
		if err != nil {
			return nil, err
		}
		var out []metering.FloatingIPUsage
		for _, f := range fs {
			out = append(out, metering.FloatingIPUsage{ID: f.ID, ProjectID: f.ProjectID, Address: f.FloatingIPAddress, PortID: f.PortID})
		}
		return out, nil
	})
}
