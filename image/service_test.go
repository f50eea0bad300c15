package image

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // checking Glance's checksum
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

func TestUploadDownload(t *testing.T) {
	e := newEnv(t)
	p1 := project("p1")
	data := bytes.Repeat([]byte("stratus!"), 300_000) // 2.4 MB: past the inspected head
	img := must(e.svc.CreateImage(p1, CreateImageOpts{Name: "a", DiskFormat: DiskRaw, ContainerFormat: "bare"}))
	if img.Status != StatusQueued || img.Visibility != VisibilityShared || img.Owner != "p1" {
		t.Fatalf("new image = %+v", img)
	}
	got := must(e.svc.UploadData(p1, img.ID, bytes.NewReader(data), UploadOpts{Size: int64(len(data))}))
	md := md5.Sum(data) //nolint:gosec
	sh := sha512.Sum512(data)
	if got.Status != StatusActive || *got.Size != int64(len(data)) || *got.VirtualSize != int64(len(data)) ||
		got.Checksum != hex.EncodeToString(md[:]) || got.HashAlgo != "sha512" || got.HashValue != hex.EncodeToString(sh[:]) {
		t.Fatalf("after upload: %+v", got)
	}
	if b := e.read(t, p1, img.ID, 0, -1); !bytes.Equal(b, data) {
		t.Fatal("download differs from upload")
	}
	if b := e.read(t, p1, img.ID, 1_000_000, 10); !bytes.Equal(b, data[1_000_000:1_000_010]) {
		t.Fatalf("range = %q", b)
	}
	// Active data can never be replaced.
	_, err := e.svc.UploadData(p1, img.ID, strings.NewReader("other"), UploadOpts{Size: -1})
	wantKind(t, err, errdefs.ErrConflict)
	if b := e.read(t, p1, img.ID, 0, 8); string(b) != "stratus!" {
		t.Fatalf("data changed: %q", b)
	}
	if n := len(e.keys(t)); n != 1 {
		t.Fatalf("%d blobs, want 1", n)
	}
}

func TestUploadNeedsFormats(t *testing.T) {
	e := newEnv(t)
	img := must(e.svc.CreateImage(project("p1"), CreateImageOpts{Name: "a"}))
	_, err := e.svc.UploadData(project("p1"), img.ID, strings.NewReader("x"), UploadOpts{Size: -1})
	wantKind(t, err, errdefs.ErrInvalid)
}

// failing is a reader that fails after n bytes, like a client that goes
// away mid-upload.
type failing struct{ n int }

func (f *failing) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset by peer")
	}
	k := min(len(p), f.n)
	clear(p[:k])
	f.n -= k
	return k, nil
}

func TestFailedUploadsLeaveNothing(t *testing.T) {
	data := bytes.Repeat([]byte{7}, 3<<20)
	cases := []struct {
		name string
		r    func() io.Reader
		opts UploadOpts
		kind error
	}{
		{"size mismatch", func() io.Reader { return bytes.NewReader(data) }, UploadOpts{Size: 5}, errdefs.ErrInvalid},
		{"checksum mismatch", func() io.Reader { return bytes.NewReader(data) }, UploadOpts{Size: -1, Checksum: strings.Repeat("0", 32)}, errdefs.ErrInvalid},
		{"interrupted in the head", func() io.Reader { return &failing{n: 1000} }, UploadOpts{Size: -1}, nil},
		{"interrupted in the body", func() io.Reader { return &failing{n: 2 << 20} }, UploadOpts{Size: -1}, nil},
		{"format mismatch", func() io.Reader { return bytes.NewReader(qcow2Header(3, 1<<30, 0, 0)) }, UploadOpts{Size: -1}, errdefs.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			p1 := project("p1")
			img := must(e.svc.CreateImage(p1, CreateImageOpts{DiskFormat: DiskRaw, ContainerFormat: "bare"}))
			_, err := e.svc.UploadData(p1, img.ID, c.r(), c.opts)
			if err == nil {
				t.Fatal("upload succeeded")
			}
			if c.kind != nil {
				wantKind(t, err, c.kind)
			}
			got := must(e.svc.GetImage(p1, img.ID))
			if got.Status != StatusQueued || got.Size != nil || got.Checksum != "" || got.PendingKey != "" {
				t.Fatalf("after a failed upload: %+v", got)
			}
			if k := e.keys(t); len(k) != 0 {
				t.Fatalf("bytes left behind: %v", k)
			}
			// And a good upload works afterwards.
			must(e.svc.UploadData(p1, img.ID, bytes.NewReader(data), UploadOpts{Size: -1}))
		})
	}
}

