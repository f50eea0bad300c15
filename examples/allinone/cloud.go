package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/stratuskit/stratus/alarming"
	"github.com/stratuskit/stratus/blockstore"
	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/image"
	"github.com/stratuskit/stratus/internal/httpapi"
	"github.com/stratuskit/stratus/metering"
	"github.com/stratuskit/stratus/network"
	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/orchestration"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/boltstore"
	"github.com/stratuskit/stratus/store/etcdstore"
)

// Config is the all-in-one cloud's configuration.
type Config struct {
	// DataDir holds the state file, the lock and admin-openrc.sh.
	DataDir string
	// Listen is the address every API listens on.
	Listen string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// Etcd, if set, lists the etcd endpoints that hold the state instead of
	// the bbolt file: every all-in-one given the same endpoints serves the
	// same cloud.
	Etcd []string
	// PortOffset is added to every conventional port, so that several
	// controllers can share one address.
	PortOffset int
	// Identity configures the identity service (security compliance, key
	// rotation).
	Identity IdentityOptions
	// ImageWebDownloadHosts are the hosts the image service's web-download
	// import may fetch from; none by default.
	ImageWebDownloadHosts []string
	// Hypervisor is the compute host's driver: auto (libvirt when
	// LibvirtURI answers, else the fake), libvirt or fake.
	Hypervisor string
	// LibvirtURI is libvirt's connection URI; default qemu:///system.
	LibvirtURI string
	// VirtType is libvirt's virtualisation type: auto (KVM when it works,
	// probed once at start with the tiny guest), kvm or qemu (TCG).
	VirtType string
	// GuestDir holds the tiny guest (make guest); when it is built, the
	// image service registers it at start as public images (stratus-tiny).
	GuestDir string
	// FakeHosts is how many fake compute hosts to run.
	FakeHosts int
	// FakeSpawnDelay is how long a fake host takes to spawn a server.
	FakeSpawnDelay time.Duration
	// FakeMoveDelay is how long a fake host takes to migrate, resize or
	// snapshot a server.
	FakeMoveDelay time.Duration
	// ResizeConfirmWindow confirms resizes left unconfirmed that long
	// (zero: never).
	ResizeConfirmWindow time.Duration
	// Network names the network dataplane: "fake" (the default).
	Network string
	// Objects chooses the object store's backend (image data follows it):
	// empty for fsobj in DATA/objects, fs:DIR[,DIR...] for fsobj in the
	// given directories (several: replicated across them), or s3://… for
	// an S3 bucket (see s3Objects).
	Objects string
	// Metering configures metering's pollsters and Prometheus listener.
	Metering MeteringOptions
	// Alarming configures alarm evaluation and webhooks.
	Alarming AlarmingOptions
}

// component is one service as the host runs it: its API on its port and
// its lifecycle. The handler is complete: the service's NewHandler wraps it
// with its own error family, request ids and access log.
type component struct {
	name    string
	port    int
	handler http.Handler
	// start and close are the service's Start and Close; either may be nil.
	start func(ctx context.Context) error
	close func() error
}

// cloudRecord identifies this cloud; it is created on first start and kept
// across restarts.
type cloudRecord struct {
	store.Meta
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	// AdminPassword is the generated password of the admin user, shared by
	// every controller of the cloud and written to admin-openrc.sh.
	AdminPassword string `json:"admin_password"`
}

func (c *cloudRecord) StoreKey() string { return "cloud" }

const cloudTable = "allinone.cloud"

func hostTables() []store.Table {
	return slices.Concat([]store.Table{{Name: cloudTable, New: func() store.Record { return new(cloudRecord) }}}, identity.Tables(), objectstore.Tables(), image.Tables(), network.Tables(), blockstore.Tables(), compute.Tables(), orchestration.Tables(), metering.Tables(), alarming.Tables())
}

