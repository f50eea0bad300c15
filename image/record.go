package image

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// Status is an image's status, as Glance names it.
type Status string

// The image statuses. An image is created queued; an upload makes it saving
// then active; staging makes it uploading, an import importing then active.
// A failed upload or import returns it to queued. Admins deactivate an
// active image and reactivate it. killed and deleted are Glance's terminal
// statuses; deleted images are gone from the API.
const (
	StatusQueued      Status = "queued"
	StatusSaving      Status = "saving"
	StatusUploading   Status = "uploading"
	StatusImporting   Status = "importing"
	StatusActive      Status = "active"
	StatusKilled      Status = "killed"
	StatusDeleted     Status = "deleted"
	StatusDeactivated Status = "deactivated"
)

// Visibility says who may see an image.
type Visibility string

// The visibilities: public images are seen by all and listed for all;
// community images are seen by all but listed only on request; shared
// images are seen by their members (listed once accepted); private images
// only by their owner.
const (
	VisibilityPublic    Visibility = "public"
	VisibilityCommunity Visibility = "community"
	VisibilityShared    Visibility = "shared"
	VisibilityPrivate   Visibility = "private"
)

// Disk formats.
const (
	DiskRaw   = "raw"
	DiskQCOW2 = "qcow2"
	DiskVMDK  = "vmdk"
	DiskVDI   = "vdi"
	DiskVHD   = "vhd"
	DiskVHDX  = "vhdx"
	DiskISO   = "iso"
	DiskPloop = "ploop"
	DiskAKI   = "aki"
	DiskARI   = "ari"
	DiskAMI   = "ami"
)

// DiskFormats lists the accepted disk_format values.
var DiskFormats = []string{DiskAMI, DiskARI, DiskAKI, DiskVHD, DiskVHDX, DiskVMDK, DiskRaw, DiskQCOW2, DiskVDI, DiskPloop, DiskISO}

// ContainerFormats lists the accepted container_format values.
var ContainerFormats = []string{"ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"}

// Limits, Glance's defaults.
const (
	maxProperties = 128
	maxTags       = 128
	maxMembers    = 128
	maxNameLen    = 255
	maxKeyLen     = 255
	maxValueLen   = 65535
)

// Image is an image record. Its JSON form is the stored one; the API
// renders Glance's.
type Image struct {
	store.Meta
	ID              string            `json:"id"`
	Name            string            `json:"name,omitempty"`
	Status          Status            `json:"status"`
	Visibility      Visibility        `json:"visibility"`
	Protected       bool              `json:"protected,omitempty"`
	Hidden          bool              `json:"os_hidden,omitempty"`
	Owner           string            `json:"owner"`
	DiskFormat      string            `json:"disk_format,omitempty"`
	ContainerFormat string            `json:"container_format,omitempty"`
	MinDisk         int64             `json:"min_disk,omitempty"`
	MinRAM          int64             `json:"min_ram,omitempty"`
	Size            *int64            `json:"size,omitempty"`
	VirtualSize     *int64            `json:"virtual_size,omitempty"`
	Checksum        string            `json:"checksum,omitempty"`
	HashAlgo        string            `json:"os_hash_algo,omitempty"`
	HashValue       string            `json:"os_hash_value,omitempty"`
	Tags            []string          `json:"tags,omitempty"`
	Properties      map[string]string `json:"properties,omitempty"`
	CreatedAt       time.Time         `json:"created_at"`
	UpdatedAt       time.Time         `json:"updated_at"`
	// BlobKey is where the active image's bytes are in the blob store. It
	// never changes once set (no API can swap an image's data).
	BlobKey string `json:"blob_key,omitempty"`
	// Staged is the data staged for a glance-direct import.
	Staged *Data `json:"staged,omitempty"`
	// PendingKey is the blob of a transfer in flight, deleted if the
	// process dies before it completes.
	PendingKey string `json:"pending_key,omitempty"`
	// FailedImport names the import method that last failed, with why
	// (Glance's os_glance_failed_import).
	FailedImport string `json:"failed_import,omitempty"`
}

// Data describes stored image bytes.
type Data struct {
	Key         string `json:"key"`
	Size        int64  `json:"size"`
	VirtualSize int64  `json:"virtual_size,omitempty"`
	Checksum    string `json:"checksum"`
	HashValue   string `json:"hash"`
}

// StoreKey implements store.Record.
func (i *Image) StoreKey() string { return i.ID }

// KernelID returns the kernel_id property: the aki image a direct kernel
// boot of this (ami) image uses, or "".
func (i *Image) KernelID() string { return i.Properties["kernel_id"] }

