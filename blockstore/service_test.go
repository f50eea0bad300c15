package blockstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stratuskit/stratus/blockstore"
	"github.com/stratuskit/stratus/blockstore/fakevol"
	"github.com/stratuskit/stratus/blockstore/filevol"
	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/objectstore/memobj"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

type env struct {
	st  *store.Store
	svc *blockstore.Service
	be  blockstore.Backend
	obj *memobj.Backend
}

func newStore(t testing.TB) *store.Store {
	st, err := store.Open(context.Background(), memstore.New(), blockstore.Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newEnv(t testing.TB, st *store.Store, be blockstore.Backend) *env {
	t.Helper()
	svc, err := blockstore.New(blockstore.Config{Store: st, Backends: []blockstore.BackendConfig{{Name: "b1", Backend: be}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), BackupChunkSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	obj := memobj.New()
	svc.UseBackups(obj)
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return &env{st: st, svc: svc, be: be, obj: obj}
}

func project(p string) context.Context {
	return identity.WithCredentials(context.Background(), &identity.Credentials{UserID: "u-" + p, ProjectID: p,
		Roles: []string{identity.RoleMember, identity.RoleReader}})
}

var admin = identity.WithCredentials(context.Background(), identity.SystemAdmin())

// must returns v, or panics (failing the test) if err is not nil.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// wait polls a volume until its status is want.
func (e *env) wait(t testing.TB, ctx context.Context, id string, want blockstore.VolumeStatus) *blockstore.Volume {
	t.Helper()
	e.svc.Wait()
	v := must(e.svc.GetVolume(ctx, id))
	if v.Status != want {
		t.Fatalf("volume %s: status %s (%s), want %s", id, v.Status, v.Fault, want)
	}
	return v
}

func (e *env) read(t testing.TB, id string, n int) []byte {
	t.Helper()
	rc := must(e.be.OpenVolume(context.Background(), id))
	defer rc.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	return buf
}

func TestVolumeLifecycle(t *testing.T) {
	e := newEnv(t, newStore(t), fakevol.New(nil))
	ctx := project("p1")
	v := must(e.svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{Name: "v", SizeGiB: 1}))
	if v.Status != blockstore.StatusCreating {
		t.Fatalf("status %s", v.Status)
	}
	e.wait(t, ctx, v.ID, blockstore.StatusAvailable)
	must(e.svc.CreateSnapshot(ctx, blockstore.CreateSnapshotOpts{VolumeID: v.ID}))
	e.svc.Wait()
	if err := e.svc.DeleteVolume(ctx, v.ID, blockstore.DeleteVolumeOpts{}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("delete with snapshots: %v", err)
	}
	if err := e.svc.ExtendVolume(ctx, v.ID, 3); err != nil {
		t.Fatal(err)
	}
	if got := e.wait(t, ctx, v.ID, blockstore.StatusAvailable); got.SizeGiB != 3 {
		t.Fatalf("size after extend %d", got.SizeGiB)
	}
	if err := e.svc.DeleteVolume(ctx, v.ID, blockstore.DeleteVolumeOpts{Cascade: true}); err != nil {
		t.Fatal(err)
	}
	e.svc.Wait()
	if _, err := e.svc.GetVolume(ctx, v.ID); !errdefs.IsNotFound(err) {
		t.Fatalf("deleted volume: %v", err)
	}
	if ids := must(e.be.ListVolumes(context.Background())); len(ids) != 0 {
		t.Fatalf("backend still holds %v", ids)
	}
}

// A backend failure during create ends in error, leaves no bytes and
// gives the quota back.
func TestCreateFailureReleasesEverything(t *testing.T) {
	be := fakevol.New(nil)
	e := newEnv(t, newStore(t), be)
	ctx := project("p1")
	if err := e.svc.SetQuota(admin, "p1", map[string]int{"volumes": 1}); err != nil {
		t.Fatal(err)
	}
	be.SetHooks(fakevol.Hooks{CreateVolume: func(blockstore.VolumeSpec) error { return errors.New("disk on fire") }})
	v := must(e.svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{SizeGiB: 1}))
	got := e.wait(t, ctx, v.ID, blockstore.StatusError)
	if strings.Contains(got.Fault, "fire") {
		t.Errorf("fault leaks the backend's message: %q", got.Fault)
	}
	if ids := must(be.ListVolumes(context.Background())); len(ids) != 0 {
		t.Fatalf("failed create left %v", ids)
	}
	be.SetHooks(fakevol.Hooks{})
	v2 := must(e.svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{SizeGiB: 1}))
	e.wait(t, ctx, v2.ID, blockstore.StatusAvailable)
	q := must(e.svc.GetQuota(ctx, "p1"))
	if q["volumes"].InUse != 1 {
		t.Fatalf("volumes in use = %d, want 1", q["volumes"].InUse)
	}
	_, err := e.svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{SizeGiB: 1})
	if !errors.Is(err, errdefs.ErrQuotaExceeded) || !strings.Contains(err.Error(), "'volumes'") {
		t.Fatalf("over quota: %v", err)
	}
}

