package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/stratuskit/stratus/errdefs"
)

// PasswordHashing is the argon2id cost of stored passwords. The zero value
// of each field means its default: Time 2, MemoryKiB 19456, Threads 1
// (OWASP's recommendation). Stored hashes keep their own parameters, so
// changing the cost applies to passwords set afterwards.
type PasswordHashing struct {
	Time      uint32
	MemoryKiB uint32
	Threads   uint8
}

func (h PasswordHashing) validate() error {
	if h.MemoryKiB != 0 && h.MemoryKiB < 8 {
		return errdefs.Invalid("PasswordHashing.MemoryKiB", "must be at least 8")
	}
	return nil
}

func (h PasswordHashing) withDefaults() PasswordHashing {
	if h.Time == 0 {
		h.Time = 2
	}
	if h.MemoryKiB == 0 {
		h.MemoryKiB = 19456
	}
	if h.Threads == 0 {
		h.Threads = 1
	}
	return h
}

// MaxPasswordLen bounds passwords, so that hashing cost stays bounded.
const MaxPasswordLen = 4096

// hashPassword returns the PHC string of password:
// $argon2id$v=19$m=…,t=…,p=…$salt$hash.
func (h PasswordHashing) hash(password string) string {
	h = h.withDefaults()
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	sum := argon2.IDKey([]byte(password), salt, h.Time, h.MemoryKiB, h.Threads, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, h.MemoryKiB, h.Time, h.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum))
}

// verifyPassword reports whether password matches the PHC string encoded.
func verifyPassword(encoded, password string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

func checkPassword(field, pw string) error {
	if pw == "" {
		return errdefs.Invalid(field, "must not be empty")
	}
	if len(pw) > MaxPasswordLen {
		return errdefs.Invalid(field, "must be at most %d bytes", MaxPasswordLen)
	}
	return nil
}
