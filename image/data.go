package image

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // Glance's checksum is MD5; integrity rests on os_hash_value (SHA-512)
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// HashAlgo is the os_hash_algo of every image.
const HashAlgo = "sha512"

// Import methods.
const (
	ImportGlanceDirect = "glance-direct"
	ImportWebDownload  = "web-download"
)

// ErrNoData is returned by OpenData for an image that has no data yet
// (queued, saving, uploading, importing). It matches errdefs.ErrConflict;
// the API answers 204 as Glance does.
var ErrNoData = errdefs.Wrap(errdefs.ErrConflict, errors.New("image: the image has no data"))

// UploadOpts describe the bytes of an upload or a stage.
type UploadOpts struct {
	// Size is the size the client declared (Content-Length), or -1 if
	// unknown. A different size fails the upload.
	Size int64
	// Checksum is the MD5 the client declared, in hex, or "". A different
	// checksum fails the upload.
	Checksum string
}

// UploadData stores an image's bytes from r, streaming them to the blob
// store while it computes the MD5 checksum and the SHA-512 os_hash_value
// and inspects the leading bytes (see Inspect): data that does not match
// the image's disk_format or is unsafe is refused before anything is
// stored. The image must be queued, with disk_format and container_format
// set; it is saving during the upload and active after. On any failure
// (bad data, a size or checksum mismatch, the quota, the client going
// away) the image is queued again and no byte is kept.
func (s *Service) UploadData(ctx context.Context, id string, r io.Reader, opts UploadOpts) (*Image, error) {
	return s.receive(ctx, id, r, opts, false)
}

// StageData stores bytes for a later glance-direct import (Glance's PUT
// /stage): the image goes from queued to uploading, and its data is
// checked against disk_format at import. Failure leaves it queued.
func (s *Service) StageData(ctx context.Context, id string, r io.Reader, opts UploadOpts) (*Image, error) {
	return s.receive(ctx, id, r, opts, true)
}

func (s *Service) receive(ctx context.Context, id string, r io.Reader, opts UploadOpts, stage bool) (*Image, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	img, err := s.visible(s.st.Snapshot(), c, id)
	if err != nil {
		return nil, err
	}
	if !owns(c, img) {
		return nil, forbidden("you are not permitted to upload data to image %s", id)
	}
	if err := s.allowed(c, "image:upload_image", img.Owner); err != nil {
		return nil, err
	}
	if !stage && (img.DiskFormat == "" || img.ContainerFormat == "") {
		return nil, errdefs.Invalid("disk_format", "properties disk_format, container_format must be set prior to saving data")
	}
	limit, err := s.remaining(img.Owner, stage)
	if err != nil {
		return nil, err
	}
	if limit == 0 {
		return nil, fmt.Errorf("image: project %s has no quota left for image data: %w", img.Owner, errdefs.ErrQuotaExceeded)
	}
	busy, prefix := StatusSaving, "images/"
	if stage {
		busy, prefix = StatusUploading, "staging/"
	}
	key := prefix + id + "/" + newUUID()
	err = s.modify(ctx, id, func(_ *store.Txn, cur *Image) error {
		if cur.Status != StatusQueued || cur.PendingKey != "" {
			return conflict("image status transition from %s to %s is not allowed", cur.Status, busy)
		}
		cur.Status, cur.PendingKey = busy, key
		return nil
	})
	if err != nil {
		return nil, err
	}
	format := img.DiskFormat
	if stage {
		format = "" // checked at import, when disk_format must be set
	}
	d, err := s.ingest(ctx, key, r, format, limit, opts)
	if err != nil {
		s.abandon(id, key, "")
		return nil, err
	}
	var out *Image
	err = s.modify(ctx, id, func(tx *store.Txn, cur *Image) error {
		if cur.PendingKey != key {
			return conflict("image %s changed during the upload", id)
		}
		cur.PendingKey = ""
		if stage {
			if err := s.checkQuota(tx, cur.Owner, 0, 0, d.Size); err != nil {
				return err
			}
			cur.Staged = &d
			cur.Status = StatusUploading
		} else {
			if err := s.checkQuota(tx, cur.Owner, 0, d.Size, 0); err != nil {
				return err
			}
			activate(cur, d)
		}
		out = cur.clone()
		typ := "image.image.upload"
		if stage {
			typ = "image.image.stage"
		}
		return tx.Emit(typ, id, cur.Owner, map[string]any{"size": d.Size, "checksum": d.Checksum})
	})
	if err != nil {
		s.abandon(id, key, "")
		return nil, err
	}
	return out, nil
}

