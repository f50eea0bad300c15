package s3obj

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Swift names are any UTF-8 up to 1024 bytes; S3 keys and the file trees
// S3 servers keep them in are not as free ("..", "//", long components).
// Every account, container and object name is therefore stored as a
// segment: its bytes escaped into a small safe alphabet, ended by a
// terminator and cut into path components of at most chunkLen bytes.
//
// The escape code is order- and prefix-preserving: names compare in byte
// order exactly as their segments do, and a name begins with a prefix
// exactly when its segment begins with the prefix's unterminated segment.
// S3 listings (in key order) are therefore listings in Swift name order,
// and a Swift prefix is an S3 prefix.
//
//	0x00–0x2e  '(' + two hex digits    ('(' = 0x28)
//	'/'        ')'                      (0x29)
//	'0'–'9'    themselves
//	0x3a–0x60  '_' + two hex digits    (0x5f, between '9' and 'a')
//	'a'–'z'    themselves
//	0x7b–0xff  '~' + two hex digits    (0x7e, after 'z')
//	end        '!'                      (0x21, before every code)
//
// The terminator makes the last component of every segment end in '!',
// which no inner component holds, so an object's file never shares its
// path with another's directory, and components are never "." or "..".
const (
	chunkLen   = 200
	terminator = '!'
	hexDigits  = "0123456789ABCDEF"
)

// escape appends s's escaped bytes to b.
func escape(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z':
			b = append(b, c)
		case c == '/':
			b = append(b, ')')
		case c < '/':
			b = append(b, '(', hexDigits[c>>4], hexDigits[c&15])
		case c < 'a':
			b = append(b, '_', hexDigits[c>>4], hexDigits[c&15])
		default:
			b = append(b, '~', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return b
}

// segment returns name's stored form: escaped, terminated unless prefix
// is set, and cut into components of chunkLen bytes.
func segment(name string, prefix bool) string {
	e := escape(make([]byte, 0, len(name)+len(name)/4+1), name)
	if !prefix {
		e = append(e, terminator)
	}
	return chunk(e)
}

// unsegment reverses segment for a terminated segment; ok is false if s
// is not one.
func unsegment(s string) (string, bool) {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if i%(chunkLen+1) == chunkLen {
			if s[i] != '/' {
				return "", false
			}
			continue
		}
		b = append(b, s[i])
	}
	if len(b) == 0 || b[len(b)-1] != terminator {
		return "", false
	}
	b = b[:len(b)-1]
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z':
			out = append(out, c)
		case c == ')':
			out = append(out, '/')
		case c == '(' || c == '_' || c == '~':
			if i+2 >= len(b) {
				return "", false
			}
			hi, lo := unhex(b[i+1]), unhex(b[i+2])
			if hi < 0 || lo < 0 {
				return "", false
			}
			v := byte(hi<<4 | lo)
			if escape(nil, string([]byte{v}))[0] != c {
				return "", false // not the canonical code
			}
			out = append(out, v)
			i += 2
		default:
			return "", false
		}
	}
	return string(out), true
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// The bucket's three namespaces.
const (
	objectsNS    = "o/" // o/<account>/<container>/<object>: the objects
	containersNS = "c/" // c/<account>/<container>: one empty marker per container
	expiryNS     = "x/" // x/<unix time>/<account>/<container>/<object>: expiry index
)

// containerPrefix is the key prefix of the container's objects.
func containerPrefix(account, container string) string {
	return objectsNS + segment(account, false) + "/" + segment(container, false) + "/"
}

// containerMarker is the key of the container's marker object.
func containerMarker(account, container string) string {
	return containersNS + segment(account, false) + "/" + segment(container, false)
}

// S3 keys are at most maxKey bytes. A name whose escaped form is longer
// than the container's overflowAt(base) bytes is stored as a long name:
// its key is its first overflowAt escaped bytes, longMark and a hash of
// the name, and the name itself is in the object's metadata. All long
// names that share those first bytes sort after every other name that
// begins with them and before every name that is greater, as their
// group of keys does; the listing cursor reads a group whole and sorts
// it by name (a group holds more than one name only when names share
// their first ~900 bytes).
const (
	maxKey   = 1024
	longMark = '"' // after the terminator, before every code
	hashLen  = 32
)

