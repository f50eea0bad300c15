package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

func TestCredentials(t *testing.T) {
	e := newEnv(t)
	p, alice := e.tenant(t, "p1", "alice", "member")
	_, bob := e.tenant(t, "p2", "bob", "member")
	_, actx := e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p.ID})
	_, bctx := e.login(t, "bob", "bob-pw", AuthScope{Unscoped: true})

	blob := `{"access":"AKIAALICE","secret":"very-secret-key"}`
	c := must(e.svc.CreateCredential(actx, CreateCredentialOpts{Type: "ec2", ProjectID: p.ID, Blob: blob}))
	if c.UserID != alice.ID || c.ID != ec2CredentialID("AKIAALICE") || c.Blob != blob {
		t.Fatalf("created %+v", c)
	}
	// Encrypted at rest: the stored record holds no secret.
	raw := must(store.Get[Credential](nil, e.st.Snapshot(), credentialTable, c.ID))
	enc, _ := json.Marshal(raw)
	if bytes.Contains(enc, []byte("very-secret-key")) || bytes.Contains(enc, []byte("AKIAALICE")) {
		t.Fatalf("stored in clear: %s", enc)
	}
	// Validation.
	for _, bad := range []CreateCredentialOpts{
		{Type: "ec2", Blob: blob},                          // no project
		{Type: "ec2", ProjectID: p.ID, Blob: `{"a":1}`},    // not an ec2 blob
		{Type: "", Blob: "x"},                              // no type
		{Type: "totp", Blob: string(make([]byte, 20_000))}, // too big
	} {
		_, err := e.svc.CreateCredential(actx, bad)
		wantKind(t, err, errdefs.ErrInvalid)
	}
	_, err := e.svc.CreateCredential(actx, CreateCredentialOpts{Type: "ec2", ProjectID: p.ID, Blob: blob})
	wantKind(t, err, errdefs.ErrConflict)
	// Another user: cannot create for alice, sees nothing of hers (404).
	_, err = e.svc.CreateCredential(bctx, CreateCredentialOpts{UserID: alice.ID, Type: "totp", Blob: "x"})
	wantKind(t, err, errdefs.ErrForbidden)
	_, err = e.svc.GetCredential(bctx, c.ID)
	wantKind(t, err, errdefs.ErrNotFound)
	wantKind(t, e.svc.DeleteCredential(bctx, c.ID), errdefs.ErrNotFound)
	_, err = e.svc.UpdateCredential(bctx, c.ID, UpdateCredentialOpts{Blob: ptr(`{"access":"AKIAALICE","secret":"mine"}`)})
	wantKind(t, err, errdefs.ErrNotFound)
	if l := must(e.svc.ListCredentials(bctx, ListCredentialsOpts{})); len(l) != 0 {
		t.Fatalf("bob lists %d credentials", len(l))
	}
	must(e.svc.CreateCredential(bctx, CreateCredentialOpts{Type: "totp", Blob: "bob-seed"}))
	if l := must(e.svc.ListCredentials(e.admin, ListCredentialsOpts{Type: "ec2"})); len(l) != 1 || l[0].Blob != blob {
		t.Fatalf("admin lists %+v", l)
	}
	// Update: the secret may change, the access key (the id) may not.
	u := must(e.svc.UpdateCredential(actx, c.ID, UpdateCredentialOpts{Blob: ptr(`{"access":"AKIAALICE","secret":"rotated"}`)}))
	if u.Blob != `{"access":"AKIAALICE","secret":"rotated"}` {
		t.Fatalf("updated %+v", u)
	}
	_, err = e.svc.UpdateCredential(actx, c.ID, UpdateCredentialOpts{Blob: ptr(`{"access":"OTHER","secret":"x"}`)})
	wantKind(t, err, errdefs.ErrInvalid)
	// The S3 front end's lookup: admins and services only.
	_, _, err = e.svc.LookupEC2Credential(actx, "AKIAALICE")
	wantKind(t, err, errdefs.ErrForbidden)
	got, b, err := e.svc.LookupEC2Credential(e.admin, "AKIAALICE")
	if err != nil || b.Secret != "rotated" || got.ProjectID != p.ID {
		t.Fatalf("lookup %+v %+v %v", got, b, err)
	}
	_, _, err = e.svc.LookupEC2Credential(e.admin, "AKIANOBODY")
	wantKind(t, err, errdefs.ErrNotFound)
	// Deleting the user deletes its credentials.
	if err := e.svc.DeleteUser(e.admin, bob.ID); err != nil {
		t.Fatal(err)
	}
	if l := must(e.svc.ListCredentials(e.admin, ListCredentialsOpts{UserID: bob.ID})); len(l) != 0 {
		t.Fatalf("%d credentials left for a deleted user", len(l))
	}
	if err := e.svc.DeleteCredential(actx, c.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.GetCredential(actx, c.ID)
	wantKind(t, err, errdefs.ErrNotFound)
}