// A crash between connect and complete settles on restart: the
// unfinished attachment is gone and the volume available.
func TestCrashMidAttachSettles(t *testing.T) {
	st := newStore(t)
	be := fakevol.New(nil)
	e := newEnv(t, st, be)
	ctx := project("p1")
	v := must(e.svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{SizeGiB: 1}))
	e.wait(t, ctx, v.ID, blockstore.StatusAvailable)
	done := must(e.svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{SizeGiB: 1}))
	e.wait(t, ctx, done.ID, blockstore.StatusAvailable)
	at := must(e.svc.CreateAttachment(ctx, blockstore.CreateAttachmentOpts{VolumeID: v.ID, InstanceID: "srv", Connector: &blockstore.Connector{Host: "h"}}))
	if at.Connection == nil || at.Connection.File == nil {
		t.Fatalf("no connection info: %+v", at)
	}
	at2 := must(e.svc.CreateAttachment(ctx, blockstore.CreateAttachmentOpts{VolumeID: done.ID, InstanceID: "srv", Connector: &blockstore.Connector{Host: "h"}}))
	if err := e.svc.CompleteAttachment(ctx, at2.ID); err != nil {
		t.Fatal(err)
	}
	e.wait(t, ctx, v.ID, blockstore.StatusAttaching)
	e.svc.Close() // the crash

	e2 := newEnv(t, st, be)
	e2.wait(t, ctx, v.ID, blockstore.StatusAvailable)
	e2.wait(t, ctx, done.ID, blockstore.StatusInUse)
	if _, err := e2.svc.GetAttachment(ctx, at.ID); !errdefs.IsNotFound(err) {
		t.Fatalf("unfinished attachment survived: %v", err)
	}
	if be.Connections(v.ID) != 0 {
		t.Fatalf("volume still connected")
	}
	if err := e2.svc.DeleteVolume(ctx, done.ID, blockstore.DeleteVolumeOpts{}); !errors.Is(err, errdefs.ErrInvalid) ||
		!strings.Contains(err.Error(), "must be available") {
		t.Fatalf("deleting an in-use volume: %v", err)
	}
}

