// Package s3obj is an objectstore.Backend on an S3 bucket (MinIO, Ceph
// RGW, AWS S3, versitygw …), through github.com/minio/minio-go/v7.
//
// One configured bucket holds everything, in three key namespaces:
// o/<account>/<container>/<object> are the objects, c/<account>/<container>
// is an empty marker per container (so empty containers exist), and
// x/<unix time>/<account>/<container>/<object> is the expiry index
// ReapExpired walks, as Swift's expirer does. Names are stored escaped
// (see keys.go) in an order- and prefix-preserving code, so S3's key order
// is Swift's name order and listings with prefix, marker and limit are S3
// listings; delimiters, end markers and reverse order are applied here.
//
// Metadata maps both ways: the content type and Content-Disposition and
// Content-Encoding are S3's own headers, X-Object-Meta-Name is the S3
// user metadata x-amz-meta-name, and what S3 has no place for (the MD5,
// X-Delete-At, manifests, sysmeta) is user metadata under
// x-amz-meta-stratus-*.
//
// A body of declared length streams to S3 in one request (up to S3's
// 5 GiB, Swift's largest object), and S3's ETag is its MD5. A chunked
// body larger than a part goes in a multipart upload, a few parts in
// flight, so memory stays bounded by Config.PartSize ×
// (Config.PartConcurrency+1) per upload; its MD5, computed here, is kept
// as an object tag. Uploads without Content-MD5 carry a CRC32C trailer
// (aws-chunked), so a body cut short is refused rather than stored; the
// server must support trailing checksums (AWS, MinIO, recent Ceph RGW,
// versitygw).
//
// S3 has no atomic container operations: a Put racing DeleteContainer can
// leave an object in a deleted container's namespace (it reappears if the
// container is created again). ContainerStats and reverse listings read
// the whole container; a listing HEADs each object it returns (S3
// listings carry no content type); SetMeta is a server-side copy.
package s3obj

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/tags"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/objectstore"
)

var _ objectstore.Backend = (*Backend)(nil)

// Config says which S3 bucket to use and how.
type Config struct {
	// Endpoint is the server's host:port.
	Endpoint string
	// AccessKey and SecretKey are the S3 credentials.
	AccessKey, SecretKey string
	// Bucket is the bucket that holds everything; Open creates it if it
	// does not exist.
	Bucket string
	// Region is the bucket's region; empty means us-east-1.
	Region string
	// Secure uses HTTPS.
	Secure bool
	// Insecure skips the verification of the server's TLS certificate.
	Insecure bool
	// PartSize is the size of multipart upload parts (at least 5 MiB);
	// objects up to it are uploaded in one request. Zero means 16 MiB.
	PartSize int
	// PartConcurrency is how many parts of one upload are in flight; zero
	// means 4.
	PartConcurrency int
	// NoTrailer sends uploads without the CRC32C trailer, for servers
	// that do not take aws-chunked trailers (Ceph RGW before Reef). They
	// must then refuse a body shorter than its Content-Length themselves.
	NoTrailer bool
	// Transport, if set, carries the requests (tests).
	Transport http.RoundTripper
}

// Default sizes.
const (
	DefaultPartSize        = 16 << 20
	DefaultPartConcurrency = 4
	minPartSize            = 5 << 20
	// headConcurrency bounds the HEAD requests a listing makes.
	headConcurrency = 16
	// listPage is the most keys one S3 listing request returns.
	listPage = 1000
)

// Backend is an objectstore.Backend on one S3 bucket. Make one with Open.
type Backend struct {
	client *minio.Client
	core   minio.Core
	bucket string
	part   int
	conc   int
	pool   sync.Pool // *[]byte of part bytes
	now    func() time.Time
	idle   interface{ CloseIdleConnections() }
}