// With Config.CredentialKey the blobs open only with that key.
func TestCredentialKeyFromHost(t *testing.T) {
	clock := &testClock{}
	clock.t.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	st := must(store.Open(context.Background(), memstore.New(), Tables(), &store.Options{Clock: clock.Now, CompactInterval: -1}))
	t.Cleanup(func() { st.Close() })
	key := bytes.Repeat([]byte{1}, 32)
	svc := must(New(Config{Store: st, PasswordHashing: cheapHashing, CredentialKey: key}))
	admin := WithCredentials(context.Background(), SystemAdmin())
	if err := svc.Bootstrap(admin, BootstrapOptions{AdminPassword: "secret"}); err != nil {
		t.Fatal(err)
	}
	u := must(svc.ListUsers(admin, ListUsersOpts{Name: "admin"}))[0]
	c := must(svc.CreateCredential(admin, CreateCredentialOpts{UserID: u.ID, Type: "totp", Blob: "seed"}))
	if _, err := store.Get[TokenKeys](nil, st.Snapshot(), keyTable, credentialKeysID); err == nil {
		t.Fatal("a credential key was stored although the host gave one")
	}
	other := must(New(Config{Store: st, PasswordHashing: cheapHashing, CredentialKey: bytes.Repeat([]byte{2}, 32)}))
	if _, err := other.GetCredential(admin, c.ID); err == nil {
		t.Fatal("opened with the wrong key")
	}
	if _, err := New(Config{Store: st, CredentialKey: []byte("short")}); err == nil {
		t.Fatal("short key accepted")
	}
}

// A disabled domain's tokens stay revoked when it is enabled again.
func TestDisabledDomainRevokesTokens(t *testing.T) {
	e := newEnv(t)
	d := must(e.svc.CreateDomain(e.admin, CreateDomainOpts{Name: "d1"}))
	p := must(e.svc.CreateProject(e.admin, CreateProjectOpts{Name: "dp", DomainID: d.ID}))
	u := must(e.svc.CreateUser(e.admin, CreateUserOpts{Name: "du", DomainID: d.ID, Password: "pw"}))
	// A default-domain user with a role on the domain's project.
	_, other := e.tenant(t, "p0", "carol", "member")
	for _, uid := range []string{u.ID, other.ID} {
		if err := e.svc.CreateGrant(e.admin, Grant{UserID: uid, ProjectID: p.ID, RoleID: e.role(t, "member").ID}); err != nil {
			t.Fatal(err)
		}
	}
	login := func(uid, pw string) string {
		tok, _, err := e.svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"password"},
			Password: &PasswordAuth{UserID: uid, Password: pw}, Scope: AuthScope{ProjectID: p.ID}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	t1, t2 := login(u.ID, "pw"), login(other.ID, "carol-pw")
	f, tr := false, true
	must(e.svc.UpdateDomain(e.admin, d.ID, UpdateDomainOpts{Enabled: &f}))
	must(e.svc.UpdateDomain(e.admin, d.ID, UpdateDomainOpts{Enabled: &tr}))
	e.mustReject(t, t1, "its user's domain was disabled")
	e.mustReject(t, t2, "its project's domain was disabled")
	e.clock.Advance(time.Second)
	login(u.ID, "pw") // new tokens work
}