// activate makes img active on the bytes d describes.
func activate(img *Image, d Data) {
	size, vsize := d.Size, d.VirtualSize
	img.Size, img.VirtualSize = &size, nil
	if vsize > 0 {
		img.VirtualSize = &vsize
	}
	img.Checksum, img.HashAlgo, img.HashValue = d.Checksum, HashAlgo, d.HashValue
	img.BlobKey = d.Key
	img.Status = StatusActive
	img.FailedImport = ""
}

// abandon deletes the bytes of a failed transfer and puts the image back
// to queued (or uploading, when staged data remains), if the transfer
// still owns it. failed, if set, is recorded as the failed import.
func (s *Service) abandon(id, key, failed string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.life), time.Minute)
	defer cancel()
	if err := s.blobs.Delete(ctx, key); err != nil {
		s.log.Warn("image: delete bytes of a failed transfer", "image", id, "key", key, "err", err)
	}
	err := s.modify(ctx, id, func(_ *store.Txn, cur *Image) error {
		if cur.PendingKey != key {
			return errNothingToDo
		}
		cur.PendingKey = ""
		cur.Status = StatusQueued
		if cur.Staged != nil {
			cur.Status = StatusUploading
		}
		if failed != "" {
			cur.FailedImport = failed
		}
		return nil
	})
	if err != nil && !errors.Is(err, errNothingToDo) && !errdefs.IsNotFound(err) {
		s.log.Warn("image: reset image after a failed transfer", "image", id, "err", err)
	}
}

var errNothingToDo = errors.New("image: nothing to do")

// ingest streams r into the blob store under key, hashing and inspecting
// as it goes. format, if set, is the disk_format the data must match.
// limit (-1: none) bounds the size.
func (s *Service) ingest(ctx context.Context, key string, r io.Reader, format string, limit int64, opts UploadOpts) (Data, error) {
	head := make([]byte, InspectBytes)
	n, err := io.ReadFull(r, head)
	head = head[:n]
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		r = bytes.NewReader(nil)
	case err != nil:
		return Data{}, fmt.Errorf("image: read image data: %w", err)
	}
	ins, err := Inspect(head)
	if err != nil {
		return Data{}, err
	}
	if format != "" {
		if err := checkFormat(format, ins); err != nil {
			return Data{}, err
		}
	}
	m := newMeter(io.MultiReader(bytes.NewReader(head), r), limit)
	size, err := s.blobs.Put(ctx, key, m)
	md5sum, sha := m.sums()
	if err != nil {
		if m.over {
			return Data{}, fmt.Errorf("image: image data exceeds the remaining quota of %d bytes: %w", limit, errdefs.ErrQuotaExceeded)
		}
		if m.err != nil {
			return Data{}, fmt.Errorf("image: read image data: %w", m.err)
		}
		return Data{}, err
	}
	d := Data{Key: key, Size: size, Checksum: md5sum, HashValue: sha}
	switch {
	case size != m.n:
		err = fmt.Errorf("image: blob store stored %d of %d bytes", size, m.n)
	case opts.Size >= 0 && opts.Size != size:
		err = errdefs.Invalid("size", "the declared size %d does not match the %d bytes received", opts.Size, size)
	case opts.Checksum != "" && !strings.EqualFold(opts.Checksum, d.Checksum):
		err = errdefs.Invalid("checksum", "checksum verification failed: the declared checksum %s does not match the data's %s", opts.Checksum, d.Checksum)
	default:
		err = CheckTail(ins, head, m.tail)
	}
	if err != nil {
		if derr := s.blobs.Delete(context.WithoutCancel(ctx), key); derr != nil {
			s.log.Warn("image: delete refused data", "key", key, "err", derr)
		}
		return Data{}, err
	}
	d.VirtualSize = ins.VirtualSize
	if ins.Format == formatRaw {
		d.VirtualSize = size
	}
	return d, nil
}

