package identity

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/internal/etcdtest"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/etcdstore"
)

func (e *env) keys(t *testing.T) *TokenKeys {
	t.Helper()
	return must(store.Get[TokenKeys](nil, e.st.Snapshot(), keyTable, tokenKeysID)).canonical()
}

func TestKeyRotation(t *testing.T) {
	e := newEnv(t) // MaxActiveKeys 3: staged, primary, one secondary
	p, _ := e.tenant(t, "p1", "alice", "member")
	old, _ := e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p.ID})
	before := e.keys(t)

	// Not an admin's to skip.
	_, actx := e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p.ID})
	wantKind(t, e.svc.RotateTokenKeys(actx), errdefs.ErrForbidden)

	if err := e.svc.RotateTokenKeys(e.admin); err != nil {
		t.Fatal(err)
	}
	after := e.keys(t)
	if string(after.Primary) != string(before.Staged) || string(after.Secondaries[0]) != string(before.Primary) ||
		after.Staged == nil || string(after.Staged) == string(before.Staged) {
		t.Fatal("rotation did not promote staged to primary and primary to secondary")
	}
	fresh, _ := e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p.ID})
	for name, tok := range map[string]string{"old": old, "new": fresh} {
		if _, err := e.svc.ValidateToken(context.Background(), tok); err != nil {
			t.Fatalf("%s token after one rotation: %v", name, err)
		}
	}
	// The new token names the new primary.
	if _, kid, err := decodeToken(must(e.svc.keyring(context.Background())), fresh); err != nil || kid != keyID(after.Primary) {
		t.Fatalf("new token key id %x, want the primary's %x (%v)", kid, keyID(after.Primary), err)
	}
	// The second rotation retires the old token's key (max 3 keys).
	if err := e.svc.RotateTokenKeys(e.admin); err != nil {
		t.Fatal(err)
	}
	if n := len(e.keys(t).all()); n != 3 {
		t.Fatalf("%d keys kept, want 3", n)
	}
	e.mustReject(t, old, "its key was retired")
	if _, err := e.svc.ValidateToken(context.Background(), fresh); err != nil {
		t.Fatalf("token of the secondary key: %v", err)
	}
	e.svc.RotateTokenKeys(e.admin)
	e.mustReject(t, fresh, "its key was retired")
}

