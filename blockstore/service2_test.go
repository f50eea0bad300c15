package blockstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stratuskit/stratus/blockstore"
	"github.com/stratuskit/stratus/blockstore/fakevol"
	"github.com/stratuskit/stratus/blockstore/filevol"
	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
)

// images is an in-memory blockstore.Images that checks the caller's
// project like the image service does.
type images struct {
	mu    sync.Mutex
	imgs  map[string]*blockstore.ImageInfo
	data  map[string][]byte
	owner map[string]string
}

func newImages() *images {
	return &images{imgs: map[string]*blockstore.ImageInfo{}, data: map[string][]byte{}, owner: map[string]string{}}
}

func (m *images) add(id, project string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.imgs[id] = &blockstore.ImageInfo{ID: id, Name: id, Status: "active", DiskFormat: "raw", ContainerFormat: "bare", Checksum: "c", Size: int64(len(data))}
	m.data[id], m.owner[id] = data, project
}

func (m *images) visible(ctx context.Context, id string) (*blockstore.ImageInfo, error) {
	img, ok := m.imgs[id]
	if !ok || m.owner[id] != identity.CredentialsFrom(ctx).ProjectID {
		return nil, errdefs.Wrap(errdefs.ErrNotFound, errors.New("no image "+id))
	}
	c := *img
	return &c, nil
}

func (m *images) GetImage(ctx context.Context, id string) (*blockstore.ImageInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.visible(ctx, id)
}

func (m *images) OpenImage(ctx context.Context, id string) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.visible(ctx, id); err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(m.data[id])), nil
}

func (m *images) CreateImage(ctx context.Context, opts blockstore.NewImage) (*blockstore.ImageInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := "img-" + opts.Name
	m.imgs[id] = &blockstore.ImageInfo{ID: id, Name: opts.Name, Status: "queued", DiskFormat: opts.DiskFormat, ContainerFormat: opts.ContainerFormat}
	m.owner[id] = identity.CredentialsFrom(ctx).ProjectID
	return m.imgs[id], nil
}

// UploadImage keeps the first MiB and the size of what it reads, and
// fails if anything after the first MiB is not zero (the tests' images are
// small, their volumes 1 GiB).
func (m *images) UploadImage(ctx context.Context, id string, r io.Reader) error {
	head := make([]byte, 1<<20)
	n, err := io.ReadFull(r, head)
	if err != nil && err != io.ErrUnexpectedEOF {
		return err
	}
	buf := make([]byte, 4<<20)
	size := int64(n)
	for {
		k, err := r.Read(buf)
		if !bytes.Equal(buf[:k], make([]byte, k)) {
			return errors.New("non-zero bytes after the first MiB")
		}
		size += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data[id], m.imgs[id].Status, m.imgs[id].Size = head[:n], "active", size
	return nil
}

func TestVolumeFromImageAndUpload(t *testing.T) {
	be := fakevol.New(nil)
	e := newEnv(t, newStore(t), be)
	ims := newImages()
	e.svc.UseImages(ims)
	ctx := project("p1")
	data := bytes.Repeat([]byte("stratus!"), 1<<16)
	ims.add("img1", "p1", data)
	ims.add("other", "p2", data)
	if _, err := e.svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{ImageID: "other", SizeGiB: 1}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("another project's image: %v", err)
	}
	v := must(e.svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{ImageID: "img1"}))
	if v.SizeGiB != 1 || !v.Bootable || v.ImageMetadata["image_id"] != "img1" {
		t.Fatalf("volume from image: %+v", v)
	}
	e.wait(t, ctx, v.ID, blockstore.StatusAvailable)
	if !bytes.Equal(e.read(t, v.ID, len(data)), data) {
		t.Fatal("volume bytes differ from the image")
	}
	img, _ := must2(e.svc.UploadVolumeToImage(ctx, v.ID, blockstore.UploadImageOpts{ImageName: "up"}))
	e.wait(t, ctx, v.ID, blockstore.StatusAvailable)
	ims.mu.Lock()
	got, size := ims.data[img.ID], ims.imgs[img.ID].Size
	ims.mu.Unlock()
	if size != 1<<30 || !bytes.Equal(got[:len(data)], data) {
		t.Fatalf("uploaded image: %d bytes", size)
	}
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}

