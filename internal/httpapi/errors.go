package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
)

// HTTPError is an error with an explicit HTTP status, message or error type.
// [WriteError] honours it anywhere in an error's chain. Use it for statuses
// that no errdefs kind covers (405, 406, 412, 415), or to give Neutron and
// Heat bodies a specific type:
//
//	&httpapi.HTTPError{Status: http.StatusPreconditionFailed, Type: "RevisionNumberConstraintFailed", Message: "…"}
//	&httpapi.HTTPError{Type: "NetworkNotFound", Err: err} // status and message from err
type HTTPError struct {
	// Status is the HTTP status code. Zero means the status of Err as the
	// family maps it (500 when Err is nil).
	Status int
	// Message is sent to the client as is. Empty means Err's message when
	// Err has a client-safe errdefs kind, else a generic text for Status.
	Message string
	// Type names the error in families whose bodies carry one: Neutron's
	// NeutronError.type and Heat's error.type. Empty means a default for
	// the status.
	Type string
	// Err is the underlying error, if any. It is never sent to the client
	// unless its kind is client-safe.
	Err error
}

// Error implements error.
func (e *HTTPError) Error() string {
	switch {
	case e.Message != "":
		return e.Message
	case e.Err != nil:
		return e.Err.Error()
	}
	status := e.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	return strings.ToLower(http.StatusText(status))
}

// Unwrap returns Err.
func (e *HTTPError) Unwrap() error { return e.Err }

// Errorf returns an *HTTPError with status and a formatted message.
func Errorf(status int, format string, args ...any) *HTTPError {
	return &HTTPError{Status: status, Message: fmt.Sprintf(format, args...)}
}

// StatusOf maps err to an HTTP status code. The status of an *HTTPError in
// err's chain wins; an *http.MaxBytesError gives 413; otherwise the errdefs
// kind decides:
//
//	ErrInvalid (and *errdefs.ValidationError)  400
//	ErrUnauthenticated                         401
//	ErrForbidden                               403
//	ErrNotFound                                404
//	ErrConflict                                409
//	ErrQuotaExceeded                           413 (Neutron: 409, see WriteError)
//	ErrUnsupported                             501
//	ErrUnavailable                             503
//	anything else                              500
//
// StatusOf(nil) is 200.
func StatusOf(err error) int { return statusOf(Generic, err) }

