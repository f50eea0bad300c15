package boltstore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/boltstore"
	"github.com/stratuskit/stratus/store/storetest"
)

// Person is at version 2: version 1 had one "fullname" field.
type Person struct {
	store.Meta
	ID    string `json:"id"`
	First string `json:"first"`
	Last  string `json:"last"`
}

func (p *Person) StoreKey() string { return p.ID }

var peopleV2 = store.Table{
	Name: "test.people",
	New:  func() store.Record { return new(Person) },
	Upgrades: []store.Upgrade{
		func(f map[string]json.RawMessage) error { // 1 -> 2: split fullname
			var full string
			if err := json.Unmarshal(f["fullname"], &full); err != nil {
				return fmt.Errorf("fullname: %w", err)
			}
			first, last, _ := strings.Cut(full, " ")
			f["first"], _ = json.Marshal(first)
			f["last"], _ = json.Marshal(last)
			delete(f, "fullname")
			return nil
		},
	},
}

// writeV1 writes version-1 records the way an older Stratus did, with raw
// bbolt calls and the storage layout of StorageVersion 1.
type rawRecord struct {
	rev  uint64
	json string
}

func writeV1(t *testing.T, path string, rev uint64, records map[string]rawRecord) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucketIfNotExists([]byte("meta"))
		meta.Put([]byte("storage_version"), binary.BigEndian.AppendUint64(nil, 1))
		meta.Put([]byte("revision"), binary.BigEndian.AppendUint64(nil, rev))
		tables, _ := tx.CreateBucketIfNotExists([]byte("tables"))
		b, err := tables.CreateBucketIfNotExists([]byte("test.people"))
		if err != nil {
			return err
		}
		for k, v := range records {
			val := append(binary.BigEndian.AppendUint64(nil, v.rev), v.json...)
			if err := b.Put([]byte(k), val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSchemaUpgrade(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "stratus.db")
	writeV1(t, path, 7, map[string]rawRecord{
		"u1": {3, `{"id":"u1","fullname":"Ada Lovelace"}`},
		"u2": {7, `{"id":"u2","fullname":"Grace Hopper","_v":1}`},
	})
	b, err := boltstore.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, b, []store.Table{peopleV2}, &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	p, err := store.Get[Person](nil, st.Snapshot(), "test.people", "u1")
	if err != nil || p.First != "Ada" || p.Last != "Lovelace" || p.SchemaVersion != 2 || p.Revision != 8 {
		t.Fatalf("upgraded record %+v (%v)", p, err)
	}
	if st.Revision() != 8 {
		t.Fatalf("revision %d after writing back upgrades, want 8", st.Revision())
	}
	// The upgrade was written back at revision 8; an update works on it.
	p.Last = "King"
	if err := st.Update(ctx, func(tx *store.Txn) error { return tx.Update("test.people", p) }); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// The upgrade was written back: the raw file holds version 2 records.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket([]byte("tables")).Bucket([]byte("test.people")).Get([]byte("u2"))[8:]
		var f map[string]any
		if err := json.Unmarshal(raw, &f); err != nil {
			return err
		}
		if f["_v"] != 2.0 || f["first"] != "Grace" || f["fullname"] != nil {
			return fmt.Errorf("raw u2 after upgrade: %s", raw)
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
}

func TestNewerRecordVersionRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stratus.db")
	writeV1(t, path, 1, map[string]rawRecord{"u1": {1, `{"id":"u1","first":"A","_v":3}`}})
	b, err := boltstore.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Open(t.Context(), b, []store.Table{peopleV2}, nil)
	if err == nil || !strings.Contains(err.Error(), "newer than this program") {
		t.Fatalf("opening a record from the future: %v", err)
	}
}

func TestNewerStorageVersionRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stratus.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucketIfNotExists([]byte("meta"))
		return meta.Put([]byte("storage_version"), binary.BigEndian.AppendUint64(nil, 99))
	})
	db.Close()
	if _, err := boltstore.Open(t.Context(), path, nil); err == nil || !strings.Contains(err.Error(), "storage version 99") {
		t.Fatalf("opening a newer layout: %v", err)
	}
}

func TestSecondOpenIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stratus.db")
	b, err := boltstore.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// Another process: bbolt's lock is a flock, so a second open in this
	// process would also block, but test the real case.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BOLTSTORE_LOCK_PATH="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "in use by another process") || !strings.Contains(string(out), "conflict=true") {
		t.Fatalf("second open said:\n%s", out)
	}
}