// Open connects to the S3 server and makes the bucket exist.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errdefs.Invalid("objects", "an S3 endpoint and bucket are required")
	}
	part := cfg.PartSize
	if part == 0 {
		part = DefaultPartSize
	}
	if part < minPartSize {
		return nil, errdefs.Invalid("objects", "S3 part size %d is below S3's minimum %d", part, minPartSize)
	}
	conc := cfg.PartConcurrency
	if conc <= 0 {
		conc = DefaultPartConcurrency
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	tr := cfg.Transport
	var own *http.Transport
	if tr == nil {
		t, err := minio.DefaultTransport(cfg.Secure)
		if err != nil {
			return nil, err
		}
		t.MaxIdleConnsPerHost = 64
		t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		if cfg.Insecure {
			if t.TLSClientConfig == nil {
				t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			t.TLSClientConfig.InsecureSkipVerify = true // #nosec G402 -- asked for by Config.Insecure
		}
		tr, own = t, t
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    cfg.Secure,
		Region:    region,
		Transport: tr,
		// Unsigned payloads go aws-chunked with a CRC32C trailer: a body
		// cut short cannot pass for a whole one.
		TrailingHeaders: !cfg.NoTrailer,
	})
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, fmt.Errorf("s3obj: %w", err))
	}
	b := &Backend{client: client, core: minio.Core{Client: client}, bucket: cfg.Bucket, part: part, conc: conc, now: time.Now}
	if own != nil {
		b.idle = own
	}
	b.pool.New = func() any { buf := make([]byte, part); return &buf }
	ok, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, classify("bucket "+cfg.Bucket, err)
	}
	if !ok {
		if err := client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: region}); err != nil {
			if code := minio.ToErrorResponse(err).Code; code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
				return nil, classify("make bucket "+cfg.Bucket, err)
			}
		}
	}
	return b, nil
}

// Client returns the minio-go client Open made (benchmarks compare with it).
func (b *Backend) Client() *minio.Client { return b.client }

// classify wraps an S3 error with its errdefs kind.
func classify(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("s3obj: %s: %w", what, err)
	}
	resp := minio.ToErrorResponse(err)
	var kind error
	switch resp.Code {
	case "NoSuchKey", "NoSuchBucket", "NotFound", "NoSuchUpload":
		kind = errdefs.ErrNotFound
	case "InvalidRange", "InvalidArgument", "KeyTooLongError", "MetadataTooLarge", "EntityTooLarge",
		"EntityTooSmall", "InvalidDigest", "BadDigest", "InvalidPart", "InvalidObjectName", "InvalidRequest":
		kind = errdefs.ErrInvalid
	case "PreconditionFailed", "OperationAborted", "BucketNotEmpty", "ConditionalRequestConflict":
		kind = errdefs.ErrConflict
	case "NotImplemented":
		kind = errdefs.ErrUnsupported
	default:
		// Credentials the operator got wrong, a full or failing server,
		// a lost connection: the object store is unavailable.
		kind = errdefs.ErrUnavailable
	}
	return errdefs.Wrap(kind, fmt.Errorf("s3obj: %s: %w", what, err))
}

// containerExists fails with ErrNotFound if the container has no marker.
func (b *Backend) containerExists(ctx context.Context, account, cont string) error {
	_, err := b.client.StatObject(ctx, b.bucket, containerMarker(account, cont), minio.StatObjectOptions{})
	if err != nil {
		return classify("container "+account+"/"+cont, err)
	}
	return nil
}

// CreateContainer implements objectstore.Backend.
func (b *Backend) CreateContainer(ctx context.Context, account, cont string) error {
	_, err := b.core.PutObject(ctx, b.bucket, containerMarker(account, cont), bytes.NewReader(nil), 0, "", "", minio.PutObjectOptions{ContentType: "application/x-stratus-container"})
	return classify("create container "+account+"/"+cont, err)
}

// DeleteContainer implements objectstore.Backend.
func (b *Backend) DeleteContainer(ctx context.Context, account, cont string) error {
	if err := b.containerExists(ctx, account, cont); err != nil {
		return err
	}
	res, err := b.core.ListObjectsV2(b.bucket, containerPrefix(account, cont), "", "", "", 1)
	if err != nil {
		return classify("list "+account+"/"+cont, err)
	}
	if len(res.Contents) > 0 {
		return errdefs.Wrap(errdefs.ErrConflict, fmt.Errorf("s3obj: container %s/%s is not empty", account, cont))
	}
	err = b.client.RemoveObject(ctx, b.bucket, containerMarker(account, cont), minio.RemoveObjectOptions{})
	return classify("delete container "+account+"/"+cont, err)
}