// meter hashes and counts what is read through it and fails once more than
// limit bytes (if limit >= 0) went through. MD5 and SHA-512 run on two
// goroutines of their own, on a copy of each chunk, while the caller
// writes the chunk out: a chunk costs the slowest of the three instead of
// their sum.
type meter struct {
	r     io.Reader
	n     int64
	limit int64
	md5   hash.Hash
	sha   hash.Hash
	over  bool
	err   error // the source's error, if it failed

	tail    []byte // the last vmdkTail bytes read, for CheckTail
	buf     []byte
	work    [2]chan []byte
	done    chan struct{}
	pending int
}

func newMeter(r io.Reader, limit int64) *meter {
	m := &meter{r: r, limit: limit, md5: md5.New(), sha: sha512.New(), done: make(chan struct{}, 2)} //nolint:gosec // see import
	for i, h := range []hash.Hash{m.md5, m.sha} {
		m.work[i] = make(chan []byte, 1)
		go func() {
			for b := range m.work[i] {
				h.Write(b)
				m.done <- struct{}{}
			}
		}()
	}
	return m
}

// wait waits until the chunk being hashed is done.
func (m *meter) wait() {
	for ; m.pending > 0; m.pending-- {
		<-m.done
	}
}

// sums stops the hashers and returns the MD5 and SHA-512 of everything
// read. It must be called once, when reading is over.
func (m *meter) sums() (md5sum, sha string) {
	m.wait()
	close(m.work[0])
	close(m.work[1])
	return hex.EncodeToString(m.md5.Sum(nil)), hex.EncodeToString(m.sha.Sum(nil))
}

// keepTail keeps the last vmdkTail bytes of the stream.
func (m *meter) keepTail(b []byte) {
	if len(b) >= vmdkTail {
		m.tail = append(m.tail[:0], b[len(b)-vmdkTail:]...)
		return
	}
	m.tail = append(m.tail, b...)
	if extra := len(m.tail) - vmdkTail; extra > 0 {
		copy(m.tail, m.tail[extra:])
		m.tail = m.tail[:vmdkTail]
	}
}

func (m *meter) Read(p []byte) (int, error) {
	m.wait() // the hashers are done with m.buf
	n, err := m.r.Read(p)
	if n > 0 {
		if cap(m.buf) < n {
			m.buf = make([]byte, n)
		}
		b := m.buf[:n]
		copy(b, p[:n])
		m.work[0] <- b
		m.work[1] <- b
		m.pending = 2
		m.keepTail(p[:n])
		m.n += int64(n)
		if m.limit >= 0 && m.n > m.limit {
			m.over = true
			return n, errors.New("image: over quota")
		}
	}
	if err != nil && err != io.EOF { //nolint:errorlint // io.EOF is returned unwrapped by contract
		m.err = err
	}
	return n, err
}

