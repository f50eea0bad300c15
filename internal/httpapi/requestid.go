package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
)

// Response headers that carry the request id.
const (
	// RequestIDHeader is set on every response by [WithRequestID].
	RequestIDHeader = "X-Openstack-Request-Id"
	// TransIDHeader is Swift's name for the request id.
	TransIDHeader = "X-Trans-Id"
)

type (
	requestIDKey struct{}
	loggerKey    struct{}
)

// WithRequestID gives every request a fresh id of the form req-<uuid4>,
// sets it in the X-Openstack-Request-Id response header (and X-Trans-Id for
// the [Swift] family) and stores it in the request context for [RequestID].
//
// Like OpenStack services, it ignores any id the client sends: the local
// request id is always the server's own.
func WithRequestID(next http.Handler, fam Family) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := newRequestID()
		h := w.Header()
		h.Set(RequestIDHeader, id)
		if fam == Swift {
			h.Set(TransIDHeader, id)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// RequestID returns the request id stored by [WithRequestID], or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// Logger returns the logger for a request: the one [AccessLog] (and so
// [Wrap]) stored in ctx, or slog.Default(), with the request id attached
// when there is one.
func Logger(ctx context.Context) *slog.Logger {
	l, _ := ctx.Value(loggerKey{}).(*slog.Logger)
	if l == nil {
		l = slog.Default()
	}
	if id := RequestID(ctx); id != "" {
		l = l.With(slog.String("request_id", id))
	}
	return l
}

// newRequestID returns "req-" and a random (version 4) UUID.
func newRequestID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])  // crypto/rand.Read never fails (Go 1.24+)
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	var b [40]byte
	copy(b[:], "req-")
	hex.Encode(b[4:12], u[0:4])
	b[12] = '-'
	hex.Encode(b[13:17], u[4:6])
	b[17] = '-'
	hex.Encode(b[18:22], u[6:8])
	b[22] = '-'
	hex.Encode(b[23:27], u[8:10])
	b[27] = '-'
	hex.Encode(b[28:40], u[10:16])
	return string(b[:])
}