// Revoking an intermediate token of a rescoping chain revokes the tokens
// rescoped from it, not its siblings.
func TestRevokeIntermediateRescopedToken(t *testing.T) {
	e := newEnv(t)
	p, _ := e.tenant(t, "p1", "alice", "member")
	p2 := must(e.svc.CreateProject(e.admin, CreateProjectOpts{Name: "p2"}))
	u := must(e.svc.ListUsers(e.admin, ListUsersOpts{Name: "alice"}))[0]
	if err := e.svc.CreateGrant(e.admin, Grant{UserID: u.ID, ProjectID: p2.ID, RoleID: e.role(t, "member").ID}); err != nil {
		t.Fatal(err)
	}
	a, _ := e.login(t, "alice", "alice-pw", AuthScope{Unscoped: true})
	b := must3(rescope(e, a, AuthScope{ProjectID: p.ID}))
	sibling := must3(rescope(e, a, AuthScope{ProjectID: p2.ID}))
	c := must3(rescope(e, b, AuthScope{ProjectID: p2.ID}))
	d := must3(rescope(e, c, AuthScope{ProjectID: p.ID}))
	if err := e.svc.RevokeToken(e.admin, b); err != nil {
		t.Fatal(err)
	}
	e.mustReject(t, c, "rescoped from a revoked token")
	e.mustReject(t, d, "rescoped from a token rescoped from a revoked token")
	for name, tok := range map[string]string{"original": a, "sibling": sibling} {
		if _, err := e.svc.ValidateToken(context.Background(), tok); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// Keystone's audit_ids stay two: the token's own and the original's.
	tok := must(e.svc.ValidateToken(context.Background(), sibling))
	orig := must(e.svc.ValidateToken(context.Background(), a))
	if len(tok.AuditIDs) != 2 || tok.AuditIDs[1] != orig.AuditIDs[0] {
		t.Fatalf("audit ids %v, original %v", tok.AuditIDs, orig.AuditIDs)
	}
	// The chain is bounded.
	x := a
	var err error
	for range maxAuditChain {
		if x, _, err = rescope(e, x, AuthScope{ProjectID: p.ID}); err != nil {
			break
		}
	}
	wantKind(t, err, errdefs.ErrForbidden)
}

func must3[T, U any](v T, _ U, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A domain admin may not grant roles on its domain to users or groups of
// other domains.
func TestDomainAdminCannotGrantToOtherDomainsUsers(t *testing.T) {
	e := newEnv(t)
	d, _, dctx := e.domainAdmin(t, "d1")
	p := must(e.svc.CreateProject(e.admin, CreateProjectOpts{Name: "dp", DomainID: d.ID}))
	outsider := must(e.svc.CreateUser(e.admin, CreateUserOpts{Name: "outsider", Password: "pw"}))
	insider := must(e.svc.CreateUser(e.admin, CreateUserOpts{Name: "insider", DomainID: d.ID, Password: "pw"}))
	member := e.role(t, "member").ID
	wantKind(t, e.svc.CreateGrant(dctx, Grant{UserID: outsider.ID, ProjectID: p.ID, RoleID: member}), errdefs.ErrForbidden)
	wantKind(t, e.svc.CreateGrant(dctx, Grant{UserID: outsider.ID, DomainID: d.ID, RoleID: member}), errdefs.ErrForbidden)
	if err := e.svc.CreateGrant(dctx, Grant{UserID: insider.ID, ProjectID: p.ID, RoleID: member}); err != nil {
		t.Fatal(err)
	}
}

// CVE-2019-19687: a member of a project must not list the credentials of
// another member of the same project.
func TestCVE201919687CredentialsOfProjectPeers(t *testing.T) {
	e := newEnv(t)
	p, alice := e.tenant(t, "p1", "alice", "member")
	peer := must(e.svc.CreateUser(e.admin, CreateUserOpts{Name: "peer", Password: "peer-pw"}))
	if err := e.svc.CreateGrant(e.admin, Grant{UserID: peer.ID, ProjectID: p.ID, RoleID: e.role(t, "admin").ID}); err != nil {
		t.Fatal(err)
	}
	must(e.svc.CreateCredential(e.admin, CreateCredentialOpts{UserID: alice.ID, ProjectID: p.ID, Type: "ec2",
		Blob: `{"access":"AKIAPEER","secret":"alice-secret"}`}))
	_, pctx := e.login(t, "peer", "peer-pw", AuthScope{ProjectID: p.ID})
	if l := must(e.svc.ListCredentials(pctx, ListCredentialsOpts{})); len(l) != 0 {
		t.Fatalf("a project admin lists a peer's credentials: %+v", l)
	}
	if l := must(e.svc.ListCredentials(pctx, ListCredentialsOpts{UserID: alice.ID})); len(l) != 0 {
		t.Fatalf("filtered by the peer's id: %+v", l)
	}
}
