package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
)

// DefaultMaxBodyBytes is the request body limit [DecodeJSON] applies when
// [DecodeOptions.MaxBytes] is zero.
const DefaultMaxBodyBytes = 1 << 20

// WriteJSON writes v as JSON with the given status and Content-Type
// application/json. HTML characters are not escaped, as in Python's json.
//
// If v cannot be encoded (a channel, a NaN float) WriteJSON answers 500 with
// a generic message and returns the encoding error for the caller to log;
// otherwise it returns the error, if any, of writing to w.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, msgInternal, http.StatusInternalServerError)
		return fmt.Errorf("httpapi: encode response: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// DecodeOptions configures [DecodeJSON]. The zero value is the default.
type DecodeOptions struct {
	// MaxBytes limits the body size; zero means DefaultMaxBodyBytes. A
	// larger body is a 413 error.
	MaxBytes int64
	// DisallowUnknownFields rejects an object field that v has no place for
	// with a 400 naming it. Nova's JSON schemas and Neutron ("Unrecognized
	// attribute(s)") reject unknown fields; Keystone keeps them and Glance
	// treats them as image properties, so those leave this false.
	DisallowUnknownFields bool
	// ContentTypes lists media types accepted besides application/json and
	// application/*+json, for example Glance's
	// "application/openstack-images-v2.1-json-patch".
	ContentTypes []string
}

// DecodeJSON decodes the request body, which must hold exactly one JSON
// value, into v. Handlers pass a non-nil error straight to [WriteError]:
//
//   - a Content-Type that is neither JSON nor listed in opts is an
//     [*HTTPError] with status 415 (a missing Content-Type is accepted);
//   - a body over the limit is an [*HTTPError] with status 413;
//   - an empty body, malformed JSON, a value of the wrong type, an unknown
//     field (when disallowed) or data after the value is an
//     [*errdefs.ValidationError] (400), naming the field where known.
//
// DecodeJSON wraps r.Body with http.MaxBytesReader, so w must be the
// handler's ResponseWriter.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, opts DecodeOptions) error {
	if err := checkContentType(r.Header.Get("Content-Type"), opts.ContentTypes); err != nil {
		return err
	}
	limit := opts.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	if r.ContentLength > limit {
		return tooLarge(limit)
	}
	if r.Body == nil {
		return errdefs.Invalid("", "request body is empty")
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(r.Body)
	if opts.DisallowUnknownFields {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return decodeError(err, limit)
	}
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
		return nil
	case isMaxBytes(err):
		return tooLarge(limit)
	default:
		return errdefs.Invalid("", "unexpected data after the JSON value")
	}
}

// checkContentType accepts an empty content type, application/json,
// application/*+json and the extra types.
func checkContentType(ct string, extra []string) error {
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		if mt == "application/json" ||
			(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
			return nil
		}
		for _, x := range extra {
			if strings.EqualFold(mt, x) {
				return nil
			}
		}
	}
	return &HTTPError{
		Status:  http.StatusUnsupportedMediaType,
		Message: fmt.Sprintf("unsupported content type %q: want application/json", ct),
	}
}

func tooLarge(limit int64) error {
	return &HTTPError{
		Status:  http.StatusRequestEntityTooLarge,
		Message: fmt.Sprintf("request body is larger than %d bytes", limit),
	}
}

// decodeError turns an encoding/json error into a 400 naming what is wrong,
// or a 413 when the body hit the limit.
func decodeError(err error, limit int64) error {
	if isMaxBytes(err) {
		return tooLarge(limit)
	}
	if errors.Is(err, io.EOF) {
		return errdefs.Invalid("", "request body is empty")
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errdefs.Invalid("", "malformed JSON: unexpected end of body")
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return errdefs.Invalid("", "malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return &errdefs.ValidationError{
			Field:  te.Field,
			Reason: fmt.Sprintf("must be %s, not %s", jsonKind(te.Type), te.Value),
		}
	}
	// encoding/json has no type for this one; its text is stable.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if unq, uerr := strconv.Unquote(name); uerr == nil {
			name = unq
		}
		return &errdefs.ValidationError{Field: name, Reason: "unrecognized attribute"}
	}
	return errdefs.Invalid("", "malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names the JSON type that decodes into t.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a JSON value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a JSON value"
}
