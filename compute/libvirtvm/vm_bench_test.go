//go:build cgo

package libvirtvm_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/stratuskit/stratus/compute"
)

func p50(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// floorBoot starts the domain definition of server id again with
// `virsh create` (a transient copy: its own name and console log, no
// Stratus metadata, the same disks, kernel and command line) after
// stopping the server's domain, and returns the time from virsh to the
// guest's first marker.
func floorBoot(b *testing.B, c *libvirt.Connect, dir, id string, n int) time.Duration {
	b.Helper()
	dom, err := c.LookupDomainByUUIDString(id)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = dom.Free() }()
	s, err := dom.GetXMLDesc(libvirt.DOMAIN_XML_INACTIVE)
	if err != nil {
		b.Fatal(err)
	}
	if err := dom.Destroy(); err != nil {
		b.Fatal(err)
	}
	var x libvirtxml.Domain
	if err := x.Unmarshal(s); err != nil {
		b.Fatal(err)
	}
	x.Name, x.UUID, x.Metadata, x.Title = "stratus-floor-"+id[:8], "", nil, ""
	log := filepath.Join(dir, "floor.log")
	_ = os.Remove(log)
	x.Devices.Serials[0].Log.File = log
	doc, err := x.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	f := filepath.Join(dir, "floor.xml")
	if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if out, err := exec.Command("virsh", "-c", systemURI, "create", f).CombinedOutput(); err != nil {
		b.Fatalf("virsh create: %v %s", err, out)
	}
	defer func() { _ = exec.Command("virsh", "-c", systemURI, "destroy", x.Name).Run() }()
	if err := waitFile(log, "stratus-guest: up", time.Minute); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// Boot of the tiny guest through the compute Service (to ACTIVE and to
// the guest's "up" marker) beside the floor: the same domain XML started
// by `virsh create`. Reported: p50s in ms and the ratio up/virsh.
func BenchmarkVMBoot(b *testing.B) {
	d, o := newVMDriver(b, nil)
	imgs := newImages()
	ami := addGuest(b, imgs)
	e := newSvcEnv(b, d, imgs, compute.Config{PowerOffTimeout: time.Second})
	c, err := libvirt.NewConnect(systemURI)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _, _ = c.Close() }()
	ctx := context.Background()
	// Warm the image cache: a host fetches an image once.
	id, _, _ := bootUp(ctx, b, e, "warm", ami.ID)
	e.deleteAndWait(ctx, b, id)
	var actives, ups, floors []time.Duration
	b.ResetTimer()
	for i := range b.N {
		id, active, up := bootUp(ctx, b, e, "bench", ami.ID)
		actives, ups = append(actives, active), append(ups, up)
		floors = append(floors, floorBoot(b, c, o.StateDir, id, i))
		e.deleteAndWait(ctx, b, id)
	}
	b.StopTimer()
	b.ReportMetric(ms(p50(actives)), "active-ms")
	b.ReportMetric(ms(p50(ups)), "up-ms")
	b.ReportMetric(ms(p50(floors)), "virsh-up-ms")
	b.ReportMetric(float64(p50(ups))/float64(p50(floors)), "up/virsh")
}

// Five boots at once, all reaching ACTIVE and "up".
func BenchmarkVMBootConcurrent5(b *testing.B) {
	d, _ := newVMDriver(b, nil)
	imgs := newImages()
	ami := addGuest(b, imgs)
	e := newSvcEnv(b, d, imgs, compute.Config{PowerOffTimeout: time.Second})
	ctx := context.Background()
	var alls []time.Duration
	for range b.N {
		start := time.Now()
		ids := make([]string, 5)
		errs := make([]error, 5)
		var wg sync.WaitGroup
		for j := range ids {
			wg.Go(func() { ids[j], _, _, errs[j] = e.bootUpErr(ctx, "c5", ami.ID) })
		}
		wg.Wait()
		alls = append(alls, time.Since(start))
		for j, id := range ids {
			if id != "" {
				e.deleteAndWait(ctx, b, id)
			}
			if errs[j] != nil {
				b.Fatalf("concurrent boot %d: %v", j, errs[j])
			}
		}
	}
	b.ReportMetric(ms(p50(alls)), "all-up-ms")
}

// Create→delete cycles through the compute Service (boot to ACTIVE,
// delete until gone).
func BenchmarkVMCreateDelete(b *testing.B) {
	d, _ := newVMDriver(b, nil)
	imgs := newImages()
	ami := addGuest(b, imgs)
	e := newSvcEnv(b, d, imgs, compute.Config{PowerOffTimeout: time.Second})
	ctx := context.Background()
	start := time.Now()
	for range b.N {
		srv := e.boot(ctx, b, "cycle", ami.ID)
		if srv.VMState != compute.VMActive {
			b.Fatalf("boot: %s %+v", srv.VMState, srv.Fault)
		}
		e.deleteAndWait(ctx, b, srv.ID)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Minutes(), "cycles/min")
}
