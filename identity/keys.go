package identity

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// Key repositories (records of the keys table).
const (
	// tokenKeysID is the repository of the token encryption keys.
	tokenKeysID = "token"
	// credentialKeysID is the repository of the key that encrypts the
	// blobs of the credentials API (see Config.CredentialKey).
	credentialKeysID = "credential"
)

// TokenKeys is a key repository in the store, shaped like Keystone's fernet
// repository: the primary key encrypts new tokens; the staged key is the
// next primary, already accepted for decryption so that a controller that
// has not yet seen a rotation still reads the tokens of one that has; the
// secondaries are former primaries, kept to decrypt the tokens they issued
// until those expire. Every controller reads the same record, so a rotation
// made by one is seen by all.
type TokenKeys struct {
	store.Meta
	// ID names the repository: "token" or "credential".
	ID string `json:"id"`
	// Staged becomes the primary at the next rotation.
	Staged []byte `json:"staged,omitempty"`
	// Primary encrypts.
	Primary []byte `json:"primary,omitempty"`
	// Secondaries are former primaries, the most recent first.
	Secondaries [][]byte `json:"secondaries,omitempty"`
	// RotatedAt is the time of the last rotation (or of the creation).
	RotatedAt time.Time `json:"rotated_at"`
	// Keys is the format before key rotation existed (the primary first);
	// it is read as Primary and Secondaries.
	Keys [][]byte `json:"keys,omitempty"`
	// MaxTokenTTL is the longest token lifetime of the controllers,
	// MaxTTLSeenAt when one of them last said it issues tokens that long:
	// revocation events live that long, whatever the lifetime of the
	// controller that writes them (token repository only).
	MaxTokenTTL  time.Duration `json:"max_token_ttl,omitempty"`
	MaxTTLSeenAt time.Time     `json:"max_ttl_seen_at"`
}

// StoreKey implements store.Record.
func (k *TokenKeys) StoreKey() string { return k.ID }

var keyTableDef = store.Table{Name: keyTable, New: func() store.Record { return new(TokenKeys) }}

// canonical returns the keys in the current format.
func (k *TokenKeys) canonical() *TokenKeys {
	if k.Primary == nil && len(k.Keys) > 0 {
		k.Primary, k.Secondaries, k.Keys = k.Keys[0], k.Keys[1:], nil
	}
	return k
}

// all returns every key that decrypts.
func (k *TokenKeys) all() [][]byte {
	out := make([][]byte, 0, 2+len(k.Secondaries))
	if k.Staged != nil {
		out = append(out, k.Staged)
	}
	if k.Primary != nil {
		out = append(out, k.Primary)
	}
	return append(out, k.Secondaries...)
}

func newKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

// keyring holds the token keys as AEADs by key id: the primary encrypts,
// all decrypt. It is immutable; ch closes when the stored keys change.
type keyring struct {
	ch        <-chan struct{}
	primaryID uint32
	aeads     map[uint32]cipher.AEAD
}

func (kr *keyring) changed() bool {
	select {
	case <-kr.ch:
		return true
	default:
		return false
	}
}

func keyID(k []byte) uint32 {
	h := sha256.Sum256(k)
	return binary.BigEndian.Uint32(h[:4])
}

func newAEAD(k []byte) (cipher.AEAD, error) {
	blk, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("identity: token key: %w", err)
	}
	return cipher.NewGCM(blk)
}

func newKeyring(rec *TokenKeys) (*keyring, error) {
	if rec.Primary == nil {
		return nil, errors.New("identity: no primary token key")
	}
	kr := &keyring{primaryID: keyID(rec.Primary), aeads: map[uint32]cipher.AEAD{}}
	for _, k := range rec.all() {
		g, err := newAEAD(k)
		if err != nil {
			return nil, err
		}
		kr.aeads[keyID(k)] = g
	}
	return kr, nil
}

// keyring returns the token keys, loading them from the store when they
// changed, and creating them on first use.
func (s *Service) keyring(ctx context.Context) (*keyring, error) {
	if kr := s.keys.Load(); kr != nil && !kr.changed() {
		return kr, nil
	}
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	if kr := s.keys.Load(); kr != nil && !kr.changed() {
		return kr, nil
	}
	rec, ch, err := s.loadKeys(tokenKeysID)
	if errors.Is(err, errdefs.ErrNotFound) {
		now := s.now()
		err = s.st.Update(ctx, func(tx *store.Txn) error {
			if _, err := store.Get[TokenKeys](nil, tx, keyTable, tokenKeysID); err == nil {
				return nil // another controller made them
			}
			return tx.Insert(keyTable, &TokenKeys{ID: tokenKeysID, Staged: newKey(), Primary: newKey(), RotatedAt: now})
		})
		if err != nil && !errors.Is(err, errdefs.ErrConflict) {
			return nil, fmt.Errorf("identity: create token keys: %w", err)
		}
		// On a conflict another controller created them first: use those.
		rec, ch, err = s.loadKeys(tokenKeysID)
	}
	if err != nil {
		return nil, fmt.Errorf("identity: load token keys: %w", err)
	}
	kr, err := newKeyring(rec)
	if err != nil {
		return nil, err
	}
	kr.ch = ch
	s.keys.Store(kr)
	return kr, nil
}

// loadKeys reads a key repository with a channel that closes when the
// keys table changes.
func (s *Service) loadKeys(id string) (*TokenKeys, <-chan struct{}, error) {
	ws := memdb.NewWatchSet()
	tx := s.st.Snapshot()
	// Listing the table gives one channel for the whole table.
	if _, err := store.List[TokenKeys](ws, tx, keyTable, store.IDIndex); err != nil {
		return nil, nil, err
	}
	var ch <-chan struct{}
	for c := range ws {
		ch = c
	}
	rec, err := store.Get[TokenKeys](nil, tx, keyTable, id)
	if err != nil {
		return nil, nil, err
	}
	return rec.canonical(), ch, nil
}