// ContainerStats implements objectstore.Backend. It lists the whole
// container.
func (b *Backend) ContainerStats(ctx context.Context, account, cont string) (objectstore.ContainerStats, error) {
	var st objectstore.ContainerStats
	if err := b.containerExists(ctx, account, cont); err != nil {
		return st, err
	}
	err := b.walk(ctx, containerPrefix(account, cont), "", func(o minio.ObjectInfo) bool {
		st.Objects++
		st.Bytes += o.Size
		return true
	})
	return st, err
}

// walk calls fn for each key after startAfter that begins with prefix, in
// key order, until fn returns false.
func (b *Backend) walk(ctx context.Context, prefix, startAfter string, fn func(minio.ObjectInfo) bool) error {
	token := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := b.core.ListObjectsV2(b.bucket, prefix, startAfter, token, "", listPage)
		if err != nil {
			return classify("list "+prefix, err)
		}
		for _, o := range res.Contents {
			if !fn(o) {
				return nil
			}
		}
		if !res.IsTruncated || res.NextContinuationToken == "" {
			return nil
		}
		token = res.NextContinuationToken
	}
}

// Put implements objectstore.Backend. A body of declared length (an
// objectstore.SizedReader, as the Swift API hands it) streams in one
// request; other bodies up to the part size go in one request with
// Content-MD5, larger ones in a multipart upload that is completed only
// when the reader ended well and the MD5 matched.
func (b *Backend) Put(ctx context.Context, key objectstore.ObjectKey, r io.Reader, opts objectstore.PutOptions) (*objectstore.ObjectInfo, error) {
	if err := b.containerExists(ctx, key.Account, key.Container); err != nil {
		return nil, err
	}
	k, long := objectKey(key.Account, key.Container, key.Name)
	if sr, ok := r.(objectstore.SizedReader); ok && sr.ContentLength() >= 0 && sr.ContentLength() <= maxSinglePut {
		return b.putStream(ctx, key, k, long, sr, opts)
	}
	bufp := b.pool.Get().(*[]byte)
	x := newHasher()
	n, rerr := readPart(r, *bufp, x)
	switch {
	case rerr == nil:
		return b.putMultipart(ctx, key, k, long, r, bufp, x, opts)
	case !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF):
		x.close()
		b.pool.Put(bufp)
		return nil, fmt.Errorf("s3obj: put %s: %w", key, rerr)
	}
	defer b.pool.Put(bufp)
	sum := x.sum()
	etag := hex.EncodeToString(sum)
	if opts.ETag != "" && opts.ETag != etag {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, objectstore.ErrETagMismatch)
	}
	if err := b.indexExpiry(ctx, key, opts.DeleteAt); err != nil {
		return nil, err
	}
	popts := putOptions(opts, etag)
	if long {
		popts.UserMetadata[metaName] = encodeName(key.Name)
	}
	_, err := b.core.PutObject(ctx, b.bucket, k, bytes.NewReader((*bufp)[:n]), int64(n), base64.StdEncoding.EncodeToString(sum), "", popts)
	if err != nil {
		return nil, classify("put "+key.String(), err)
	}
	return b.info(key.Name, int64(n), etag, opts), nil
}

// putStream streams a body of known length to S3 in one request: no
// buffer, and S3 computes the MD5 (the ETag of a one-request upload),
// which it checks against opts.ETag as Content-MD5. A Swift client
// checks the ETag it is answered against its own MD5, end to end.
func (b *Backend) putStream(ctx context.Context, key objectstore.ObjectKey, k string, long bool, r objectstore.SizedReader, opts objectstore.PutOptions) (*objectstore.ObjectInfo, error) {
	var md5b64 string
	if opts.ETag != "" {
		sum, err := hex.DecodeString(opts.ETag)
		if err != nil || len(sum) != md5.Size {
			return nil, errdefs.Wrap(errdefs.ErrInvalid, objectstore.ErrETagMismatch)
		}
		md5b64 = base64.StdEncoding.EncodeToString(sum)
	}
	if err := b.indexExpiry(ctx, key, opts.DeleteAt); err != nil {
		return nil, err
	}
	popts := putOptions(opts, opts.ETag)
	if long {
		popts.UserMetadata[metaName] = encodeName(key.Name)
	}
	size := r.ContentLength()
	er := &errReader{r: r}
	up, err := b.core.PutObject(ctx, b.bucket, k, er, size, md5b64, "", popts)
	switch {
	case er.err != nil:
		return nil, fmt.Errorf("s3obj: put %s: %w", key, er.err)
	case err != nil && minio.ToErrorResponse(err).Code == "BadDigest":
		return nil, errdefs.Wrap(errdefs.ErrInvalid, objectstore.ErrETagMismatch)
	case err != nil:
		return nil, classify("put "+key.String(), err)
	}
	etag := strings.Trim(up.ETag, `"`)
	if !isMD5(etag) {
		// This server's ETags are not MD5s (encryption): read it back.
		oi, err := b.client.StatObject(ctx, b.bucket, k, minio.StatObjectOptions{})
		if err != nil {
			return nil, classify("head "+key.String(), err)
		}
		if etag, err = b.objectMD5(ctx, k, oi); err != nil {
			return nil, err
		}
	}
	return b.info(key.Name, size, etag, opts), nil
}

