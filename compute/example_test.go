package compute_test

import (
	"context"
	"fmt"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/compute/fakevm"
	"github.com/stratuskit/stratus/compute/standin"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// Example boots a server on a fake hypervisor and waits for it.
func Example() {
	ctx := context.Background()
	st, _ := store.Open(ctx, memstore.New(), compute.Tables(), &store.Options{CompactInterval: -1})
	defer st.Close()
	svc, _ := compute.New(compute.Config{Store: st, Logger: quiet()})
	images := standin.NewImages()
	images.Add(compute.ImageInfo{ID: "11111111-2222-4333-8444-555555555555", Name: "cirros", DiskFormat: "qcow2"}, nil, "")
	svc.Use(compute.Deps{Images: images})
	if _, err := svc.AddHost(ctx, compute.HostOpts{Name: "host1"}, fakevm.New(nil)); err != nil {
		fmt.Println(err)
		return
	}
	_ = svc.Start(ctx)
	defer svc.Close()

	admin := identity.WithCredentials(ctx, identity.SystemAdmin())
	flavor, _ := svc.CreateFlavor(admin, compute.CreateFlavorOpts{Name: "m1.tiny", VCPUs: 1, RAMMB: 256, DiskGB: 1})
	member := identity.WithCredentials(ctx, &identity.Credentials{UserID: "u1", ProjectID: "p1", Roles: []string{"member", "reader"}})
	srv, err := svc.CreateServer(member, compute.CreateServerOpts{Name: "web", ImageRef: "11111111-2222-4333-8444-555555555555", FlavorRef: flavor.ID})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv, _ = svc.WaitServer(member, srv.ID, func(s *compute.Server) bool { return s.TaskState == compute.TaskNone })
	fmt.Println(srv.Name, srv.Status(), srv.HostID)
	// Output: web ACTIVE host1
}

// Example_resize resizes a server, looks at it in VERIFY_RESIZE, then
// reverts to its old flavor.
func Example_resize() {
	ctx := context.Background()
	st, _ := store.Open(ctx, memstore.New(), compute.Tables(), &store.Options{CompactInterval: -1})
	defer st.Close()
	svc, _ := compute.New(compute.Config{Store: st, Logger: quiet()})
	images := standin.NewImages()
	images.Add(compute.ImageInfo{ID: "11111111-2222-4333-8444-555555555555", Name: "cirros", DiskFormat: "qcow2"}, nil, "")
	svc.Use(compute.Deps{Images: images})
	for _, h := range []string{"host1", "host2"} {
		if _, err := svc.AddHost(ctx, compute.HostOpts{Name: h}, fakevm.New(nil)); err != nil {
			fmt.Println(err)
			return
		}
	}
	_ = svc.Start(ctx)
	defer svc.Close()

	admin := identity.WithCredentials(ctx, identity.SystemAdmin())
	tiny, _ := svc.CreateFlavor(admin, compute.CreateFlavorOpts{Name: "m1.tiny", VCPUs: 1, RAMMB: 256, DiskGB: 1})
	big, _ := svc.CreateFlavor(admin, compute.CreateFlavorOpts{Name: "m1.big", VCPUs: 4, RAMMB: 4096, DiskGB: 10})
	member := identity.WithCredentials(ctx, &identity.Credentials{UserID: "u1", ProjectID: "p1", Roles: []string{"member", "reader"}})
	idle := func(s *compute.Server) bool { return s.TaskState == compute.TaskNone }
	srv, _ := svc.CreateServer(member, compute.CreateServerOpts{Name: "web", ImageRef: "11111111-2222-4333-8444-555555555555", FlavorRef: tiny.ID})
	_, _ = svc.WaitServer(member, srv.ID, idle)

	if err := svc.ResizeServer(member, srv.ID, big.ID); err != nil {
		fmt.Println(err)
		return
	}
	srv, _ = svc.WaitServer(member, srv.ID, idle)
	fmt.Println(srv.Status(), srv.Flavor.Name)
	_ = svc.RevertResize(member, srv.ID)
	srv, _ = svc.WaitServer(member, srv.ID, idle)
	fmt.Println(srv.Status(), srv.Flavor.Name)
	// Output:
	// VERIFY_RESIZE m1.big
	// ACTIVE m1.tiny
}
