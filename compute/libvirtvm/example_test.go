//go:build cgo

package libvirtvm_test

import (
	"context"
	"fmt"
	"os"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/compute/libvirtvm"
)

// Example runs a domain on libvirt's in-process test driver; a real host
// uses the default URI, qemu:///system.
func Example() {
	dir, _ := os.MkdirTemp("/var/tmp", "stratus-example-")
	defer func() { _ = os.RemoveAll(dir) }()
	ctx := context.Background()
	d, err := libvirtvm.New(ctx, libvirtvm.Options{URI: "test:///default", StateDir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = d.Close() }()
	id := "6f1e2d3c-4b5a-4968-8776-655443322110"
	if err := d.Spawn(ctx, &compute.DomainSpec{ServerID: id, Name: "web-1", ProjectID: "p1", VCPUs: 1, MemoryMB: 256}); err != nil {
		fmt.Println(err)
		return
	}
	st, _ := d.State(ctx, id)
	fmt.Println(st.Name, st.Power)
	_ = d.Destroy(ctx, id)
	// Output: stratus-6f1e2d3c-4b5a-4968-8776-655443322110 running
}
