package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// Credential is an entry of the credentials API (/v3/credentials): a
// secret of a user, such as an EC2/S3 access and secret key pair (type
// "ec2", blob {"access": ..., "secret": ...}), "totp" or any other type.
// The blob is stored encrypted with AES-256-GCM under the credential key
// (Config.CredentialKey, or a key kept in the store), bound to the
// credential's id.
type Credential struct {
	store.Meta
	ID        string `json:"id"`
	UserID    string `json:"user_id"`
	ProjectID string `json:"project_id,omitempty"`
	Type      string `json:"type"`
	// Sealed is nonce(12) ‖ AES-256-GCM(blob), with the id as additional
	// data.
	Sealed []byte `json:"sealed"`
	// Blob is the decrypted blob, set for callers, never stored.
	Blob string `json:"-"`
}

// StoreKey implements store.Record.
func (c *Credential) StoreKey() string { return c.ID }

var credentialTableDef = store.Table{
	Name: credentialTable,
	New:  func() store.Record { return new(Credential) },
	Indexes: []*memdbIndex{
		index("user", false, func(o any) string { return o.(*Credential).UserID }),
	},
}

// maxBlobLen bounds a credential's blob.
const maxBlobLen = 16 << 10

// CreateCredentialOpts are the fields of a new credential.
type CreateCredentialOpts struct {
	// UserID defaults to the caller.
	UserID    string
	ProjectID string
	Type      string
	Blob      string
}

// UpdateCredentialOpts are the fields to change; nil means unchanged.
type UpdateCredentialOpts struct {
	ProjectID *string
	Type      *string
	Blob      *string
}

// ListCredentialsOpts filters ListCredentials.
type ListCredentialsOpts struct {
	UserID string
	Type   string
}

// EC2Blob is the blob of an "ec2" credential.
type EC2Blob struct {
	Access string `json:"access"`
	Secret string `json:"secret"`
}

// ec2CredentialID is the id Keystone gives an ec2 credential: the SHA-256
// of its access key, so that the key finds the credential.
func ec2CredentialID(access string) string {
	h := sha256.Sum256([]byte(access))
	return hex.EncodeToString(h[:])
}

func checkCredential(typ, projectID, blob string) error {
	if err := checkName("type", typ); err != nil {
		return err
	}
	if len(blob) == 0 || len(blob) > maxBlobLen || !utf8.ValidString(blob) {
		return errdefs.Invalid("blob", "must be valid UTF-8 of 1 to %d bytes", maxBlobLen)
	}
	if typ == "ec2" {
		if projectID == "" {
			return errdefs.Invalid("project_id", "is required for an ec2 credential")
		}
		var b EC2Blob
		if err := json.Unmarshal([]byte(blob), &b); err != nil || b.Access == "" || b.Secret == "" {
			return errdefs.Invalid("blob", "an ec2 blob is a JSON object with access and secret")
		}
	}
	return nil
}

func (s *Service) seal(ctx context.Context, id, blob string) ([]byte, error) {
	g, err := s.credentialAEAD(ctx)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize(), g.NonceSize()+len(blob)+g.Overhead())
	_, _ = rand.Read(nonce)
	return g.Seal(nonce, nonce, []byte(blob), []byte(id)), nil
}

func (s *Service) open(ctx context.Context, c *Credential) (*Credential, error) {
	g, err := s.credentialAEAD(ctx)
	if err != nil {
		return nil, err
	}
	out := *c
	out.Sealed = nil
	if len(c.Sealed) < g.NonceSize() {
		return nil, fmt.Errorf("identity: credential %s: sealed blob too short", c.ID)
	}
	plain, err := g.Open(nil, c.Sealed[:g.NonceSize()], c.Sealed[g.NonceSize():], []byte(c.ID))
	if err != nil {
		return nil, fmt.Errorf("identity: credential %s: cannot decrypt (wrong credential key?): %w", c.ID, err)
	}
	out.Blob = string(plain)
	return &out, nil
}

func (s *Service) credentialVisible(c *Credentials, cr *Credential) bool {
	return s.policy.Allowed(c, "identity:get_credential", Target{UserID: cr.UserID, ProjectID: cr.ProjectID})
}

// CreateCredential creates a credential for the caller (or, for cloud
// admins, any user).
func (s *Service) CreateCredential(ctx context.Context, opts CreateCredentialOpts) (*Credential, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return nil, err
	}
	if opts.UserID == "" {
		opts.UserID = c.UserID
	}
	if err := checkCredential(opts.Type, opts.ProjectID, opts.Blob); err != nil {
		return nil, err
	}
	if err := s.policy.Enforce(ctx, "identity:create_credential", Target{UserID: opts.UserID, ProjectID: opts.ProjectID}); err != nil {
		return nil, err
	}
	if c.TrustID != "" || c.restrictedAppCred() {
		return nil, forbidden("a trust-scoped or restricted application credential token cannot create credentials")
	}
	cr := &Credential{ID: newID(), UserID: opts.UserID, ProjectID: opts.ProjectID, Type: opts.Type}
	if opts.Type == "ec2" {
		var b EC2Blob
		_ = json.Unmarshal([]byte(opts.Blob), &b)
		cr.ID = ec2CredentialID(b.Access)
	}
	if cr.Sealed, err = s.seal(ctx, cr.ID, opts.Blob); err != nil {
		return nil, err
	}
	err = s.update(ctx, func(tx *store.Txn) error {
		if _, err := store.Get[User](nil, tx, userTable, cr.UserID); err != nil {
			return errdefs.Invalid("user_id", "user %s does not exist", cr.UserID)
		}
		if cr.ProjectID != "" {
			if _, err := s.getProject(tx, cr.ProjectID); err != nil {
				return errdefs.Invalid("project_id", "project %s does not exist", cr.ProjectID)
			}
		}
		if _, err := store.Get[Credential](nil, tx, credentialTable, cr.ID); err == nil {
			return conflict("duplicate entry: credential %s", cr.ID)
		}
		return tx.Insert(credentialTable, cr)
	})
	if err != nil {
		return nil, err
	}
	return s.open(ctx, cr)
}