// RotateTokenKeys rotates the token keys as keystone-manage fernet_rotate
// does: the staged key becomes the primary, the primary the first
// secondary, a new staged key is made, and the oldest secondaries are
// retired so that at most Config.MaxActiveKeys keys (staged, primary and
// secondaries) remain. Tokens encrypted with a retired key no longer
// validate; the others stay valid until they expire. Rotate no more often
// than the token lifetime divided by (MaxActiveKeys - 2), or valid tokens
// are rejected early. Cloud admins only.
func (s *Service) RotateTokenKeys(ctx context.Context) error {
	if err := s.policy.Enforce(ctx, "identity:rotate_keys", Target{}); err != nil {
		return err
	}
	return s.rotate(ctx, 0)
}

// rotate rotates the token keys unless they were rotated less than
// minAge ago (so that controllers on a schedule rotate once between them).
func (s *Service) rotate(ctx context.Context, minAge time.Duration) error {
	if _, err := s.keyring(ctx); err != nil {
		return err
	}
	staged := newKey()
	now := s.now()
	err := s.update(ctx, func(tx *store.Txn) error {
		rec, err := store.Get[TokenKeys](nil, tx, keyTable, tokenKeysID)
		if err != nil {
			return err
		}
		rec.canonical()
		if minAge > 0 && now.Sub(rec.RotatedAt) < minAge {
			return nil
		}
		next := rec.Staged
		if next == nil {
			next = newKey()
		}
		rec.Secondaries = append([][]byte{rec.Primary}, rec.Secondaries...)
		rec.Primary, rec.Staged, rec.RotatedAt = next, staged, now
		if keep := s.cfg.MaxActiveKeys - 2; len(rec.Secondaries) > keep {
			rec.Secondaries = rec.Secondaries[:keep]
		}
		return tx.Update(keyTable, rec)
	})
	if err != nil {
		return fmt.Errorf("identity: rotate token keys: %w", err)
	}
	return nil
}

// rotateLoop rotates the token keys every Config.KeyRotationInterval. Each
// controller runs it; the rotation is skipped when another controller
// rotated within the interval.
func (s *Service) rotateLoop() {
	every := s.cfg.KeyRotationInterval
	t := time.NewTicker(min(every, time.Minute))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(s.life, time.Minute)
			// A little less than the interval, so that ticker jitter does
			// not skip a whole period.
			if err := s.rotate(ctx, every-every/100); err != nil && !errors.Is(err, errdefs.ErrConflict) {
				s.log.Warn("identity: rotate token keys", "err", err)
			}
			cancel()
		}
	}
}

// credentialAEAD returns the AEAD that encrypts credential blobs:
// Config.CredentialKey if set, else a key kept in the store (created on
// first use).
func (s *Service) credentialAEAD(ctx context.Context) (cipher.AEAD, error) {
	s.credMu.Lock()
	defer s.credMu.Unlock()
	if s.credAEAD != nil {
		return s.credAEAD, nil
	}
	k := s.cfg.CredentialKey
	if k == nil {
		err := s.st.Update(ctx, func(tx *store.Txn) error {
			if _, err := store.Get[TokenKeys](nil, tx, keyTable, credentialKeysID); err == nil {
				return nil
			}
			return tx.Insert(keyTable, &TokenKeys{ID: credentialKeysID, Primary: newKey(), RotatedAt: tx.Now()})
		})
		if err != nil && !errors.Is(err, errdefs.ErrConflict) {
			return nil, fmt.Errorf("identity: create credential key: %w", err)
		}
		rec, err := store.Get[TokenKeys](nil, s.st.Snapshot(), keyTable, credentialKeysID)
		if err != nil {
			return nil, fmt.Errorf("identity: load credential key: %w", err)
		}
		k = rec.canonical().Primary
	}
	g, err := newAEAD(k)
	if err != nil {
		return nil, err
	}
	s.credAEAD = g
	return g, nil
}

// noteTTLEvery is how often a controller says which token lifetime it uses.
const noteTTLEvery = 10 * time.Minute

// noteTTL records this controller's token lifetime in the token key
// repository, so that revocation events are kept as long as the longest
// lifetime of any token they may match, even one issued by a controller
// configured with a longer lifetime than the one that writes the event. A
// longer lifetime nobody has used for longer than it lasts is forgotten.
func (s *Service) noteTTL(ctx context.Context) error {
	now, ttl := s.now(), s.cfg.TokenTTL
	return s.st.Update(ctx, func(tx *store.Txn) error {
		rec, err := store.Get[TokenKeys](nil, tx, keyTable, tokenKeysID)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil // no keys yet: Start makes them first
		} else if err != nil {
			return err
		}
		rec.canonical()
		switch {
		case ttl > rec.MaxTokenTTL, ttl == rec.MaxTokenTTL && now.Sub(rec.MaxTTLSeenAt) >= noteTTLEvery:
		case ttl < rec.MaxTokenTTL && now.Sub(rec.MaxTTLSeenAt) > rec.MaxTokenTTL+2*noteTTLEvery:
		default:
			return nil
		}
		rec.MaxTokenTTL, rec.MaxTTLSeenAt = ttl, now
		return tx.Update(keyTable, rec)
	})
}

// maxTTLTxn returns the longest token lifetime in use.
func (s *Service) maxTTLTxn(tx *store.Txn) time.Duration {
	ttl := s.cfg.TokenTTL
	if rec, err := store.Get[TokenKeys](nil, tx, keyTable, tokenKeysID); err == nil {
		ttl = max(ttl, rec.MaxTokenTTL)
	}
	return ttl
}
