package blockstore_test

import (
	"context"
	"fmt"

	"github.com/stratuskit/stratus/blockstore"
	"github.com/stratuskit/stratus/blockstore/fakevol"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// Example creates a volume, attaches it to a server with the v3
// attachment flow and shows what the host gets.
func Example() {
	ctx := context.Background()
	st, _ := store.Open(ctx, memstore.New(), blockstore.Tables(), nil)
	defer st.Close()
	svc, _ := blockstore.New(blockstore.Config{Store: st,
		Backends: []blockstore.BackendConfig{{Name: "fake", Backend: fakevol.New(nil)}}})
	_ = svc.Start(ctx)
	defer svc.Close()

	ctx = identity.WithCredentials(ctx, &identity.Credentials{ProjectID: "demo", Roles: []string{identity.RoleMember, identity.RoleReader}})
	v, _ := svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{Name: "data", SizeGiB: 10})
	svc.Wait() // the backend makes the volume in the background
	at, _ := svc.CreateAttachment(ctx, blockstore.CreateAttachmentOpts{VolumeID: v.ID, InstanceID: "server-1",
		Connector: &blockstore.Connector{Host: "compute-1"}})
	_ = svc.CompleteAttachment(ctx, at.ID)
	v, _ = svc.GetVolume(ctx, v.ID)
	fmt.Println(v.Status, at.Connection.DriverVolumeType, at.Connection.File.Format)
	// Output: in-use file raw
}
