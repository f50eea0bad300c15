package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/image/memblob"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

type env struct {
	svc   *Service
	st    *store.Store
	blobs *memblob.Store
	admin context.Context
}

func newEnv(t testing.TB, mod ...func(*Config)) *env {
	t.Helper()
	st, err := store.Open(context.Background(), memstore.New(), Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	blobs := memblob.New()
	cfg := Config{Store: st, Blobs: blobs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, m := range mod {
		m(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return &env{svc: svc, st: st, blobs: blobs, admin: identity.WithCredentials(context.Background(), identity.SystemAdmin())}
}

// project returns the context of a member of project p.
func project(p string) context.Context {
	return identity.WithCredentials(context.Background(), &identity.Credentials{
		UserID: "u-" + p, ProjectID: p, Roles: []string{identity.RoleMember, identity.RoleReader},
	})
}

// must returns v, or panics (failing the test) if err is not nil.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func wantKind(t testing.TB, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error = %v, want %v", err, kind)
	}
}

// raw creates and uploads a raw image with data in project p.
func (e *env) raw(t testing.TB, ctx context.Context, name string, data []byte, vis Visibility) *Image {
	t.Helper()
	img := must(e.svc.CreateImage(ctx, CreateImageOpts{Name: name, DiskFormat: DiskRaw, ContainerFormat: "bare", Visibility: vis}))
	return must(e.svc.UploadData(ctx, img.ID, bytes.NewReader(data), UploadOpts{Size: -1}))
}

func (e *env) keys(t testing.TB) []string {
	t.Helper()
	k := must(e.blobs.Keys())
	slices.Sort(k)
	return k
}

func (e *env) read(t testing.TB, ctx context.Context, id string, off, n int64) []byte {
	t.Helper()
	_, rc, err := e.svc.OpenData(ctx, id, off, n)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	return must(io.ReadAll(rc))
}

var _ = errdefs.ErrNotFound