// Run runs the cloud until ctx ends.
func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()

	backend, err := openBackend(ctx, cfg, logger)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, backend, hostTables(), &store.Options{Logger: logger})
	if err != nil {
		return err
	}
	defer st.Close()
	cloud, err := ensureCloud(ctx, st)
	if err != nil {
		return err
	}

	comps, err := buildComponents(cfg, st, cloud, logger)
	if err != nil {
		return err
	}
	for _, c := range comps {
		if c.start == nil {
			continue
		}
		if err := c.start(ctx); err != nil {
			closeAll(comps, logger)
			return fmt.Errorf("%s: start: %w", c.name, err)
		}
	}
	defer closeAll(comps, logger)

	// Open every listener before serving any, so that a taken port fails
	// the start cleanly, naming the port.
	lns := make([]net.Listener, len(comps))
	for i, c := range comps {
		ln, err := httpapi.Listen(net.JoinHostPort(cfg.Listen, strconv.Itoa(c.port+cfg.PortOffset)))
		if err != nil {
			for _, l := range lns[:i] {
				l.Close()
			}
			return fmt.Errorf("%s API: %w", c.name, err)
		}
		lns[i] = ln
	}

	srvCtx, stopServers := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, len(comps))
	for i, c := range comps {
		wg.Go(func() {
			if err := httpapi.Serve(srvCtx, lns[i], c.handler, logger); err != nil {
				errs <- fmt.Errorf("%s API: %w", c.name, err)
			}
		})
	}
	shutdown := func() {
		stopServers()
		wg.Wait()
	}

	if err := waitReady(ctx, comps, lns); err != nil {
		shutdown()
		return err
	}
	var names []string
	for i, c := range comps {
		names = append(names, fmt.Sprintf("%s=http://%s", c.name, lns[i].Addr()))
	}
	fmt.Fprintf(stdout, "stratus: ready cloud=%s data=%s services=%d %s\n", cloud.ID, cfg.DataDir, len(comps), strings.Join(names, " "))

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	logger.Info("shutting down")
	shutdown()
	if runErr == nil {
		fmt.Fprintln(stdout, "stratus: stopped")
	}
	return runErr
}

// buildComponents makes every service that exists, wired together.
func buildComponents(cfg Config, st *store.Store, cloud *cloudRecord, logger *slog.Logger) ([]component, error) {
	b, err := buildCloud(cfg, st, cloud, logger)
	if err != nil {
		return nil, err
	}
	return b.comps, nil
}

// builtCloud is the components and the services behind them (for
// in-process tests).
type builtCloud struct {
	comps    []component
	identity *identity.Service
	compute  *compute.Service
	volumes  *blockstore.Service
	images   *image.Service
	objects  *objectstore.Service
	metering *metering.Service
	alarms   *alarming.Service
	heat     *orchestration.Service
}

