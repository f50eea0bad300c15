package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/store"
)

// Token is a validated token: who it was issued to, its scope and the
// effective roles on that scope as of validation. A *Token returned by the
// Service is shared and must not be modified.
type Token struct {
	// Methods are the authentication methods used ("password", "token").
	Methods []string
	// User is the token's user.
	User TokenUser
	// Project is the scope of a project-scoped token, else nil.
	Project *TokenProject
	// Domain is the scope of a domain-scoped token, else nil.
	Domain *Ref
	// System is true for a system-scoped token.
	System bool
	// IsAdminProject is true when Project is the cloud's admin project.
	IsAdminProject bool
	// Roles are the effective roles on the scope, implied roles included.
	Roles []Ref
	// IssuedAt and ExpiresAt bound the token's life.
	IssuedAt  time.Time
	ExpiresAt time.Time
	// AuditIDs are the token's own audit id, then the audit id of the
	// first token of its rescoping chain, if it was rescoped.
	AuditIDs []string
	// Trust is set for a trust-scoped token.
	Trust *TokenTrust
	// ApplicationCredential is set for a token issued to an application
	// credential.
	ApplicationCredential *TokenAppCred

	chain    [][auditIDLen]byte // every audit id of the rescoping chain
	creds    *Credentials
	rendered rendered
}

// TokenTrust is the trust of a trust-scoped token (OS-TRUST:trust).
type TokenTrust struct {
	ID            string
	Impersonation bool
	TrustorUserID string
	TrusteeUserID string
}

// TokenAppCred is the application credential a token was issued to.
type TokenAppCred struct {
	ID           string
	Name         string
	Unrestricted bool
	// AccessRules, if not empty, are the only requests the token may make.
	AccessRules []AccessRule
}

// TokenUser is the user of a token.
type TokenUser struct {
	ID                string
	Name              string
	Domain            Ref
	PasswordExpiresAt *time.Time
}

// TokenProject is the project of a project-scoped token.
type TokenProject struct {
	ID     string
	Name   string
	Domain Ref
}

// Ref names a resource by id and name.
type Ref struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Credentials returns the Credentials the token carries. The result is
// shared and must not be modified.
func (t *Token) Credentials() *Credentials { return t.creds }

func (t *Token) buildCredentials() {
	c := &Credentials{
		UserID: t.User.ID, UserName: t.User.Name,
		UserDomainID: t.User.Domain.ID, UserDomainName: t.User.Domain.Name,
		System: t.System, IsAdminProject: t.IsAdminProject,
		AuditIDs: t.AuditIDs, ExpiresAt: t.ExpiresAt,
	}
	if t.Project != nil {
		c.ProjectID, c.ProjectName, c.ProjectDomainID = t.Project.ID, t.Project.Name, t.Project.Domain.ID
	}
	if t.Domain != nil {
		c.DomainID, c.DomainName = t.Domain.ID, t.Domain.Name
	}
	for _, r := range t.Roles {
		c.Roles = append(c.Roles, r.Name)
	}
	if tr := t.Trust; tr != nil {
		c.TrustID, c.TrustorUserID, c.TrusteeUserID = tr.ID, tr.TrustorUserID, tr.TrusteeUserID
	}
	if ac := t.ApplicationCredential; ac != nil {
		c.ApplicationCredentialID, c.AppCredUnrestricted, c.AccessRules = ac.ID, ac.Unrestricted, ac.AccessRules
	}
	t.creds = c
}

// Token payload, before encryption (version 2):
//
//	version(1) methods(1) scope(1) issued_at(8, µs) expires_at(8, µs)
//	len(1) user_id  len(1) scope_id  n(1) audit_id(16) × n
//	len(1) trust_id  len(1) application_credential_id
//
// Version 1 payloads (no trust and application credential ids) are still
// read. The audit ids are the token's own, then those of the tokens it was
// rescoped from, nearest first, the original last.
//
// The token is base64url(version(1) key_id(4) nonce(12) AES-256-GCM(payload)),
// with version and key id as additional data: the key id names the one key
// of the repository that opens it.
const (
	tokenVersion   = 1
	payloadVersion = 2
	tokenHeaderLen = 1 + 4
	nonceLen       = 12
	auditIDLen     = 16
	maxTokenLen    = 1024
	// maxAuditChain bounds the rescoping chain a token carries.
	maxAuditChain = 4

	scopeNone    = 0
	scopeProject = 1
	scopeDomain  = 2
	scopeSystem  = 3

	methodPassword = 1 << 0
	methodToken    = 1 << 1
	methodAppCred  = 1 << 2
)