// A token encrypted with the staged key (by a controller that has seen a
// rotation this one has not) is accepted.
func TestStagedKeyDecrypts(t *testing.T) {
	e := newEnv(t)
	p, _ := e.tenant(t, "p1", "alice", "member")
	k := e.keys(t)
	other := must(New(Config{Store: e.st, PasswordHashing: cheapHashing}))
	kr := must(newKeyring(&TokenKeys{Primary: k.Staged}))
	kr.ch = make(chan struct{}) // never reload: this controller "rotated"
	other.keys.Store(kr)
	tok, _, err := other.Authenticate(context.Background(), AuthRequest{Methods: []string{"password"},
		Password: &PasswordAuth{UserName: "alice", DomainID: DefaultDomainID, Password: "alice-pw"}, Scope: AuthScope{ProjectID: p.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ValidateToken(context.Background(), tok); err != nil {
		t.Fatalf("token of the staged key: %v", err)
	}
}

func TestScheduledRotationOncePerInterval(t *testing.T) {
	e := newEnv(t)
	rotatedAt := e.keys(t).RotatedAt
	// Two controllers on a one-hour schedule: the rotation happens once.
	for range 2 {
		if err := e.svc.rotate(context.Background(), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if !e.keys(t).RotatedAt.Equal(rotatedAt) {
		t.Fatal("rotated before the interval")
	}
	e.clock.Advance(time.Hour)
	primary := e.keys(t).Primary
	for range 2 {
		if err := e.svc.rotate(context.Background(), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if k := e.keys(t); string(k.Primary) == string(primary) || len(k.Secondaries) != 1 {
		t.Fatalf("want exactly one rotation, got %d secondaries", len(k.Secondaries))
	}
}

// Keys live in the store: a rotation by one controller is seen by another
// on the etcd backend, and a key it retires stops validating there too.
func TestKeyRotationAcrossControllers(t *testing.T) {
	cl, err := etcdtest.Start(t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Stop)
	open := func() (*Service, *store.Store) {
		b, err := etcdstore.Open(t.Context(), cl.Endpoints(), &etcdstore.Options{Prefix: "/identity-rotation"})
		if err != nil {
			t.Fatal(err)
		}
		st, err := store.Open(t.Context(), b, Tables(), &store.Options{CompactInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		svc := must(New(Config{Store: st, PasswordHashing: cheapHashing}))
		if err := svc.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { svc.Close() })
		return svc, st
	}
	a, _ := open()
	if err := a.Bootstrap(t.Context(), BootstrapOptions{AdminPassword: "secret"}); err != nil {
		t.Fatal(err)
	}
	b, stB := open()
	login := func(svc *Service) string {
		tok, _, err := svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"password"},
			Password: &PasswordAuth{UserName: "admin", DomainID: DefaultDomainID, Password: "secret"}, Scope: AuthScope{System: true}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// eventually waits for b's replica to reach a's state.
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting: %s", what)
			}
		}
	}
	primaryOf := func(st *store.Store) string {
		k, err := store.Get[TokenKeys](nil, st.Snapshot(), keyTable, tokenKeysID)
		if err != nil {
			return ""
		}
		return string(k.canonical().Primary)
	}
	eventually("b sees the admin", func() bool {
		_, _, err := b.Authenticate(context.Background(), AuthRequest{Methods: []string{"password"},
			Password: &PasswordAuth{UserName: "admin", DomainID: DefaultDomainID, Password: "secret"}})
		return err == nil
	})
	tokA := login(a)
	if _, err := b.ValidateToken(context.Background(), tokA); err != nil {
		t.Fatalf("b validates a's token: %v", err)
	}
	admin := WithCredentials(context.Background(), SystemAdmin())
	if err := a.RotateTokenKeys(admin); err != nil {
		t.Fatal(err)
	}
	want := primaryOf(a.st)
	eventually("b sees the rotation", func() bool { return primaryOf(stB) == want })
	tokB := login(b)
	for name, tok := range map[string]string{"a's old token": tokA, "b's new token": tokB} {
		for sname, svc := range map[string]*Service{"a": a, "b": b} {
			if _, err := svc.ValidateToken(context.Background(), tok); err != nil {
				t.Fatalf("%s on %s: %v", name, sname, err)
			}
		}
	}
	if err := a.RotateTokenKeys(admin); err != nil {
		t.Fatal(err)
	}
	want = primaryOf(a.st)
	eventually("b sees the second rotation", func() bool { return primaryOf(stB) == want })
	// tokA's key is retired: b rejects it, cached or not.
	eventually("b rejects the retired key's token", func() bool {
		_, err := b.ValidateToken(context.Background(), tokA)
		return errdefsIsUnauth(err)
	})
	if _, err := b.ValidateToken(context.Background(), tokB); err != nil {
		t.Fatalf("b's token of the secondary key: %v", err)
	}
}

// Revocation events outlive the longest token lifetime in use by any
// controller, not only that of the controller that writes them.
func TestRevocationKeptForLongestTTL(t *testing.T) {
	e := newEnvWith(t, func(c *Config) { c.TokenTTL = 24 * time.Hour })
	p, u := e.tenant(t, "p1", "alice", "member")
	long, _ := e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p.ID})
	short := must(New(Config{Store: e.st, PasswordHashing: cheapHashing, TokenTTL: time.Hour, Clock: e.clock.Now}))
	if err := short.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { short.Close() })
	if err := short.Revoke(e.admin, RevokeOpts{UserID: u.ID}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(3 * time.Hour)
	if n := must(short.PruneRevocations(context.Background())); n != 0 {
		t.Fatalf("pruned %d events while a 24h token they revoke is alive", n)
	}
	e.mustReject(t, long, "revoked by a controller with a shorter lifetime")
	// Once no controller has used the long lifetime for longer than it
	// lasts, it is forgotten.
	e.clock.Advance(25 * time.Hour)
	if err := short.noteTTL(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.keys(t).MaxTokenTTL; got != time.Hour {
		t.Fatalf("max token lifetime %v, want 1h", got)
	}
	if n := must(short.PruneRevocations(context.Background())); n != 1 {
		t.Fatalf("pruned %d events, want 1", n)
	}
}

// Keys stored before rotation existed (a plain list, the primary first)
// keep working: tokens they issued validate, and the first rotation
// converts them.
func TestLegacyKeysFormat(t *testing.T) {
	e := newEnv(t)
	p, _ := e.tenant(t, "p1", "alice", "member")
	old := bytes.Repeat([]byte{9}, 32)
	if err := e.st.Update(context.Background(), func(tx *store.Txn) error {
		rec := must(store.Get[TokenKeys](nil, tx, keyTable, tokenKeysID))
		rec.Keys, rec.Staged, rec.Primary, rec.Secondaries = [][]byte{old, rec.Primary}, nil, nil, nil
		return tx.Update(keyTable, rec)
	}); err != nil {
		t.Fatal(err)
	}
	tok, _ := e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p.ID})
	if _, kid, err := decodeToken(must(e.svc.keyring(context.Background())), tok); err != nil || kid != keyID(old) {
		t.Fatalf("token of the legacy primary: kid %x, %v", kid, err)
	}
	if err := e.svc.RotateTokenKeys(e.admin); err != nil {
		t.Fatal(err)
	}
	if k := e.keys(t); k.Keys != nil || string(k.Secondaries[0]) != string(old) || k.Staged == nil {
		t.Fatalf("not converted: %+v", k)
	}
	if _, err := e.svc.ValidateToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
}
