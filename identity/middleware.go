package identity

import (
	"context"
	"errors"
	"net/http"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/internal/httpapi"
)

// TokenValidator validates the tokens the middleware sees. *Service
// implements it; a service in another process can implement it with a
// client of the identity API.
type TokenValidator interface {
	ValidateToken(ctx context.Context, token string) (*Token, error)
}

// AuthTokenHeader is the request header that carries the caller's token.
const AuthTokenHeader = "X-Auth-Token"

// MiddlewareOptions configures Middleware.
type MiddlewareOptions struct {
	// Public reports whether a request may pass without a token (version
	// discovery, POST /v3/auth/tokens). A request that carries a token is
	// always validated. Nil means every request needs a token.
	Public func(r *http.Request) bool
	// ServiceType is the catalog type of the service the middleware
	// protects ("compute", "identity", ...). Tokens of an application
	// credential with access rules may only make the requests a rule
	// allows for this service type; with no ServiceType they may make none.
	ServiceType string
}

// Middleware validates the X-Auth-Token of every request with v and puts
// the token's Credentials in the request context for next. A token of an
// application credential with access rules passes only the requests its
// rules allow for opts.ServiceType. A missing,
// invalid, expired or revoked token is answered 401 with the Keystone
// error body and a WWW-Authenticate header, before next runs.
func Middleware(v TokenValidator, next http.Handler, opts *MiddlewareOptions) http.Handler {
	var public func(*http.Request) bool
	var service string
	if opts != nil {
		public, service = opts.Public, opts.ServiceType
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get(AuthTokenHeader)
		if tok == "" {
			if public != nil && public(r) {
				next.ServeHTTP(w, r)
				return
			}
			httpapi.WriteError(w, r, httpapi.Keystone, errUnauthenticated("the request you have made requires authentication"))
			return
		}
		t, err := v.ValidateToken(r.Context(), tok)
		if err != nil {
			if !errors.Is(err, errdefs.ErrUnauthenticated) && !errors.Is(err, errdefs.ErrUnavailable) {
				err = errUnauthenticated("the request you have made requires authentication")
			}
			httpapi.WriteError(w, r, httpapi.Keystone, err)
			return
		}
		c := t.Credentials()
		if len(c.AccessRules) > 0 && (service == "" || !allowedByRules(c.AccessRules, service, r.Method, r.URL.Path)) {
			httpapi.WriteError(w, r, httpapi.Keystone, errUnauthenticated("the request you have made requires authentication: the application credential's access rules do not allow this request"))
			return
		}
		next.ServeHTTP(w, r.WithContext(WithCredentials(r.Context(), c)))
	})
}