// OpenData opens the bytes of an image the caller may see, from offset for
// length bytes (length < 0: to the end), with the image as it was when
// opened. An image without data gives ErrNoData; a deactivated image's
// data is for admins only (ErrForbidden). This and GetImage are what
// compute needs to boot from an image.
func (s *Service) OpenData(ctx context.Context, id string, offset, length int64) (*Image, io.ReadCloser, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, nil, err
	}
	img, err := s.visible(s.st.Snapshot(), c, id)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case img.Status == StatusDeactivated && !c.IsCloudAdmin():
		return nil, nil, forbidden("the requested image has been deactivated; image data download is forbidden")
	case img.Status != StatusActive && img.Status != StatusDeactivated, img.BlobKey == "":
		return img, nil, ErrNoData
	}
	rc, err := s.blobs.Get(ctx, img.BlobKey, offset, length)
	if err != nil {
		if errdefs.IsNotFound(err) {
			// The record says there are bytes: their loss is a fault.
			return nil, nil, fmt.Errorf("image: data of image %s is missing: %w", id, errdefs.Wrap(errdefs.ErrUnavailable, err))
		}
		return nil, nil, err
	}
	return img, rc, nil
}

// ImportOpts says how to import an image's data.
type ImportOpts struct {
	// Method is ImportGlanceDirect or ImportWebDownload.
	Method string
	// URI is the http(s) URL web-download fetches.
	URI string
}

// ImportMethods returns the import methods this service offers:
// glance-direct, and web-download when hosts are allowed.
func (s *Service) ImportMethods() []string {
	m := []string{ImportGlanceDirect}
	if len(s.web) > 0 {
		m = append(m, ImportWebDownload)
	}
	return m
}

// ImportImage imports data into an image. glance-direct checks the staged
// data against disk_format and makes the image active on it (synchronous).
// web-download checks the URI against the allow-list, marks the image
// importing and fetches in the background; the image ends active, or
// queued with FailedImport set.
func (s *Service) ImportImage(ctx context.Context, id string, opts ImportOpts) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	img, err := s.visible(s.st.Snapshot(), c, id)
	if err != nil {
		return err
	}
	if !owns(c, img) {
		return forbidden("you are not permitted to import data into image %s", id)
	}
	if err := s.allowed(c, "image:upload_image", img.Owner); err != nil {
		return err
	}
	if img.DiskFormat == "" || img.ContainerFormat == "" {
		return errdefs.Invalid("disk_format", "'disk_format' and 'container_format' need to be set before import")
	}
	switch opts.Method {
	case ImportGlanceDirect:
		return s.importStaged(ctx, c, img)
	case ImportWebDownload:
		return s.startWebDownload(ctx, img, opts.URI)
	}
	return errdefs.Invalid("method.name", "import method %q is not one of %s", opts.Method, strings.Join(s.ImportMethods(), ", "))
}

func (s *Service) importStaged(ctx context.Context, _ *identity.Credentials, img *Image) error {
	if img.Status != StatusUploading || img.Staged == nil {
		return conflict("image %s has no staged data to import (status %s)", img.ID, img.Status)
	}
	d := *img.Staged
	head, err := s.readBlob(ctx, d.Key, 0, InspectBytes)
	if err != nil {
		return err
	}
	ins, err := Inspect(head)
	if err == nil {
		err = checkFormat(img.DiskFormat, ins)
	}
	if err == nil && ins.footer {
		var tail []byte
		if tail, err = s.readBlob(ctx, d.Key, max(d.Size-vmdkTail, 0), vmdkTail); err == nil {
			err = CheckTail(ins, head, tail)
		}
	}
	if err != nil {
		// Bad staged data is dropped, as a failed Glance import does.
		_ = s.modify(ctx, img.ID, func(_ *store.Txn, cur *Image) error {
			if cur.Staged == nil || cur.Staged.Key != d.Key {
				return errNothingToDo
			}
			cur.Staged, cur.Status, cur.FailedImport = nil, StatusQueued, ImportGlanceDirect
			return nil
		})
		if derr := s.blobs.Delete(context.WithoutCancel(ctx), d.Key); derr != nil {
			s.log.Warn("image: delete refused staged data", "image", img.ID, "err", derr)
		}
		return err
	}
	d.VirtualSize = ins.VirtualSize
	if ins.Format == formatRaw {
		d.VirtualSize = d.Size
	}
	return s.modify(ctx, img.ID, func(tx *store.Txn, cur *Image) error {
		if cur.Status != StatusUploading || cur.Staged == nil || cur.Staged.Key != d.Key {
			return conflict("image %s changed during the import", img.ID)
		}
		cur.Staged = nil // before the quota check: staged bytes become data bytes
		if err := s.checkQuota(tx, cur.Owner, 0, d.Size, 0); err != nil {
			return err
		}
		activate(cur, d)
		return tx.Emit("image.image.import", img.ID, cur.Owner, map[string]any{"method": ImportGlanceDirect, "size": d.Size})
	})
}