// lockHelper is the second process of TestSecondOpenIsRefused.
func lockHelper(path string) {
	_, err := boltstore.Open(context.Background(), path, &boltstore.Options{LockTimeout: 200 * time.Millisecond})
	fmt.Printf("err=%v conflict=%v\n", err, errors.Is(err, errdefs.ErrConflict))
}

func TestBackupRestores(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	b, err := boltstore.Open(ctx, filepath.Join(dir, "a.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, b, storetest.Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range 100 {
		id := fmt.Sprintf("w%03d", i)
		if err := st.Update(ctx, func(tx *store.Txn) error {
			return tx.Insert("test.widgets", &storetest.Widget{ID: id, Project: "p", Name: id})
		}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	n, err := st.Backup(ctx, &buf)
	if err != nil || n != int64(buf.Len()) || n == 0 {
		t.Fatalf("backup: %d bytes, %v", n, err)
	}
	restored := filepath.Join(dir, "restored.db")
	if err := os.WriteFile(restored, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := boltstore.Check(restored); err != nil {
		t.Fatal(err)
	}
	b2, err := boltstore.Open(ctx, restored, nil)
	if err != nil {
		t.Fatal(err)
	}
	st2, err := store.Open(ctx, b2, storetest.Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if st2.Revision() != st.Revision() {
		t.Fatalf("restored revision %d, want %d", st2.Revision(), st.Revision())
	}
	seq, err := store.List[storetest.Widget](nil, st2.Snapshot(), "test.widgets", "project", "p")
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for range seq {
		count++
	}
	if count != 100 {
		t.Fatalf("restored %d widgets, want 100", count)
	}
}

func TestPreallocateKeepsData(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "stratus.db")
	open := func() *store.Store {
		b, err := boltstore.Open(ctx, path, &boltstore.Options{Preallocate: 4 << 20})
		if err != nil {
			t.Fatal(err)
		}
		st, err := store.Open(ctx, b, storetest.Tables(), &store.Options{CompactInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := open()
	if err := st.Update(ctx, func(tx *store.Txn) error {
		return tx.Insert("test.widgets", &storetest.Widget{ID: "w", Project: "p", Name: "w"})
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if fi, err := os.Stat(path); err != nil || fi.Size() < 4<<20 {
		t.Fatalf("file not preallocated: %v %v", fi.Size(), err)
	}
	st = open()
	defer st.Close()
	if _, err := store.Get[storetest.Widget](nil, st.Snapshot(), "test.widgets", "w"); err != nil {
		t.Fatal(err)
	}
}

// TestFullDisk fills a small tmpfs: the commit that does not fit fails with
// ErrUnavailable wrapping ENOSPC, is not acknowledged and not visible, the
// store keeps serving, and every acknowledged write is there after reopen.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("TestFullDisk needs root to mount a small tmpfs; CI runs as root")
		}
		t.Skip("needs root to mount a small tmpfs (runs in CI)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	ctx := t.Context()
	path := filepath.Join(dir, "stratus.db")
	b, err := boltstore.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, b, storetest.Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 2000)
	acked := 0
	var fullErr error
	for i := range 10000 {
		id := fmt.Sprintf("w%05d", i)
		err := st.Update(ctx, func(tx *store.Txn) error {
			return tx.Insert("test.widgets", &storetest.Widget{ID: id, Project: "p", Name: id, Tags: []string{pad}})
		})
		if err != nil {
			fullErr = err
			if _, gerr := store.Get[storetest.Widget](nil, st.Snapshot(), "test.widgets", id); !errors.Is(gerr, errdefs.ErrNotFound) {
				t.Fatalf("write that failed on a full disk is visible: %v", gerr)
			}
			break
		}
		acked++
	}
	if fullErr == nil {
		t.Fatal("512 KiB never filled up")
	}
	if !errors.Is(fullErr, errdefs.ErrUnavailable) || !errors.Is(fullErr, syscall.ENOSPC) {
		t.Fatalf("full disk: %v, want ErrUnavailable wrapping ENOSPC", fullErr)
	}
	t.Logf("%d writes acknowledged before the disk filled: %v", acked, fullErr)
	// Reads keep working.
	if _, err := store.Get[storetest.Widget](nil, st.Snapshot(), "test.widgets", "w00000"); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := boltstore.Check(path); err != nil {
		t.Fatal(err)
	}
	b, err = boltstore.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err = store.Open(ctx, b, storetest.Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range acked {
		if _, err := store.Get[storetest.Widget](nil, st.Snapshot(), "test.widgets", fmt.Sprintf("w%05d", i)); err != nil {
			t.Fatalf("acknowledged write %d lost after a full disk: %v", i, err)
		}
	}
}
