package s3obj

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/stratuskit/stratus/objectstore"
)

// Names of the S3 user metadata (after x-amz-meta-) and tag s3obj keeps
// for what S3 has no header for. A Swift X-Object-Meta-Name whose Name
// begins with Stratus- is kept as Stratus-Meta-Name so that it cannot be
// taken for one of these.
const (
	metaPrefix     = "Stratus-"
	metaMD5        = "Stratus-Md5"
	metaDeleteAt   = "Stratus-Delete-At"
	metaSwiftMeta  = "Stratus-Meta-"
	metaName       = "Stratus-Name" // a long name (see keys.go)
	metaAccount    = "Stratus-Account"
	metaContainer  = "Stratus-Container"
	metaHeader     = "Stratus-H-"
	swiftMetaHdr   = "X-Object-Meta-"
	md5Tag         = "stratus-md5"
	encodedPrefix  = "=?UTF-8?B?"
	encodedSuffix  = "?="
	defaultCTypeS3 = "application/octet-stream"
)

// putOptions maps a Swift object's metadata to S3's; md5 (if known) is
// kept with it.
func putOptions(opts objectstore.PutOptions, md5 string) minio.PutObjectOptions {
	po := minio.PutObjectOptions{
		ContentType:          contentType(opts.ContentType),
		UserMetadata:         map[string]string{},
		DisableContentSha256: true,
	}
	if md5 != "" {
		po.UserMetadata[metaMD5] = md5
	}
	if opts.DeleteAt != 0 {
		po.UserMetadata[metaDeleteAt] = strconv.FormatInt(opts.DeleteAt, 10)
	}
	for k, v := range opts.Headers {
		k = http.CanonicalHeaderKey(k)
		switch {
		case k == "Content-Disposition":
			po.ContentDisposition = encodeValue(v)
		case k == "Content-Encoding":
			po.ContentEncoding = encodeValue(v)
		case strings.HasPrefix(k, swiftMetaHdr) && len(k) > len(swiftMetaHdr):
			name := k[len(swiftMetaHdr):]
			if strings.HasPrefix(name, metaPrefix) {
				name = metaSwiftMeta + name
			}
			po.UserMetadata[name] = encodeValue(v)
		default:
			po.UserMetadata[metaHeader+k] = encodeValue(v)
		}
	}
	return po
}

// fromS3 maps S3's description of an object back to Swift's. minio-go
// has already decoded the encoded words of user metadata values (see
// encodeValue); those of Content-Disposition and Content-Encoding are
// decoded here. ETag is
// empty when S3 does not know the MD5 (a multipart upload's ETag is not
// one).
func fromS3(name string, oi minio.ObjectInfo) *objectstore.ObjectInfo {
	info := &objectstore.ObjectInfo{
		Name:         name,
		Size:         oi.Size,
		ContentType:  oi.ContentType,
		LastModified: oi.LastModified.UTC(),
	}
	if info.ContentType == "" {
		info.ContentType = defaultCTypeS3
	}
	headers := map[string]string{}
	for _, h := range []string{"Content-Disposition", "Content-Encoding"} {
		if v := oi.Metadata.Get(h); v != "" {
			headers[h] = decodeValue(v)
		}
	}
	for k, v := range oi.UserMetadata {
		k = http.CanonicalHeaderKey(k)
		switch {
		case k == metaMD5:
			if isMD5(v) {
				info.ETag = v
			}
		case k == metaDeleteAt:
			info.DeleteAt, _ = strconv.ParseInt(v, 10, 64)
		case strings.HasPrefix(k, metaSwiftMeta):
			headers[swiftMetaHdr+k[len(metaSwiftMeta):]] = v
		case strings.HasPrefix(k, metaHeader):
			headers[k[len(metaHeader):]] = v
		case strings.HasPrefix(k, metaPrefix):
			// Reserved for s3obj; not a Swift header.
		default:
			headers[swiftMetaHdr+k] = v
		}
	}
	if len(headers) > 0 {
		info.Headers = headers
	}
	if info.ETag == "" && isMD5(oi.ETag) {
		info.ETag = oi.ETag
	}
	return info
}

func isMD5(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// encodeValue makes v safe for an S3 header: values that are not plain
// printable ASCII (or that could be taken for an encoded one) become an
// RFC 2047 encoded word of their UTF-8 bytes, as AWS S3 itself answers
// non-ASCII metadata and as minio-go decodes user metadata.
func encodeValue(v string) string {
	plain := !strings.Contains(v, "=?") && strings.TrimSpace(v) == v
	for i := 0; plain && i < len(v); i++ {
		plain = v[i] >= 0x20 && v[i] < 0x7f
	}
	if plain {
		return v
	}
	return encodedPrefix + base64.StdEncoding.EncodeToString([]byte(v)) + encodedSuffix
}

// decodeValue reverses encodeValue.
func decodeValue(v string) string {
	if s, ok := strings.CutPrefix(v, encodedPrefix); ok {
		if s, ok = strings.CutSuffix(s, encodedSuffix); ok {
			if b, err := base64.StdEncoding.DecodeString(s); err == nil {
				return string(b)
			}
		}
	}
	return v
}

// encodeName and decodeName keep a name in metadata.
func encodeName(name string) string { return base64.RawURLEncoding.EncodeToString([]byte(name)) }

func decodeName(v string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return string(b), err == nil && v != ""
}
