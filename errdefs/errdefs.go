// Package errdefs defines the error kinds that every Stratus service and driver
// returns, so that callers can match failures with errors.Is and errors.As
// whatever service or backend produced them.
//
// The kinds are sentinel values. Services wrap them once, naming the resource:
//
//	return fmt.Errorf("compute: server %q: %w", id, errdefs.ErrNotFound)
//
// Drivers classify their raw errors at their own boundary with [Wrap], which
// keeps the raw error reachable, so that both of these hold:
//
//	errors.Is(err, errdefs.ErrNotFound)
//	var lverr libvirt.Error; errors.As(err, &lverr)
//
// The HTTP layer (internal/httpapi) maps each kind to one status code.
// The kinds are never renamed or removed.
package errdefs

import (
	"errors"
	"fmt"
)

// The shared error kinds.
var (
	// ErrNotFound means the resource does not exist, or exists in a project
	// the caller cannot see (tenant isolation answers "absent", never
	// "forbidden").
	ErrNotFound = errors.New("not found")
	// ErrConflict means the request conflicts with the current state: a
	// duplicate, a resource in use, or a stale revision.
	ErrConflict = errors.New("conflict")
	// ErrForbidden means the caller is authenticated but policy denies the
	// action.
	ErrForbidden = errors.New("forbidden")
	// ErrQuotaExceeded means the request would take a project over a quota.
	ErrQuotaExceeded = errors.New("quota exceeded")
	// ErrUnsupported means the operation is not supported by this service or
	// by the configured driver.
	ErrUnsupported = errors.New("unsupported")
	// ErrUnauthenticated means the caller's credentials are missing, invalid,
	// expired or revoked.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrInvalid means the request is malformed. A *ValidationError matches it
	// with errors.Is and also names the field.
	ErrInvalid = errors.New("invalid")
	// ErrUnavailable means a backend the operation needs is unreachable or
	// failing (a full disk, a failed fsync, a lost connection). Retrying
	// later may succeed.
	ErrUnavailable = errors.New("unavailable")
)

// ValidationError reports a bad input value and names the field that holds
// it. It matches ErrInvalid with errors.Is.
type ValidationError struct {
	// Field is the name of the offending field as the API user spells it,
	// for example "flavorRef" or "subnet.cidr".
	Field string
	// Reason says what is wrong, for example "must be a valid CIDR".
	Reason string
}

// Invalid returns a *ValidationError for field with a formatted reason.
func Invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Error implements error.
func (e *ValidationError) Error() string {
	if e.Field == "" {
		return "invalid input: " + e.Reason
	}
	return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason)
}

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// kindError joins one kind with the raw error it classifies.
type kindError struct {
	kind error
	raw  error
}

func (e *kindError) Error() string {
	if e.raw == nil {
		return e.kind.Error()
	}
	return e.raw.Error()
}

// Unwrap returns both the kind and the raw error, so errors.Is and errors.As
// see through to either.
func (e *kindError) Unwrap() []error { return []error{e.kind, e.raw} }

// Wrap classifies raw as kind. The result matches kind with errors.Is and
// still exposes raw to errors.Is and errors.As. Its message is raw's message.
// Wrap returns nil if raw is nil.
func Wrap(kind, raw error) error {
	if raw == nil {
		return nil
	}
	return &kindError{kind: kind, raw: raw}
}

// kinds lists every shared kind, most specific first. [Kind] uses this order.
var kinds = []error{
	ErrNotFound, ErrConflict, ErrForbidden, ErrQuotaExceeded,
	ErrUnsupported, ErrUnauthenticated, ErrInvalid, ErrUnavailable,
}

// Kind returns the first shared kind that err matches, or nil if it matches
// none (an internal error).
func Kind(err error) error {
	if err == nil {
		return nil
	}
	for _, k := range kinds {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

// IsNotFound reports whether err matches ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsConflict reports whether err matches ErrConflict.
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }
