package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
)

func TestStatusOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 200},
		{"invalid", errdefs.ErrInvalid, 400},
		{"validation", errdefs.Invalid("flavorRef", "required"), 400},
		{"unauthenticated", errdefs.ErrUnauthenticated, 401},
		{"forbidden", errdefs.ErrForbidden, 403},
		{"not found wrapped", fmt.Errorf("compute: server %q: %w", "x", errdefs.ErrNotFound), 404},
		{"conflict", errdefs.ErrConflict, 409},
		{"quota", errdefs.ErrQuotaExceeded, 413},
		{"unsupported", errdefs.ErrUnsupported, 501},
		{"unavailable", errdefs.Wrap(errdefs.ErrUnavailable, errors.New("disk full")), 503},
		{"internal", errors.New("boom"), 500},
		{"http error", Errorf(415, "no"), 415},
		{"http error wrapping kind", &HTTPError{Err: errdefs.ErrNotFound}, 404},
		{"http error empty", &HTTPError{}, 500},
		{"wrapped http error", fmt.Errorf("ctx: %w", Errorf(406, "no")), 406},
		{"max bytes", &http.MaxBytesError{Limit: 1}, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := StatusOf(tt.err); got != tt.want {
				t.Errorf("StatusOf(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

// kindCases are the errdefs kinds with a client-visible message.
var kindCases = []struct {
	name string
	err  error
	msg  string
}{
	{"invalid", errdefs.Invalid("name", "too long"), "invalid name: too long"},
	{"unauthenticated", fmt.Errorf("token expired: %w", errdefs.ErrUnauthenticated), "token expired: unauthenticated"},
	{"forbidden", fmt.Errorf("policy: %w", errdefs.ErrForbidden), "policy: forbidden"},
	{"not found", fmt.Errorf("server x: %w", errdefs.ErrNotFound), "server x: not found"},
	{"conflict", fmt.Errorf("in use: %w", errdefs.ErrConflict), "in use: conflict"},
	{"quota", fmt.Errorf("instances: %w", errdefs.ErrQuotaExceeded), "instances: quota exceeded"},
	{"unsupported", fmt.Errorf("rescue: %w", errdefs.ErrUnsupported), "rescue: unsupported"},
}

func TestWriteErrorBodies(t *testing.T) {
	t.Parallel()
	// want[family][kind] is the exact status and body.
	type resp struct {
		status int
		body   string
	}
	want := map[Family]map[string]resp{
		Keystone: {
			"invalid":         {400, `{"error":{"code":400,"message":"invalid name: too long","title":"Bad Request"}}`},
			"unauthenticated": {401, `{"error":{"code":401,"message":"token expired: unauthenticated","title":"Unauthorized"}}`},
			"forbidden":       {403, `{"error":{"code":403,"message":"policy: forbidden","title":"Forbidden"}}`},
			"not found":       {404, `{"error":{"code":404,"message":"server x: not found","title":"Not Found"}}`},
			"conflict":        {409, `{"error":{"code":409,"message":"in use: conflict","title":"Conflict"}}`},
			"quota":           {413, `{"error":{"code":413,"message":"instances: quota exceeded","title":"Request Entity Too Large"}}`},
			"unsupported":     {501, `{"error":{"code":501,"message":"rescue: unsupported","title":"Not Implemented"}}`},
		},
		Nova: {
			"invalid":         {400, `{"badRequest":{"code":400,"message":"invalid name: too long"}}`},
			"unauthenticated": {401, `{"unauthorized":{"code":401,"message":"token expired: unauthenticated"}}`},
			"forbidden":       {403, `{"forbidden":{"code":403,"message":"policy: forbidden"}}`},
			"not found":       {404, `{"itemNotFound":{"code":404,"message":"server x: not found"}}`},
			"conflict":        {409, `{"conflictingRequest":{"code":409,"message":"in use: conflict"}}`},
			"quota":           {413, `{"overLimit":{"code":413,"message":"instances: quota exceeded"}}`},
			"unsupported":     {501, `{"notImplemented":{"code":501,"message":"rescue: unsupported"}}`},
		},
		Neutron: {
			"invalid":         {400, `{"NeutronError":{"type":"BadRequest","message":"invalid name: too long","detail":""}}`},
			"unauthenticated": {401, `{"NeutronError":{"type":"Unauthorized","message":"token expired: unauthenticated","detail":""}}`},
			"forbidden":       {403, `{"NeutronError":{"type":"NotAuthorized","message":"policy: forbidden","detail":""}}`},
			"not found":       {404, `{"NeutronError":{"type":"NotFound","message":"server x: not found","detail":""}}`},
			"conflict":        {409, `{"NeutronError":{"type":"Conflict","message":"in use: conflict","detail":""}}`},
			"quota":           {409, `{"NeutronError":{"type":"OverQuota","message":"instances: quota exceeded","detail":""}}`},
			"unsupported":     {501, `{"NeutronError":{"type":"NotImplemented","message":"rescue: unsupported","detail":""}}`},
		},
		Heat: {
			"invalid":         {400, `{"code":400,"title":"Bad Request","explanation":"The server could not comply with the request since it is either malformed or otherwise incorrect.","error":{"type":"HTTPBadRequest","message":"invalid name: too long","traceback":null}}`},
			"unauthenticated": {401, `{"code":401,"title":"Unauthorized","explanation":"This server could not verify that you are authorized to access the document you requested.","error":{"type":"HTTPUnauthorized","message":"token expired: unauthenticated","traceback":null}}`},
			"forbidden":       {403, `{"code":403,"title":"Forbidden","explanation":"Access was denied to this resource.","error":{"type":"HTTPForbidden","message":"policy: forbidden","traceback":null}}`},
			"not found":       {404, `{"code":404,"title":"Not Found","explanation":"The resource could not be found.","error":{"type":"EntityNotFound","message":"server x: not found","traceback":null}}`},
			"conflict":        {409, `{"code":409,"title":"Conflict","explanation":"There was a conflict when trying to complete your request.","error":{"type":"HTTPConflict","message":"in use: conflict","traceback":null}}`},
			"quota":           {413, `{"code":413,"title":"Request Entity Too Large","explanation":"The request is larger than the server is willing or able to process.","error":{"type":"HTTPRequestEntityTooLarge","message":"instances: quota exceeded","traceback":null}}`},
			"unsupported":     {501, `{"code":501,"title":"Not Implemented","explanation":"The server has not implemented this operation.","error":{"type":"HTTPNotImplemented","message":"rescue: unsupported","traceback":null}}`},
		},
	}
	for fam, byKind := range want {
		for _, kc := range kindCases {
			t.Run(fam.String()+"/"+kc.name, func(t *testing.T) {
				t.Parallel()
				w := byKind[kc.name]
				rec := httptest.NewRecorder()
				WriteError(rec, httptest.NewRequest("GET", "/x", nil), fam, kc.err)
				if rec.Code != w.status {
					t.Errorf("status = %d, want %d", rec.Code, w.status)
				}
				if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q", ct)
				}
				jsonEqual(t, rec.Body.Bytes(), w.body)
			})
		}
	}
}

func TestWriteErrorTextFamilies(t *testing.T) {
	t.Parallel()
	for _, fam := range []Family{Glance, Swift} {
		for _, kc := range kindCases {
			t.Run(fam.String()+"/"+kc.name, func(t *testing.T) {
				t.Parallel()
				rec := httptest.NewRecorder()
				WriteError(rec, httptest.NewRequest("GET", "/x", nil), fam, kc.err)
				status := StatusOf(kc.err)
				if rec.Code != status {
					t.Errorf("status = %d, want %d", rec.Code, status)
				}
				if ct := rec.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
					t.Errorf("Content-Type = %q", ct)
				}
				want := fmt.Sprintf("%d %s\n\n%s\n", status, http.StatusText(status), kc.msg)
				if rec.Body.String() != want {
					t.Errorf("body = %q, want %q", rec.Body.String(), want)
				}
			})
		}
	}
}

func TestWriteErrorGenericShape(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	WriteError(rec, httptest.NewRequest("GET", "/x", nil), Generic, errdefs.ErrNotFound)
	jsonEqual(t, rec.Body.Bytes(), `{"error":{"code":404,"message":"not found","title":"Not Found"}}`)
}

func TestWriteErrorInternalDoesNotLeak(t *testing.T) {
	t.Parallel()
	secret := "open /var/lib/stratus/secret.db: permission denied"
	tests := []struct {
		name   string
		err    error
		status int
		level  string
	}{
		{"unclassified", errors.New(secret), 500, "ERROR"},
		{"unavailable", errdefs.Wrap(errdefs.ErrUnavailable, errors.New(secret)), 503, "WARN"},
		{"http error wrapping internal", &HTTPError{Status: 502, Err: errors.New(secret)}, 502, "ERROR"},
	}
	for _, fam := range []Family{Generic, Keystone, Nova, Neutron, Glance, Swift, Heat} {
		for _, tt := range tests {
			t.Run(fam.String()+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				logger, logs := newTestLogger()
				var gotID string
				h := Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					gotID = RequestID(r.Context())
					WriteError(w, r, fam, tt.err)
				}), fam, logger)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
				if rec.Code != tt.status {
					t.Errorf("status = %d, want %d", rec.Code, tt.status)
				}
				if strings.Contains(rec.Body.String(), "secret") {
					t.Errorf("body leaks the error: %s", rec.Body)
				}
				out := logs.String()
				if !strings.Contains(out, secret) || !strings.Contains(out, gotID) || !strings.Contains(out, `"level":"`+tt.level+`"`) {
					t.Errorf("log lacks the error, request id %s or level %s:\n%s", gotID, tt.level, out)
				}
			})
		}
	}
}