// A volume of another project cannot be seen, attached, snapshotted,
// cloned, backed up or transferred: all not found.
func TestCrossProjectIsNotFound(t *testing.T) {
	e := newEnv(t, newStore(t), fakevol.New(nil))
	p1, p2 := project("p1"), project("p2")
	v := must(e.svc.CreateVolume(p1, blockstore.CreateVolumeOpts{SizeGiB: 1}))
	e.wait(t, p1, v.ID, blockstore.StatusAvailable)
	sn := must(e.svc.CreateSnapshot(p1, blockstore.CreateSnapshotOpts{VolumeID: v.ID}))
	e.svc.Wait()
	checks := map[string]error{}
	_, checks["get"] = e.svc.GetVolume(p2, v.ID)
	_, checks["attach"] = e.svc.CreateAttachment(p2, blockstore.CreateAttachmentOpts{VolumeID: v.ID, InstanceID: "x"})
	_, checks["snapshot"] = e.svc.CreateSnapshot(p2, blockstore.CreateSnapshotOpts{VolumeID: v.ID})
	_, checks["clone"] = e.svc.CreateVolume(p2, blockstore.CreateVolumeOpts{SourceVolID: v.ID})
	_, checks["from snapshot"] = e.svc.CreateVolume(p2, blockstore.CreateVolumeOpts{SnapshotID: sn.ID})
	_, checks["backup"] = e.svc.CreateBackup(p2, blockstore.CreateBackupOpts{VolumeID: v.ID})
	_, checks["transfer"] = e.svc.CreateTransfer(p2, v.ID, "t")
	checks["delete"] = e.svc.DeleteVolume(p2, v.ID, blockstore.DeleteVolumeOpts{})
	checks["extend"] = e.svc.ExtendVolume(p2, v.ID, 2)
	for what, err := range checks {
		if !errdefs.IsNotFound(err) {
			t.Errorf("%s of another project's volume: %v, want not found", what, err)
		}
	}
	if vs := must(e.svc.ListVolumes(p2, blockstore.ListVolumesOpts{AllTenants: true})); len(vs) != 0 {
		t.Errorf("p2 lists %d volumes", len(vs))
	}
}

// A new volume never shows bytes of a deleted one (OSSA-2023-003 class),
// through the service on the real file backend.
func TestNoOldBytesFilevol(t *testing.T) {
	be := must(filevol.Open(t.TempDir(), nil))
	e := newEnv(t, newStore(t), be)
	ctx := project("p1")
	v := must(e.svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{SizeGiB: 1}))
	e.wait(t, ctx, v.ID, blockstore.StatusAvailable)
	secret := bytes.Repeat([]byte("secret!"), 1<<17)
	if err := be.WriteVolume(context.Background(), v.ID, bytes.NewReader(secret), "raw"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteVolume(ctx, v.ID, blockstore.DeleteVolumeOpts{}); err != nil {
		t.Fatal(err)
	}
	e.svc.Wait()
	for range 3 {
		n := must(e.svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{SizeGiB: 1}))
		e.wait(t, ctx, n.ID, blockstore.StatusAvailable)
		if got := e.read(t, n.ID, len(secret)); !bytes.Equal(got, make([]byte, len(secret))) {
			t.Fatal("a new volume shows bytes of a deleted one")
		}
	}
}