// maxSinglePut is the largest upload S3 takes in one request.
const maxSinglePut = 5 << 30

// errReader remembers the error its reader returned, which minio-go does
// not keep: a failed upload answers with the body's own error.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && e.err == nil {
		e.err = err
	}
	return n, err
}

// info is what Put and SetMeta return.
func (b *Backend) info(name string, size int64, etag string, opts objectstore.PutOptions) *objectstore.ObjectInfo {
	info := &objectstore.ObjectInfo{
		Name:         name,
		Size:         size,
		ETag:         etag,
		ContentType:  contentType(opts.ContentType),
		LastModified: b.now().UTC().Truncate(time.Second),
		DeleteAt:     opts.DeleteAt,
	}
	if len(opts.Headers) > 0 {
		info.Headers = make(map[string]string, len(opts.Headers))
		for k, v := range opts.Headers {
			info.Headers[k] = v
		}
	}
	return info
}

func contentType(ct string) string {
	if ct == "" {
		return "application/octet-stream"
	}
	return ct
}

// putMultipart uploads r (whose first part is in first) as a multipart
// upload with up to b.conc parts in flight.
func (b *Backend) putMultipart(ctx context.Context, key objectstore.ObjectKey, k string, long bool, r io.Reader, first *[]byte, x *hasher, opts objectstore.PutOptions) (*objectstore.ObjectInfo, error) {
	defer x.close()
	if err := b.indexExpiry(ctx, key, opts.DeleteAt); err != nil {
		x.close()
		b.pool.Put(first)
		return nil, err
	}
	// The MD5 is known up front only when the client gave it; otherwise
	// it is recorded as a tag once the upload is complete.
	popts := putOptions(opts, opts.ETag)
	if long {
		popts.UserMetadata[metaName] = encodeName(key.Name)
	}
	id, err := b.core.NewMultipartUpload(ctx, b.bucket, k, popts)
	if err != nil {
		x.close()
		b.pool.Put(first)
		return nil, classify("put "+key.String(), err)
	}
	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	completed := false
	defer func() {
		if !completed {
			_ = b.core.AbortMultipartUpload(context.WithoutCancel(ctx), b.bucket, k, id)
		}
	}()

	var (
		mu      sync.Mutex
		parts   []minio.CompletePart
		upErr   error
		wg      sync.WaitGroup
		sem     = make(chan struct{}, b.conc)
		size    int64
		bufp    = first
		n       = len(*first)
		readErr error
	)
	upload := func(num int, bufp *[]byte, n int, hashed <-chan struct{}) {
		defer func() { <-hashed; b.pool.Put(bufp); <-sem; wg.Done() }()
		p, err := b.core.PutObjectPart(uctx, b.bucket, k, id, num, bytes.NewReader((*bufp)[:n]), int64(n), minio.PutObjectPartOptions{DisableContentSha256: true})
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if upErr == nil {
				upErr = classify("put "+key.String(), err)
				cancel()
			}
			return
		}
		parts = append(parts, minio.CompletePart{PartNumber: num, ETag: p.ETag})
	}
	for num := 1; ; num++ {
		size += int64(n)
		sem <- struct{}{}
		wg.Add(1)
		go upload(num, bufp, n, x.mark())
		if readErr != nil {
			break
		}
		bufp = b.pool.Get().(*[]byte)
		n, readErr = readPart(r, *bufp, x)
		if errors.Is(readErr, io.EOF) {
			b.pool.Put(bufp)
			break
		}
		if readErr != nil && !errors.Is(readErr, io.ErrUnexpectedEOF) {
			x.close()
			b.pool.Put(bufp)
			wg.Wait()
			return nil, fmt.Errorf("s3obj: put %s: %w", key, readErr)
		}
		mu.Lock()
		failed := upErr != nil
		mu.Unlock()
		if failed {
			x.close()
			b.pool.Put(bufp)
			break
		}
	}
	wg.Wait()
	if upErr != nil {
		return nil, upErr
	}
	etag := x.sumHex()
	if opts.ETag != "" && opts.ETag != etag {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, objectstore.ErrETagMismatch)
	}
	slices.SortFunc(parts, func(a, b minio.CompletePart) int { return a.PartNumber - b.PartNumber })
	if _, err := b.core.CompleteMultipartUpload(ctx, b.bucket, k, id, parts, minio.PutObjectOptions{}); err != nil {
		return nil, classify("put "+key.String(), err)
	}
	completed = true
	if opts.ETag == "" {
		// If this fails, Head computes the MD5 again (see objectMD5).
		_ = b.tagMD5(ctx, k, etag)
	}
	return b.info(key.Name, size, etag, opts), nil
}

