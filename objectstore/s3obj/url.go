package s3obj

import (
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
)

// ParseURL parses an S3 location into a Config:
//
//	s3://[ACCESS:SECRET@]HOST:PORT/BUCKET[?region=R&part_mb=N&trailer=false]
//	s3+https://[ACCESS:SECRET@]HOST[:PORT]/BUCKET[?insecure=true&…]
//
// s3 speaks plain HTTP, s3+https HTTPS (insecure=true skips certificate
// verification); trailer=false is Config.NoTrailer. Credentials left out of the URL stay empty for the
// caller to fill (from the environment, say). Errors name the field
// "objects".
func ParseURL(s string) (Config, error) {
	var cfg Config
	u, err := url.Parse(s)
	if err != nil {
		return cfg, errdefs.Invalid("objects", "not a URL: %v", err)
	}
	switch u.Scheme {
	case "s3":
	case "s3+https":
		cfg.Secure = true
	default:
		return cfg, errdefs.Invalid("objects", "scheme %q: want s3 or s3+https", u.Scheme)
	}
	if u.Host == "" || u.Opaque != "" {
		return cfg, errdefs.Invalid("objects", "no host in %q", redact(u))
	}
	if host, port, err := net.SplitHostPort(u.Host); err == nil {
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 || host == "" {
			return cfg, errdefs.Invalid("objects", "bad host:port %q", u.Host)
		}
	} else if !cfg.Secure {
		return cfg, errdefs.Invalid("objects", "s3:// needs HOST:PORT, got %q", u.Host)
	}
	cfg.Endpoint = u.Host
	if u.User != nil {
		cfg.AccessKey = u.User.Username()
		cfg.SecretKey, _ = u.User.Password()
	}
	cfg.Bucket = strings.TrimPrefix(u.Path, "/")
	if !validBucket(cfg.Bucket) {
		return cfg, errdefs.Invalid("objects", "bucket %q: S3 bucket names are 3-63 lowercase letters, digits, dots and hyphens", cfg.Bucket)
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "region", "insecure", "part_mb", "trailer":
		default:
			return cfg, errdefs.Invalid("objects", "unknown option %q", k)
		}
	}
	cfg.Region = q.Get("region")
	if v := q.Get("insecure"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil || !cfg.Secure && b {
			return cfg, errdefs.Invalid("objects", "insecure=%q: a boolean, for s3+https", v)
		}
		cfg.Insecure = b
	}
	if v := q.Get("trailer"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, errdefs.Invalid("objects", "trailer=%q: a boolean", v)
		}
		cfg.NoTrailer = !b
	}
	if v := q.Get("part_mb"); v != "" {
		mb, err := strconv.Atoi(v)
		if err != nil || mb < 5 || mb > 5120 {
			return cfg, errdefs.Invalid("objects", "part_mb=%q: 5 to 5120", v)
		}
		cfg.PartSize = mb << 20
	}
	return cfg, nil
}

// redact drops the credentials from u for messages.
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || c == '.') && i > 0 && i < len(b)-1:
		default:
			return false
		}
	}
	return true
}
