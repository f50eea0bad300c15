//go:build cgo

package libvirtvm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
)

// Driver is a compute.Hypervisor on one libvirt connection. It is safe for
// concurrent use; operations on one server are serialised.
type Driver struct {
	opts     Options
	conn     *libvirt.Connect
	virtType string
	caps     compute.Capabilities
	log      *slog.Logger

	locks keyedMutex // per server id, and per image cache entry

	closeOnce sync.Once
}

var (
	_ compute.Hypervisor        = (*Driver)(nil)
	_ compute.EventSource       = (*Driver)(nil)
	_ compute.Resizer           = (*Driver)(nil)
	_ compute.Migrator          = (*Driver)(nil)
	_ compute.DomainStatsReader = (*Driver)(nil)
	_ compute.Snapshotter       = (*Driver)(nil)
)

var eventLoop sync.Once

// startEventLoop registers libvirt's default event loop implementation and
// runs it for the life of the process; it must happen before the first
// connection is opened for that connection to deliver events.
func startEventLoop() {
	eventLoop.Do(func() {
		if err := libvirt.EventRegisterDefaultImpl(); err != nil {
			slog.Default().Warn("libvirt event loop", "err", err)
			return
		}
		go func() {
			for {
				if err := libvirt.EventRunDefaultImpl(); err != nil {
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	})
}

// New connects to libvirt and returns a driver. It creates the state
// directory (mode 0755 along the parts it makes) and checks that QEMU's
// user can reach it.
func New(ctx context.Context, o Options) (*Driver, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	startEventLoop()
	conn, err := libvirt.NewConnect(o.URI)
	if err != nil {
		return nil, fmt.Errorf("libvirtvm: connect to %s: %w: %w", o.URI, errdefs.ErrUnavailable, err)
	}
	d := &Driver{opts: o, conn: conn, log: o.Logger}
	fail := func(err error) (*Driver, error) {
		_, _ = conn.Close()
		return nil, err
	}
	typ, err := conn.GetType()
	if err != nil {
		return fail(fmt.Errorf("libvirtvm: hypervisor type of %s: %w", o.URI, err))
	}
	if strings.EqualFold(typ, "test") {
		d.virtType = "test"
	} else {
		vt, err := d.chooseVirtType(ctx)
		if err != nil {
			return fail(err)
		}
		d.virtType = vt
	}
	for _, dir := range []string{o.StateDir, d.baseDir(), d.domainsDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fail(fmt.Errorf("libvirtvm: state directory: %w", err))
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			return fail(fmt.Errorf("libvirtvm: state directory: %w", err))
		}
	}
	if d.virtType != "test" {
		if err := checkReachable(o.StateDir); err != nil {
			return fail(err)
		}
	}
	version := 0
	if v, err := conn.GetVersion(); err == nil {
		version = int(v)
	}
	hvType := "QEMU"
	if d.virtType == "test" {
		hvType = "test"
	}
	d.caps = compute.Capabilities{Type: hvType, Version: version, Pause: true, Suspend: true, VolumeAttach: true, InterfaceAttach: true}
	return d, nil
}

// checkReachable reports an error when some directory on the way to dir
// cannot be searched by other users (QEMU runs as libvirt-qemu).
func checkReachable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := abs; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("libvirtvm: state directory %s: %w", abs, err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("libvirtvm: state directory %s: %s is not searchable by QEMU's user (mode %v): choose a StateDir outside it: %w",
				abs, p, fi.Mode().Perm(), errdefs.ErrInvalid)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// VirtType returns the domain type the driver creates: "kvm", "qemu" or,
// on libvirt's test driver, "test".
func (d *Driver) VirtType() string { return d.virtType }

// Capabilities implements compute.Hypervisor.
func (d *Driver) Capabilities() compute.Capabilities { return d.caps }

// Close implements compute.Hypervisor: it closes the connection; domains
// keep running.
func (d *Driver) Close() error {
	var err error
	d.closeOnce.Do(func() { _, err = d.conn.Close() })
	return err
}

func (d *Driver) baseDir() string    { return filepath.Join(d.opts.StateDir, "base") }
func (d *Driver) domainsDir() string { return filepath.Join(d.opts.StateDir, "domains") }

// serverDir is the directory of a server's own files (overlay, ephemeral,
// swap, config drive, console log). The id is validated first.
func (d *Driver) serverDir(id string) string { return filepath.Join(d.domainsDir(), id) }

func domainName(id string) string { return "stratus-" + id }

// validID accepts the UUIDs compute gives servers (and nothing that could
// escape a path).
func validID(id string) error {
	if len(id) != 36 {
		return fmt.Errorf("libvirtvm: server id %q is not a uuid: %w", id, errdefs.ErrInvalid)
	}
	for i, c := range id {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return fmt.Errorf("libvirtvm: server id %q is not a uuid: %w", id, errdefs.ErrInvalid)
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		default:
			return fmt.Errorf("libvirtvm: server id %q is not a uuid: %w", id, errdefs.ErrInvalid)
		}
	}
	return nil
}

// classify wraps a libvirt error with the errdefs kind it means.
func classify(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf(format, args...)
	var lerr libvirt.Error
	if errors.As(err, &lerr) {
		switch lerr.Code {
		case libvirt.ERR_NO_DOMAIN:
			return fmt.Errorf("%s: %w: %w", msg, errdefs.ErrNotFound, err)
		case libvirt.ERR_OPERATION_INVALID:
			return fmt.Errorf("%s: %w: %w", msg, errdefs.ErrConflict, err)
		case libvirt.ERR_NO_SUPPORT, libvirt.ERR_ARGUMENT_UNSUPPORTED:
			return fmt.Errorf("%s: %w: %w", msg, errdefs.ErrUnsupported, err)
		case libvirt.ERR_XML_ERROR, libvirt.ERR_INVALID_ARG, libvirt.ERR_CONFIG_UNSUPPORTED:
			return fmt.Errorf("%s: %w: %w", msg, errdefs.ErrInvalid, err)
		}
	}
	return fmt.Errorf("%s: %w", msg, err)
}

func isLibvirt(err error, code libvirt.ErrorNumber) bool {
	var lerr libvirt.Error
	return errors.As(err, &lerr) && lerr.Code == code
}

func notFound(id string) error {
	return fmt.Errorf("libvirtvm: no Stratus domain for server %s: %w", id, errdefs.ErrNotFound)
}

// lookup returns the Stratus domain of a server; the caller frees it.
func (d *Driver) lookup(id string) (*libvirt.Domain, error) {
	if err := validID(id); err != nil {
		return nil, fmt.Errorf("%w (server %s): %w", err, id, errdefs.ErrNotFound)
	}
	dom, err := d.conn.LookupDomainByUUIDString(id)
	if err != nil {
		if isLibvirt(err, libvirt.ERR_NO_DOMAIN) {
			return nil, notFound(id)
		}
		return nil, classify(err, "libvirtvm: look up server %s", id)
	}
	if m, ok := d.readMark(dom); !ok || m.ServerID != id {
		_ = dom.Free()
		return nil, notFound(id)
	}
	return dom, nil
}

// withDomain runs fn on the server's domain under the server's lock.
func (d *Driver) withDomain(ctx context.Context, id string, fn func(dom *libvirt.Domain) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock := d.locks.lock("server/" + id)
	defer unlock()
	dom, err := d.lookup(id)
	if err != nil {
		return err
	}
	defer func() { _ = dom.Free() }()
	return fn(dom)
}

// powerOf maps a libvirt domain state to compute's.
func powerOf(dom *libvirt.Domain) (compute.PowerState, error) {
	st, _, err := dom.GetState()
	if err != nil {
		return compute.PowerNoState, err
	}
	switch st {
	case libvirt.DOMAIN_RUNNING, libvirt.DOMAIN_BLOCKED:
		return compute.PowerRunning, nil
	case libvirt.DOMAIN_PAUSED:
		return compute.PowerPaused, nil
	case libvirt.DOMAIN_SHUTDOWN:
		return compute.PowerShutdown, nil
	case libvirt.DOMAIN_SHUTOFF:
		if saved, err := dom.HasManagedSaveImage(0); err == nil && saved {
			return compute.PowerSuspended, nil
		}
		return compute.PowerShutdown, nil
	case libvirt.DOMAIN_CRASHED:
		return compute.PowerCrashed, nil
	case libvirt.DOMAIN_PMSUSPENDED:
		return compute.PowerSuspended, nil
	}
	return compute.PowerNoState, nil
}

// State implements compute.Hypervisor.
func (d *Driver) State(ctx context.Context, id string) (*compute.DomainState, error) {
	var out *compute.DomainState
	err := d.withDomain(ctx, id, func(dom *libvirt.Domain) error {
		p, err := powerOf(dom)
		if err != nil {
			return classify(err, "libvirtvm: state of server %s", id)
		}
		out = &compute.DomainState{ServerID: id, Power: p, Stratus: true, Name: domainName(id)}
		return nil
	})
	return out, err
}

// List implements compute.Hypervisor: the domains carrying Stratus's
// metadata, and only those.
func (d *Driver) List(ctx context.Context) ([]compute.DomainState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	doms, err := d.conn.ListAllDomains(0)
	if err != nil {
		return nil, classify(err, "libvirtvm: list domains")
	}
	var out []compute.DomainState
	for i := range doms {
		dom := &doms[i]
		m, ok := d.readMark(dom)
		if ok {
			if p, err := powerOf(dom); err == nil {
				name, _ := dom.GetName()
				out = append(out, compute.DomainState{ServerID: m.ServerID, Power: p, Stratus: true, Name: name})
			}
		}
		_ = dom.Free()
	}
	return out, nil
}

// start boots a defined domain (restoring a managed save when there is
// one), marking the console log first.
func (d *Driver) start(id string, dom *libvirt.Domain) error {
	d.consoleMark(id, "starting")
	if err := dom.Create(); err != nil {
		return classify(err, "libvirtvm: start server %s", id)
	}
	return nil
}

// PowerOn implements compute.Hypervisor.
func (d *Driver) PowerOn(ctx context.Context, id string) error {
	return d.withDomain(ctx, id, func(dom *libvirt.Domain) error {
		p, err := powerOf(dom)
		if err != nil {
			return classify(err, "libvirtvm: state of server %s", id)
		}
		switch p {
		case compute.PowerRunning:
			return nil
		case compute.PowerPaused:
			return classify(dom.Resume(), "libvirtvm: resume server %s", id)
		}
		return d.start(id, dom)
	})
}

// PowerOff implements compute.Hypervisor: an ACPI power-button press,
// then a hard stop when the guest has not stopped within timeout.
func (d *Driver) PowerOff(ctx context.Context, id string, timeout time.Duration) error {
	return d.withDomain(ctx, id, func(dom *libvirt.Domain) error { return d.powerOff(ctx, id, dom, timeout) })
}

func (d *Driver) powerOff(ctx context.Context, id string, dom *libvirt.Domain, timeout time.Duration) error {
	active, err := dom.IsActive()
	if err != nil {
		return classify(err, "libvirtvm: state of server %s", id)
	}
	if !active {
		return nil
	}
	if p, _ := powerOf(dom); p == compute.PowerRunning && timeout > 0 {
		if err := dom.ShutdownFlags(libvirt.DOMAIN_SHUTDOWN_ACPI_POWER_BTN); err == nil {
			if d.waitInactive(ctx, dom, timeout) {
				return nil
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if err := dom.Destroy(); err != nil {
		if a, _ := dom.IsActive(); !a {
			return nil
		}
		return classify(err, "libvirtvm: stop server %s", id)
	}
	return nil
}

// waitInactive polls until the domain is off, timeout passes or ctx ends.
func (d *Driver) waitInactive(ctx context.Context, dom *libvirt.Domain, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if a, err := dom.IsActive(); err == nil && !a {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Reboot implements compute.Hypervisor. A soft reboot is Nova's: a clean
// shutdown of up to Options.SoftRebootTimeout and a start; a guest that
// does not stop in time gets a hard reboot. A hard reboot stops the domain
// hard and starts it again.
func (d *Driver) Reboot(ctx context.Context, id string, hard bool) error {
	return d.withDomain(ctx, id, func(dom *libvirt.Domain) error {
		active, err := dom.IsActive()
		if err != nil {
			return classify(err, "libvirtvm: state of server %s", id)
		}
		if active {
			timeout := d.opts.SoftRebootTimeout
			if hard {
				timeout = 0
			}
			if err := d.powerOff(ctx, id, dom, timeout); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// A reboot discards a managed save: the guest boots afresh.
		if saved, err := dom.HasManagedSaveImage(0); err == nil && saved {
			_ = dom.ManagedSaveRemove(0)
		}
		return d.start(id, dom)
	})
}

// Pause implements compute.Hypervisor.
func (d *Driver) Pause(ctx context.Context, id string) error {
	return d.withDomain(ctx, id, func(dom *libvirt.Domain) error {
		if p, _ := powerOf(dom); p == compute.PowerPaused {
			return nil
		}
		return classify(dom.Suspend(), "libvirtvm: pause server %s", id)
	})
}

// Unpause implements compute.Hypervisor.
func (d *Driver) Unpause(ctx context.Context, id string) error {
	return d.withDomain(ctx, id, func(dom *libvirt.Domain) error {
		if p, _ := powerOf(dom); p == compute.PowerRunning {
			return nil
		}
		return classify(dom.Resume(), "libvirtvm: unpause server %s", id)
	})
}

// Suspend implements compute.Hypervisor: a managed save.
func (d *Driver) Suspend(ctx context.Context, id string) error {
	return d.withDomain(ctx, id, func(dom *libvirt.Domain) error {
		if p, _ := powerOf(dom); p == compute.PowerSuspended {
			return nil
		}
		return classify(dom.ManagedSave(0), "libvirtvm: suspend server %s", id)
	})
}

// Resume implements compute.Hypervisor: it starts the domain from its
// managed save.
func (d *Driver) Resume(ctx context.Context, id string) error {
	return d.withDomain(ctx, id, func(dom *libvirt.Domain) error {
		switch p, _ := powerOf(dom); p {
		case compute.PowerRunning:
			return nil
		case compute.PowerPaused:
			return classify(dom.Resume(), "libvirtvm: resume server %s", id)
		}
		return d.start(id, dom)
	})
}

// Destroy implements compute.Hypervisor: it stops the domain hard,
// undefines it with its managed save, and removes the server's files.
func (d *Driver) Destroy(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock := d.locks.lock("server/" + id)
	defer unlock()
	dom, err := d.lookup(id)
	if err != nil {
		return err
	}
	defer func() { _ = dom.Free() }()
	if err := d.undefine(id, dom); err != nil {
		return err
	}
	return d.removeFiles(id)
}

func (d *Driver) undefine(id string, dom *libvirt.Domain) error {
	if a, err := dom.IsActive(); err == nil && a {
		if err := dom.Destroy(); err != nil {
			if a, _ := dom.IsActive(); a {
				return classify(err, "libvirtvm: stop server %s", id)
			}
		}
	}
	err := dom.UndefineFlags(libvirt.DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.DOMAIN_UNDEFINE_NVRAM)
	if err != nil && !isLibvirt(err, libvirt.ERR_NO_DOMAIN) {
		// Some drivers (the test driver) know no flags.
		if err2 := dom.Undefine(); err2 != nil && !isLibvirt(err2, libvirt.ERR_NO_DOMAIN) {
			return classify(err, "libvirtvm: undefine server %s", id)
		}
	}
	return nil
}

func (d *Driver) removeFiles(id string) error {
	if err := validID(id); err != nil {
		return err
	}
	if err := os.RemoveAll(d.serverDir(id)); err != nil {
		return fmt.Errorf("libvirtvm: remove files of server %s: %w", id, err)
	}
	return nil
}

// keyedMutex is a set of mutexes by key, dropped when unused.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
