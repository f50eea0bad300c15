package compute_test

import (
	"context"
	"fmt"
	"slices"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/compute/fakevm"
	"github.com/stratuskit/stratus/compute/standin"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// ExampleService_AttachVolume attaches a volume to a running server and
// waits for the conductor to plug it.
func ExampleService_AttachVolume() {
	ctx := context.Background()
	st, _ := store.Open(ctx, memstore.New(), compute.Tables(), &store.Options{CompactInterval: -1})
	defer st.Close()
	svc, _ := compute.New(compute.Config{Store: st, Logger: quiet()})
	images, volumes := standin.NewImages(), standin.NewVolumes()
	images.Add(compute.ImageInfo{ID: "11111111-2222-4333-8444-555555555555", Name: "cirros", DiskFormat: "qcow2"}, nil, "")
	svc.Use(compute.Deps{Images: images, Volumes: volumes})
	_, _ = svc.AddHost(ctx, compute.HostOpts{Name: "host1"}, fakevm.New(nil))
	_ = svc.Start(ctx)
	defer svc.Close()
	admin := identity.WithCredentials(ctx, identity.SystemAdmin())
	flavor, _ := svc.CreateFlavor(admin, compute.CreateFlavorOpts{Name: "m1.tiny", VCPUs: 1, RAMMB: 256, DiskGB: 1})
	member := identity.WithCredentials(ctx, &identity.Credentials{UserID: "u1", ProjectID: "p1", Roles: []string{"member", "reader"}})
	srv, _ := svc.CreateServer(member, compute.CreateServerOpts{Name: "db", ImageRef: "11111111-2222-4333-8444-555555555555", FlavorRef: flavor.ID})
	_, _ = svc.WaitServer(member, srv.ID, func(s *compute.Server) bool { return s.TaskState == compute.TaskNone })

	vol := volumes.AddVolume("p1", 10)
	att, err := svc.AttachVolume(member, srv.ID, compute.AttachVolumeOpts{VolumeID: vol})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(att.Device, att.State)
	_, _ = svc.WaitServer(member, srv.ID, func(s *compute.Server) bool {
		return !slices.ContainsFunc(s.BlockDevices, func(b compute.BlockDevice) bool { return b.Pending != "" })
	})
	att, _ = svc.GetVolumeAttachment(member, srv.ID, vol)
	fmt.Println(att.Device, att.State, volumes.Status(vol))
	// Output:
	// /dev/vdb attaching
	// /dev/vdb attached in-use
}
