package image

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// Table names.
const (
	imageTable  = "image.images"
	memberTable = "image.members"
	quotaTable  = "image.quotas"
)

// Tables returns the store tables of the image service, for store.Open.
func Tables() []store.Table {
	return []store.Table{imageTableDef, memberTableDef, quotaTableDef}
}

// Config configures a Service.
type Config struct {
	// Store holds the image tables (see Tables). Required.
	Store *store.Store
	// Blobs holds the image bytes. Required.
	Blobs BlobStore
	// Logger receives the service's log lines. Default: slog.Default().
	Logger *slog.Logger
	// Policy overrides rules of DefaultPolicy by action name.
	Policy identity.Policy
	// Quota is every project's quota unless SetQuota gave it another.
	Quota Quota
	// WebDownload configures the web-download import method. Its zero
	// value disables it: no outgoing request is ever made.
	WebDownload WebDownload
	// ShowDirectURL shows cloud admins where an image's bytes are
	// (direct_url). Nobody else ever sees it.
	ShowDirectURL bool
}

// WebDownload configures the web-download import method.
type WebDownload struct {
	// AllowedHosts lists the hosts ("images.example.com", or with a port,
	// "127.0.0.1:8080") that web-download may fetch from, redirects
	// included. Empty disables web-download.
	AllowedHosts []string
	// MaxBytes bounds the size of a downloaded image. Default: 16 GiB.
	MaxBytes int64
	// Client makes the requests. Default: a client with a 30 s timeout to
	// the response headers.
	Client *http.Client
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	if c.Store == nil {
		return errors.New("image: Config.Store is required")
	}
	if c.Blobs == nil {
		return errors.New("image: Config.Blobs is required")
	}
	if c.WebDownload.MaxBytes < 0 {
		return errdefs.Invalid("WebDownload.MaxBytes", "must not be negative")
	}
	return c.Quota.validate()
}

// DefaultPolicy returns the image service's default rules, close to
// Glance's: making an image public, changing an image's owner and
// deactivating or reactivating are for cloud admins; members of a project
// manage its images (community visibility included).
func DefaultPolicy() identity.Policy {
	member := identity.AnyOf(identity.Admin, identity.ProjectRole(identity.RoleMember))
	return identity.Policy{
		"image:publicize_image":   identity.Admin,
		"image:communitize_image": member,
		"image:set_owner":         identity.Admin,
		"image:deactivate":        identity.Admin,
		"image:reactivate":        identity.Admin,
		"image:set_quota":         identity.Admin,
		"image:add_image":         member,
		"image:modify_image":      member,
		"image:delete_image":      member,
		"image:upload_image":      member,
		"image:add_member":        member,
		"image:delete_member":     member,
		"image:modify_member":     identity.AnyOf(identity.Admin, identity.ProjectRole(identity.RoleMember)),
	}
}