// readBlob reads a small range of a blob.
func (s *Service) readBlob(ctx context.Context, key string, off, n int64) ([]byte, error) {
	rc, err := s.blobs.Get(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, n))
}

// allowedURL checks a web-download URI against the allow-list.
func (s *Service) allowedURL(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return errdefs.Invalid("method.uri", "only http and https URIs can be imported")
	}
	if u.User != nil {
		return errdefs.Invalid("method.uri", "URIs with credentials are not allowed")
	}
	if !s.web[u.Host] && !s.web[u.Hostname()] {
		return errdefs.Invalid("method.uri", "the host %q is not allowed for web-download", u.Host)
	}
	return nil
}

func (s *Service) startWebDownload(ctx context.Context, img *Image, uri string) error {
	if len(s.web) == 0 {
		return errdefs.Invalid("method.name", "import method %q is not enabled", ImportWebDownload)
	}
	u, err := url.Parse(uri)
	if err != nil || len(uri) > 2048 {
		return errdefs.Invalid("method.uri", "%q is not a valid URI", uri)
	}
	if err := s.allowedURL(u); err != nil {
		return err
	}
	limit, err := s.remaining(img.Owner, false)
	if err != nil {
		return err
	}
	if limit < 0 || limit > s.cfg.WebDownload.MaxBytes {
		limit = s.cfg.WebDownload.MaxBytes
	}
	key := "images/" + img.ID + "/" + newUUID()
	err = s.modify(ctx, img.ID, func(_ *store.Txn, cur *Image) error {
		if cur.Status != StatusQueued || cur.PendingKey != "" {
			return conflict("image status transition from %s to importing is not allowed", cur.Status)
		}
		cur.Status, cur.PendingKey = StatusImporting, key
		return nil
	})
	if err != nil {
		return err
	}
	s.wg.Go(func() { s.webDownload(img.ID, key, u.String(), img.DiskFormat, limit) })
	return nil
}

func (s *Service) webDownload(id, key, uri, format string, limit int64) {
	ctx := s.life
	err := func() error {
		client := s.webClient()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("image: web-download %s: status %s", uri, resp.Status)
		}
		if resp.ContentLength > limit {
			return fmt.Errorf("image: web-download %s: %d bytes is over the limit of %d", uri, resp.ContentLength, limit)
		}
		d, err := s.ingest(ctx, key, resp.Body, format, limit, UploadOpts{Size: -1})
		if err != nil {
			return err
		}
		return s.modify(ctx, id, func(tx *store.Txn, cur *Image) error {
			if cur.PendingKey != key {
				return conflict("image %s changed during the import", id)
			}
			if err := s.checkQuota(tx, cur.Owner, 0, d.Size, 0); err != nil {
				return err
			}
			cur.PendingKey = ""
			activate(cur, d)
			return tx.Emit("image.image.import", id, cur.Owner, map[string]any{"method": ImportWebDownload, "size": d.Size})
		})
	}()
	if err != nil {
		s.log.Warn("image: web-download failed", "image", id, "err", err)
		s.abandon(id, key, ImportWebDownload)
	}
}

func (s *Service) webClient() *http.Client {
	base := s.cfg.WebDownload.Client
	if base == nil {
		base = &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, ResponseHeaderTimeout: 30 * time.Second, TLSHandshakeTimeout: 10 * time.Second,
		}}
	}
	c := *base
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("image: web-download: too many redirects")
		}
		return s.allowedURL(req.URL)
	}
	return &c
}
