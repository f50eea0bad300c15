// Package fakevm is an in-memory compute.Hypervisor for tests and for the
// all-in-one without virtualisation: domains are records in a map, with a
// console log, configurable latency per operation and per-operation
// failure injection. It passes compute/drivertest.
package fakevm

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
)

// Op names an operation for latency and failure injection.
type Op string

// Operations.
const (
	OpSpawn     Op = "spawn"
	OpDestroy   Op = "destroy"
	OpPowerOn   Op = "power_on"
	OpPowerOff  Op = "power_off"
	OpReboot    Op = "reboot"
	OpPause     Op = "pause"
	OpUnpause   Op = "unpause"
	OpSuspend   Op = "suspend"
	OpResume    Op = "resume"
	OpAttach    Op = "attach"
	OpDetach    Op = "detach"
	OpConsole   Op = "console"
	OpStats     Op = "stats"
	OpListState Op = "list"
	OpResize    Op = "resize"
	OpMigrate   Op = "migrate"
	OpRescue    Op = "rescue"
	OpSnapshot  Op = "snapshot"
)

// Options configures a Driver. The zero value is usable.
type Options struct {
	// Name is the host's name, shown in console logs.
	Name string
	// VCPUs, MemoryMB and DiskGB are the host's capacity reported by
	// Stats. Defaults: 32, 131072, 2048.
	VCPUs, MemoryMB, DiskGB int
	// Latency is added to every operation; PerOp overrides it per
	// operation.
	Latency time.Duration
	PerOp   map[Op]time.Duration
	// Fail, if set, is asked before every operation; a non-nil error is
	// returned by the operation, which then does nothing.
	Fail func(op Op, serverID string) error
	// FailRate makes spawns fail at random with this probability.
	FailRate float64
	// StateFile, when set, keeps the domains in this JSON file (written
	// after every change, read by New), so that a host program restarted
	// after a crash finds its fake domains as libvirt would its real ones.
	StateFile string
}

type domain struct {
	spec    compute.DomainSpec
	power   compute.PowerState
	stratus bool
	name    string
	console []string
	volumes map[string]compute.DiskAttachment
	nics    map[string]compute.NIC
}

// Driver is the fake hypervisor. It is safe for concurrent use.
type Driver struct {
	opts Options

	mu      sync.Mutex
	doms    map[string]*domain // by server id, or by name for foreign domains
	subs    []chan compute.DomainEvent
	started time.Time
	calls   map[Op]int
	saveMu  sync.Mutex // orders state file writes
}

var _ compute.Hypervisor = (*Driver)(nil)
var _ compute.EventSource = (*Driver)(nil)
var _ compute.Resizer = (*Driver)(nil)
var _ compute.Migrator = (*Driver)(nil)
var _ compute.Rescuer = (*Driver)(nil)
var _ compute.Snapshotter = (*Driver)(nil)

// New returns a fake hypervisor.
func New(opts *Options) *Driver {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.VCPUs == 0 {
		o.VCPUs = 32
	}
	if o.MemoryMB == 0 {
		o.MemoryMB = 131072
	}
	if o.DiskGB == 0 {
		o.DiskGB = 2048
	}
	d := &Driver{opts: o, doms: map[string]*domain{}, started: time.Now(), calls: map[Op]int{}}
	d.load()
	return d
}

// SetFail replaces the failure hook (nil: no injected failures).
func (d *Driver) SetFail(f func(op Op, serverID string) error) {
	d.mu.Lock()
	d.opts.Fail = f
	d.mu.Unlock()
}

// AddForeignDomain adds a domain without Stratus's mark, as another tool
// on the same host would; the sweep must leave it alone.
func (d *Driver) AddForeignDomain(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.doms["foreign:"+name] = &domain{name: name, power: compute.PowerRunning}
}

// Crash powers a domain off as if the guest shut itself down, and reports
// the event.
func (d *Driver) Crash(serverID string) {
	defer d.persist()
	d.mu.Lock()
	dm, ok := d.doms[serverID]
	if ok {
		dm.power = compute.PowerShutdown
		dm.log("guest: power off")
	}
	d.mu.Unlock()
	if ok {
		d.emit(serverID, compute.PowerShutdown)
	}
}

// Calls returns how many times op ran (failures included).
func (d *Driver) Calls(op Op) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[op]
}