// Per-type quotas, private types and online extend.
func TestTypesQuotasExtend(t *testing.T) {
	e := newEnv(t, newStore(t), fakevol.New(nil))
	ctx := project("p1")
	gold := must(e.svc.CreateType(admin, blockstore.CreateTypeOpts{Name: "gold"}))
	priv := false
	secret := must(e.svc.CreateType(admin, blockstore.CreateTypeOpts{Name: "secret", IsPublic: &priv}))
	if _, err := e.svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{SizeGiB: 1, VolumeType: "secret"}); !errdefs.IsNotFound(err) {
		t.Fatalf("private type: %v", err)
	}
	must(e.svc.UpdateType(admin, secret.ID, blockstore.UpdateTypeOpts{AddProject: "p1"}))
	must(e.svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{SizeGiB: 1, VolumeType: "secret"}))
	if _, err := e.svc.CreateType(ctx, blockstore.CreateTypeOpts{Name: "mine"}); !errors.Is(err, errdefs.ErrForbidden) {
		t.Fatalf("member creates a type: %v", err)
	}
	if err := e.svc.SetQuota(admin, "p1", map[string]int{"volumes_gold": 1, "gigabytes_gold": 3}); err != nil {
		t.Fatal(err)
	}
	v := must(e.svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{SizeGiB: 2, VolumeType: gold.ID}))
	_, err := e.svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{SizeGiB: 1, VolumeType: "gold"})
	if !errors.Is(err, errdefs.ErrQuotaExceeded) || !strings.Contains(err.Error(), "volumes_gold") {
		t.Fatalf("per-type volumes quota: %v", err)
	}
	e.wait(t, ctx, v.ID, blockstore.StatusAvailable)
	if err := e.svc.ExtendVolume(ctx, v.ID, 4); !errors.Is(err, errdefs.ErrQuotaExceeded) || !strings.Contains(err.Error(), "gigabytes_gold") {
		t.Fatalf("per-type gigabytes quota on extend: %v", err)
	}
	at := must(e.svc.CreateAttachment(ctx, blockstore.CreateAttachmentOpts{VolumeID: v.ID, InstanceID: "s", Connector: &blockstore.Connector{Host: "h"}}))
	if err := e.svc.CompleteAttachment(ctx, at.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ExtendVolume(ctx, v.ID, 3); err != nil {
		t.Fatalf("online extend: %v", err)
	}
	if got := e.wait(t, ctx, v.ID, blockstore.StatusInUse); got.SizeGiB != 3 {
		t.Fatalf("size after online extend %d", got.SizeGiB)
	}
	if _, err := e.svc.CreateAttachment(ctx, blockstore.CreateAttachmentOpts{VolumeID: v.ID, InstanceID: "s2"}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("second attachment of a non-multiattach volume: %v", err)
	}
	if again := must(e.svc.CreateAttachment(ctx, blockstore.CreateAttachmentOpts{VolumeID: v.ID, InstanceID: "s"})); again.ID != at.ID {
		t.Fatal("attachment create is not idempotent per instance")
	}
	if err := e.svc.DeleteType(admin, "gold"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("deleting a type in use: %v", err)
	}
}

// failingReader returns n bytes of data, then an error.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("connection reset")
	}
	k := min(len(p), r.n)
	clear(p[:k])
	r.n -= k
	return k, nil
}

type failingImages struct{ *images }

func (f failingImages) OpenImage(context.Context, string) (io.ReadCloser, error) {
	return io.NopCloser(&failingReader{n: 5 << 20}), nil
}

// On the real file backend, an image download that fails half way ends
// in error with no file left and the quota released; a volume file no
// record owns is deleted at the next start.
func TestFilevolFaultsAndSweep(t *testing.T) {
	dir := t.TempDir()
	be := must(filevol.Open(dir, &filevol.Options{Format: "qcow2"}))
	st := newStore(t)
	e := newEnv(t, st, be)
	ims := newImages()
	ims.add("img", "p1", make([]byte, 8<<20))
	e.svc.UseImages(failingImages{ims})
	ctx := project("p1")
	v := must(e.svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{ImageID: "img", SizeGiB: 1}))
	e.wait(t, ctx, v.ID, blockstore.StatusError)
	if ids := must(be.ListVolumes(context.Background())); len(ids) != 0 {
		t.Fatalf("failed create left %v", ids)
	}
	for _, sub := range []string{"tmp", "images"} {
		if left := must(os.ReadDir(filepath.Join(dir, sub))); len(left) != 0 {
			t.Fatalf("%s/ keeps %d files", sub, len(left))
		}
	}
	if q := must(e.svc.GetQuota(ctx, "p1")); q["volumes"].InUse != 0 || q["gigabytes"].InUse != 0 {
		t.Fatalf("quota still held: %+v %+v", q["volumes"], q["gigabytes"])
	}
	orphan := "0b5d9e61-0000-4000-8000-000000000001"
	if err := be.CreateVolume(context.Background(), blockstore.VolumeSpec{ID: orphan, SizeGiB: 1, Pool: "pool1"}, blockstore.Source{}); err != nil {
		t.Fatal(err)
	}
	e.svc.Close()
	newEnv(t, st, be)
	if ids := must(be.ListVolumes(context.Background())); len(ids) != 0 {
		t.Fatalf("the sweep kept %v", ids)
	}
}
