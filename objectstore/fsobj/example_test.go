package fsobj_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/objectstore/fsobj"
)

// Example to replicate objects across three directories (one per disk,
// as a rule), and keep the replicas whole with a replicator and an
// auditor.
func ExampleOpenCluster() {
	root, _ := os.MkdirTemp("", "cluster")
	defer os.RemoveAll(root)
	devs := []string{filepath.Join(root, "sda"), filepath.Join(root, "sdb"), filepath.Join(root, "sdc")}
	c, err := fsobj.OpenCluster(fsobj.ClusterConfig{Devices: devs})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	ctx := context.Background()
	_ = c.CreateContainer(ctx, "AUTH_demo", "photos")
	key := objectstore.ObjectKey{Account: "AUTH_demo", Container: "photos", Name: "cat.jpg"}
	if _, err := c.Put(ctx, key, strings.NewReader("meow"), objectstore.PutOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	rc, _, _ := c.Get(ctx, key, 0, -1)
	data, _ := io.ReadAll(rc)
	rc.Close()
	fmt.Println(string(data), "on", len(c.Replicas("AUTH_demo", "photos")), "devices")

	// In a program: rep.Start() and aud.Start(), Close() at the end.
	rep := fsobj.NewReplicator(c, 30*time.Second)
	aud := fsobj.NewAuditor(c, 8<<20, time.Hour)
	st, _ := rep.Pass(ctx)
	ast, _ := aud.Pass(ctx)
	fmt.Println("repaired:", st.Objects, "quarantined:", ast.Quarantined)
	// Output:
	// meow on 3 devices
	// repaired: 0 quarantined: 0
}
