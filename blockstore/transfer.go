package blockstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"slices"
	"time"

	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// Transfer offers a volume to another project, which accepts it with the
// transfer's id and auth key. Only a salted SHA-256 of the key is kept;
// the key is shown once, when the transfer is created.
type Transfer struct {
	store.Meta
	ID        string    `json:"id"`
	VolumeID  string    `json:"volume_id"`
	ProjectID string    `json:"project_id"`
	Name      string    `json:"name,omitempty"`
	Salt      string    `json:"salt"`
	KeyHash   string    `json:"key_hash"`
	CreatedAt time.Time `json:"created_at"`
	// AuthKey is set only in CreateTransfer's result.
	AuthKey string `json:"-"`
}

// StoreKey implements store.Record.
func (t *Transfer) StoreKey() string { return t.ID }

func hashKey(salt, key string) string {
	sum := sha256.Sum256([]byte(salt + key))
	return hex.EncodeToString(sum[:])
}

// CreateTransfer offers an available volume of the caller's project for
// transfer: the volume is "awaiting-transfer" until the transfer is
// accepted or deleted. The result carries the auth key.
func (s *Service) CreateTransfer(ctx context.Context, volumeID, name string) (*Transfer, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validName("name", name, maxNameLen); err != nil {
		return nil, err
	}
	salt, key := randHex(8), randHex(8)
	var tr *Transfer
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		v, err := s.visibleVolume(tx, c, volumeID)
		if err != nil {
			return err
		}
		if err := s.allowed(c, "volume:transfer", v.ProjectID); err != nil {
			return err
		}
		if v.Status != StatusAvailable {
			return badRequest("Invalid volume: status must be available")
		}
		if snaps, err := snapshotsOf(tx, v.ID); err != nil || len(snaps) > 0 {
			if err != nil {
				return err
			}
			return badRequest("Invalid volume: volume %s has snapshots; transfer them with the volume is not supported", v.ID)
		}
		tr = &Transfer{ID: newID(), VolumeID: v.ID, ProjectID: v.ProjectID, Name: name, Salt: salt, KeyHash: hashKey(salt, key), CreatedAt: tx.Now()}
		if err := tx.Insert(transferTable, tr); err != nil {
			return err
		}
		v.Status, v.UpdatedAt = StatusAwaitingTransfer, tx.Now()
		if err := tx.Update(volumeTable, v); err != nil {
			return err
		}
		return tx.Emit("transfer.create", tr.ID, v.ProjectID, map[string]string{"volume_id": v.ID})
	})
	if err != nil {
		return nil, err
	}
	out := *tr
	out.AuthKey = key
	return &out, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// GetTransfer returns a transfer of the caller's project.
func (s *Service) GetTransfer(ctx context.Context, id string) (*Transfer, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	tr, err := store.Get[Transfer](nil, s.st.Snapshot(), transferTable, id)
	if err != nil || !sees(c, tr.ProjectID) {
		return nil, notFound("Transfer", id)
	}
	return tr, nil
}

// ListTransfers returns the caller's project's transfers (every
// project's with allTenants, for readers of the cloud).
func (s *Service) ListTransfers(ctx context.Context, allTenants bool) ([]*Transfer, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	all := allTenants && s.policy.Allowed(c, "volume:all_tenants", identity.Target{})
	it, err := store.List[Transfer](nil, s.st.Snapshot(), transferTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	var out []*Transfer
	for t := range it {
		if all || t.ProjectID == c.ProjectID {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b *Transfer) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// DeleteTransfer cancels a transfer; the volume is available again.
func (s *Service) DeleteTransfer(ctx context.Context, id string) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		tr, err := store.Get[Transfer](nil, tx, transferTable, id)
		if err != nil || !sees(c, tr.ProjectID) {
			return notFound("Transfer", id)
		}
		if err := s.allowed(c, "volume:transfer", tr.ProjectID); err != nil {
			return err
		}
		if err := tx.Delete(transferTable, id); err != nil {
			return err
		}
		if v, err := store.Get[Volume](nil, tx, volumeTable, tr.VolumeID); err == nil && v.Status == StatusAwaitingTransfer {
			v.Status, v.UpdatedAt = StatusAvailable, tx.Now()
			return tx.Update(volumeTable, v)
		}
		return nil
	})
}

// AcceptTransfer moves the volume of transfer id to the caller's project
// if authKey matches, within the caller's quota. Any project may accept a
// transfer it knows the id and key of; a wrong key is refused (400) the
// same way for every transfer, so keys cannot be probed per id.
func (s *Service) AcceptTransfer(ctx context.Context, id, authKey string) (*Transfer, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if c.ProjectID == "" {
		return nil, badRequest("accepting a transfer needs a project-scoped token")
	}
	if err := s.allowed(c, "volume:transfer", c.ProjectID); err != nil {
		return nil, err
	}
	var tr *Transfer
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		var err error
		tr, err = store.Get[Transfer](nil, tx, transferTable, id)
		if err != nil {
			return notFound("Transfer", id)
		}
		if subtle.ConstantTimeCompare([]byte(hashKey(tr.Salt, authKey)), []byte(tr.KeyHash)) != 1 {
			return badRequest("Invalid auth key: Attempt to transfer %s with invalid auth key.", id)
		}
		v, err := store.Get[Volume](nil, tx, volumeTable, tr.VolumeID)
		if err != nil {
			return notFound("Volume", tr.VolumeID)
		}
		vt, _ := store.Get[VolumeType](nil, tx, typeTable, v.TypeID)
		if err := s.checkQuota(tx, c.ProjectID, vt, quotaDelta{volumes: 1, gigabytes: v.SizeGiB}); err != nil {
			return err
		}
		if err := tx.Delete(transferTable, id); err != nil {
			return err
		}
		from := v.ProjectID
		v.ProjectID, v.UserID, v.Status, v.UpdatedAt = c.ProjectID, c.UserID, StatusAvailable, tx.Now()
		if err := tx.Update(volumeTable, v); err != nil {
			return err
		}
		return tx.Emit("transfer.accept", id, c.ProjectID, map[string]string{"volume_id": v.ID, "from_project": from})
	})
	if err != nil {
		return nil, err
	}
	return tr, nil
}