func (b *Backend) tagMD5(ctx context.Context, k, etag string) error {
	t, err := tags.NewTags(map[string]string{md5Tag: etag}, true)
	if err != nil {
		return err
	}
	return b.client.PutObjectTagging(ctx, b.bucket, k, t, minio.PutObjectTaggingOptions{})
}

// indexExpiry records that the object is due at deleteAt (if set) before
// it is written, so that no expiring object misses its index entry.
func (b *Backend) indexExpiry(ctx context.Context, key objectstore.ObjectKey, deleteAt int64) error {
	if deleteAt == 0 {
		return nil
	}
	ek := expiryKey(deleteAt, objectKeyParts{key.Account, key.Container, key.Name})
	meta := map[string]string{metaAccount: encodeName(key.Account), metaContainer: encodeName(key.Container), metaName: encodeName(key.Name)}
	_, err := b.core.PutObject(ctx, b.bucket, ek, bytes.NewReader(nil), 0, "", "", minio.PutObjectOptions{UserMetadata: meta})
	return classify("index expiry of "+key.String(), err)
}

// Get implements objectstore.Backend.
func (b *Backend) Get(ctx context.Context, key objectstore.ObjectKey, offset, length int64) (io.ReadCloser, *objectstore.ObjectInfo, error) {
	if offset < 0 {
		return nil, nil, errdefs.Invalid("offset", "%d is negative", offset)
	}
	if length == 0 {
		info, err := b.Head(ctx, key)
		if err != nil {
			return nil, nil, err
		}
		if offset > info.Size {
			return nil, nil, errdefs.Invalid("offset", "%d is outside the object's %d bytes", offset, info.Size)
		}
		return io.NopCloser(bytes.NewReader(nil)), info, nil
	}
	k, _ := objectKey(key.Account, key.Container, key.Name)
	var gopts minio.GetObjectOptions
	switch {
	case length > 0:
		_ = gopts.SetRange(offset, offset+length-1)
	case offset > 0:
		_ = gopts.SetRange(offset, 0)
	}
	rc, oi, hdr, err := b.core.GetObject(ctx, b.bucket, k, gopts)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "InvalidRange" {
			// Past the end, or at the end (an empty read).
			info, herr := b.Head(ctx, key)
			if herr != nil {
				return nil, nil, herr
			}
			if offset == info.Size {
				return io.NopCloser(bytes.NewReader(nil)), info, nil
			}
			return nil, nil, errdefs.Invalid("offset", "%d is outside the object's %d bytes", offset, info.Size)
		}
		return nil, nil, classify("get "+key.String(), err)
	}
	if cr := hdr.Get("Content-Range"); cr != "" {
		if i := strings.LastIndexByte(cr, '/'); i >= 0 {
			if total, perr := strconv.ParseInt(cr[i+1:], 10, 64); perr == nil {
				oi.Size = total
			}
		}
	}
	info, err := b.objectInfo(ctx, key.Name, k, oi)
	if err != nil {
		rc.Close()
		return nil, nil, err
	}
	return &body{ReadCloser: rc}, info, nil
}

