package blockstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/store"
)

// Where backups keep their objects: an account of their own that the
// Swift API never serves.
const (
	BackupAccount   = "blockstore"
	BackupContainer = "backups"
)

// BackupStatus is a backup's status.
type BackupStatus string

// Backup statuses.
const (
	BackupCreating  BackupStatus = "creating"
	BackupAvailable BackupStatus = "available"
	BackupDeleting  BackupStatus = "deleting"
	BackupRestoring BackupStatus = "restoring"
	BackupError     BackupStatus = "error"
)

// Backup is a copy of a volume's bytes in the object store: a manifest
// object listing fixed-size chunks with their SHA-256, each chunk an
// object. An incremental backup stores only the chunks that differ from
// its parent's and refers to the parent's objects for the rest; chunks of
// zeros are not stored at all.
type Backup struct {
	store.Meta
	ID            string       `json:"id"`
	ProjectID     string       `json:"project_id"`
	UserID        string       `json:"user_id"`
	VolumeID      string       `json:"volume_id"`
	Name          string       `json:"name,omitempty"`
	Description   string       `json:"description,omitempty"`
	Status        BackupStatus `json:"status"`
	SizeGiB       int          `json:"size"`
	ObjectCount   int          `json:"object_count"`
	Incremental   bool         `json:"is_incremental"`
	ParentID      string       `json:"parent_id,omitempty"`
	FailReason    string       `json:"fail_reason,omitempty"`
	QuotaReleased bool         `json:"quota_released,omitempty"`
	// RestoreVolumeID is the volume a restore in flight writes.
	RestoreVolumeID string    `json:"restore_volume_id,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	DataTimestamp   time.Time `json:"data_timestamp"`
}

// StoreKey implements store.Record.
func (b *Backup) StoreKey() string { return b.ID }

// manifest is a backup's chunk list, kept as an object.
type manifest struct {
	Size      int64   `json:"size"`
	ChunkSize int     `json:"chunk_size"`
	Chunks    []chunk `json:"chunks"`
}

type chunk struct {
	// SHA256 of the chunk's bytes, hex; "" for a chunk of zeros (not
	// stored).
	SHA256 string `json:"sha256,omitempty"`
	// Object is the chunk's object name (in this backup or a parent).
	Object string `json:"object,omitempty"`
	Len    int    `json:"len"`
}

func objKey(name string) objectstore.ObjectKey {
	return objectstore.ObjectKey{Account: BackupAccount, Container: BackupContainer, Name: name}
}

func (s *Service) visibleBackup(tx *store.Txn, c *identity.Credentials, id string) (*Backup, error) {
	b, err := store.Get[Backup](nil, tx, backupTable, id)
	if err != nil || !sees(c, b.ProjectID) {
		return nil, notFound("Backup", id)
	}
	return b, nil
}

// CreateBackupOpts describe a new backup.
type CreateBackupOpts struct {
	VolumeID    string
	Name        string
	Description string
	// Incremental backs up what changed since the volume's latest backup.
	Incremental bool
	// Force allows an in-use volume.
	Force bool
}

// CreateBackup backs a volume of the caller's project up to the object
// store: the backup is "creating" and the volume "backing-up" until the
// chunks are stored.
func (s *Service) CreateBackup(ctx context.Context, opts CreateBackupOpts) (*Backup, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	bs, err := s.backupSvc()
	if err != nil {
		return nil, err
	}
	if err := validName("name", opts.Name, maxNameLen); err != nil {
		return nil, err
	}
	if err := validName("description", opts.Description, maxDescription); err != nil {
		return nil, err
	}
	var bk *Backup
	var vol *Volume
	var parent *Backup
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		v, err := s.visibleVolume(tx, c, opts.VolumeID)
		if err != nil {
			return err
		}
		if err := s.allowed(c, "volume:backup", v.ProjectID); err != nil {
			return err
		}
		if v.Status != StatusAvailable && (!opts.Force || v.Status != StatusInUse) {
			return badRequest("Invalid volume: Volume to be backed up must be available or in-use, but the current status is \"%s\".", v.Status)
		}
		parent = nil
		if opts.Incremental {
			it, err := store.List[Backup](nil, tx, backupTable, volumeIndex, v.ID)
			if err != nil {
				return err
			}
			for b := range it {
				if b.Status == BackupAvailable && (parent == nil || b.CreatedAt.After(parent.CreatedAt)) {
					parent = b
				}
			}
			if parent == nil {
				return badRequest("Invalid backup: No backups available to do an incremental backup.")
			}
		}
		if err := s.checkQuota(tx, v.ProjectID, nil, quotaDelta{backups: 1, backupGigabytes: v.SizeGiB}); err != nil {
			return err
		}
		bk = &Backup{ID: newID(), ProjectID: v.ProjectID, UserID: c.UserID, VolumeID: v.ID, Name: opts.Name, Description: opts.Description,
			Status: BackupCreating, SizeGiB: v.SizeGiB, Incremental: parent != nil, CreatedAt: tx.Now(), UpdatedAt: tx.Now(), DataTimestamp: tx.Now()}
		if parent != nil {
			bk.ParentID = parent.ID
		}
		if err := tx.Insert(backupTable, bk); err != nil {
			return err
		}
		v.PrevStatus, v.Status, v.UpdatedAt = v.Status, StatusBackingUp, tx.Now()
		vol = v
		if err := tx.Update(volumeTable, v); err != nil {
			return err
		}
		return tx.Emit("backup.create.start", bk.ID, bk.ProjectID, nil)
	})
	if err != nil {
		return nil, err
	}
	s.spawn(ctx, "create backup", bk.ID, func(ctx context.Context) error {
		n, err := s.writeBackup(ctx, bs, vol, bk, parent)
		if err != nil {
			s.deleteBackupObjects(context.WithoutCancel(ctx), bs, bk.ID)
		}
		ctx = context.WithoutCancel(ctx)
		return errors.Join(err, s.st.Update(ctx, func(tx *store.Txn) error {
			b, err2 := store.Get[Backup](nil, tx, backupTable, bk.ID)
			if err2 != nil {
				return err2
			}
			if err != nil {
				b.Status, b.FailReason, b.QuotaReleased = BackupError, faultOf(err), true
			} else {
				b.Status, b.ObjectCount = BackupAvailable, n
			}
			b.UpdatedAt = tx.Now()
			if err := tx.Update(backupTable, b); err != nil {
				return err
			}
			if v, err := store.Get[Volume](nil, tx, volumeTable, bk.VolumeID); err == nil && v.Status == StatusBackingUp {
				v.Status, v.PrevStatus = v.PrevStatus, ""
				if err := tx.Update(volumeTable, v); err != nil {
					return err
				}
			}
			return tx.Emit("backup.create.end", b.ID, b.ProjectID, map[string]string{"status": string(b.Status)})
		}))
	})
	return bk, nil
}

// readManifest reads a backup's manifest object.
func readManifest(ctx context.Context, bs BackupStore, id string) (*manifest, error) {
	rc, _, err := bs.Get(ctx, objKey(id+"/manifest"), 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var m manifest
	if err := json.NewDecoder(io.LimitReader(rc, 64<<20)).Decode(&m); err != nil {
		return nil, fmt.Errorf("blockstore: backup %s: manifest: %w", id, err)
	}
	return &m, nil
}

// writeBackup stores the volume's chunks and manifest and returns the
// number of objects it wrote.
func (s *Service) writeBackup(ctx context.Context, bs BackupStore, v *Volume, bk, parent *Backup) (int, error) {
	if err := bs.CreateContainer(ctx, BackupAccount, BackupContainer); err != nil {
		return 0, err
	}
	var prev *manifest
	if parent != nil {
		var err error
		if prev, err = readManifest(ctx, bs, parent.ID); err != nil {
			return 0, err
		}
	}
	rc, err := s.backends[v.Backend].OpenVolume(ctx, v.ID)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	m := manifest{ChunkSize: s.cfg.BackupChunkSize}
	buf := make([]byte, m.ChunkSize)
	objects := 0
	for i := 0; ; i++ {
		n, rerr := io.ReadFull(rc, buf)
		if n > 0 {
			data := buf[:n]
			ch := chunk{Len: n}
			if !allZero(data) {
				sum := sha256.Sum256(data)
				ch.SHA256 = hex.EncodeToString(sum[:])
				if prev != nil && i < len(prev.Chunks) && prev.Chunks[i].SHA256 == ch.SHA256 && prev.Chunks[i].Len == n {
					ch.Object = prev.Chunks[i].Object
				} else {
					ch.Object = bk.ID + "/" + fmt.Sprintf("%08d", i)
					if _, err := bs.Put(ctx, objKey(ch.Object), bytes.NewReader(data), objectstore.PutOptions{}); err != nil {
						return 0, err
					}
					objects++
				}
			}
			m.Chunks = append(m.Chunks, ch)
			m.Size += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return 0, rerr
		}
	}
	body, err := json.Marshal(m)
	if err != nil {
		return 0, err
	}
	if _, err := bs.Put(ctx, objKey(bk.ID+"/manifest"), bytes.NewReader(body), objectstore.PutOptions{ContentType: "application/json"}); err != nil {
		return 0, err
	}
	return objects + 1, nil
}

// zeros is compared with in allZero (bytes.Equal is vectorized).
var zeros = make([]byte, 64<<10)

func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// deleteBackupObjects deletes the objects named after backup id (its own
// chunks and manifest), keeping those of its parents.
func (s *Service) deleteBackupObjects(ctx context.Context, bs BackupStore, id string) {
	m, err := readManifest(ctx, bs, id)
	if err == nil {
		for _, ch := range m.Chunks {
			if strings.HasPrefix(ch.Object, id+"/") {
				_ = bs.Delete(ctx, objKey(ch.Object))
			}
		}
		_ = bs.Delete(ctx, objKey(id+"/manifest"))
		return
	}
	// No manifest: a backup that failed part way; its chunks are
	// numbered from 0 and written in order.
	for i := 0; ; i++ {
		if err := bs.Delete(ctx, objKey(id+"/"+fmt.Sprintf("%08d", i))); err != nil {
			if i > 0 || errdefs.IsNotFound(err) {
				return
			}
		}
	}
}

// chunkReader streams a backup's bytes in order, verifying every chunk's
// SHA-256.
type chunkReader struct {
	ctx context.Context
	bs  BackupStore
	m   *manifest
	i   int
	cur []byte
	// zero is reused for the chunks of zeros.
	zero []byte
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.i >= len(r.m.Chunks) {
			return 0, io.EOF
		}
		ch := r.m.Chunks[r.i]
		r.i++
		if ch.Len < 0 || ch.Len > 1<<30 {
			return 0, fmt.Errorf("blockstore: backup chunk %d: bad length", r.i-1)
		}
		if ch.SHA256 == "" {
			if len(r.zero) < ch.Len {
				r.zero = make([]byte, ch.Len)
			}
			r.cur = r.zero[:ch.Len]
			continue
		}
		rc, _, err := r.bs.Get(r.ctx, objKey(ch.Object), 0, -1)
		if err != nil {
			return 0, fmt.Errorf("blockstore: backup chunk %s: %w", ch.Object, err)
		}
		data, err := io.ReadAll(io.LimitReader(rc, int64(ch.Len)+1))
		rc.Close()
		if err != nil {
			return 0, err
		}
		sum := sha256.Sum256(data)
		if len(data) != ch.Len || hex.EncodeToString(sum[:]) != ch.SHA256 {
			return 0, fmt.Errorf("blockstore: backup chunk %s failed its SHA-256 check: %w", ch.Object, objectstore.ErrCorrupt)
		}
		r.cur = data
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// GetBackup returns a backup of the caller's project.
func (s *Service) GetBackup(ctx context.Context, id string) (*Backup, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	return s.visibleBackup(s.st.Snapshot(), c, id)
}

// ListBackups returns the backups the caller may see, oldest first.
func (s *Service) ListBackups(ctx context.Context, opts ListVolumesOpts, volumeID string) ([]*Backup, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	all := opts.AllTenants && s.policy.Allowed(c, "volume:all_tenants", identity.Target{})
	it, err := listScope[Backup](s.st.Snapshot(), backupTable, all, c.ProjectID)
	if err != nil {
		return nil, err
	}
	var out []*Backup
	for b := range it {
		if opts.Name != "" && b.Name != opts.Name || opts.Status != "" && string(b.Status) != opts.Status || volumeID != "" && b.VolumeID != volumeID {
			continue
		}
		out = append(out, b)
	}
	return oldestFirst(out, func(x *Backup) (time.Time, string) { return x.CreatedAt, x.ID }), nil
}

// HasDependents reports whether incremental backups are based on b.
func (s *Service) HasDependents(b *Backup) bool {
	it, err := store.List[Backup](nil, s.st.Snapshot(), backupTable, volumeIndex, b.VolumeID)
	if err != nil {
		return false
	}
	for o := range it {
		if o.ParentID == b.ID {
			return true
		}
	}
	return false
}

// DeleteBackup deletes an available or failed backup that no incremental
// backup depends on.
func (s *Service) DeleteBackup(ctx context.Context, id string) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	bs, err := s.backupSvc()
	if err != nil {
		return err
	}
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		b, err := s.visibleBackup(tx, c, id)
		if err != nil {
			return err
		}
		if err := s.allowed(c, "volume:backup", b.ProjectID); err != nil {
			return err
		}
		if b.Status != BackupAvailable && b.Status != BackupError {
			return badRequest("Invalid backup: Backup status must be available or error")
		}
		it, err := store.List[Backup](nil, tx, backupTable, volumeIndex, b.VolumeID)
		if err != nil {
			return err
		}
		for o := range it {
			if o.ParentID == b.ID {
				return badRequest("Invalid backup: Incremental backups exist for this backup.")
			}
		}
		b.Status, b.UpdatedAt = BackupDeleting, tx.Now()
		return tx.Update(backupTable, b)
	})
	if err != nil {
		return err
	}
	s.spawn(ctx, "delete backup", id, func(ctx context.Context) error {
		ctx = context.WithoutCancel(ctx)
		s.deleteBackupObjects(ctx, bs, id)
		return s.st.Update(ctx, func(tx *store.Txn) error {
			if err := tx.Delete(backupTable, id); err != nil && !errdefs.IsNotFound(err) {
				return err
			}
			return tx.Emit("backup.delete.end", id, "", nil)
		})
	})
	return nil
}

// RestoreBackupOpts say where a backup is restored.
type RestoreBackupOpts struct {
	// VolumeID is an available volume of the caller's project at least as
	// large as the backup; empty makes a new volume.
	VolumeID string
	// Name names the new volume.
	Name string
}

// RestoreBackup writes a backup's bytes to a volume, new or existing: the
// backup is "restoring" and the volume "restoring-backup" until done; a
// failed restore leaves the volume in "error_restoring". It returns the
// volume.
func (s *Service) RestoreBackup(ctx context.Context, id string, opts RestoreBackupOpts) (*Volume, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	bs, err := s.backupSvc()
	if err != nil {
		return nil, err
	}
	b, err := s.visibleBackup(s.st.Snapshot(), c, id)
	if err != nil {
		return nil, err
	}
	if err := s.allowed(c, "volume:backup", b.ProjectID); err != nil {
		return nil, err
	}
	if b.Status != BackupAvailable {
		return nil, badRequest("Invalid backup: Backup status must be available")
	}
	fresh := opts.VolumeID == ""
	if fresh {
		name := opts.Name
		if name == "" {
			name = "restore_backup_" + id
		}
		v, err := s.CreateVolume(ctx, CreateVolumeOpts{Name: name, SizeGiB: b.SizeGiB, backupID: id})
		if err != nil {
			return nil, err
		}
		opts.VolumeID = v.ID
	}
	var vol *Volume
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		v, err := s.visibleVolume(tx, c, opts.VolumeID)
		if err != nil {
			return err
		}
		b, err := s.visibleBackup(tx, c, id)
		if err != nil {
			return err
		}
		if b.Status != BackupAvailable {
			return badRequest("Invalid backup: Backup status must be available")
		}
		if !fresh && v.Status != StatusAvailable {
			return badRequest("Invalid volume: Volume to be restored to must be available")
		}
		if v.SizeGiB < b.SizeGiB {
			return badRequest("Invalid volume: volume size %d is too small to restore backup of size %d.", v.SizeGiB, b.SizeGiB)
		}
		v.Status, v.UpdatedAt = StatusRestoringBackup, tx.Now()
		v.UpdatedAt = tx.Now()
		if err := tx.Update(volumeTable, v); err != nil {
			return err
		}
		b.Status, b.RestoreVolumeID, b.UpdatedAt = BackupRestoring, v.ID, tx.Now()
		vol = v
		return tx.Update(backupTable, b)
	})
	if err != nil {
		if fresh {
			s.failCreate(opts.VolumeID, err)
		}
		return nil, err
	}
	s.spawn(ctx, "restore backup", id, func(ctx context.Context) error {
		err := s.restore(ctx, bs, vol, id, fresh)
		ctx = context.WithoutCancel(ctx)
		if err != nil && fresh {
			s.failCreate(vol.ID, err)
		}
		return errors.Join(err, s.st.Update(ctx, func(tx *store.Txn) error {
			if b, err := store.Get[Backup](nil, tx, backupTable, id); err == nil {
				b.Status, b.RestoreVolumeID, b.UpdatedAt = BackupAvailable, "", tx.Now()
				if err := tx.Update(backupTable, b); err != nil {
					return err
				}
			}
			v, verr := store.Get[Volume](nil, tx, volumeTable, vol.ID)
			if verr != nil {
				return nil //nolint:nilerr // deleted meanwhile
			}
			switch {
			case err != nil && !fresh:
				v.Status, v.Fault = StatusErrorRestoring, faultOf(err)
			case err == nil:
				v.Status = StatusAvailable
			default:
				return nil
			}
			v.UpdatedAt = tx.Now()
			if err := tx.Update(volumeTable, v); err != nil {
				return err
			}
			return tx.Emit("backup.restore.end", id, v.ProjectID, map[string]string{"volume_id": v.ID})
		}))
	})
	return vol.clone(), nil
}

// restore writes backup id into vol (creating its bytes first if fresh).
func (s *Service) restore(ctx context.Context, bs BackupStore, vol *Volume, id string, fresh bool) error {
	b := s.backends[vol.Backend]
	if fresh {
		if err := b.CreateVolume(ctx, VolumeSpec{ID: vol.ID, SizeGiB: vol.SizeGiB, Pool: vol.Pool}, Source{}); err != nil {
			return err
		}
	}
	m, err := readManifest(ctx, bs, id)
	if err != nil {
		return err
	}
	if m.Size > int64(vol.SizeGiB)<<30 {
		return badRequest("Invalid backup: the backup holds %d bytes, more than the volume", m.Size)
	}
	return b.WriteVolume(ctx, vol.ID, &chunkReader{ctx: ctx, bs: bs, m: m}, "raw")
}