// Full and incremental backups restore to identical bytes, to a new and an
// existing volume; an incremental stores only the changed chunks; a
// corrupted chunk fails the restore.
func TestBackupRestore(t *testing.T) {
	be := fakevol.New(nil)
	e := newEnv(t, newStore(t), be)
	ctx := project("p1")
	v := must(e.svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{SizeGiB: 1}))
	e.wait(t, ctx, v.ID, blockstore.StatusAvailable)
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := be.WriteVolume(context.Background(), v.ID, bytes.NewReader(data), "raw"); err != nil {
		t.Fatal(err)
	}
	full := must(e.svc.CreateBackup(ctx, blockstore.CreateBackupOpts{VolumeID: v.ID}))
	e.wait(t, ctx, v.ID, blockstore.StatusAvailable)
	fb := must(e.svc.GetBackup(ctx, full.ID))
	if fb.Status != blockstore.BackupAvailable || fb.ObjectCount != 16+1 {
		t.Fatalf("full backup: %+v", fb)
	}
	copy(data[100:], "changed")
	if err := be.WriteVolume(context.Background(), v.ID, bytes.NewReader(data), "raw"); err != nil {
		t.Fatal(err)
	}
	inc := must(e.svc.CreateBackup(ctx, blockstore.CreateBackupOpts{VolumeID: v.ID, Incremental: true}))
	e.svc.Wait()
	ib := must(e.svc.GetBackup(ctx, inc.ID))
	if !ib.Incremental || ib.ParentID != full.ID || ib.ObjectCount != 1+1 {
		t.Fatalf("incremental backup: %+v", ib)
	}
	nv := must(e.svc.RestoreBackup(ctx, inc.ID, blockstore.RestoreBackupOpts{}))
	e.wait(t, ctx, nv.ID, blockstore.StatusAvailable)
	if !bytes.Equal(e.read(t, nv.ID, len(data)), data) {
		t.Fatal("restored bytes differ")
	}
	must(e.svc.RestoreBackup(ctx, full.ID, blockstore.RestoreBackupOpts{VolumeID: nv.ID}))
	e.wait(t, ctx, nv.ID, blockstore.StatusAvailable)
	if got := e.read(t, nv.ID, 200); !bytes.Equal(got[100:107], []byte{byte(700 % 256), byte(707 % 256), byte(714 % 256), byte(721 % 256), byte(728 % 256), byte(735 % 256), byte(742 % 256)}) {
		t.Fatal("restore to an existing volume did not give the full backup's bytes")
	}
	if err := e.svc.DeleteBackup(ctx, full.ID); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("deleting a backup with dependents: %v", err)
	}
	// Corrupt the incremental's own chunk: the restore fails.
	if _, err := e.obj.Put(context.Background(), objKey(inc.ID+"/00000000"), bytes.NewReader(make([]byte, 64<<10)), objPut()); err != nil {
		t.Fatal(err)
	}
	must(e.svc.RestoreBackup(ctx, inc.ID, blockstore.RestoreBackupOpts{VolumeID: nv.ID}))
	e.wait(t, ctx, nv.ID, blockstore.StatusErrorRestoring)
}

// Transfers move a volume to the project that knows the key.
func TestTransfer(t *testing.T) {
	e := newEnv(t, newStore(t), fakevol.New(nil))
	p1, p2 := project("p1"), project("p2")
	v := must(e.svc.CreateVolume(p1, blockstore.CreateVolumeOpts{SizeGiB: 1}))
	e.wait(t, p1, v.ID, blockstore.StatusAvailable)
	tr := must(e.svc.CreateTransfer(p1, v.ID, "gift"))
	if tr.AuthKey == "" || strings.Contains(tr.KeyHash, tr.AuthKey) {
		t.Fatalf("transfer: %+v", tr)
	}
	if _, err := e.svc.AcceptTransfer(p2, tr.ID, "wrong"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("wrong key: %v", err)
	}
	must(e.svc.AcceptTransfer(p2, tr.ID, tr.AuthKey))
	if got := e.wait(t, p2, v.ID, blockstore.StatusAvailable); got.ProjectID != "p2" {
		t.Fatalf("project after transfer: %s", got.ProjectID)
	}
	if _, err := e.svc.GetVolume(p1, v.ID); !errdefs.IsNotFound(err) {
		t.Fatalf("old owner still sees the volume: %v", err)
	}
}

// The scheduler honours the type's backend and the thin over-subscription.
func TestSchedulerCapacity(t *testing.T) {
	st := newStore(t)
	small := fakevol.New(&fakevol.Options{CapacityGiB: 10, OverSubscription: 2})
	svc, err := blockstore.New(blockstore.Config{Store: st, Backends: []blockstore.BackendConfig{{Name: "small", Backend: small}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Quota: map[string]int{"gigabytes": -1, "volumes": -1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx := project("p1")
	must(svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{SizeGiB: 15}))
	if _, err := svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{SizeGiB: 6}); err == nil {
		t.Fatal("over-subscribed beyond the ratio")
	}
	must(svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{SizeGiB: 5}))
	must(svc.CreateType(admin, blockstore.CreateTypeOpts{Name: "elsewhere", ExtraSpecs: map[string]string{"volume_backend_name": "other"}}))
	if _, err := svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{SizeGiB: 1, VolumeType: "elsewhere"}); err == nil {
		t.Fatal("a type for another backend was placed")
	}
	svc.Wait()
	_ = time.Second
}
