package objectstore

import (
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // Swift's temp URLs still allow HMAC-SHA1 signatures
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stratuskit/stratus/errdefs"
)

// TempURL metadata headers: the keys that sign temp URLs for an account
// or a container.
const (
	AccountTempURLKey    = "X-Account-Meta-Temp-Url-Key"
	AccountTempURLKey2   = "X-Account-Meta-Temp-Url-Key-2"
	ContainerTempURLKey  = "X-Container-Meta-Temp-Url-Key"
	ContainerTempURLKey2 = "X-Container-Meta-Temp-Url-Key-2"
)

// TempURLMethods are the methods a temp URL may be signed for.
var TempURLMethods = []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete}

// TempURL is a temp URL's query: what VerifyTempURL checks.
type TempURL struct {
	// Signature is temp_url_sig: hex (its length picks SHA-1, SHA-256
	// or SHA-512) or "<digest>:<base64>".
	Signature string
	// Expires is temp_url_expires: Unix seconds or ISO 8601 UTC.
	Expires string
	// Prefix, if set (temp_url_prefix), signs every object whose name
	// begins with it instead of one object.
	Prefix *string
}

// tempGrant is a verified temp URL: it lets one method reach one object
// (or the objects under a prefix) of one container.
type tempGrant struct {
	account, container, object string
	prefix                     bool
	method                     string
}

type grantKey struct{}
type segmentKey struct{}

func grantFrom(ctx context.Context) *tempGrant {
	g, _ := ctx.Value(grantKey{}).(*tempGrant)
	return g
}

// withSegmentAccess marks reads of a large object's segments, which a
// temp URL for the manifest may make within the same account (as Swift's
// tempurl middleware allows).
func withSegmentAccess(ctx context.Context) context.Context {
	return context.WithValue(ctx, segmentKey{}, true)
}

func (g *tempGrant) allows(o op, account string, ct *Container, object string) bool {
	if account != g.account || ct == nil {
		return false
	}
	read := g.method == http.MethodGet || g.method == http.MethodHead
	if o == opObjectRead && read && ct.Name != g.container {
		return false
	}
	if ct.Name != g.container {
		return false
	}
	if g.prefix && !strings.HasPrefix(object, g.object) || !g.prefix && object != g.object {
		return false
	}
	if read {
		return o == opObjectRead
	}
	return o == opObjectWrite
}

// segmentAllowed reports whether a temp URL grant in ctx lets a
// manifest's read reach a segment in account.
func segmentAllowed(ctx context.Context, account string) bool {
	g := grantFrom(ctx)
	seg, _ := ctx.Value(segmentKey{}).(bool)
	return g != nil && seg && g.account == account && (g.method == http.MethodGet || g.method == http.MethodHead)
}

// VerifyTempURL checks a temp URL for a request of method on key and, if
// it is valid, returns a context that lets that method (and no other)
// reach that object (or, for a prefix URL, the objects under the prefix).
// A signature for PUT never allows GET or HEAD. Any failure is
// errdefs.ErrUnauthenticated (401), without saying what failed.
// Signatures are compared in constant time.
func (s *Service) VerifyTempURL(ctx context.Context, method string, key ObjectKey, tu TempURL) (context.Context, error) {
	deny := errdefs.Wrap(errdefs.ErrUnauthenticated, fmt.Errorf("temp URL invalid or expired"))
	if checkKey(key) != nil {
		return nil, deny
	}
	expires, ok := parseExpires(tu.Expires)
	if !ok || expires < s.now().Unix() {
		return nil, deny
	}
	newHash, mac, ok := parseSignature(tu.Signature)
	if !ok {
		return nil, deny
	}
	path := "/v1/" + key.Account + "/" + key.Container + "/" + key.Name
	if tu.Prefix != nil {
		if !strings.HasPrefix(key.Name, *tu.Prefix) {
			return nil, deny
		}
		path = "prefix:/v1/" + key.Account + "/" + key.Container + "/" + *tu.Prefix
	}
	methods := []string{method}
	if method == http.MethodHead {
		methods = append(methods, http.MethodGet) // a GET URL may also HEAD; a PUT URL may not
	}
	valid := 0
	for _, k := range s.tempURLKeys(key.Account, key.Container) {
		for _, m := range methods {
			h := hmac.New(newHash, []byte(k))
			fmt.Fprintf(h, "%s\n%d\n%s", m, expires, path)
			if hmac.Equal(h.Sum(nil), mac) {
				valid++
			}
		}
	}
	if valid == 0 || !isTempURLMethod(method) {
		return nil, deny
	}
	g := &tempGrant{account: key.Account, container: key.Container, object: key.Name, method: method}
	if tu.Prefix != nil {
		g.object, g.prefix = *tu.Prefix, true
	}
	return context.WithValue(ctx, grantKey{}, g), nil
}

func isTempURLMethod(m string) bool {
	for _, x := range TempURLMethods {
		if m == x {
			return true
		}
	}
	return false
}

// tempURLKeys returns the account's and the container's temp URL keys.
func (s *Service) tempURLKeys(account, container string) []string {
	var keys []string
	tx := s.st.Snapshot()
	if a, err := getAccount(tx, account); err == nil {
		for _, h := range []string{AccountTempURLKey, AccountTempURLKey2} {
			if v := a.Metadata[h]; v != "" {
				keys = append(keys, v)
			}
		}
	}
	if c, err := getContainer(tx, account, container); err == nil {
		for _, h := range []string{ContainerTempURLKey, ContainerTempURLKey2} {
			if v := c.Metadata[h]; v != "" {
				keys = append(keys, v)
			}
		}
	}
	return keys
}

func parseExpires(s string) (int64, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, n > 0
	}
	t, err := time.Parse("2006-01-02T15:04:05Z", s)
	if err != nil {
		return 0, false
	}
	return t.Unix(), true
}

// parseSignature decodes a temp_url_sig into its digest and MAC.
func parseSignature(sig string) (func() hash.Hash, []byte, bool) {
	digests := map[string]func() hash.Hash{"sha1": sha1.New, "sha256": sha256.New, "sha512": sha512.New}
	if name, b64, ok := strings.Cut(sig, ":"); ok {
		h := digests[name]
		if h == nil {
			return nil, nil, false
		}
		b64 = strings.TrimRight(b64, "=")
		mac, err := base64.RawURLEncoding.DecodeString(strings.NewReplacer("+", "-", "/", "_").Replace(b64))
		if err != nil || len(mac) != h().Size() {
			return nil, nil, false
		}
		return h, mac, true
	}
	mac, err := hex.DecodeString(sig)
	if err != nil {
		return nil, nil, false
	}
	switch len(mac) {
	case sha1.Size:
		return sha1.New, mac, true
	case sha256.Size:
		return sha256.New, mac, true
	case sha512.Size:
		return sha512.New, mac, true
	}
	return nil, nil, false
}

// SignTempURL returns the temp_url_sig for method on path
// (/v1/AUTH_p/container/object, or prefix:/v1/AUTH_p/container/prefix)
// until expires, with HMAC-SHA256 in hex, as swiftclient computes it.
func SignTempURL(key, method, path string, expires int64) string {
	h := hmac.New(sha256.New, []byte(key))
	fmt.Fprintf(h, "%s\n%d\n%s", method, expires, path)
	return hex.EncodeToString(h.Sum(nil))
}