// body is an object being read. Its WriteTo, which io.Copy prefers,
// moves the bytes in large pieces: fewer, larger reads from S3's
// connection and writes to the client's.
type body struct{ io.ReadCloser }

// copyBuffers are WriteTo's buffers.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// WriteTo implements io.WriterTo.
func (b *body) WriteTo(w io.Writer) (int64, error) {
	bufp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bufp)
	return io.CopyBuffer(w, struct{ io.Reader }{b.ReadCloser}, *bufp)
}

// Head implements objectstore.Backend.
func (b *Backend) Head(ctx context.Context, key objectstore.ObjectKey) (*objectstore.ObjectInfo, error) {
	k, _ := objectKey(key.Account, key.Container, key.Name)
	oi, err := b.client.StatObject(ctx, b.bucket, k, minio.StatObjectOptions{})
	if err != nil {
		return nil, classify("head "+key.String(), err)
	}
	return b.objectInfo(ctx, key.Name, k, oi)
}

// objectInfo converts S3's description of the object at k.
func (b *Backend) objectInfo(ctx context.Context, name, k string, oi minio.ObjectInfo) (*objectstore.ObjectInfo, error) {
	info := fromS3(name, oi)
	if info.ETag == "" {
		sum, err := b.objectMD5(ctx, k, oi)
		if err != nil {
			return nil, err
		}
		info.ETag = sum
	}
	return info, nil
}

// objectMD5 finds the MD5 of an object uploaded in parts without it: in
// its tag, or, if a crash lost the tag, by reading the object (and
// tagging it for next time).
func (b *Backend) objectMD5(ctx context.Context, k string, oi minio.ObjectInfo) (string, error) {
	t, err := b.client.GetObjectTagging(ctx, b.bucket, k, minio.GetObjectTaggingOptions{})
	if err == nil {
		if v, ok := t.ToMap()[md5Tag]; ok && isMD5(v) {
			return v, nil
		}
	}
	rc, _, _, err := b.core.GetObject(ctx, b.bucket, k, minio.GetObjectOptions{})
	if err != nil {
		return "", classify("read "+k, err)
	}
	defer rc.Close()
	h := md5.New()
	if _, err := io.Copy(h, rc); err != nil {
		return "", classify("read "+k, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	_ = b.tagMD5(ctx, k, sum)
	return sum, nil
}

// SetMeta implements objectstore.Backend: a server-side copy of the
// object onto itself with the new metadata, if the object is still the
// one whose MD5 it read.
func (b *Backend) SetMeta(ctx context.Context, key objectstore.ObjectKey, opts objectstore.PutOptions) (*objectstore.ObjectInfo, error) {
	k, long := objectKey(key.Account, key.Container, key.Name)
	oi, err := b.client.StatObject(ctx, b.bucket, k, minio.StatObjectOptions{})
	if err != nil {
		return nil, classify("head "+key.String(), err)
	}
	cur, err := b.objectInfo(ctx, key.Name, k, oi)
	if err != nil {
		return nil, err
	}
	if err := b.indexExpiry(ctx, key, opts.DeleteAt); err != nil {
		return nil, err
	}
	popts := putOptions(opts, cur.ETag)
	if long {
		popts.UserMetadata[metaName] = encodeName(key.Name)
	}
	dst := minio.CopyDestOptions{
		Bucket: b.bucket, Object: k,
		UserMetadata: popts.UserMetadata, ReplaceMetadata: true,
		ContentType: popts.ContentType, ContentEncoding: popts.ContentEncoding, ContentDisposition: popts.ContentDisposition,
	}
	src := minio.CopySrcOptions{Bucket: b.bucket, Object: k, MatchETag: oi.ETag}
	if _, err := b.client.ComposeObject(ctx, dst, src); err != nil {
		return nil, classify("set metadata of "+key.String(), err)
	}
	return b.info(key.Name, cur.Size, cur.ETag, opts), nil
}

// Delete implements objectstore.Backend.
func (b *Backend) Delete(ctx context.Context, key objectstore.ObjectKey) error {
	k, _ := objectKey(key.Account, key.Container, key.Name)
	if _, err := b.client.StatObject(ctx, b.bucket, k, minio.StatObjectOptions{}); err != nil {
		return classify("head "+key.String(), err)
	}
	return classify("delete "+key.String(), b.client.RemoveObject(ctx, b.bucket, k, minio.RemoveObjectOptions{}))
}

// List implements objectstore.Backend. It reads the names from S3's
// listing and each listed object's metadata with a HEAD request (S3
// listings carry no content type or user metadata).
func (b *Backend) List(ctx context.Context, account, cont string, opts objectstore.ListOptions) ([]objectstore.Entry, error) {
	if err := b.containerExists(ctx, account, cont); err != nil {
		return nil, err
	}
	cur := newCursor(ctx, b, containerPrefix(account, cont), opts)
	var out []objectstore.Entry
	objectstore.Scan(cur, opts, func(name string, subdir bool) bool {
		if subdir {
			out = append(out, objectstore.Entry{Subdir: name})
		} else {
			out = append(out, objectstore.Entry{Object: &objectstore.ObjectInfo{Name: name}})
		}
		return true
	})
	if cur.err != nil {
		return nil, cur.err
	}
	// Fill in each object's information, a few HEADs at a time.
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, headConcurrency)
		mu   sync.Mutex
		ferr error
	)
	for i := range out {
		if out[i].Object == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			info, err := b.Head(ctx, objectstore.ObjectKey{Account: account, Container: cont, Name: out[i].Object.Name})
			if err != nil {
				if errdefs.IsNotFound(err) { // deleted since listed: keep its name and size
					return
				}
				mu.Lock()
				ferr = err
				mu.Unlock()
				return
			}
			out[i].Object = info
		})
	}
	wg.Wait()
	if ferr != nil {
		return nil, ferr
	}
	return out, nil
}