// RamdiskID returns the ramdisk_id property: the ari image a direct kernel
// boot of this image uses, or "".
func (i *Image) RamdiskID() string { return i.Properties["ramdisk_id"] }

var imageTableDef = store.Table{
	Name: imageTable,
	New:  func() store.Record { return new(Image) },
	Indexes: []*memdbIndex{
		index("owner", func(o any) string { return o.(*Image).Owner }),
	},
}

func (i *Image) clone() *Image {
	c := *i
	c.Tags = slices.Clone(i.Tags)
	c.Properties = cloneProps(i.Properties)
	if i.Staged != nil {
		st := *i.Staged
		c.Staged = &st
	}
	return &c
}

func cloneProps(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	return maps.Clone(m)
}

// CreateImageOpts are the attributes of a new image. Nil pointers take
// Glance's defaults.
type CreateImageOpts struct {
	// ID is the image's id, a UUID; empty means a new one.
	ID              string
	Name            string
	Visibility      Visibility // default shared
	Protected       bool
	Hidden          bool
	DiskFormat      string
	ContainerFormat string
	MinDisk         int64
	MinRAM          int64
	Tags            []string
	// Owner is the owning project; empty means the caller's. Only admins
	// may name another.
	Owner string
	// Properties are free-form string properties.
	Properties map[string]string
}

// canSee reports whether c may see img. member is c's membership of img,
// or nil.
func canSee(c *identity.Credentials, img *Image, member *Member) bool {
	switch {
	case c.IsCloudAdmin(), img.Owner != "" && img.Owner == c.ProjectID:
		return true
	case img.Visibility == VisibilityPublic, img.Visibility == VisibilityCommunity:
		return true
	case img.Visibility == VisibilityShared:
		return member != nil
	}
	return false
}

// owns reports whether c may change img: its owner's members and admins.
func owns(c *identity.Credentials, img *Image) bool {
	return c.IsCloudAdmin() || (img.Owner != "" && img.Owner == c.ProjectID)
}

// visible returns the image id as c may see it, or ErrNotFound.
func (s *Service) visible(tx *store.Txn, c *identity.Credentials, id string) (*Image, error) {
	img, err := store.Get[Image](nil, tx, imageTable, id)
	if err != nil {
		return nil, notFound(id)
	}
	var m *Member
	if img.Visibility == VisibilityShared && c.ProjectID != "" {
		m, _ = store.Get[Member](nil, tx, memberTable, memberKey(id, c.ProjectID))
	}
	if !canSee(c, img, m) {
		return nil, notFound(id)
	}
	return img.clone(), nil
}

// CreateImage creates a queued image owned by the caller's project (or by
// opts.Owner, for admins).
func (s *Service) CreateImage(ctx context.Context, opts CreateImageOpts) (*Image, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	owner := c.ProjectID
	if opts.Owner != "" && opts.Owner != owner {
		if err := s.allowed(c, "image:set_owner", opts.Owner); err != nil {
			return nil, forbidden("you are not permitted to create images owned by %q", opts.Owner)
		}
		owner = opts.Owner
	}
	if owner == "" {
		return nil, forbidden("creating an image needs a project-scoped token")
	}
	if err := s.allowed(c, "image:add_image", owner); err != nil {
		return nil, err
	}
	img := &Image{
		ID: opts.ID, Name: opts.Name, Status: StatusQueued, Visibility: opts.Visibility,
		Protected: opts.Protected, Hidden: opts.Hidden, Owner: owner,
		DiskFormat: opts.DiskFormat, ContainerFormat: opts.ContainerFormat,
		MinDisk: opts.MinDisk, MinRAM: opts.MinRAM, Tags: dedupe(opts.Tags), Properties: cloneProps(opts.Properties),
	}
	if img.ID == "" {
		img.ID = newUUID()
	} else if !isUUID(img.ID) {
		return nil, errdefs.Invalid("id", "%q is not a valid UUID", img.ID)
	}
	img.ID = strings.ToLower(img.ID)
	if img.Visibility == "" {
		img.Visibility = VisibilityShared
	}
	if err := s.checkVisibility(c, img.Visibility, owner); err != nil {
		return nil, err
	}
	if err := validateImage(img); err != nil {
		return nil, err
	}
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		if err := s.checkQuota(tx, owner, 1, 0, 0); err != nil {
			return err
		}
		if _, err := store.GetTombstone(nil, tx, imageTable, img.ID); err == nil {
			return conflict("image ID %s was used before and cannot be reused", img.ID)
		}
		img.CreatedAt, img.UpdatedAt = tx.Now(), tx.Now()
		if err := tx.Insert(imageTable, img); err != nil {
			if errdefs.IsConflict(err) {
				return conflict("image ID %s already exists", img.ID)
			}
			return err
		}
		return tx.Emit("image.image.create", img.ID, owner, nil)
	})
	if err != nil {
		return nil, err
	}
	return img.clone(), nil
}