// GetCredential returns a credential of the caller (any, for cloud
// readers), with its blob decrypted.
func (s *Service) GetCredential(ctx context.Context, id string) (*Credential, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return nil, err
	}
	cr, err := store.Get[Credential](nil, s.st.Snapshot(), credentialTable, id)
	if err != nil || !s.credentialVisible(c, cr) {
		return nil, notFound("credential", id)
	}
	return s.open(ctx, cr)
}

// ListCredentials lists the credentials the caller may see that match opts.
func (s *Service) ListCredentials(ctx context.Context, opts ListCredentialsOpts) ([]*Credential, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return nil, err
	}
	it, err := store.List[Credential](nil, s.st.Snapshot(), credentialTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	var out []*Credential
	for cr := range it {
		switch {
		case opts.UserID != "" && cr.UserID != opts.UserID,
			opts.Type != "" && cr.Type != opts.Type,
			!s.credentialVisible(c, cr):
			continue
		}
		o, err := s.open(ctx, cr)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// UpdateCredential changes a credential's project, type or blob. An ec2
// credential keeps its id (its access key may not change).
func (s *Service) UpdateCredential(ctx context.Context, id string, opts UpdateCredentialOpts) (*Credential, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return nil, err
	}
	cur, err := s.GetCredential(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.policy.Enforce(ctx, "identity:update_credential", Target{UserID: cur.UserID, ProjectID: cur.ProjectID}); err != nil {
		return nil, err
	}
	next := *cur
	next.ProjectID = ptrOr(opts.ProjectID, cur.ProjectID)
	next.Type = ptrOr(opts.Type, cur.Type)
	next.Blob = ptrOr(opts.Blob, cur.Blob)
	if err := checkCredential(next.Type, next.ProjectID, next.Blob); err != nil {
		return nil, err
	}
	if next.Type == "ec2" {
		var b EC2Blob
		_ = json.Unmarshal([]byte(next.Blob), &b)
		if ec2CredentialID(b.Access) != id {
			return nil, errdefs.Invalid("blob", "the access key of an ec2 credential cannot change")
		}
	}
	sealed, err := s.seal(ctx, id, next.Blob)
	if err != nil {
		return nil, err
	}
	err = s.update(ctx, func(tx *store.Txn) error {
		cr, err := store.Get[Credential](nil, tx, credentialTable, id)
		if err != nil || !s.credentialVisible(c, cr) {
			return notFound("credential", id)
		}
		if next.ProjectID != "" && next.ProjectID != cr.ProjectID {
			if _, err := s.getProject(tx, next.ProjectID); err != nil {
				return errdefs.Invalid("project_id", "project %s does not exist", next.ProjectID)
			}
		}
		cr.ProjectID, cr.Type, cr.Sealed = next.ProjectID, next.Type, sealed
		return tx.Update(credentialTable, cr)
	})
	if err != nil {
		return nil, err
	}
	return s.GetCredential(ctx, id)
}

// DeleteCredential deletes a credential.
func (s *Service) DeleteCredential(ctx context.Context, id string) error {
	c, err := requireCredentials(ctx)
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Txn) error {
		cr, err := store.Get[Credential](nil, tx, credentialTable, id)
		if err != nil || !s.credentialVisible(c, cr) {
			return notFound("credential", id)
		}
		if err := s.policy.Enforce(ctx, "identity:delete_credential", Target{UserID: cr.UserID, ProjectID: cr.ProjectID}); err != nil {
			return err
		}
		return tx.Delete(credentialTable, id)
	})
}

// LookupEC2Credential returns the ec2 credential whose access key is
// access, with its secret, for a front end (S3, EC2) that verifies request
// signatures itself. Cloud admins and callers with the service role only.
func (s *Service) LookupEC2Credential(ctx context.Context, access string) (*Credential, *EC2Blob, error) {
	if err := s.policy.Enforce(ctx, "identity:ec2_lookup", Target{}); err != nil {
		return nil, nil, err
	}
	cr, err := store.Get[Credential](nil, s.st.Snapshot(), credentialTable, ec2CredentialID(access))
	if err != nil || cr.Type != "ec2" {
		return nil, nil, notFound("credential", "ec2 access key")
	}
	out, err := s.open(ctx, cr)
	if err != nil {
		return nil, nil, err
	}
	var b EC2Blob
	if err := json.Unmarshal([]byte(out.Blob), &b); err != nil || b.Access != access {
		return nil, nil, notFound("credential", "ec2 access key")
	}
	return out, &b, nil
}

// deleteUserCredentialsTxn deletes every credential of a user.
func deleteUserCredentialsTxn(tx *store.Txn, userID string) error {
	it, err := store.List[Credential](nil, tx, credentialTable, "user", userID)
	if err != nil {
		return err
	}
	var ids []string
	for c := range it {
		ids = append(ids, c.ID)
	}
	for _, id := range ids {
		if err := tx.Delete(credentialTable, id); err != nil {
			return err
		}
	}
	return nil
}
