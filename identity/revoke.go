package identity

import (
	"context"
	"encoding/base64"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// Revocation is a token revocation event. A token is revoked if one of its
// audit ids is AuditID, or if it was issued at or before IssuedBefore and
// its user is UserID (and, when both are set, its project is ProjectID),
// or its project is ProjectID.
type Revocation struct {
	store.Meta
	// ID identifies the event.
	ID string `json:"id"`
	// AuditID revokes every token that carries it: the token with that
	// audit id and every token rescoped from it.
	AuditID string `json:"audit_id,omitempty"`
	// UserID and ProjectID revoke tokens of the user, the project, or the
	// user on the project.
	UserID    string `json:"user_id,omitempty"`
	ProjectID string `json:"project_id,omitempty"`
	// IssuedBefore bounds the user and project matches.
	IssuedBefore time.Time `json:"issued_before"`
	// ExpiresAt is when no token the event matches can still be valid;
	// the event is pruned after it.
	ExpiresAt time.Time `json:"expires_at"`
}

// StoreKey implements store.Record.
func (r *Revocation) StoreKey() string { return r.ID }

var revokeTableDef = store.Table{Name: revokeTable, New: func() store.Record { return new(Revocation) }}

const (
	revAudit byte = iota + 1
	revUser
	revProject
	revUserProject
)

const revBits = 1 << 20

// revIndex is an immutable index of the revocation events: a bit set of
// the hashed keys, then exact maps for the rare hit.
type revIndex struct {
	ch     <-chan struct{}
	bits   []uint64
	audit  map[string]bool
	before map[string]int64 // kind+key -> latest issued_before, µs
	count  int
}

type revIndexHolder struct {
	p atomic.Pointer[revIndex]
}

func (ix *revIndex) has(h uint64) bool {
	b := h & (revBits - 1)
	return ix.bits[b/64]&(1<<(b%64)) != 0
}

func (ix *revIndex) set(h uint64) {
	b := h & (revBits - 1)
	ix.bits[b/64] |= 1 << (b % 64)
}

// revoked reports whether p, whose hashed keys are k, matches an event.
func (ix *revIndex) revoked(p *payload, k *revKeys) bool {
	// No shortcut for an empty index: the check costs the same few bit
	// tests whatever the number of events.
	i := 0
	for _, a := range p.auditIDs {
		if ix.has(k.h[i]) && ix.audit[string(a[:])] {
			return true
		}
		i++
	}
	if ix.has(k.h[i]) && p.issuedAt <= ix.before[string(revUser)+p.userID] {
		return true
	}
	i++
	if p.scope == scopeProject {
		if ix.has(k.h[i]) && p.issuedAt <= ix.before[string(revProject)+p.scopeID] {
			return true
		}
		i++
		if ix.has(k.h[i]) && p.issuedAt <= ix.before[string(revUserProject)+p.userID+"\x1f"+p.scopeID] {
			return true
		}
	}
	return false
}

// revocations returns the current revocation index, rebuilding it when the
// revocation table changed.
func (s *Service) revocations() *revIndex {
	if ix := s.revIdx.p.Load(); ix != nil && !ix.changed() {
		return ix
	}
	s.revMu.Lock()
	defer s.revMu.Unlock()
	if ix := s.revIdx.p.Load(); ix != nil && !ix.changed() {
		return ix
	}
	ix := s.buildRevIndex()
	s.revIdx.p.Store(ix)
	return ix
}

func (ix *revIndex) changed() bool {
	select {
	case <-ix.ch:
		return true
	default:
		return false
	}
}

func (s *Service) buildRevIndex() *revIndex {
	ws := memdb.NewWatchSet()
	ix := &revIndex{bits: make([]uint64, revBits/64), audit: map[string]bool{}, before: map[string]int64{}}
	evs, err := store.List[Revocation](ws, s.st.Snapshot(), revokeTable, store.IDIndex)
	for ch := range ws {
		ix.ch = ch
	}
	if err != nil {
		s.log.Error("identity: revocation index", "err", err)
		return ix
	}
	for ev := range evs {
		ix.add(ev)
	}
	return ix
}

func (ix *revIndex) add(ev *Revocation) {
	ix.count++
	if ev.AuditID != "" {
		raw, err := base64.RawURLEncoding.DecodeString(ev.AuditID)
		if err == nil && len(raw) == auditIDLen {
			ix.audit[string(raw)] = true
			ix.set(revHash(revAudit, string(raw)))
		}
		return
	}
	before := ev.IssuedBefore.UnixMicro()
	put := func(kind byte, k string) {
		mk := string(kind) + k
		if before > ix.before[mk] {
			ix.before[mk] = before
		}
		ix.set(revHash(kind, k))
	}
	switch {
	case ev.UserID != "" && ev.ProjectID != "":
		put(revUserProject, ev.UserID+"\x1f"+ev.ProjectID)
	case ev.UserID != "":
		put(revUser, ev.UserID)
	case ev.ProjectID != "":
		put(revProject, ev.ProjectID)
	}
}

// revokeTxn writes a revocation event inside a transaction.
func (s *Service) revokeTxn(tx *store.Txn, ev Revocation) error {
	ev.ID = newID()
	if ev.IssuedBefore.IsZero() {
		ev.IssuedBefore = tx.Now()
	}
	if ev.ExpiresAt.IsZero() {
		// The longest lifetime of any controller's tokens, not only ours.
		ev.ExpiresAt = ev.IssuedBefore.Add(s.maxTTLTxn(tx) + time.Minute)
	}
	if err := tx.Insert(revokeTable, &ev); err != nil {
		return err
	}
	return tx.Emit("identity.token.revoke", ev.ID, ev.ProjectID, nil)
}

// RevokeToken revokes a token and every token rescoped from it. Users may
// revoke their own tokens; cloud admins any token.
func (s *Service) RevokeToken(ctx context.Context, id string) error {
	tok, err := s.ValidateToken(ctx, id)
	if err != nil {
		return err
	}
	if err := s.policy.Enforce(ctx, "identity:revoke_token", Target{UserID: tok.User.ID}); err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Txn) error {
		return s.revokeTxn(tx, Revocation{AuditID: tok.AuditIDs[0], ExpiresAt: tok.ExpiresAt})
	})
}