func TestWriteErrorHTTPError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		fam    Family
		err    error
		status int
		body   string
	}{
		{"neutron explicit type", Neutron,
			&HTTPError{Status: 412, Type: "RevisionNumberConstraintFailed", Message: "stale"},
			412, `{"NeutronError":{"type":"RevisionNumberConstraintFailed","message":"stale","detail":""}}`},
		{"neutron type over kind", Neutron,
			&HTTPError{Type: "NetworkNotFound", Err: fmt.Errorf("network n: %w", errdefs.ErrNotFound)},
			404, `{"NeutronError":{"type":"NetworkNotFound","message":"network n: not found","detail":""}}`},
		{"heat explicit type", Heat,
			&HTTPError{Type: "StackValidationFailed", Err: errdefs.Invalid("template", "bad")},
			400, `{"code":400,"title":"Bad Request","explanation":"The server could not comply with the request since it is either malformed or otherwise incorrect.","error":{"type":"StackValidationFailed","message":"invalid template: bad","traceback":null}}`},
		{"nova 406 is computeFault", Nova, Errorf(406, "Version 9.9 is not supported"),
			406, `{"computeFault":{"code":406,"message":"Version 9.9 is not supported"}}`},
		{"nova 405", Nova, Errorf(405, "no"), 405, `{"badMethod":{"code":405,"message":"no"}}`},
		{"nova 415", Nova, Errorf(415, "no"), 415, `{"badMediaType":{"code":415,"message":"no"}}`},
		{"nova 503", Nova, Errorf(503, "later"), 503, `{"serviceUnavailable":{"code":503,"message":"later"}}`},
		{"nova 500", Nova, errors.New("x"), 500, `{"computeFault":{"code":500,"message":"` + msgInternal + `"}}`},
		{"keystone 415", Keystone, Errorf(415, "no"), 415, `{"error":{"code":415,"message":"no","title":"Unsupported Media Type"}}`},
		{"status without message", Keystone, &HTTPError{Status: 405}, 405, `{"error":{"code":405,"message":"Method Not Allowed","title":"Method Not Allowed"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/x", nil)
			r = r.WithContext(context.WithValue(r.Context(), loggerKey{}, slog.New(slog.DiscardHandler)))
			WriteError(rec, r, tt.fam, tt.err)
			if rec.Code != tt.status {
				t.Errorf("status = %d, want %d", rec.Code, tt.status)
			}
			jsonEqual(t, rec.Body.Bytes(), tt.body)
		})
	}
}

func TestWriteErrorKeystoneWWWAuthenticate(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "http://keystone.test:5000/v3/projects", nil)
	WriteError(rec, r, Keystone, errdefs.ErrUnauthenticated)
	if got, want := rec.Header().Get("WWW-Authenticate"), `Keystone uri="http://keystone.test:5000"`; got != want {
		t.Errorf("WWW-Authenticate = %q, want %q", got, want)
	}
	rec = httptest.NewRecorder()
	WriteError(rec, r, Nova, errdefs.ErrUnauthenticated)
	if got := rec.Header().Get("WWW-Authenticate"); got != "" {
		t.Errorf("Nova WWW-Authenticate = %q, want none", got)
	}
}

func TestHTTPErrorUnwrap(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("api: %w", &HTTPError{Type: "NetworkNotFound", Err: errdefs.ErrNotFound})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Error("HTTPError hides its Err from errors.Is")
	}
	if got := (&HTTPError{Status: 404}).Error(); got != "not found" {
		t.Errorf("Error() = %q", got)
	}
}