// checkVisibility enforces who may give an image each visibility.
func (s *Service) checkVisibility(c *identity.Credentials, v Visibility, owner string) error {
	switch v {
	case VisibilityPublic:
		if err := s.allowed(c, "image:publicize_image", owner); err != nil {
			return forbidden("you are not authorized to set public visibility")
		}
	case VisibilityCommunity:
		if err := s.allowed(c, "image:communitize_image", owner); err != nil {
			return forbidden("you are not authorized to set community visibility")
		}
	case VisibilityShared, VisibilityPrivate:
	default:
		return errdefs.Invalid("visibility", "%q is not one of public, private, shared, community", v)
	}
	return nil
}

// validateImage checks the user-settable attributes of img.
func validateImage(img *Image) error {
	if err := checkText("name", img.Name, maxNameLen); err != nil {
		return err
	}
	if img.DiskFormat != "" && !slices.Contains(DiskFormats, img.DiskFormat) {
		return errdefs.Invalid("disk_format", "%q is not one of %s", img.DiskFormat, strings.Join(DiskFormats, ", "))
	}
	if img.ContainerFormat != "" && !slices.Contains(ContainerFormats, img.ContainerFormat) {
		return errdefs.Invalid("container_format", "%q is not one of %s", img.ContainerFormat, strings.Join(ContainerFormats, ", "))
	}
	if img.MinDisk < 0 || img.MinDisk > 1<<31-1 {
		return errdefs.Invalid("min_disk", "must be a non-negative 32-bit integer")
	}
	if img.MinRAM < 0 || img.MinRAM > 1<<31-1 {
		return errdefs.Invalid("min_ram", "must be a non-negative 32-bit integer")
	}
	if len(img.Tags) > maxTags {
		return fmt.Errorf("image: maximum number of tags exceeded (%d): %w", maxTags, errdefs.ErrQuotaExceeded)
	}
	for _, t := range img.Tags {
		if err := checkText("tags", t, maxKeyLen); err != nil {
			return err
		}
		if t == "" {
			return errdefs.Invalid("tags", "a tag must not be empty")
		}
	}
	if len(img.Properties) > maxProperties {
		return fmt.Errorf("image: maximum number of properties exceeded (%d): %w", maxProperties, errdefs.ErrQuotaExceeded)
	}
	for k, v := range img.Properties {
		if err := checkPropertyName(k); err != nil {
			return err
		}
		if err := checkText(k, v, maxValueLen); err != nil {
			return err
		}
	}
	for _, k := range []string{"kernel_id", "ramdisk_id"} {
		if v, ok := img.Properties[k]; ok && !isUUID(v) {
			return errdefs.Invalid(k, "%q is not a valid UUID", v)
		}
	}
	return nil
}

// readOnly are the attributes no request may set.
var readOnly = []string{"id", "status", "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size",
	"created_at", "updated_at", "self", "file", "schema", "direct_url", "locations", "stores", "deleted", "deleted_at"}

// checkPropertyName refuses names of base attributes, reserved names and
// bad keys as free-form property names.
func checkPropertyName(k string) error {
	switch {
	case slices.Contains(readOnly, k):
		return forbidden("attribute '%s' is read-only", k)
	case strings.HasPrefix(k, "os_glance"):
		return forbidden("attribute '%s' is reserved", k)
	case k == "" || len(k) > maxKeyLen || !utf8.ValidString(k) || strings.ContainsFunc(k, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errdefs.Invalid("properties", "%q is not a valid property name", k)
	}
	return nil
}

func checkText(field, v string, maxLen int) error {
	switch {
	case len(v) > maxLen:
		return errdefs.Invalid(field, "must be at most %d characters", maxLen)
	case !utf8.ValidString(v):
		return errdefs.Invalid(field, "must be valid UTF-8")
	case strings.ContainsRune(v, 0):
		return errdefs.Invalid(field, "must not contain NUL")
	}
	return nil
}

func dedupe(tags []string) []string {
	var out []string
	for _, t := range tags {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// GetImage returns the image id if the caller may see it. This and
// OpenData are what compute needs to boot from an image.
func (s *Service) GetImage(ctx context.Context, id string) (*Image, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	return s.visible(s.st.Snapshot(), c, id)
}

// DeleteImage deletes an image and its bytes. A protected image cannot be
// deleted (ErrForbidden, as Glance answers 403).
func (s *Service) DeleteImage(ctx context.Context, id string) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	var gone *Image
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		img, err := s.visible(tx, c, id)
		if err != nil {
			return err
		}
		if !owns(c, img) {
			return forbidden("you are not permitted to delete image %s", id)
		}
		if err := s.allowed(c, "image:delete_image", img.Owner); err != nil {
			return err
		}
		if img.Protected {
			return forbidden("image %s is protected and cannot be deleted", id)
		}
		ms, err := store.List[Member](nil, tx, memberTable, "image", id)
		if err != nil {
			return err
		}
		for _, m := range slices.Collect(ms) {
			if err := tx.Delete(memberTable, m.StoreKey()); err != nil {
				return err
			}
		}
		if err := tx.Delete(imageTable, id); err != nil {
			return err
		}
		gone = img
		return tx.Emit("image.image.delete", id, img.Owner, nil)
	})
	if err != nil {
		return err
	}
	for _, k := range []string{gone.BlobKey, gone.PendingKey, stagedKey(gone)} {
		if k == "" {
			continue
		}
		if err := s.blobs.Delete(ctx, k); err != nil {
			s.log.Warn("image: delete bytes of deleted image", "image", id, "key", k, "err", err)
		}
	}
	return nil
}