var methodNames = []struct {
	bit  byte
	name string
}{{methodPassword, "password"}, {methodToken, "token"}, {methodAppCred, "application_credential"}}

// payload is the decoded content of a token.
type payload struct {
	methods   byte
	scope     byte
	issuedAt  int64 // Unix µs
	expiresAt int64 // Unix µs
	userID    string
	scopeID   string
	auditIDs  [][auditIDLen]byte
	trustID   string
	appCredID string
}

func (p *payload) methodList() []string {
	var out []string
	for _, m := range methodNames {
		if p.methods&m.bit != 0 {
			out = append(out, m.name)
		}
	}
	return out
}

// auditStrings returns the audit ids as Keystone shows them: the token's
// own, then the original of its rescoping chain.
func (p *payload) auditStrings() []string {
	ids := p.auditIDs
	if len(ids) > 2 {
		ids = [][auditIDLen]byte{ids[0], ids[len(ids)-1]}
	}
	out := make([]string, len(ids))
	for i, a := range ids {
		out[i] = base64.RawURLEncoding.EncodeToString(a[:])
	}
	return out
}

func (p *payload) marshal() []byte {
	b := make([]byte, 0, 5+16+len(p.userID)+len(p.scopeID)+len(p.trustID)+len(p.appCredID)+1+len(p.auditIDs)*auditIDLen)
	b = append(b, payloadVersion, p.methods, p.scope)
	b = binary.BigEndian.AppendUint64(b, uint64(p.issuedAt))
	b = binary.BigEndian.AppendUint64(b, uint64(p.expiresAt))
	b = append(b, byte(len(p.userID)))
	b = append(b, p.userID...)
	b = append(b, byte(len(p.scopeID)))
	b = append(b, p.scopeID...)
	b = append(b, byte(len(p.auditIDs)))
	for _, a := range p.auditIDs {
		b = append(b, a[:]...)
	}
	b = append(b, byte(len(p.trustID)))
	b = append(b, p.trustID...)
	b = append(b, byte(len(p.appCredID)))
	b = append(b, p.appCredID...)
	return b
}

var errBadToken = errors.New("malformed token")

func unmarshalPayload(b []byte) (*payload, error) {
	if len(b) < 3+16+1 || (b[0] != 1 && b[0] != payloadVersion) {
		return nil, errBadToken
	}
	version := b[0]
	p := &payload{methods: b[1], scope: b[2]}
	p.issuedAt = int64(binary.BigEndian.Uint64(b[3:]))
	p.expiresAt = int64(binary.BigEndian.Uint64(b[11:]))
	b = b[19:]
	str := func() (string, bool) {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return "", false
		}
		s := string(b[1 : 1+int(b[0])])
		b = b[1+int(b[0]):]
		return s, true
	}
	var ok bool
	if p.userID, ok = str(); !ok || p.userID == "" {
		return nil, errBadToken
	}
	if p.scopeID, ok = str(); !ok {
		return nil, errBadToken
	}
	if len(b) < 1 {
		return nil, errBadToken
	}
	n := int(b[0])
	b = b[1:]
	if n < 1 || n > maxAuditChain || len(b) < n*auditIDLen {
		return nil, errBadToken
	}
	p.auditIDs = make([][auditIDLen]byte, n)
	for i := range n {
		copy(p.auditIDs[i][:], b[i*auditIDLen:])
	}
	b = b[n*auditIDLen:]
	if version == payloadVersion {
		if p.trustID, ok = str(); !ok {
			return nil, errBadToken
		}
		if p.appCredID, ok = str(); !ok {
			return nil, errBadToken
		}
	}
	switch {
	case len(b) != 0,
		p.methods == 0 || p.methods&^(methodPassword|methodToken|methodAppCred) != 0,
		p.scope > scopeSystem,
		(p.scope == scopeNone) != (p.scopeID == ""),
		p.trustID != "" && p.scope != scopeProject,
		p.appCredID != "" && (p.scope != scopeProject || p.methods&methodAppCred == 0),
		p.expiresAt <= p.issuedAt:
		return nil, errBadToken
	}
	return p, nil
}

