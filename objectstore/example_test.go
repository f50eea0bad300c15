package objectstore_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/objectstore/memobj"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// Example stores and reads an object through the Service, as a library
// caller does: credentials in the context, no HTTP.
func Example() {
	ctx := context.Background()
	st, _ := store.Open(ctx, memstore.New(), objectstore.Tables(), nil)
	defer st.Close()
	svc, _ := objectstore.New(objectstore.Config{Store: st, Backend: memobj.New()})

	ctx = identity.WithCredentials(ctx, &identity.Credentials{ProjectID: "p1", Roles: []string{identity.RoleMember}})
	account := objectstore.AccountPrefix + "p1"
	if _, err := svc.PutContainer(ctx, account, "photos", objectstore.ContainerOpts{}); err != nil {
		fmt.Println(err)
		return
	}
	key := objectstore.ObjectKey{Account: account, Container: "photos", Name: "2026/cat.txt"}
	info, _ := svc.PutObject(ctx, key, strings.NewReader("meow"), objectstore.PutObjectOpts{ContentLength: 4})
	fmt.Println(info.Size, info.ETag, info.ContentType)

	rd, _ := svc.GetObject(ctx, key, objectstore.GetObjectOpts{Range: "bytes=1-2"})
	defer rd.Body.Close()
	b, _ := io.ReadAll(rd.Body)
	fmt.Println(string(b))

	_, ents, _ := svc.ListObjects(ctx, account, "photos", objectstore.ListOptions{Delimiter: "/"})
	fmt.Println(ents[0].Subdir)
	// Output:
	// 4 4a4be40c96ac6314e91d93f38043a634 text/plain; charset=utf-8
	// eo
	// 2026/
}

// ExampleBackend keeps blobs in a Backend directly, as the image service
// does: a container of its own, then streaming Put, Get and Delete.
func ExampleBackend() {
	ctx := context.Background()
	var b objectstore.Backend = memobj.New()
	_ = b.CreateContainer(ctx, "images", "data")
	key := objectstore.ObjectKey{Account: "images", Container: "data", Name: "image-id"}
	info, _ := b.Put(ctx, key, strings.NewReader("disk bytes"), objectstore.PutOptions{ContentType: "application/octet-stream"})
	rc, _, _ := b.Get(ctx, key, 0, -1)
	data, _ := io.ReadAll(rc)
	rc.Close()
	fmt.Println(info.Size, string(data))
	fmt.Println(b.Delete(ctx, key))
	// Output:
	// 10 disk bytes
	// <nil>
}