func statusOf(fam Family, err error) int {
	if err == nil {
		return http.StatusOK
	}
	if he, ok := errors.AsType[*HTTPError](err); ok {
		if he.Status != 0 {
			return he.Status
		}
		if he.Err == nil {
			return http.StatusInternalServerError
		}
		return statusOf(fam, he.Err)
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return http.StatusRequestEntityTooLarge
	}
	switch k := errdefs.Kind(err); {
	case errors.Is(k, errdefs.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(k, errdefs.ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(k, errdefs.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(k, errdefs.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(k, errdefs.ErrConflict):
		return http.StatusConflict
	case errors.Is(k, errdefs.ErrQuotaExceeded):
		// Neutron answers 409 OverQuota. Cinder answers 413 overLimit and
		// so do we for Nova, although Nova itself answers 403 for instance
		// quota on create: clients only show the message, and a handler
		// that wants 403 can say so with an HTTPError. Glance and Swift
		// answer 413 for storage quota.
		if fam == Neutron {
			return http.StatusConflict
		}
		return http.StatusRequestEntityTooLarge
	case errors.Is(k, errdefs.ErrUnsupported):
		return http.StatusNotImplemented
	case errors.Is(k, errdefs.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Generic messages for errors whose own message must not reach the client.
const (
	msgInternal    = "An unexpected error prevented the server from fulfilling your request."
	msgUnavailable = "The service is temporarily unavailable; try again later."
)

// problem is an error resolved for rendering.
type problem struct {
	status  int
	message string
	typ     string // explicit type, or ""
	kind    error  // errdefs kind, or nil
	// hidden reports that err's own message was withheld from the client;
	// WriteError logs it.
	hidden bool
}

// resolve works out what to tell the client about err.
func resolve(fam Family, err error) problem {
	p := problem{status: statusOf(fam, err), kind: errdefs.Kind(err)}
	cause := err
	if he, ok := errors.AsType[*HTTPError](err); ok {
		p.typ = he.Type
		if he.Message != "" {
			p.message = he.Message
			return p
		}
		cause = he.Err
		p.kind = errdefs.Kind(cause)
	}
	switch {
	case cause == nil:
		p.message = http.StatusText(p.status)
	case isMaxBytes(cause):
		p.message = cause.Error()
	case p.kind == nil || errors.Is(p.kind, errdefs.ErrUnavailable):
		// An unclassified error may carry file names, addresses or driver
		// internals; so may a backend failure. Neither is for the client.
		p.hidden = true
		p.message = msgInternal
		if p.status == http.StatusServiceUnavailable {
			p.message = msgUnavailable
		} else if p.status != http.StatusInternalServerError {
			p.message = http.StatusText(p.status)
		}
	default:
		p.message = cause.Error()
	}
	if p.message == "" {
		p.message = http.StatusText(p.status)
	}
	return p
}

// WriteError writes err as the family's OpenStack error body with the status
// that [StatusOf] gives, except that a quota error is 409 for [Neutron].
//
// The message of an unclassified error (no errdefs kind and no
// [HTTPError.Message]) or of an errdefs.ErrUnavailable error never reaches
// the client: WriteError answers a generic message and logs the real error,
// with the request id, to the request's logger (see [Logger]).
//
// For a 401 in the [Keystone] family WriteError sets WWW-Authenticate to
// Keystone uri="<this server>", as Keystone does, unless it is already set.
// Other headers the handler set before the call are kept.
func WriteError(w http.ResponseWriter, r *http.Request, fam Family, err error) {
	if err == nil {
		err = errors.New("httpapi: WriteError called with a nil error")
	}
	p := resolve(fam, err)
	if p.hidden {
		level := slog.LevelError
		if errors.Is(p.kind, errdefs.ErrUnavailable) {
			level = slog.LevelWarn
		}
		Logger(r.Context()).LogAttrs(r.Context(), level, "request failed",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", p.status),
			slog.String("error", err.Error()))
	}
	if p.status == http.StatusUnauthorized && fam == Keystone && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Keystone uri="`+BaseURL(r)+`"`)
	}
	writeProblem(w, fam, p)
}

// writeProblem renders p in the family's body.
func writeProblem(w http.ResponseWriter, fam Family, p problem) {
	var body any
	switch fam {
	case Glance, Swift:
		text := strconv.Itoa(p.status) + " " + http.StatusText(p.status) + "\n\n" + p.message + "\n"
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Length", strconv.Itoa(len(text)))
		w.WriteHeader(p.status)
		_, _ = w.Write([]byte(text))
		return
	case Nova:
		body = map[string]novaFault{novaFaultName(p.status): {Code: p.status, Message: p.message}}
	case Neutron:
		typ := p.typ
		if typ == "" {
			typ = neutronType(p)
		}
		body = neutronBody{NeutronError: neutronError{Type: typ, Message: p.message}}
	case Heat:
		typ := p.typ
		if typ == "" {
			typ = heatType(p.status)
		}
		body = heatBody{
			Code:        p.status,
			Title:       http.StatusText(p.status),
			Explanation: explanation(p.status),
			Error:       heatError{Type: typ, Message: p.message},
		}
	default: // Keystone, Generic
		body = keystoneBody{Error: keystoneError{Code: p.status, Message: p.message, Title: http.StatusText(p.status)}}
	}
	buf, err := json.Marshal(body)
	if err != nil { // cannot happen: the bodies hold only strings and ints
		http.Error(w, msgInternal, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(buf)))
	w.WriteHeader(p.status)
	_, _ = w.Write(buf)
}

type keystoneBody struct {
	Error keystoneError `json:"error"`
}

type keystoneError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Title   string `json:"title"`
}

type novaFault struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// novaFaultName is the top-level key of a Nova or Cinder fault body; the
// table is Nova's (nova/api/openstack/wsgi.py Fault._fault_names). Like
// Nova, any other status, 406 included, is a "computeFault".
func novaFaultName(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "badRequest"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "itemNotFound"
	case http.StatusMethodNotAllowed:
		return "badMethod"
	case http.StatusConflict:
		return "conflictingRequest"
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return "overLimit"
	case http.StatusUnsupportedMediaType:
		return "badMediaType"
	case http.StatusNotImplemented:
		return "notImplemented"
	case http.StatusServiceUnavailable:
		return "serviceUnavailable"
	}
	return "computeFault"
}

type neutronBody struct {
	NeutronError neutronError `json:"NeutronError"`
}

type neutronError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	Detail  string `json:"detail"`
}

// neutronType is the default NeutronError.type: the neutron-lib exception
// class a Neutron server would raise for the status.
func neutronType(p problem) string {
	switch {
	case errors.Is(p.kind, errdefs.ErrQuotaExceeded):
		return "OverQuota"
	case p.status == http.StatusForbidden:
		return "NotAuthorized" // neutron_lib.exceptions.NotAuthorized is 403
	case p.status == http.StatusInternalServerError:
		return "HTTPInternalServerError"
	}
	return strings.ReplaceAll(http.StatusText(p.status), " ", "")
}

type heatBody struct {
	Code        int       `json:"code"`
	Title       string    `json:"title"`
	Explanation string    `json:"explanation"`
	Error       heatError `json:"error"`
}

type heatError struct {
	Type      string  `json:"type"`
	Message   string  `json:"message"`
	Traceback *string `json:"traceback"` // always null
}

// heatType is the default Heat error.type: EntityNotFound for 404, else the
// webob exception name Heat's fault middleware reports (HTTPBadRequest, …).
func heatType(status int) string {
	if status == http.StatusNotFound {
		return "EntityNotFound"
	}
	return "HTTP" + strings.ReplaceAll(http.StatusText(status), " ", "")
}

// explanation is the webob explanation of a status, which Heat puts in its
// "explanation" field.
func explanation(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "The server could not comply with the request since it is either malformed or otherwise incorrect."
	case http.StatusUnauthorized:
		return "This server could not verify that you are authorized to access the document you requested."
	case http.StatusForbidden:
		return "Access was denied to this resource."
	case http.StatusNotFound:
		return "The resource could not be found."
	case http.StatusMethodNotAllowed:
		return "The method is not allowed for this resource."
	case http.StatusNotAcceptable:
		return "The resource could not be generated that was acceptable to your client."
	case http.StatusConflict:
		return "There was a conflict when trying to complete your request."
	case http.StatusRequestEntityTooLarge:
		return "The request is larger than the server is willing or able to process."
	case http.StatusUnsupportedMediaType:
		return "The request media type is not supported by this server."
	case http.StatusInternalServerError:
		return "The server has either erred or is incapable of performing the requested operation."
	case http.StatusNotImplemented:
		return "The server has not implemented this operation."
	case http.StatusServiceUnavailable:
		return "The server is currently unavailable. Please try again at a later time."
	}
	return http.StatusText(status)
}

func isMaxBytes(err error) bool {
	_, ok := errors.AsType[*http.MaxBytesError](err)
	return ok
}