func (s *Service) encodeToken(ctx context.Context, p *payload) (string, error) {
	kr, err := s.keyring(ctx)
	if err != nil {
		return "", err
	}
	buf := make([]byte, tokenHeaderLen+nonceLen, tokenHeaderLen+nonceLen+200)
	buf[0] = 0x80 | tokenVersion
	binary.BigEndian.PutUint32(buf[1:], kr.primaryID)
	_, _ = rand.Read(buf[tokenHeaderLen:])
	g := kr.aeads[kr.primaryID]
	out := g.Seal(buf, buf[tokenHeaderLen:], p.marshal(), buf[:tokenHeaderLen])
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// decodeToken authenticates and decrypts a token with the one key of kr
// its key id names, and returns the payload and the key id. It never
// panics, whatever its input.
func decodeToken(kr *keyring, tok string) (*payload, uint32, error) {
	if len(tok) == 0 || len(tok) > maxTokenLen {
		return nil, 0, errBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) < tokenHeaderLen+nonceLen+16 || raw[0] != 0x80|tokenVersion {
		return nil, 0, errBadToken
	}
	kid := binary.BigEndian.Uint32(raw[1:])
	g, ok := kr.aeads[kid]
	if !ok {
		return nil, 0, errBadToken
	}
	plain, err := g.Open(nil, raw[tokenHeaderLen:tokenHeaderLen+nonceLen], raw[tokenHeaderLen+nonceLen:], raw[:tokenHeaderLen])
	if err != nil {
		return nil, 0, errBadToken
	}
	p, err := unmarshalPayload(plain)
	return p, kid, err
}

// tokenCache holds validated tokens. An entry keeps the decoded payload
// (so a hit skips the decryption) and the token as resolved under one
// epoch of the identity tables; expiry and revocation are checked on every
// hit.
type tokenCache struct {
	m   sync.Map // token string -> *cacheEntry
	n   atomic.Int64
	max int
}

type cacheEntry struct {
	kid  uint32
	p    *payload
	keys revKeys
	ep   *epoch
	tok  *Token
}

func (c *tokenCache) get(id string) *cacheEntry {
	if c.max < 0 {
		return nil
	}
	v, ok := c.m.Load(id)
	if !ok {
		return nil
	}
	return v.(*cacheEntry)
}

func (c *tokenCache) put(id string, e *cacheEntry) {
	if c.max < 0 {
		return
	}
	if _, loaded := c.m.Swap(id, e); loaded {
		return
	}
	if c.n.Add(1) > int64(c.max) {
		// Full: start again rather than track recency on the hot path.
		c.m.Clear()
		c.n.Store(0)
	}
}

func (c *tokenCache) drop(id string) {
	if _, loaded := c.m.LoadAndDelete(id); loaded {
		c.n.Add(-1)
	}
}

// epoch is a generation of the identity tables: it goes stale as soon as
// any of them changes, which invalidates every token resolved under it.
// The Service marks it stale itself after each of its writes; a goroutine
// watching the tables does so for changes made by others (another Service
// on the same store, or another controller through a replicated backend),
// within the time it takes to wake up. Revocation events never wait for it:
// every validation checks the revocation index synchronously.
type epoch struct {
	stale atomic.Bool
}

type epochHolder struct{ p atomic.Pointer[epoch] }

func (e *epoch) valid() bool { return !e.stale.Load() }

// invalidate ends the current epoch, after a write of this Service.
func (s *Service) invalidate() {
	if e := s.ep.p.Load(); e != nil {
		e.stale.Store(true)
	}
}

// update runs fn in a store transaction and ends the current epoch.
func (s *Service) update(ctx context.Context, fn func(*store.Txn) error) error {
	err := s.st.Update(ctx, fn)
	s.invalidate()
	return err
}

// epoch returns the current epoch, starting a new one when the identity
// tables changed. Callers must read the tables after calling it.
func (s *Service) epoch() *epoch {
	if e := s.ep.p.Load(); e != nil && e.valid() {
		return e
	}
	s.epMu.Lock()
	defer s.epMu.Unlock()
	if e := s.ep.p.Load(); e != nil && e.valid() {
		return e
	}
	ws := memdb.NewWatchSet()
	e := &epoch{}
	if err := watchTables(ws, s.st.Snapshot()); err != nil {
		s.log.Error("identity: watch tables", "err", err)
		e.stale.Store(true) // nothing stays cached under it
		return e
	}
	s.ep.p.Store(e)
	go func() {
		_ = ws.WatchCtx(s.life)
		e.stale.Store(true)
	}()
	return e
}

func watchTables(ws memdb.WatchSet, tx *store.Txn) error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	_, err := store.List[Domain](ws, tx, domainTable, store.IDIndex)
	add(err)
	_, err = store.List[Project](ws, tx, projectTable, store.IDIndex)
	add(err)
	_, err = store.List[User](ws, tx, userTable, store.IDIndex)
	add(err)
	_, err = store.List[Group](ws, tx, groupTable, store.IDIndex)
	add(err)
	_, err = store.List[Membership](ws, tx, memberTable, store.IDIndex)
	add(err)
	_, err = store.List[Role](ws, tx, roleTable, store.IDIndex)
	add(err)
	_, err = store.List[ImpliedRole](ws, tx, impliedTable, store.IDIndex)
	add(err)
	_, err = store.List[Assignment](ws, tx, assignmentTable, store.IDIndex)
	add(err)
	_, err = store.List[Region](ws, tx, regionTable, store.IDIndex)
	add(err)
	_, err = store.List[CatalogService](ws, tx, serviceTable, store.IDIndex)
	add(err)
	_, err = store.List[Endpoint](ws, tx, endpointTable, store.IDIndex)
	add(err)
	_, err = store.List[TokenKeys](ws, tx, keyTable, store.IDIndex)
	add(err)
	_, err = store.List[ApplicationCredential](ws, tx, appCredTable, store.IDIndex)
	add(err)
	_, err = store.List[Trust](ws, tx, trustTable, store.IDIndex)
	add(err)
	return errors.Join(errs...)
}