// Service is the image service: Glance v2's images, their data, members,
// tags, import and quotas. Its methods enforce policy and visibility on the
// Credentials in the context (identity.WithCredentials); an image the
// caller may not see is not found.
type Service struct {
	cfg    Config
	st     *store.Store
	blobs  BlobStore
	log    *slog.Logger
	policy identity.Policy
	web    map[string]bool

	life   context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Service on cfg.Store, whose image tables must be open.
// Call Start before serving.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	names := make([]string, 0, 3)
	for _, t := range Tables() {
		names = append(names, t.Name)
	}
	if err := cfg.Store.HasTables(names...); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.WebDownload.MaxBytes == 0 {
		cfg.WebDownload.MaxBytes = 16 << 30
	}
	s := &Service{
		cfg: cfg, st: cfg.Store, blobs: cfg.Blobs, log: cfg.Logger,
		policy: DefaultPolicy().With(cfg.Policy), web: map[string]bool{},
	}
	for _, h := range cfg.WebDownload.AllowedHosts {
		s.web[h] = true
	}
	s.life, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Start recovers from a crash: an upload, stage or import that was in
// flight is abandoned, its partial bytes deleted and its image put back to
// queued (or to uploading when staged data remains). It is idempotent.
func (s *Service) Start(ctx context.Context) error {
	snap := s.st.Snapshot()
	it, err := store.List[Image](nil, snap, imageTable, store.IDIndex)
	if err != nil {
		return err
	}
	var stuck []*Image
	for img := range it {
		if img.PendingKey != "" || img.Status == StatusSaving || img.Status == StatusImporting {
			stuck = append(stuck, img)
		}
	}
	for _, img := range stuck {
		if img.PendingKey != "" {
			if err := s.blobs.Delete(ctx, img.PendingKey); err != nil {
				return fmt.Errorf("image: recover %s: %w", img.ID, err)
			}
		}
		s.log.Warn("image: abandoning interrupted transfer", "image", img.ID, "status", img.Status)
		err := s.modify(ctx, img.ID, func(tx *store.Txn, cur *Image) error {
			cur.PendingKey = ""
			if cur.Status == StatusSaving || cur.Status == StatusImporting {
				cur.Status = StatusQueued
				if cur.Staged != nil {
					cur.Status = StatusUploading
				}
			}
			return nil
		})
		if err != nil && !errdefs.IsNotFound(err) {
			return err
		}
	}
	return s.sweep(ctx)
}

// sweep deletes the blobs no image refers to. The keys are listed before
// the records are read: a blob that exists when listed was either written
// by a transfer whose image already names it (PendingKey is set before any
// byte is written) or is an orphan.
func (s *Service) sweep(ctx context.Context) error {
	l, ok := s.blobs.(BlobLister)
	if !ok {
		return nil
	}
	keys, err := l.Keys()
	if err != nil {
		return fmt.Errorf("image: list blobs: %w", err)
	}
	it, err := store.List[Image](nil, s.st.Snapshot(), imageTable, store.IDIndex)
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for img := range it {
		used[img.BlobKey], used[img.PendingKey], used[stagedKey(img)] = true, true, true
	}
	for _, k := range keys {
		ours := strings.HasPrefix(k, "images/") || strings.HasPrefix(k, "staging/")
		if used[k] || !ours {
			continue
		}
		s.log.Warn("image: deleting bytes no image refers to", "key", k)
		if err := s.blobs.Delete(ctx, k); err != nil {
			return fmt.Errorf("image: delete orphan blob %q: %w", k, err)
		}
	}
	return nil
}

// Close cancels web-download imports in flight and waits for them. It does
// not close the store or the blob store.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// caller returns the request's credentials or an ErrUnauthenticated error.
func caller(ctx context.Context) (*identity.Credentials, error) {
	c := identity.CredentialsFrom(ctx)
	if c == nil {
		return nil, fmt.Errorf("image: the request you have made requires authentication: %w", errdefs.ErrUnauthenticated)
	}
	return c, nil
}

// allowed checks action on an image of project owner.
func (s *Service) allowed(c *identity.Credentials, action, owner string) error {
	if s.policy.Allowed(c, action, identity.Target{ProjectID: owner}) {
		return nil
	}
	return fmt.Errorf("image: you are not authorized to %s: %w", action, errdefs.ErrForbidden)
}

// modify runs fn on the current image id inside a write transaction and
// writes it back (compare-and-swap within the transaction).
func (s *Service) modify(ctx context.Context, id string, fn func(tx *store.Txn, img *Image) error) error {
	return s.st.Update(ctx, func(tx *store.Txn) error {
		img, err := store.Get[Image](nil, tx, imageTable, id)
		if err != nil {
			return notFound(id)
		}
		img.Tags = slices.Clone(img.Tags)
		img.Properties = cloneProps(img.Properties)
		if err := fn(tx, img); err != nil {
			return err
		}
		img.UpdatedAt = tx.Now()
		return tx.Update(imageTable, img)
	})
}

func notFound(id string) error {
	return fmt.Errorf("image: no image found with ID %s: %w", id, errdefs.ErrNotFound)
}

func conflict(format string, args ...any) error {
	return fmt.Errorf("image: "+format+": %w", append(args, errdefs.ErrConflict)...)
}

func forbidden(format string, args ...any) error {
	return fmt.Errorf("image: "+format+": %w", append(args, errdefs.ErrForbidden)...)
}

// newUUID returns a random (version 4) UUID, the form of Glance's ids.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// isUUID reports whether s has the 8-4-4-4-12 hex form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range []byte(s) {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			hex := c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
			if !hex {
				return false
			}
		}
	}
	return true
}

// strIndex is a memdb indexer over a string computed from the record; ""
// leaves the record out of the index.
type strIndex func(obj any) string

func (f strIndex) FromObject(obj any) (bool, []byte, error) {
	v := f(obj)
	if v == "" {
		return false, nil, nil
	}
	return true, append([]byte(v), 0), nil
}

func (f strIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("image: index takes one argument, got %d", len(args))
	}
	v, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("image: index argument must be a string, got %T", args[0])
	}
	return append([]byte(v), 0), nil
}

func index(name string, f strIndex) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: name, AllowMissing: true, Indexer: f}
}

type memdbIndex = memdb.IndexSchema