// buildCloud makes every service that exists, wired together.
func buildCloud(cfg Config, st *store.Store, cloud *cloudRecord, logger *slog.Logger) (*builtCloud, error) {
	// The catalog lists only the services that run here.
	catalog := []identity.ServiceEndpoints{
		{Type: "identity", Name: "keystone", PublicURL: serviceURL(cfg, identityPort, "/v3")},
		objectStoreCatalog(cfg),
		imageCatalog(cfg),
		{Type: "compute", Name: "nova", PublicURL: serviceURL(cfg, computePort, "/v2.1")},
		networkCatalog(cfg),
		orchestrationCatalog(cfg),
		meteringCatalog(cfg),
		alarmingCatalog(cfg),
	}
	catalog = append(catalog, blockStoreCatalog(cfg)...)
	ident, identSvc, err := identityComponent(cfg, st, cloud.AdminPassword, logger, catalog)
	if err != nil {
		return nil, err
	}
	objects, objSvc, objectBackend, err := objectStoreComponent(cfg, st, identSvc, logger)
	if err != nil {
		return nil, err
	}
	img, imgSvc, err := imageComponent(cfg, st, identSvc, objectBackend, logger)
	if err != nil {
		return nil, err
	}
	img.start = startWithGuest(img.start, cfg, imgSvc, identSvc, logger)
	md := &guestMetadata{log: logger}
	netw, netSvc, err := networkComponent(cfg, st, identSvc, md, logger)
	if err != nil {
		return nil, err
	}
	volumes, volSvc, err := blockStoreComponent(cfg, st, identSvc, imgSvc, objectBackend, logger)
	if err != nil {
		return nil, err
	}
	hosts := &hostDrivers{}
	comp, compSvc, err := computeComponent(cfg, st, identSvc, hosts, compute.Deps{
		Images:  computeImages{imgSvc},
		Ports:   computePorts{svc: netSvc, noDevices: cfg.Network == "fake"},
		Volumes: computeVolumes{volSvc},
	}, logger)
	if err != nil {
		return nil, err
	}
	netSvc.Use(network.Deps{Devices: computeDevices{compSvc}, Notify: computeDevices{compSvc}})
	md.use(netSvc, compSvc)
	heat, heatSvc, err := orchestrationComponent(cfg, st, identSvc, heatServices{adminPassword: cloud.AdminPassword, cfg: cfg, compute: compSvc, network: netSvc,
		volumes: volSvc, images: imgSvc, objects: objSvc}, logger)
	if err != nil {
		return nil, err
	}
	meter, meterSvc, alarmSvc, err := meteringComponent(cfg, st, identSvc, meteringSources{compute: compSvc, hosts: hosts, volumes: volSvc,
		images: imgSvc, objects: objSvc, ident: identSvc, network: netSvc}, cloud.AdminPassword, logger)
	if err != nil {
		return nil, err
	}
	return &builtCloud{comps: []component{ident, objects, img, netw, volumes, comp, heat, meter}, identity: identSvc, compute: compSvc,
		volumes: volSvc, images: imgSvc, objects: objSvc, metering: meterSvc, alarms: alarmSvc, heat: heatSvc}, nil
}

func closeAll(comps []component, logger *slog.Logger) {
	for i := len(comps) - 1; i >= 0; i-- {
		if c := comps[i]; c.close != nil {
			if err := c.close(); err != nil {
				logger.Warn("close failed", "service", c.name, "err", err)
			}
		}
	}
}

// waitReady polls every API's root until it answers.
func waitReady(ctx context.Context, comps []component, lns []net.Listener) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for i, c := range comps {
		url := "http://" + lns[i].Addr().String() + "/"
		for {
			resp, err := client.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode < 500 {
					break
				}
				err = fmt.Errorf("status %s", resp.Status)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s API at %s did not answer: %w", c.name, url, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// openBackend opens the state: the bbolt file in the data directory, or
// the etcd cluster that -etcd names.
func openBackend(ctx context.Context, cfg Config, logger *slog.Logger) (store.Backend, error) {
	if len(cfg.Etcd) > 0 {
		return etcdstore.Open(ctx, cfg.Etcd, &etcdstore.Options{Prefix: "/stratus/", Logger: logger})
	}
	return boltstore.Open(ctx, filepath.Join(cfg.DataDir, "stratus.db"), &boltstore.Options{Preallocate: 16 << 20})
}

// ensureCloud returns this cloud's record, creating it on first start.
func ensureCloud(ctx context.Context, st *store.Store) (*cloudRecord, error) {
	if c, err := store.Get[cloudRecord](nil, st.Snapshot(), cloudTable, "cloud"); err == nil {
		return c, nil
	}
	c := &cloudRecord{ID: rand.Text(), Created: st.Now().UTC(), AdminPassword: rand.Text()}
	err := st.Update(ctx, func(tx *store.Txn) error { return tx.Insert(cloudTable, c) })
	if err != nil && !errors.Is(err, errdefs.ErrConflict) {
		return nil, err
	}
	return store.Get[cloudRecord](nil, st.Snapshot(), cloudTable, "cloud")
}

// lockDataDir takes an exclusive lock on dir, so that a second instance on
// the same data is refused with a clear message instead of waiting.
func lockDataDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another stratus (pid %s); stop it or choose another -data",
				dir, strings.TrimSpace(string(pid)))
		}
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