// ValidateToken checks a token and returns what it grants. A token that is
// malformed, forged, expired or revoked, or whose user, domain or project
// is disabled or gone, or that no longer has a role on its scope, gives an
// error matching errdefs.ErrUnauthenticated. Expiry and revocation are
// checked on every call, cached or not.
func (s *Service) ValidateToken(ctx context.Context, id string) (*Token, error) {
	now := s.now().UnixMicro()
	ep := s.epoch()
	e := s.cache.get(id)
	var p *payload
	var keys revKeys
	var kid uint32
	if e != nil {
		p, keys, kid = e.p, e.keys, e.kid
	} else {
		kr, err := s.keyring(ctx)
		if err != nil {
			return nil, err
		}
		if p, kid, err = decodeToken(kr, id); err != nil {
			return nil, errUnauthenticated("the request you have made requires authentication: invalid token")
		}
		keys = s.revKeysOf(p)
	}
	if now >= p.expiresAt {
		if e != nil {
			s.cache.drop(id)
		}
		return nil, errUnauthenticated("the request you have made requires authentication: token has expired")
	}
	if s.revocations().revoked(p, &keys) {
		if e != nil {
			s.cache.drop(id)
		}
		return nil, errUnauthenticated("the request you have made requires authentication: token has been revoked")
	}
	if e != nil && e.ep == ep {
		return e.tok, nil
	}
	if e != nil {
		// The tables changed since the entry was cached, the keys among
		// them: a retired key no longer opens the token.
		kr, err := s.keyring(ctx)
		if err != nil {
			return nil, err
		}
		if _, ok := kr.aeads[kid]; !ok {
			s.cache.drop(id)
			return nil, errUnauthenticated("the request you have made requires authentication: invalid token")
		}
	}
	tok, err := s.resolve(s.st.Snapshot(), p)
	if err != nil {
		if e != nil {
			s.cache.drop(id)
		}
		return nil, err
	}
	s.cache.put(id, &cacheEntry{kid: kid, p: p, keys: keys, ep: ep, tok: tok})
	return tok, nil
}

