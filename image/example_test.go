package image_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/image"
	"github.com/stratuskit/stratus/image/memblob"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// An image is created, its bytes uploaded, then read back as compute
// would to boot from it.
func Example() {
	ctx := context.Background()
	st, _ := store.Open(ctx, memstore.New(), image.Tables(), nil)
	defer st.Close()
	svc, _ := image.New(image.Config{Store: st, Blobs: memblob.New()})
	_ = svc.Start(ctx)
	defer svc.Close()

	ctx = identity.WithCredentials(ctx, &identity.Credentials{ProjectID: "p1", Roles: []string{identity.RoleMember}})
	img, _ := svc.CreateImage(ctx, image.CreateImageOpts{Name: "tiny", DiskFormat: image.DiskRaw, ContainerFormat: "bare"})
	img, err := svc.UploadData(ctx, img.ID, strings.NewReader("disk bytes"), image.UploadOpts{Size: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(img.Status, *img.Size, img.Checksum)

	_, rc, _ := svc.OpenData(ctx, img.ID, 0, -1)
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	fmt.Println(string(b))
	// Output:
	// active 10 b7c92d68f3ea33566855af256d0ad410
	// disk bytes
}