func TestCrashRecovery(t *testing.T) {
	e := newEnv(t)
	p1 := project("p1")
	img := must(e.svc.CreateImage(p1, CreateImageOpts{DiskFormat: DiskRaw, ContainerFormat: "bare"}))
	// As if the process died mid-upload: saving, with partial bytes.
	key := "images/" + img.ID + "/partial"
	must(e.blobs.Put(context.Background(), key, strings.NewReader("partial")))
	if err := e.svc.modify(context.Background(), img.ID, func(_ *store.Txn, cur *Image) error {
		cur.Status, cur.PendingKey = StatusSaving, key
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := must(e.svc.GetImage(p1, img.ID))
	if got.Status != StatusQueued || got.PendingKey != "" {
		t.Fatalf("after recovery: %+v", got)
	}
	if k := e.keys(t); len(k) != 0 {
		t.Fatalf("partial bytes kept: %v", k)
	}

	// Bytes of an image whose record is gone (a crash between deleting the
	// record and the bytes) are swept at start; others are kept.
	kept := e.raw(t, p1, "kept", []byte("kept"), VisibilityPrivate)
	must(e.blobs.Put(context.Background(), "images/"+newUUID()+"/orphan", strings.NewReader("orphan")))
	must(e.blobs.Put(context.Background(), "other/thing", strings.NewReader("not ours")))
	if err := e.svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if k := e.keys(t); len(k) != 2 || !slices.Contains(k, kept.BlobKey) || !slices.Contains(k, "other/thing") {
		t.Fatalf("after the sweep: %v", k)
	}
}

func TestVisibilityRules(t *testing.T) {
	e := newEnv(t)
	p1, p2 := project("p1"), project("p2")
	_, err := e.svc.CreateImage(p1, CreateImageOpts{Visibility: VisibilityPublic})
	wantKind(t, err, errdefs.ErrForbidden)
	must(e.svc.CreateImage(p1, CreateImageOpts{Visibility: VisibilityCommunity}))
	pub := must(e.svc.CreateImage(e.admin, CreateImageOpts{Visibility: VisibilityPublic, Owner: "p1"}))
	_, err = e.svc.CreateImage(p1, CreateImageOpts{Owner: "p2"})
	wantKind(t, err, errdefs.ErrForbidden)

	priv := e.raw(t, p1, "priv", []byte("x"), VisibilityPrivate)
	_, err = e.svc.GetImage(p2, priv.ID)
	wantKind(t, err, errdefs.ErrNotFound)
	_, _, err = e.svc.OpenData(p2, priv.ID, 0, -1)
	wantKind(t, err, errdefs.ErrNotFound)
	wantKind(t, e.svc.DeleteImage(p2, priv.ID), errdefs.ErrNotFound)
	_, err = e.svc.UpdateImage(p2, priv.ID, []PatchOp{{Op: "replace", Path: "name", Value: []byte(`"x"`)}})
	wantKind(t, err, errdefs.ErrNotFound)
	// Visible but not owned: forbidden.
	_, err = e.svc.UpdateImage(p2, pub.ID, []PatchOp{{Op: "replace", Path: "name", Value: []byte(`"x"`)}})
	wantKind(t, err, errdefs.ErrForbidden)
	wantKind(t, e.svc.DeleteImage(p2, pub.ID), errdefs.ErrForbidden)
	_, err = e.svc.UpdateImage(p1, priv.ID, []PatchOp{{Op: "replace", Path: "visibility", Value: []byte(`"public"`)}})
	wantKind(t, err, errdefs.ErrForbidden)
}

func TestMembersAndLists(t *testing.T) {
	e := newEnv(t)
	p1, p2 := project("p1"), project("p2")
	img := e.raw(t, p1, "shared", []byte("abc"), VisibilityShared)
	ids := func(ctx context.Context, o ListImagesOpts) []string {
		imgs, _, err := e.svc.ListImages(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, i := range imgs {
			out = append(out, i.ID)
		}
		return out
	}
	if got := ids(p2, ListImagesOpts{}); len(got) != 0 {
		t.Fatalf("p2 lists %v before sharing", got)
	}
	m := must(e.svc.AddMember(p1, img.ID, "p2"))
	if m.Status != MemberPending {
		t.Fatalf("member = %+v", m)
	}
	_, err := e.svc.AddMember(p1, img.ID, "p2")
	wantKind(t, err, errdefs.ErrConflict)
	_, err = e.svc.AddMember(p2, img.ID, "p3")
	wantKind(t, err, errdefs.ErrForbidden)
	must(e.svc.GetImage(p2, img.ID)) // a pending member sees the image
	if got := ids(p2, ListImagesOpts{}); len(got) != 0 {
		t.Fatalf("pending image listed by default: %v", got)
	}
	if got := ids(p2, ListImagesOpts{MemberStatus: "pending"}); !slices.Equal(got, []string{img.ID}) {
		t.Fatalf("member_status=pending: %v", got)
	}
	_, err = e.svc.UpdateMember(p1, img.ID, "p2", MemberAccepted)
	wantKind(t, err, errdefs.ErrForbidden)
	must(e.svc.UpdateMember(p2, img.ID, "p2", MemberAccepted))
	if got := ids(p2, ListImagesOpts{}); !slices.Equal(got, []string{img.ID}) {
		t.Fatalf("accepted image not listed: %v", got)
	}
	if got := must(e.svc.ListMembers(p2, img.ID)); len(got) != 1 || got[0].MemberID != "p2" {
		t.Fatalf("member's view of members: %+v", got)
	}
	_, err = e.svc.GetImage(project("p3"), img.ID)
	wantKind(t, err, errdefs.ErrNotFound)
	wantKind(t, e.svc.DeleteMember(p2, img.ID, "p2"), errdefs.ErrForbidden)
	if err := e.svc.DeleteMember(p1, img.ID, "p2"); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.GetImage(p2, img.ID)
	wantKind(t, err, errdefs.ErrNotFound)
	priv := e.raw(t, p1, "priv", []byte("abc"), VisibilityPrivate)
	_, err = e.svc.AddMember(p1, priv.ID, "p2")
	wantKind(t, err, errdefs.ErrForbidden)
}

func TestListFiltersSortPaging(t *testing.T) {
	e := newEnv(t)
	p1 := project("p1")
	var want []string
	for i, n := range []string{"c", "a", "b", "d", "e"} {
		img := e.raw(t, p1, n, bytes.Repeat([]byte{1}, i+1), VisibilityPrivate)
		must(e.svc.UpdateImage(p1, img.ID, []PatchOp{{Op: "add", Path: "os_distro", Value: []byte(`"deb` + n + `"`)}}))
		want = append(want, n)
	}
	hidden := must(e.svc.CreateImage(p1, CreateImageOpts{Name: "h", Hidden: true, Tags: []string{"x"}}))
	names := func(o ListImagesOpts) []string {
		imgs, _, err := e.svc.ListImages(p1, o)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, i := range imgs {
			out = append(out, i.Name)
		}
		return out
	}
	slices.Sort(want)
	if got := names(ListImagesOpts{Sort: []Sort{{Key: "name"}}}); !slices.Equal(got, want) {
		t.Fatalf("sorted by name: %v", got)
	}
	// Paging by marker walks the same order.
	var paged []string
	marker := ""
	for {
		imgs, more, err := e.svc.ListImages(p1, ListImagesOpts{Sort: []Sort{{Key: "name"}}, Limit: 2, Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range imgs {
			paged = append(paged, i.Name)
		}
		if !more {
			break
		}
		marker = imgs[len(imgs)-1].ID
	}
	if !slices.Equal(paged, want) {
		t.Fatalf("paged: %v", paged)
	}
	if got := names(ListImagesOpts{Properties: map[string]string{"os_distro": "debb"}}); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("property filter: %v", got)
	}
	min3 := int64(3)
	if got := names(ListImagesOpts{SizeMin: &min3, Sort: []Sort{{Key: "size", Desc: true}}}); !slices.Equal(got, []string{"e", "d", "b"}) {
		t.Fatalf("size_min, by size: %v", got)
	}
	yes := true
	if got := names(ListImagesOpts{Hidden: &yes, Tags: []string{"x"}}); !slices.Equal(got, []string{hidden.Name}) {
		t.Fatalf("hidden: %v", got)
	}
	_, _, err := e.svc.ListImages(p1, ListImagesOpts{Marker: "nope"})
	wantKind(t, err, errdefs.ErrInvalid)
	_, _, err = e.svc.ListImages(p1, ListImagesOpts{Sort: []Sort{{Key: "checksum"}}})
	wantKind(t, err, errdefs.ErrInvalid)
}

func TestPatch(t *testing.T) {
	e := newEnv(t)
	p1 := project("p1")
	img := must(e.svc.CreateImage(p1, CreateImageOpts{Name: "a"}))
	ops := must(ParsePatch([]byte(`[
		{"op":"replace","path":"/name","value":"b"},
		{"op":"add","path":"/a~1b","value":"slash"},
		{"op":"add","path":"/tags","value":["t1","t1","t2"]},
		{"op":"replace","path":"/min_ram","value":512},
		{"op":"add","path":"/disk_format","value":"qcow2"}]`)))
	got := must(e.svc.UpdateImage(p1, img.ID, ops))
	if got.Name != "b" || got.Properties["a/b"] != "slash" || !slices.Equal(got.Tags, []string{"t1", "t2"}) || got.MinRAM != 512 || got.DiskFormat != "qcow2" {
		t.Fatalf("patched: %+v", got)
	}
	for _, c := range []struct {
		body string
		kind error
	}{
		{`{"op":"add"}`, errdefs.ErrInvalid},
		{`[{"path":"/name","value":"x"}]`, errdefs.ErrInvalid},
		{`[{"op":"move","path":"/name","value":"x"}]`, errdefs.ErrInvalid},
		{`[{"op":"add","path":"name","value":"x"}]`, errdefs.ErrInvalid},
		{`[{"op":"add","path":"/name"}]`, errdefs.ErrInvalid},
		{`[{"op":"add","path":"/a/b","value":"x"}]`, errdefs.ErrInvalid},
		{`[{"op":"add","path":"/a~2","value":"x"}]`, errdefs.ErrInvalid},
	} {
		_, err := ParsePatch([]byte(c.body))
		wantKind(t, err, c.kind)
	}
	for _, c := range []struct {
		op   PatchOp
		kind error
	}{
		{PatchOp{Op: "replace", Path: "status", Value: []byte(`"active"`)}, errdefs.ErrForbidden},
		{PatchOp{Op: "replace", Path: "checksum", Value: []byte(`"x"`)}, errdefs.ErrForbidden},
		{PatchOp{Op: "add", Path: "os_glance_import_task", Value: []byte(`"x"`)}, errdefs.ErrForbidden},
		{PatchOp{Op: "remove", Path: "name"}, errdefs.ErrForbidden},
		{PatchOp{Op: "remove", Path: "nope"}, errdefs.ErrConflict},
		{PatchOp{Op: "replace", Path: "nope", Value: []byte(`"x"`)}, errdefs.ErrConflict},
		{PatchOp{Op: "add", Path: "k", Value: []byte(`1`)}, errdefs.ErrInvalid},
		{PatchOp{Op: "replace", Path: "disk_format", Value: []byte(`"floppy"`)}, errdefs.ErrInvalid},
		{PatchOp{Op: "replace", Path: "visibility", Value: []byte(`"everyone"`)}, errdefs.ErrInvalid},
		{PatchOp{Op: "add", Path: "kernel_id", Value: []byte(`"not-a-uuid"`)}, errdefs.ErrInvalid},
	} {
		_, err := e.svc.UpdateImage(p1, img.ID, []PatchOp{c.op})
		if !errors.Is(err, c.kind) {
			t.Errorf("%+v: %v, want %v", c.op, err, c.kind)
		}
	}
	// All or nothing: a bad op leaves the earlier ones unapplied.
	_, err := e.svc.UpdateImage(p1, img.ID, []PatchOp{{Op: "replace", Path: "name", Value: []byte(`"c"`)}, {Op: "remove", Path: "nope"}})
	wantKind(t, err, errdefs.ErrConflict)
	if got := must(e.svc.GetImage(p1, img.ID)); got.Name != "b" {
		t.Fatalf("partial patch applied: %q", got.Name)
	}
}

func TestProtectedAndDeactivate(t *testing.T) {
	e := newEnv(t)
	p1 := project("p1")
	img := e.raw(t, p1, "a", []byte("data"), VisibilityPrivate)
	must(e.svc.UpdateImage(p1, img.ID, []PatchOp{{Op: "replace", Path: "protected", Value: []byte("true")}}))
	wantKind(t, e.svc.DeleteImage(p1, img.ID), errdefs.ErrForbidden)
	wantKind(t, e.svc.DeleteImage(e.admin, img.ID), errdefs.ErrForbidden)

	wantKind(t, e.svc.DeactivateImage(p1, img.ID), errdefs.ErrForbidden)
	if err := e.svc.DeactivateImage(e.admin, img.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err := e.svc.OpenData(p1, img.ID, 0, -1)
	wantKind(t, err, errdefs.ErrForbidden)
	if b := e.read(t, e.admin, img.ID, 0, -1); string(b) != "data" {
		t.Fatalf("admin download of a deactivated image: %q", b)
	}
	if err := e.svc.ReactivateImage(e.admin, img.ID); err != nil {
		t.Fatal(err)
	}
	if b := e.read(t, p1, img.ID, 0, -1); string(b) != "data" {
		t.Fatalf("download after reactivate: %q", b)
	}
	queued := must(e.svc.CreateImage(p1, CreateImageOpts{}))
	wantKind(t, e.svc.DeactivateImage(e.admin, queued.ID), errdefs.ErrForbidden)
	_, _, err = e.svc.OpenData(p1, queued.ID, 0, -1)
	if !errors.Is(err, ErrNoData) {
		t.Fatalf("OpenData of a queued image: %v", err)
	}

	must(e.svc.UpdateImage(p1, img.ID, []PatchOp{{Op: "replace", Path: "protected", Value: []byte("false")}}))
	if err := e.svc.DeleteImage(p1, img.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.GetImage(p1, img.ID)
	wantKind(t, err, errdefs.ErrNotFound)
	if k := e.keys(t); len(k) != 0 {
		t.Fatalf("bytes kept after delete: %v", k)
	}
	// A deleted image's id cannot come back with other data.
	_, err = e.svc.CreateImage(p1, CreateImageOpts{ID: img.ID})
	wantKind(t, err, errdefs.ErrConflict)
}

func TestQuotas(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Quota = Quota{Images: 3, Bytes: 100, StagedBytes: 50} })
	p1 := project("p1")
	a := e.raw(t, p1, "a", bytes.Repeat([]byte{1}, 60), VisibilityPrivate)
	b := must(e.svc.CreateImage(p1, CreateImageOpts{DiskFormat: DiskRaw, ContainerFormat: "bare"}))
	_, err := e.svc.UploadData(p1, b.ID, bytes.NewReader(bytes.Repeat([]byte{1}, 41)), UploadOpts{Size: -1})
	wantKind(t, err, errdefs.ErrQuotaExceeded)
	if got := must(e.svc.GetImage(p1, b.ID)); got.Status != StatusQueued {
		t.Fatalf("over-quota upload left %s", got.Status)
	}
	must(e.svc.UploadData(p1, b.ID, bytes.NewReader(bytes.Repeat([]byte{1}, 40)), UploadOpts{Size: -1}))
	c := must(e.svc.CreateImage(p1, CreateImageOpts{DiskFormat: DiskRaw, ContainerFormat: "bare"}))
	_, err = e.svc.CreateImage(p1, CreateImageOpts{})
	wantKind(t, err, errdefs.ErrQuotaExceeded)
	_, err = e.svc.StageData(p1, c.ID, bytes.NewReader(bytes.Repeat([]byte{1}, 51)), UploadOpts{Size: -1})
	wantKind(t, err, errdefs.ErrQuotaExceeded)
	if k := e.keys(t); len(k) != 2 {
		t.Fatalf("blobs after refused uploads: %v", k)
	}
	// Deleting frees the quota; another project has its own; admins set one.
	if err := e.svc.DeleteImage(p1, a.ID); err != nil {
		t.Fatal(err)
	}
	must(e.svc.CreateImage(p1, CreateImageOpts{}))
	wantKind(t, e.svc.SetQuota(p1, "p1", Quota{}), errdefs.ErrForbidden)
	if err := e.svc.SetQuota(e.admin, "p1", Quota{Images: 10}); err != nil {
		t.Fatal(err)
	}
	must(e.svc.CreateImage(p1, CreateImageOpts{}))
}

func TestStageAndImport(t *testing.T) {
	e := newEnv(t)
	p1 := project("p1")
	img := must(e.svc.CreateImage(p1, CreateImageOpts{}))
	data := bytes.Repeat([]byte("z"), 5000)
	st := must(e.svc.StageData(p1, img.ID, bytes.NewReader(data), UploadOpts{Size: -1}))
	if st.Status != StatusUploading || st.Staged == nil {
		t.Fatalf("after stage: %+v", st)
	}
	wantKind(t, e.svc.ImportImage(p1, img.ID, ImportOpts{Method: ImportGlanceDirect}), errdefs.ErrInvalid) // formats unset
	must(e.svc.UpdateImage(p1, img.ID, []PatchOp{
		{Op: "add", Path: "disk_format", Value: []byte(`"raw"`)}, {Op: "add", Path: "container_format", Value: []byte(`"bare"`)}}))
	wantKind(t, e.svc.ImportImage(p1, img.ID, ImportOpts{Method: ImportWebDownload, URI: "http://127.0.0.1/x"}), errdefs.ErrInvalid)
	if err := e.svc.ImportImage(p1, img.ID, ImportOpts{Method: ImportGlanceDirect}); err != nil {
		t.Fatal(err)
	}
	got := must(e.svc.GetImage(p1, img.ID))
	if got.Status != StatusActive || *got.Size != 5000 || got.Staged != nil {
		t.Fatalf("after import: %+v", got)
	}
	if b := e.read(t, p1, img.ID, 0, -1); !bytes.Equal(b, data) {
		t.Fatal("imported data differs")
	}

	// Staged bytes that do not match disk_format are refused at import.
	bad := must(e.svc.CreateImage(p1, CreateImageOpts{DiskFormat: DiskRaw, ContainerFormat: "bare"}))
	must(e.svc.StageData(p1, bad.ID, bytes.NewReader(qcow2Header(3, 1<<20, 0, 0)), UploadOpts{Size: -1}))
	wantKind(t, e.svc.ImportImage(p1, bad.ID, ImportOpts{Method: ImportGlanceDirect}), errdefs.ErrInvalid)
	if got := must(e.svc.GetImage(p1, bad.ID)); got.Status != StatusQueued || got.Staged != nil || got.FailedImport != ImportGlanceDirect {
		t.Fatalf("after a refused import: %+v", got)
	}
	if k := e.keys(t); len(k) != 1 {
		t.Fatalf("blobs: %v", k)
	}
}

// TestUploadChecksVMDKFooter: the footer at the end of a streamed VMDK is
// checked before the image becomes active, on upload and on import.
func TestUploadChecksVMDKFooter(t *testing.T) {
	e := newEnv(t)
	p1 := project("p1")
	head := vmdkSparse(desc("streamOptimized", `RW 2048 SPARSE "a.vmdk"`))
	binary.LittleEndian.PutUint64(head[56:], vmdkGDAtEnd)
	footer := make([]byte, vmdkTail)
	binary.LittleEndian.PutUint32(footer[12:], 3)
	copy(footer[512:], head[:512])
	binary.LittleEndian.PutUint64(footer[512+56:], 128)
	good := slices.Concat(head, bytes.Repeat([]byte{0}, 3<<20), footer)
	bad := bytes.Clone(good)
	bad[len(bad)-1024+28] = 7 // the footer points at another descriptor
	for _, c := range []struct {
		data []byte
		ok   bool
	}{{good, true}, {bad, false}} {
		img := must(e.svc.CreateImage(p1, CreateImageOpts{DiskFormat: DiskVMDK, ContainerFormat: "bare"}))
		_, err := e.svc.UploadData(p1, img.ID, bytes.NewReader(c.data), UploadOpts{Size: -1})
		if (err == nil) != c.ok {
			t.Fatalf("upload (want ok=%v): %v", c.ok, err)
		}
		st := must(e.svc.CreateImage(p1, CreateImageOpts{DiskFormat: DiskVMDK, ContainerFormat: "bare"}))
		_, err = e.svc.StageData(p1, st.ID, bytes.NewReader(c.data), UploadOpts{Size: -1})
		if err == nil {
			err = e.svc.ImportImage(p1, st.ID, ImportOpts{Method: ImportGlanceDirect})
		}
		if (err == nil) != c.ok {
			t.Fatalf("stage and import (want ok=%v): %v", c.ok, err)
		}
	}
	if k := e.keys(t); len(k) != 2 {
		t.Fatalf("blobs: %v", k)
	}
}

// TestKernelBootImages registers a kernel (aki), a ramdisk (ari) and a root
// disk (ami) linked by kernel_id and ramdisk_id, as compute boots them.
func TestKernelBootImages(t *testing.T) {
	e := newEnv(t)
	kernel := make([]byte, 64<<10) // a bzImage: boot signature, no partition table
	copy(kernel, "MZ")
	for i := 446; i < 510; i++ {
		kernel[i] = 0xff
	}
	binary.LittleEndian.PutUint16(kernel[510:], 0xaa55)
	upload := func(name, format string, data []byte, props map[string]string) *Image {
		img := must(e.svc.CreateImage(e.admin, CreateImageOpts{Name: name, DiskFormat: format, ContainerFormat: format,
			Visibility: VisibilityPublic, Owner: "admin", Properties: props}))
		return must(e.svc.UploadData(e.admin, img.ID, bytes.NewReader(data), UploadOpts{Size: -1}))
	}
	aki := upload("k", DiskAKI, kernel, nil)
	ari := upload("r", DiskARI, append([]byte("\x1f\x8b\x08\x00"), make([]byte, 1000)...), nil)
	ami := upload("root", DiskAMI, make([]byte, 1<<20), map[string]string{"kernel_id": aki.ID, "ramdisk_id": ari.ID})
	got := must(e.svc.GetImage(project("p2"), ami.ID))
	if got.KernelID() != aki.ID || got.RamdiskID() != ari.ID || got.Status != StatusActive {
		t.Fatalf("ami as another project sees it: %+v", got)
	}
	// The same kernel bytes are not a disk: refused as raw (an MBR with an
	// invalid partition table).
	img := must(e.svc.CreateImage(e.admin, CreateImageOpts{DiskFormat: DiskRaw, ContainerFormat: "bare"}))
	_, err := e.svc.UploadData(e.admin, img.ID, bytes.NewReader(kernel), UploadOpts{Size: -1})
	wantKind(t, err, errdefs.ErrInvalid)
}
