package compute

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// Keypair is an SSH public key of a user.
type Keypair struct {
	store.Meta
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	UserID      string    `json:"user_id"`
	ProjectID   string    `json:"project_id"`
	Type        string    `json:"type"` // ssh or x509
	PublicKey   string    `json:"public_key"`
	Fingerprint string    `json:"fingerprint"`
	Created     time.Time `json:"created_at"`
	// PrivateKey is set only in the answer to a create that generated the
	// key; it is never stored.
	PrivateKey string `json:"-"`
}

// StoreKey implements store.Record.
func (k *Keypair) StoreKey() string { return k.UserID + "/" + k.Name }

// CreateKeypairOpts creates or imports a keypair.
type CreateKeypairOpts struct {
	Name string
	// PublicKey imports a key; empty generates one.
	PublicKey string
	// Type is "ssh" (default) or "x509".
	Type string
	// KeyAlgorithm chooses the generated key: "ed25519" or "rsa"
	// (default, 2048 bits, in PEM that every client parses).
	KeyAlgorithm string
	// UserID creates the keypair for another user (admins only).
	UserID string
}

func checkKeypairName(name string) error {
	if err := checkName("name", name); err != nil {
		return err
	}
	for _, r := range name {
		if !strings.ContainsRune("-_ @.", r) && (r < '0' || r > '9') && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') {
			return errdefs.Invalid("name", "may contain only letters, digits, spaces, '-', '_', '.' and '@'")
		}
	}
	return nil
}

// Fingerprint returns the MD5 fingerprint Nova shows for an OpenSSH public
// key ("aa:bb:..."), or an error naming public_key.
func Fingerprint(publicKey string) (string, error) {
	if len(publicKey) > 16<<10 {
		return "", errdefs.Invalid("public_key", "is too long")
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(publicKey))
	if err != nil {
		return "", errdefs.Invalid("public_key", "is not a valid OpenSSH public key")
	}
	return ssh.FingerprintLegacyMD5(pk), nil
}

func generateKey(alg string) (pub, priv string, err error) {
	switch alg {
	case "ed25519":
		pk, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return "", "", err
		}
		block, err := ssh.MarshalPrivateKey(sk, "")
		if err != nil {
			return "", "", err
		}
		spk, err := ssh.NewPublicKey(pk)
		if err != nil {
			return "", "", err
		}
		return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spk))), string(pem.EncodeToMemory(block)), nil
	case "", "rsa":
		sk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return "", "", err
		}
		spk, err := ssh.NewPublicKey(&sk.PublicKey)
		if err != nil {
			return "", "", err
		}
		p := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(sk)})
		return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spk))), string(p), nil
	}
	return "", "", errdefs.Invalid("key_algorithm", "must be ed25519 or rsa")
}

// CreateKeypair generates or imports a keypair of the caller (or of
// o.UserID, for admins), counted against the key_pairs quota per user.
func (s *Service) CreateKeypair(ctx context.Context, o CreateKeypairOpts) (*Keypair, error) {
	c, err := s.enforce(ctx, "compute:keypair", "")
	if err != nil {
		return nil, err
	}
	user := c.UserID
	if o.UserID != "" && o.UserID != c.UserID {
		if !s.allowed(c, "compute:keypair:other_user", "") {
			return nil, fmt.Errorf("compute: creating a keypair for another user is not allowed: %w", errdefs.ErrForbidden)
		}
		user = o.UserID
	}
	if err := checkKeypairName(o.Name); err != nil {
		return nil, err
	}
	switch o.Type {
	case "":
		o.Type = "ssh"
	case "ssh", "x509":
	default:
		return nil, errdefs.Invalid("type", "must be ssh or x509")
	}
	k := &Keypair{ID: newUUID(), Name: o.Name, UserID: user, ProjectID: c.ProjectID, Type: o.Type, Created: s.st.Now().UTC()}
	if o.PublicKey == "" {
		if o.Type == "x509" {
			return nil, errdefs.Invalid("public_key", "is required for x509 keypairs")
		}
		pub, priv, err := generateKey(o.KeyAlgorithm)
		if err != nil {
			return nil, err
		}
		k.PublicKey, k.PrivateKey = pub, priv
	} else {
		k.PublicKey = strings.TrimSpace(o.PublicKey)
	}
	if o.Type == "ssh" {
		if k.Fingerprint, err = Fingerprint(k.PublicKey); err != nil {
			return nil, err
		}
	} else if len(k.PublicKey) > 16<<10 {
		return nil, errdefs.Invalid("public_key", "is too long")
	}
	limit := s.quotaFor(s.st.Snapshot(), c.ProjectID).KeyPairs
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		it, err := store.List[Keypair](nil, tx, keypairTable, store.IDIndex+"_prefix", user+"/")
		if err != nil {
			return err
		}
		n := 0
		for range it {
			n++
		}
		if limit >= 0 && n+1 > limit {
			return quotaError("key_pairs", limit, n, 1)
		}
		if err := tx.Insert(keypairTable, k); err != nil {
			return fmt.Errorf("compute: key pair '%s' already exists: %w", k.Name, errdefs.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// keypairUser returns whose keypairs the caller addresses.
func (s *Service) keypairUser(ctx context.Context, userID string) (string, error) {
	c, err := s.enforce(ctx, "compute:keypair", "")
	if err != nil {
		return "", err
	}
	if userID == "" || userID == c.UserID {
		return c.UserID, nil
	}
	if !s.allowed(c, "compute:keypair:other_user", "") {
		return "", fmt.Errorf("compute: keypairs of another user: %w", errdefs.ErrForbidden)
	}
	return userID, nil
}

// GetKeypair returns the caller's keypair called name (or another user's,
// for admins).
func (s *Service) GetKeypair(ctx context.Context, name, userID string) (*Keypair, error) {
	user, err := s.keypairUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	k, err := store.Get[Keypair](nil, s.st.Snapshot(), keypairTable, user+"/"+name)
	if err != nil {
		return nil, fmt.Errorf("compute: keypair %s not found for user %s: %w", name, user, errdefs.ErrNotFound)
	}
	return k, nil
}

// ListKeypairs returns the caller's keypairs (or another user's, for
// admins), by name.
func (s *Service) ListKeypairs(ctx context.Context, userID string) ([]*Keypair, error) {
	user, err := s.keypairUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	it, err := store.List[Keypair](nil, s.st.Snapshot(), keypairTable, store.IDIndex+"_prefix", user+"/")
	if err != nil {
		return nil, err
	}
	var out []*Keypair
	for k := range it {
		out = append(out, k)
	}
	return out, nil
}

// DeleteKeypair deletes the caller's keypair called name.
func (s *Service) DeleteKeypair(ctx context.Context, name, userID string) error {
	user, err := s.keypairUser(ctx, userID)
	if err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		if err := tx.Delete(keypairTable, user+"/"+name); err != nil {
			return fmt.Errorf("compute: keypair %s not found for user %s: %w", name, user, errdefs.ErrNotFound)
		}
		return nil
	})
}