// ReapExpired implements objectstore.Backend: it walks the expiry index
// in time order up to now, deletes each object whose X-Delete-At is still
// the indexed one, and drops the index entries it passed.
func (b *Backend) ReapExpired(ctx context.Context, now time.Time, limit int) ([]objectstore.ObjectKey, error) {
	var (
		reaped []objectstore.ObjectKey
		done   []string
		ferr   error
	)
	err := b.walk(ctx, expiryNS, "", func(o minio.ObjectInfo) bool {
		t, parts, ok := parseExpiryKey(o.Key)
		if t > now.Unix() || len(reaped) >= limit {
			return false
		}
		if !ok && t != 0 { // a long name's entry: its names are in its metadata
			var err error
			if parts, ok, err = b.expiryEntry(ctx, o.Key); err != nil {
				ferr = err
				return false
			}
		}
		if ok {
			key := objectstore.ObjectKey{Account: parts.account, Container: parts.container, Name: parts.name}
			info, err := b.Head(ctx, key)
			switch {
			case err == nil && info.DeleteAt == t:
				if err := b.Delete(ctx, key); err != nil && !errdefs.IsNotFound(err) {
					ferr = err
					return false
				}
				reaped = append(reaped, key)
			case err != nil && !errdefs.IsNotFound(err):
				ferr = err
				return false
			}
		}
		done = append(done, o.Key)
		return true
	})
	for _, k := range done {
		if rerr := b.client.RemoveObject(ctx, b.bucket, k, minio.RemoveObjectOptions{}); rerr != nil && err == nil {
			err = classify("drop expiry entry", rerr)
		}
	}
	if ferr != nil {
		return reaped, ferr
	}
	return reaped, err
}

// expiryEntry reads the names an expiry index entry keeps in its
// metadata; ok is false for an entry gone or without them.
func (b *Backend) expiryEntry(ctx context.Context, key string) (p objectKeyParts, ok bool, err error) {
	oi, err := b.client.StatObject(ctx, b.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		if err = classify("expiry entry", err); errdefs.IsNotFound(err) {
			return p, false, nil
		}
		return p, false, err
	}
	var ok1, ok2, ok3 bool
	p.account, ok1 = decodeName(oi.UserMetadata[metaAccount])
	p.container, ok2 = decodeName(oi.UserMetadata[metaContainer])
	p.name, ok3 = decodeName(oi.UserMetadata[metaName])
	return p, ok1 && ok2 && ok3, nil
}

// Close implements objectstore.Backend: it closes the idle connections
// of the transport Open made.
func (b *Backend) Close() error {
	if b.idle != nil {
		b.idle.CloseIdleConnections()
	}
	return nil
}
