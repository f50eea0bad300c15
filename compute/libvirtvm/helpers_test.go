//go:build cgo

package libvirtvm_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/compute/libvirtvm"
	"github.com/stratuskit/stratus/compute/standin"
	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// stateDir makes a state directory QEMU's user can reach (under /var/tmp,
// mode 0755), removed at the end of the test.
func stateDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "stratus-libvirtvm-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestDriver(t testing.TB, mod func(*libvirtvm.Options)) (*libvirtvm.Driver, libvirtvm.Options) {
	t.Helper()
	o := libvirtvm.Options{URI: "test:///default", StateDir: stateDir(t), Logger: quiet()}
	if mod != nil {
		mod(&o)
	}
	d, err := libvirtvm.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d, o
}

// images is a compute.Images over in-memory images, with sha512
// checksums as Glance's os_hash_value, counting opens.
type images struct {
	mu     sync.Mutex
	data   map[string][]byte
	info   map[string]compute.ImageInfo
	queued map[string]compute.ImageInfo // created, not uploaded (ImageWriter)
	opens  atomic.Int64
}

func newImages() *images {
	return &images{data: map[string][]byte{}, info: map[string]compute.ImageInfo{}}
}

func (m *images) add(info compute.ImageInfo, data []byte) compute.ImageInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	if info.ID == "" {
		info.ID = newID()
	}
	if info.Checksum == "" {
		sum := sha512.Sum512(data)
		info.Checksum = hex.EncodeToString(sum[:])
	}
	info.Size = int64(len(data))
	m.data[info.ID] = data
	m.info[info.ID] = info
	return info
}

func (m *images) addFile(t testing.TB, info compute.ImageInfo, path string) compute.ImageInfo {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return m.add(info, b)
}

// GetImage implements compute.Images.
func (m *images) GetImage(_ context.Context, _, id string) (*compute.ImageInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	info, ok := m.info[id]
	if !ok {
		return nil, fmt.Errorf("image %s: %w", id, errdefs.ErrNotFound)
	}
	return &info, nil
}

// OpenImage implements compute.Images.
func (m *images) OpenImage(_ context.Context, _, id string) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.data[id]
	if !ok {
		return nil, fmt.Errorf("image %s: %w", id, errdefs.ErrNotFound)
	}
	m.opens.Add(1)
	return io.NopCloser(bytes.NewReader(b)), nil
}

// specFor returns a spec booting info from m.
func (m *images) specFor(id string, info compute.ImageInfo) *compute.DomainSpec {
	inf := info
	return &compute.DomainSpec{ServerID: id, Name: "t-" + id[:8], ProjectID: "p1", VCPUs: 1, MemoryMB: 128, Image: &inf,
		OpenImage: func(ctx context.Context, imageID string) (io.ReadCloser, error) {
			return m.OpenImage(ctx, "p1", imageID)
		}}
}

func newID() string {
	var b [16]byte
	f, _ := os.Open("/dev/urandom")
	_, _ = io.ReadFull(f, b[:])
	_ = f.Close()
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// entries lists a directory's names (none when it is absent).
func entries(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

// svcEnv is a compute Service with one host on a libvirt driver.
type svcEnv struct {
	svc    *compute.Service
	admin  context.Context
	user   context.Context
	flavor *compute.Flavor
	images *images
	driver *libvirtvm.Driver
}

func newSvcEnv(t testing.TB, d *libvirtvm.Driver, imgs *images, cfg compute.Config) *svcEnv {
	t.Helper()
	st, err := store.Open(context.Background(), memstore.New(), slices.Concat(identity.Tables(), compute.Tables()),
		&store.Options{Logger: quiet(), CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.Logger = st, quiet()
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = -1
	}
	svc, err := compute.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc.Use(compute.Deps{Images: imgs, Ports: standin.NewPorts(), Volumes: standin.NewVolumes()})
	if _, err := svc.AddHost(context.Background(), compute.HostOpts{Name: "host1", VCPUs: 64, RAMMB: 65536, DiskGB: 1000,
		CPURatio: 1, RAMRatio: 1, DiskRatio: 1}, d); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	e := &svcEnv{svc: svc, images: imgs, driver: d,
		admin: identity.WithCredentials(context.Background(), &identity.Credentials{UserID: "admin", ProjectID: "admin",
			IsAdminProject: true, Roles: []string{"admin", "member", "reader"}}),
		user: identity.WithCredentials(context.Background(), &identity.Credentials{UserID: "u1", ProjectID: "p1",
			Roles: []string{"member", "reader"}})}
	f, err := svc.CreateFlavor(e.admin, compute.CreateFlavorOpts{Name: "m1.tiny", VCPUs: 1, RAMMB: 256, DiskGB: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.flavor = f
	return e
}

// boot creates a server and waits until its task ends.
func (e *svcEnv) boot(ctx context.Context, t testing.TB, name, imageID string) *compute.Server {
	t.Helper()
	srv, err := e.svc.CreateServer(e.user, compute.CreateServerOpts{Name: name, ImageRef: imageID, FlavorRef: e.flavor.ID,
		NetworksMode: "none", ConfigDrive: true})
	if err != nil {
		t.Fatal(err)
	}
	return e.settle(ctx, t, srv.ID)
}

func (e *svcEnv) settle(ctx context.Context, t testing.TB, id string) *compute.Server {
	t.Helper()
	srv, err := e.svc.WaitServer(ctx, id, func(s *compute.Server) bool {
		return s.TaskState == compute.TaskNone && s.VMState != compute.VMBuilding
	})
	if err != nil {
		t.Fatalf("server %s did not settle: %v (last %+v)", id, err, srv)
	}
	return srv
}

func (e *svcEnv) deleteAndWait(ctx context.Context, t testing.TB, id string) {
	t.Helper()
	if err := e.svc.DeleteServer(e.user, id); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.WaitServer(ctx, id, func(*compute.Server) bool { return false })
	if !errdefs.IsNotFound(err) {
		t.Fatalf("server %s not deleted: %v", id, err)
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func serverDir(stateDir, id string) string { return filepath.Join(stateDir, "domains", id) }