// RevokeOpts selects the tokens Revoke revokes.
type RevokeOpts struct {
	// AuditID revokes the tokens that carry this audit id.
	AuditID string
	// UserID revokes the user's tokens; with ProjectID, only those scoped
	// to that project.
	UserID string
	// ProjectID revokes the tokens scoped to the project.
	ProjectID string
}

// Revoke writes a revocation event: every matching token issued until now
// is rejected from then on. Cloud admins only.
func (s *Service) Revoke(ctx context.Context, opts RevokeOpts) error {
	if err := s.policy.Enforce(ctx, "identity:revoke", Target{}); err != nil {
		return err
	}
	if opts.AuditID == "" && opts.UserID == "" && opts.ProjectID == "" {
		return fmt.Errorf("identity: revoke: %w", errdefs.Invalid("audit_id", "one of audit_id, user_id and project_id is required"))
	}
	if opts.AuditID != "" {
		// An audit id that cannot match a token would make the event a
		// silent no-op.
		if _, err := decodeAuditID(opts.AuditID); err != nil {
			return fmt.Errorf("identity: revoke: %w", errdefs.Invalid("audit_id", "is not an audit id"))
		}
	}
	return s.update(ctx, func(tx *store.Txn) error {
		ev := Revocation{AuditID: opts.AuditID, UserID: opts.UserID, ProjectID: opts.ProjectID}
		if opts.AuditID != "" {
			ev.UserID, ev.ProjectID = "", ""
		}
		return s.revokeTxn(tx, ev)
	})
}

// PruneRevocations deletes revocation events that can no longer match a
// valid token, and returns how many it deleted.
func (s *Service) PruneRevocations(ctx context.Context) (int, error) {
	now := s.now()
	var old []string
	evs, err := store.List[Revocation](nil, s.st.Snapshot(), revokeTable, store.IDIndex)
	if err != nil {
		return 0, err
	}
	for ev := range evs {
		if ev.ExpiresAt.Before(now) {
			old = append(old, ev.ID)
		}
	}
	total := len(old)
	for len(old) > 0 {
		n := min(len(old), 200)
		batch := old[:n]
		old = old[n:]
		if err := s.update(ctx, func(tx *store.Txn) error {
			for _, id := range batch {
				if _, err := store.Get[Revocation](nil, tx, revokeTable, id); err != nil {
					continue
				}
				if err := tx.Delete(revokeTable, id); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return 0, err
		}
	}
	return total, nil
}