func stagedKey(img *Image) string {
	if img.Staged == nil {
		return ""
	}
	return img.Staged.Key
}

// DeactivateImage makes an active image's data unavailable to all but
// admins (admin only). Deactivating a deactivated image does nothing.
func (s *Service) DeactivateImage(ctx context.Context, id string) error {
	return s.setActivation(ctx, id, "image:deactivate", StatusActive, StatusDeactivated)
}

// ReactivateImage makes a deactivated image active again (admin only).
func (s *Service) ReactivateImage(ctx context.Context, id string) error {
	return s.setActivation(ctx, id, "image:reactivate", StatusDeactivated, StatusActive)
}

func (s *Service) setActivation(ctx context.Context, id, action string, from, to Status) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		img, err := s.visible(tx, c, id)
		if err != nil {
			return err
		}
		if err := s.allowed(c, action, img.Owner); err != nil {
			return err
		}
		switch img.Status {
		case to:
			return nil
		case from:
		default:
			return forbidden("not allowed to %s image in status '%s'", strings.TrimPrefix(action, "image:"), img.Status)
		}
		img.Status = to
		img.UpdatedAt = tx.Now()
		if err := tx.Update(imageTable, img); err != nil {
			return err
		}
		return tx.Emit("image.image."+strings.TrimPrefix(action, "image:"), id, img.Owner, nil)
	})
}

// AddTag adds a tag to an image (idempotent).
func (s *Service) AddTag(ctx context.Context, id, tag string) error {
	if err := checkText("tag", tag, maxKeyLen); err != nil || tag == "" {
		return errdefs.Invalid("tag", "must be 1 to %d characters of UTF-8", maxKeyLen)
	}
	return s.change(ctx, id, func(img *Image) error {
		if !slices.Contains(img.Tags, tag) {
			img.Tags = append(img.Tags, tag)
		}
		return nil
	})
}

// DeleteTag removes a tag from an image; a missing tag is ErrNotFound.
func (s *Service) DeleteTag(ctx context.Context, id, tag string) error {
	return s.change(ctx, id, func(img *Image) error {
		i := slices.Index(img.Tags, tag)
		if i < 0 {
			return fmt.Errorf("image: tag %q not found: %w", tag, errdefs.ErrNotFound)
		}
		img.Tags = slices.Delete(img.Tags, i, i+1)
		return nil
	})
}

// change applies fn to an image the caller owns, validates and writes it.
func (s *Service) change(ctx context.Context, id string, fn func(img *Image) error) error {
	_, err := s.changeImage(ctx, id, func(_ *identity.Credentials, img *Image) error { return fn(img) })
	return err
}

func (s *Service) changeImage(ctx context.Context, id string, fn func(c *identity.Credentials, img *Image) error) (*Image, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	var out *Image
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		img, err := s.visible(tx, c, id)
		if err != nil {
			return err
		}
		if !owns(c, img) {
			return forbidden("you are not permitted to modify image %s", id)
		}
		if err := s.allowed(c, "image:modify_image", img.Owner); err != nil {
			return err
		}
		before := img.clone()
		if err := fn(c, img); err != nil {
			return err
		}
		if img.Visibility != before.Visibility {
			if err := s.checkVisibility(c, img.Visibility, img.Owner); err != nil {
				return err
			}
		}
		if err := validateImage(img); err != nil {
			return err
		}
		img.UpdatedAt = tx.Now()
		if err := tx.Update(imageTable, img); err != nil {
			return err
		}
		out = img.clone()
		return tx.Emit("image.image.update", id, img.Owner, nil)
	})
	return out, err
}
