package blockstore

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// fakeBackend is the least Backend the fuzz targets need: nothing is ever
// created (no I/O, no goroutines left behind).
type fakeBackend struct{ Backend }

func (fakeBackend) Pools(context.Context) ([]PoolStats, error) {
	return []PoolStats{{Name: "p", TotalGiB: 100, FreeGiB: 100}}, nil
}

func (fakeBackend) CreateVolume(context.Context, VolumeSpec, Source) error { return nil }

func (fakeBackend) Capabilities() Capabilities { return Capabilities{} }

func (fakeBackend) ListVolumes(context.Context) ([]string, error) { return nil, nil }

// FuzzAPIBodies sends hostile bodies to the volume create, action,
// snapshot, attachment and quota handlers: they never panic and answer
// 2xx or 4xx, never 5xx.
func FuzzAPIBodies(f *testing.F) {
	st, err := store.Open(context.Background(), memstore.New(), Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	svc, err := New(Config{Store: st, Backends: []BackendConfig{{Name: "b", Backend: fakeBackend{}}}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		f.Fatal(err)
	}
	defer svc.Close()
	a := &api{svc: svc}
	ctx := identity.WithCredentials(context.Background(), &identity.Credentials{ProjectID: "p", Roles: []string{identity.RoleMember}})
	for _, s := range []string{`{"volume":{"size":1,"name":"x","metadata":{"a":"b"}}}`, `{"volume":{"size":"7"}}`, `{"os-extend":{"new_size":"2"}}`,
		`{"os-set_bootable":{"bootable":"maybe"}}`, `{"snapshot":{"volume_id":"x","force":"yes"}}`, `{"quota_set":{"volumes":"-5"}}`,
		`{"attachment":{"volume_uuid":"x","connector":{"host":7}}}`, `{"os-reset_status":{"status":"bogus"}}`} {
		f.Add(s, uint8(0))
	}
	handlers := []http.HandlerFunc{a.createVolume, a.volumeAction, a.createSnapshot, a.createAttachment, a.setQuota, a.createBackup, a.createTransfer, a.acceptTransfer}
	f.Fuzz(func(t *testing.T, body string, which uint8) {
		h := handlers[int(which)%len(handlers)]
		r := httptest.NewRequest(http.MethodPost, "/v3/p/x", strings.NewReader(body)).WithContext(ctx)
		r.SetPathValue("id", "00000000-0000-0000-0000-000000000000")
		r.SetPathValue("target", "p")
		w := httptest.NewRecorder()
		h(w, r)
		if w.Code >= 500 && w.Code != http.StatusNotImplemented {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		if w.Code >= 400 && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("error body is not JSON: %s", w.Body)
		}
	})
}

// FuzzPyDict: the metadata filter parser never panics.
func FuzzPyDict(f *testing.F) {
	f.Add(`{'k': 'v', 'a':'b'}`)
	f.Fuzz(func(_ *testing.T, s string) { _ = parsePyDict(s) })
}