// resolve turns a payload into a Token with the current names and roles,
// checking that the user, its domain and the scope are enabled.
func (s *Service) resolve(tx *store.Txn, p *payload) (*Token, error) {
	deny := func(why string) error {
		return errUnauthenticated("the request you have made requires authentication: " + why)
	}
	u, err := store.Get[User](nil, tx, userTable, p.userID)
	if err != nil {
		return nil, deny("user not found")
	}
	if !u.Enabled {
		return nil, deny("user is disabled")
	}
	ud, err := store.Get[Domain](nil, tx, domainTable, u.DomainID)
	if err != nil || !ud.Enabled {
		return nil, deny("user's domain is disabled")
	}
	t := &Token{
		Methods:   p.methodList(),
		User:      TokenUser{ID: u.ID, Name: u.Name, Domain: Ref{ID: ud.ID, Name: ud.Name}, PasswordExpiresAt: u.PasswordExpiresAt},
		IssuedAt:  time.UnixMicro(p.issuedAt).UTC(),
		ExpiresAt: time.UnixMicro(p.expiresAt).UTC(),
		AuditIDs:  p.auditStrings(),
		chain:     p.auditIDs,
	}
	var roles []*Role
	switch {
	case p.trustID != "":
		var err error
		if roles, err = s.resolveTrust(tx, p, t); err != nil {
			return nil, err
		}
	case p.appCredID != "":
		var err error
		if roles, err = s.resolveAppCred(tx, p, t); err != nil {
			return nil, err
		}
	}
	switch p.scope {
	case scopeProject:
		pr, err := store.Get[Project](nil, tx, projectTable, p.scopeID)
		if err != nil || !pr.Enabled {
			return nil, deny("project is disabled or does not exist")
		}
		pd, err := store.Get[Domain](nil, tx, domainTable, pr.DomainID)
		if err != nil || !pd.Enabled {
			return nil, deny("project's domain is disabled")
		}
		t.Project = &TokenProject{ID: pr.ID, Name: pr.Name, Domain: Ref{ID: pd.ID, Name: pd.Name}}
		t.IsAdminProject = s.isAdminProject(pr)
		if p.trustID == "" && p.appCredID == "" {
			roles = effectiveRoles(tx, u.ID, targetProject, pr.ID)
		}
	case scopeDomain:
		d, err := store.Get[Domain](nil, tx, domainTable, p.scopeID)
		if err != nil || !d.Enabled {
			return nil, deny("domain is disabled or does not exist")
		}
		t.Domain = &Ref{ID: d.ID, Name: d.Name}
		roles = effectiveRoles(tx, u.ID, targetDomain, d.ID)
	case scopeSystem:
		t.System = true
		roles = effectiveRoles(tx, u.ID, targetSystem, systemAll)
	}
	if p.scope != scopeNone && len(roles) == 0 {
		return nil, deny("user has no role on the token's scope")
	}
	for _, r := range roles {
		t.Roles = append(t.Roles, Ref{ID: r.ID, Name: r.Name})
	}
	t.buildCredentials()
	return t, nil
}

// issue makes a token for user with scope, methods and audit ids.
func (s *Service) issue(ctx context.Context, p *payload) (string, *Token, error) {
	tok, err := s.resolve(s.st.Snapshot(), p)
	if err != nil {
		return "", nil, err
	}
	id, err := s.encodeToken(ctx, p)
	if err != nil {
		return "", nil, err
	}
	return id, tok, nil
}

func newAuditID() [auditIDLen]byte {
	var a [auditIDLen]byte
	_, _ = rand.Read(a[:])
	return a
}

// revKeys are the hashed revocation keys of a token, computed once per
// decode so that the revocation check costs a few bit tests.
type revKeys struct {
	h [maxAuditChain + 3]uint64
	n int
}

func (s *Service) revKeysOf(p *payload) revKeys {
	var k revKeys
	for _, a := range p.auditIDs {
		k.h[k.n] = revHash(revAudit, string(a[:]))
		k.n++
	}
	k.h[k.n] = revHash(revUser, p.userID)
	k.n++
	if p.scope == scopeProject {
		k.h[k.n] = revHash(revProject, p.scopeID)
		k.n++
		k.h[k.n] = revHash(revUserProject, p.userID+"\x1f"+p.scopeID)
		k.n++
	}
	return k
}

var revSeed = maphash.MakeSeed()

func revHash(kind byte, v string) uint64 {
	var h maphash.Hash
	h.SetSeed(revSeed)
	_ = h.WriteByte(kind)
	_, _ = h.WriteString(v)
	return h.Sum64()
}

func base64URLDecode(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