// chunkedLen is the length of n bytes cut into components.
func chunkedLen(n int) int {
	if n == 0 {
		return 0
	}
	return n + (n-1)/chunkLen
}

// overflowAt is the longest escaped name stored as such under base.
func overflowAt(base string) int {
	k := maxKey - len(base) - 1 - hashLen
	for k > 0 && len(base)+chunkedLen(k+1+hashLen) > maxKey {
		k--
	}
	return k
}

// chunk cuts e into components of chunkLen bytes.
func chunk(e []byte) string {
	if len(e) <= chunkLen {
		return string(e)
	}
	var sb strings.Builder
	sb.Grow(chunkedLen(len(e)))
	for i := 0; i < len(e); i += chunkLen {
		if i > 0 {
			sb.WriteByte('/')
		}
		sb.Write(e[i:min(i+chunkLen, len(e))])
	}
	return sb.String()
}

// objectKey is the key of the object; long is set for a long name.
func objectKey(account, container, name string) (key string, long bool) {
	base := containerPrefix(account, container)
	e := escape(nil, name)
	k := overflowAt(base)
	if len(e) <= k {
		return base + chunk(append(e, terminator)), false
	}
	h := sha256.Sum256([]byte(name))
	e = append(append(e[:k], longMark), hex.EncodeToString(h[:])[:hashLen]...)
	return base + chunk(e), true
}

// seekKey is the key a listing starts after to reach the names at or
// after name (and, for a long name, its group).
func seekKey(base, name string) string {
	e := escape(nil, name)
	if k := overflowAt(base); len(e) > k {
		e = e[:k]
	}
	return base + chunk(e)
}

// longGroup returns the key prefix of the long-name group key is in, if
// it is a long name's key.
func longGroup(key string) (string, bool) {
	i := strings.IndexByte(key, longMark)
	if i < 0 {
		return "", false
	}
	return key[:i+1], true
}

// expiryKey is the expiry index entry of the object, due at deleteAt.
// An entry whose key would not fit S3's keys (a long name's) is named by
// a hash; its names are in its metadata.
func expiryKey(deleteAt int64, k objectKeyParts) string {
	key, _ := objectKey(k.account, k.container, k.name)
	ek := fmt.Sprintf("%s%011d/%s", expiryNS, deleteAt, strings.TrimPrefix(key, objectsNS))
	if len(ek) > maxKey {
		h := sha256.Sum256([]byte(key))
		ek = fmt.Sprintf("%s%011d/%s", expiryNS, deleteAt, hex.EncodeToString(h[:]))
	}
	return ek
}

// objectKeyParts is an object's names, parsed back from a key.
type objectKeyParts struct{ account, container, name string }

// parseSegments splits s into n terminated segments and decodes them.
func parseSegments(s string, n int) ([]string, bool) {
	out := make([]string, 0, n)
	for range n {
		end := -1
		for i := 0; i < len(s); {
			j := strings.IndexByte(s[i:], '/')
			if j < 0 {
				j = len(s) - i
			}
			if j > 0 && s[i+j-1] == terminator {
				end = i + j
				break
			}
			i += j + 1
		}
		if end < 0 {
			return nil, false
		}
		name, ok := unsegment(s[:end])
		if !ok {
			return nil, false
		}
		out = append(out, name)
		s = strings.TrimPrefix(s[end:], "/")
	}
	return out, s == ""
}

// parseExpiryKey parses an expiry index key. For a long name's entry it
// returns the time (not zero) and ok false.
func parseExpiryKey(key string) (int64, objectKeyParts, bool) {
	rest, ok := strings.CutPrefix(key, expiryNS)
	if !ok || len(rest) < 12 || rest[11] != '/' {
		return 0, objectKeyParts{}, false
	}
	t, err := strconv.ParseInt(rest[:11], 10, 64)
	if err != nil {
		return 0, objectKeyParts{}, false
	}
	parts, ok := parseSegments(rest[12:], 3)
	if !ok {
		return t, objectKeyParts{}, false
	}
	return t, objectKeyParts{parts[0], parts[1], parts[2]}, true
}