// Domains returns the server ids of the Stratus domains, sorted.
func (d *Driver) Domains() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for id, dm := range d.doms {
		if dm.stratus {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func (dm *domain) log(format string, args ...any) {
	dm.console = append(dm.console, fmt.Sprintf("[%s] ", time.Now().UTC().Format("15:04:05.000"))+fmt.Sprintf(format, args...))
	if len(dm.console) > 2000 {
		dm.console = dm.console[len(dm.console)-1000:]
	}
}

// begin waits the operation's latency and asks the failure hook.
func (d *Driver) begin(ctx context.Context, op Op, id string) error {
	d.mu.Lock()
	d.calls[op]++
	lat, ok := d.opts.PerOp[op]
	if !ok {
		lat = d.opts.Latency
	}
	fail := d.opts.Fail
	rate := d.opts.FailRate
	d.mu.Unlock()
	if lat > 0 {
		t := time.NewTimer(lat)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	} else if err := ctx.Err(); err != nil {
		return err
	}
	if fail != nil {
		if err := fail(op, id); err != nil {
			return err
		}
	}
	if op == OpSpawn && rate > 0 && rand.Float64() < rate {
		return fmt.Errorf("fakevm: injected spawn failure for %s: %w", id, errdefs.ErrUnavailable)
	}
	return nil
}

func missing(id string) error {
	return fmt.Errorf("fakevm: domain of server %s: %w", id, errdefs.ErrNotFound)
}

// Capabilities implements compute.Hypervisor.
func (d *Driver) Capabilities() compute.Capabilities {
	return compute.Capabilities{Type: "fake", Version: 1000, Pause: true, Suspend: true, VolumeAttach: true, InterfaceAttach: true}
}

// Spawn implements compute.Hypervisor.
func (d *Driver) Spawn(ctx context.Context, spec *compute.DomainSpec) error {
	defer d.persist()
	if spec == nil || spec.ServerID == "" {
		return errdefs.Invalid("spec.ServerID", "is required")
	}
	if spec.VCPUs <= 0 || spec.MemoryMB <= 0 {
		return errdefs.Invalid("spec", "vcpus and memory must be positive")
	}
	if err := d.begin(ctx, OpSpawn, spec.ServerID); err != nil {
		return err
	}
	d.mu.Lock()
	dm, ok := d.doms[spec.ServerID]
	if ok {
		if dm.power != compute.PowerRunning {
			dm.power = compute.PowerRunning
			dm.log("boot")
		}
		d.mu.Unlock()
		return nil
	}
	dm = &domain{spec: *spec, power: compute.PowerRunning, stratus: true, name: "stratus-" + spec.ServerID,
		volumes: map[string]compute.DiskAttachment{}, nics: map[string]compute.NIC{}}
	for _, v := range spec.Volumes {
		dm.volumes[v.VolumeID] = v
	}
	for _, n := range spec.NICs {
		dm.nics[n.PortID] = n
	}
	dm.log("fakevm %s: booting %s (%d vcpus, %d MB)", d.opts.Name, spec.Name, spec.VCPUs, spec.MemoryMB)
	dm.log("stratus-guest: up")
	if spec.ConfigDrive != nil {
		dm.log("stratus-guest: metadata ok name=%s", spec.Name)
	}
	d.doms[spec.ServerID] = dm
	d.mu.Unlock()
	return nil
}

// Destroy implements compute.Hypervisor.
func (d *Driver) Destroy(ctx context.Context, id string) error {
	defer d.persist()
	return d.onDomain(ctx, OpDestroy, id, func(*domain) error {
		delete(d.doms, id)
		return nil
	})
}

// onDomain runs f on the server's domain under the lock once begin lets
// op through; a domain that is not there (or not Stratus's) is NotFound.
func (d *Driver) onDomain(ctx context.Context, op Op, id string, f func(dm *domain) error) error {
	if err := d.begin(ctx, op, id); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	dm, ok := d.doms[id]
	if !ok || !dm.stratus {
		return missing(id)
	}
	return f(dm)
}

// power applies a power change after checking the domain's current state.
func (d *Driver) power(ctx context.Context, op Op, id string, from []compute.PowerState, to compute.PowerState, line string) error {
	defer d.persist()
	if err := d.begin(ctx, op, id); err != nil {
		return err
	}
	d.mu.Lock()
	dm, ok := d.doms[id]
	if !ok || !dm.stratus {
		d.mu.Unlock()
		return missing(id)
	}
	if dm.power == to {
		d.mu.Unlock()
		return nil
	}
	okFrom := from == nil
	for _, f := range from {
		if dm.power == f {
			okFrom = true
		}
	}
	if !okFrom {
		p := dm.power
		d.mu.Unlock()
		return fmt.Errorf("fakevm: %s server %s: domain is %s: %w", op, id, p, errdefs.ErrConflict)
	}
	dm.power = to
	dm.log("%s", line)
	d.mu.Unlock()
	d.emit(id, to)
	return nil
}

// PowerOn implements compute.Hypervisor.
func (d *Driver) PowerOn(ctx context.Context, id string) error {
	return d.power(ctx, OpPowerOn, id, []compute.PowerState{compute.PowerShutdown, compute.PowerCrashed}, compute.PowerRunning, "stratus-guest: up")
}

// PowerOff implements compute.Hypervisor.
func (d *Driver) PowerOff(ctx context.Context, id string, _ time.Duration) error {
	return d.power(ctx, OpPowerOff, id, nil, compute.PowerShutdown, "guest: power off")
}

// Reboot implements compute.Hypervisor. A hard reboot also starts a
// stopped, paused or suspended domain.
func (d *Driver) Reboot(ctx context.Context, id string, hard bool) error {
	defer d.persist()
	if err := d.begin(ctx, OpReboot, id); err != nil {
		return err
	}
	d.mu.Lock()
	dm, ok := d.doms[id]
	if !ok || !dm.stratus {
		d.mu.Unlock()
		return missing(id)
	}
	if !hard && dm.power != compute.PowerRunning {
		p := dm.power
		d.mu.Unlock()
		return fmt.Errorf("fakevm: soft reboot of server %s: domain is %s: %w", id, p, errdefs.ErrConflict)
	}
	kind := "soft"
	if hard {
		kind = "hard"
	}
	dm.log("reboot (%s)", kind)
	dm.log("stratus-guest: up")
	dm.power = compute.PowerRunning
	d.mu.Unlock()
	d.emit(id, compute.PowerRunning)
	return nil
}

// Pause implements compute.Hypervisor.
func (d *Driver) Pause(ctx context.Context, id string) error {
	return d.power(ctx, OpPause, id, []compute.PowerState{compute.PowerRunning}, compute.PowerPaused, "paused")
}

// Unpause implements compute.Hypervisor.
func (d *Driver) Unpause(ctx context.Context, id string) error {
	return d.power(ctx, OpUnpause, id, []compute.PowerState{compute.PowerPaused}, compute.PowerRunning, "unpaused")
}

// Suspend implements compute.Hypervisor.
func (d *Driver) Suspend(ctx context.Context, id string) error {
	return d.power(ctx, OpSuspend, id, []compute.PowerState{compute.PowerRunning, compute.PowerPaused}, compute.PowerSuspended, "suspended")
}

// Resume implements compute.Hypervisor.
func (d *Driver) Resume(ctx context.Context, id string) error {
	return d.power(ctx, OpResume, id, []compute.PowerState{compute.PowerSuspended}, compute.PowerRunning, "resumed")
}

// State implements compute.Hypervisor.
func (d *Driver) State(ctx context.Context, id string) (*compute.DomainState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	dm, ok := d.doms[id]
	if !ok || !dm.stratus {
		return nil, missing(id)
	}
	return &compute.DomainState{ServerID: id, Power: dm.power, Stratus: true, Name: dm.name}, nil
}

// List implements compute.Hypervisor.
func (d *Driver) List(ctx context.Context) ([]compute.DomainState, error) {
	if err := d.begin(ctx, OpListState, ""); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []compute.DomainState
	for id, dm := range d.doms {
		if dm.stratus {
			out = append(out, compute.DomainState{ServerID: id, Power: dm.power, Stratus: true, Name: dm.name})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ServerID < out[j].ServerID })
	return out, nil
}

// ConsoleOutput implements compute.Hypervisor.
func (d *Driver) ConsoleOutput(ctx context.Context, id string, lines int) (string, error) {
	var out string
	err := d.onDomain(ctx, OpConsole, id, func(dm *domain) error {
		c := dm.console
		if lines > 0 && len(c) > lines {
			c = c[len(c)-lines:]
		}
		out = strings.Join(c, "\n") + "\n"
		return nil
	})
	return out, err
}

// AttachVolume implements compute.Hypervisor.
func (d *Driver) AttachVolume(ctx context.Context, id string, a compute.DiskAttachment) error {
	defer d.persist()
	if err := d.begin(ctx, OpAttach, id); err != nil {
		return err
	}
	if a.Connection.DriverVolumeType == "" {
		return errdefs.Invalid("connection.driver_volume_type", "is required")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	dm, ok := d.doms[id]
	if !ok || !dm.stratus {
		return missing(id)
	}
	if _, ok := dm.volumes[a.VolumeID]; ok {
		return nil // attached already: attach is idempotent, as libvirtvm's
	}
	dm.volumes[a.VolumeID] = a
	return nil
}

// DetachVolume implements compute.Hypervisor.
func (d *Driver) DetachVolume(ctx context.Context, id, volumeID string) error {
	defer d.persist()
	return d.onDomain(ctx, OpDetach, id, func(dm *domain) error {
		if _, ok := dm.volumes[volumeID]; !ok {
			return fmt.Errorf("fakevm: volume %s not attached to %s: %w", volumeID, id, errdefs.ErrNotFound)
		}
		delete(dm.volumes, volumeID)
		return nil
	})
}

// Disks returns the guest device names of a domain's volumes ("vdb"), in
// no particular order; nil for a missing domain. A volume attached
// without a device name is named after its volume id.
func (d *Driver) Disks(serverID string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	dm, ok := d.doms[serverID]
	if !ok {
		return nil
	}
	out := []string{}
	for _, v := range dm.volumes {
		out = append(out, cmp.Or(strings.TrimPrefix(v.Device, "/dev/"), v.VolumeID))
	}
	return out
}

// AttachInterface implements compute.Hypervisor.
func (d *Driver) AttachInterface(ctx context.Context, id string, nic compute.NIC) error {
	defer d.persist()
	return d.onDomain(ctx, OpAttach, id, func(dm *domain) error {
		dm.nics[nic.PortID] = nic
		return nil
	})
}

// DetachInterface implements compute.Hypervisor.
func (d *Driver) DetachInterface(ctx context.Context, id, portID string) error {
	defer d.persist()
	return d.onDomain(ctx, OpDetach, id, func(dm *domain) error {
		if _, ok := dm.nics[portID]; !ok {
			return fmt.Errorf("fakevm: port %s not attached to %s: %w", portID, id, errdefs.ErrNotFound)
		}
		delete(dm.nics, portID)
		return nil
	})
}

// Stats implements compute.Hypervisor.
func (d *Driver) Stats(ctx context.Context) (*compute.HostStats, error) {
	if err := d.begin(ctx, OpStats, ""); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st := &compute.HostStats{VCPUs: d.opts.VCPUs, MemoryMB: d.opts.MemoryMB, DiskGB: d.opts.DiskGB,
		CPUInfo: map[string]any{"arch": "x86_64", "model": "fake", "vendor": "stratus"}, Uptime: time.Since(d.started)}
	for _, dm := range d.doms {
		if dm.stratus && dm.power == compute.PowerRunning {
			st.RunningVMs++
			st.VCPUsUsed += dm.spec.VCPUs
			st.MemoryUsed += dm.spec.MemoryMB
		}
	}
	return st, nil
}

// Resize implements compute.Resizer: the domain takes the new spec's
// size, NICs and volumes; the console reports what the guest now sees.
func (d *Driver) Resize(ctx context.Context, id string, spec *compute.DomainSpec) error {
	defer d.persist()
	return d.onDomain(ctx, OpResize, id, func(dm *domain) error {
		dm.spec.VCPUs, dm.spec.MemoryMB, dm.spec.RootGB, dm.spec.EphemeralGB = spec.VCPUs, spec.MemoryMB, spec.RootGB, spec.EphemeralGB
		dm.spec.NICs, dm.spec.Volumes = spec.NICs, spec.Volumes
		dm.nics = map[string]compute.NIC{}
		for _, n := range spec.NICs {
			dm.nics[n.PortID] = n
		}
		dm.log("fakevm %s: resized to %d vcpus, %d MB, %d GB", d.opts.Name, spec.VCPUs, spec.MemoryMB, spec.RootGB)
		return nil
	})
}

// Migrate implements compute.Migrator between fake drivers: a cold
// migration copies the stopped domain to dest and keeps the source's
// copy; a live one moves the running domain. Repeating a finished
// migration is nil.
func (d *Driver) Migrate(ctx context.Context, id string, dest compute.Hypervisor, live bool) error {
	defer d.persist()
	dd, ok := dest.(*Driver)
	if !ok {
		return fmt.Errorf("fakevm: migrate %s: destination is not a fake hypervisor: %w", id, errdefs.ErrUnsupported)
	}
	if dd == d {
		return fmt.Errorf("fakevm: migrate %s: source and destination are the same host: %w", id, errdefs.ErrInvalid)
	}
	if err := d.begin(ctx, OpMigrate, id); err != nil {
		return err
	}
	defer dd.persist()
	d.mu.Lock()
	dm, ok := d.doms[id]
	if !ok || !dm.stratus {
		d.mu.Unlock()
		if dd.has(id) {
			return nil // moved already
		}
		return missing(id)
	}
	if live && dm.power != compute.PowerRunning && dm.power != compute.PowerPaused {
		d.mu.Unlock()
		return fmt.Errorf("fakevm: live migration of %s: domain is %s: %w", id, dm.power, errdefs.ErrConflict)
	}
	if !live && dm.power == compute.PowerRunning {
		d.mu.Unlock()
		return fmt.Errorf("fakevm: cold migration of %s: domain is running: %w", id, errdefs.ErrConflict)
	}
	cp := &domain{spec: dm.spec, power: dm.power, stratus: true, name: dm.name, console: slices.Clone(dm.console),
		volumes: maps.Clone(dm.volumes), nics: maps.Clone(dm.nics)}
	if live {
		delete(d.doms, id)
	}
	d.mu.Unlock()
	dd.mu.Lock()
	if _, exists := dd.doms[id]; !exists {
		kind := "cold"
		if live {
			kind = "live"
		}
		cp.log("fakevm %s: %s migration in from %s", dd.opts.Name, kind, d.opts.Name)
		dd.doms[id] = cp
	}
	dd.mu.Unlock()
	return nil
}

func (d *Driver) has(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	dm, ok := d.doms[id]
	return ok && dm.stratus
}

// Rescue implements compute.Rescuer.
func (d *Driver) Rescue(ctx context.Context, spec *compute.DomainSpec) error {
	defer d.persist()
	return d.onDomain(ctx, OpRescue, spec.ServerID, func(dm *domain) error {
		img := ""
		if spec.Image != nil {
			img = spec.Image.ID
		}
		dm.power = compute.PowerRunning
		dm.log("stratus-guest: rescue image=%s", img)
		return nil
	})
}

// Unrescue implements compute.Rescuer.
func (d *Driver) Unrescue(ctx context.Context, id string) error {
	defer d.persist()
	return d.onDomain(ctx, OpRescue, id, func(dm *domain) error {
		dm.power = compute.PowerRunning
		dm.log("stratus-guest: up")
		return nil
	})
}

// Snapshot implements compute.Snapshotter: the fake's root disk is the
// boot image's bytes when it has one (so a snapshot of a server booted
// from an image boots like it), else 64 KiB of zeros; raw either way
// unless the boot image says otherwise.
func (d *Driver) Snapshot(ctx context.Context, id string) (io.ReadCloser, string, error) {
	var spec compute.DomainSpec
	if err := d.onDomain(ctx, OpSnapshot, id, func(dm *domain) error {
		spec = dm.spec
		dm.log("fakevm %s: snapshot", d.opts.Name)
		return nil
	}); err != nil {
		return nil, "", err
	}
	if spec.Image != nil && spec.OpenImage != nil {
		rc, err := spec.OpenImage(ctx, spec.Image.ID)
		if err == nil {
			return rc, cmpOr(spec.Image.DiskFormat, "raw"), nil
		}
	}
	return io.NopCloser(bytes.NewReader(make([]byte, 64<<10))), "raw", nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Events implements compute.EventSource.
func (d *Driver) Events(ctx context.Context) <-chan compute.DomainEvent {
	ch := make(chan compute.DomainEvent, 64)
	d.mu.Lock()
	d.subs = append(d.subs, ch)
	d.mu.Unlock()
	go func() {
		<-ctx.Done()
		d.mu.Lock()
		for i, c := range d.subs {
			if c == ch {
				d.subs = append(d.subs[:i], d.subs[i+1:]...)
				break
			}
		}
		close(ch)
		d.mu.Unlock()
	}()
	return ch
}

func (d *Driver) emit(id string, p compute.PowerState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.subs {
		select {
		case c <- compute.DomainEvent{ServerID: id, Power: p, Time: time.Now()}:
		default: // a slow consumer misses events; the periodic sync repairs
		}
	}
}

// Close implements compute.Hypervisor.
func (d *Driver) Close() error { return nil }
