package httpapi

import (
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
)

type serverReq struct {
	Server struct {
		Name      string `json:"name"`
		FlavorRef string `json:"flavorRef"`
		MinCount  int    `json:"min_count"`
	} `json:"server"`
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	big := `{"server":{"name":"` + strings.Repeat("a", 200) + `"}}`
	tests := []struct {
		name        string
		contentType string
		body        string
		opts        DecodeOptions
		status      int    // 0: no error
		field       string // ValidationError.Field, if any
		msg         string // substring of the error message
	}{
		{name: "ok", contentType: "application/json", body: `{"server":{"name":"vm","flavorRef":"1"}}`},
		{name: "ok charset", contentType: "application/json; charset=UTF-8", body: `{"server":{}}`},
		{name: "ok +json", contentType: "application/openstack-images-v2.1+json", body: `{}`},
		{name: "ok no content type", body: `{}`},
		{name: "ok trailing whitespace", body: "{}\n\n"},
		{name: "extra content type", contentType: "application/openstack-images-v2.1-json-patch", body: `{}`,
			opts: DecodeOptions{ContentTypes: []string{"application/openstack-images-v2.1-json-patch"}}},
		{name: "wrong content type", contentType: "text/plain", body: `{}`, status: 415, msg: "text/plain"},
		{name: "malformed content type", contentType: "application/", body: `{}`, status: 415},
		{name: "empty body", body: "", status: 400, msg: "empty"},
		{name: "whitespace body", body: "  \n", status: 400, msg: "empty"},
		{name: "malformed", body: `{"server":{"name":}}`, status: 400, msg: "malformed JSON at byte"},
		{name: "truncated", body: `{"server":{"name":"x"`, status: 400, msg: "unexpected end"},
		{name: "wrong type", body: `{"server":{"min_count":"two"}}`, status: 400, field: "server.min_count", msg: "must be an integer"},
		{name: "trailing data", body: `{} {}`, status: 400, msg: "after the JSON value"},
		{name: "trailing garbage", body: `{}x`, status: 400, msg: "after the JSON value"},
		{name: "unknown allowed", body: `{"server":{"name":"vm","colour":"red"}}`},
		{name: "unknown rejected", body: `{"server":{"name":"vm","colour":"red"}}`,
			opts: DecodeOptions{DisallowUnknownFields: true}, status: 400, field: "colour", msg: "colour"},
		{name: "over limit", body: big, opts: DecodeOptions{MaxBytes: 100}, status: 413, msg: "100 bytes"},
		{name: "at limit", body: `{"server":{}}`, opts: DecodeOptions{MaxBytes: int64(len(`{"server":{}}`))}},
		{name: "trailing data over limit", body: `{}` + strings.Repeat(" ", 50) + "x", opts: DecodeOptions{MaxBytes: 20}, status: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, chunked := range []bool{false, true} {
				var body io.Reader = strings.NewReader(tt.body)
				if chunked {
					body = io.MultiReader(body) // hides the length
				}
				r := httptest.NewRequest("POST", "/servers", body)
				if chunked {
					r.ContentLength = -1
				}
				if tt.contentType != "" {
					r.Header.Set("Content-Type", tt.contentType)
				}
				var v serverReq
				err := DecodeJSON(httptest.NewRecorder(), r, &v, tt.opts)
				if tt.status == 0 {
					if err != nil {
						t.Fatalf("chunked=%v: DecodeJSON: %v", chunked, err)
					}
					continue
				}
				if err == nil {
					t.Fatalf("chunked=%v: DecodeJSON succeeded, want status %d", chunked, tt.status)
				}
				if got := StatusOf(err); got != tt.status {
					t.Errorf("chunked=%v: status %d, want %d (%v)", chunked, got, tt.status, err)
				}
				if tt.status == 400 && !errors.Is(err, errdefs.ErrInvalid) {
					t.Errorf("400 error %v does not match ErrInvalid", err)
				}
				if tt.field != "" {
					var ve *errdefs.ValidationError
					if !errors.As(err, &ve) || ve.Field != tt.field {
						t.Errorf("error %#v does not name field %q", err, tt.field)
					}
				}
				if !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("error %q does not contain %q", err, tt.msg)
				}
			}
		})
	}
}

// TestDecodeJSONOverLimitResponse checks the whole path through a handler:
// the 413 uses the family body.
func TestDecodeJSONOverLimitResponse(t *testing.T) {
	t.Parallel()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v any
		if err := DecodeJSON(w, r, &v, DecodeOptions{}); err != nil {
			WriteError(w, r, Nova, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	body := `{"k":"` + strings.Repeat("a", DefaultMaxBodyBytes) + `"}`
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	jsonEqual(t, b, `{"overLimit":{"code":413,"message":"request body is larger than 1048576 bytes"}}`)
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	if err := WriteJSON(rec, http.StatusCreated, map[string]string{"a": "<b>"}); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 201 || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if got := rec.Body.String(); got != "{\"a\":\"<b>\"}\n" {
		t.Errorf("body %q", got)
	}
	if rec.Header().Get("Content-Length") != "12" {
		t.Errorf("Content-Length %q", rec.Header().Get("Content-Length"))
	}

	rec = httptest.NewRecorder()
	if err := WriteJSON(rec, http.StatusOK, math.NaN()); err == nil {
		t.Error("WriteJSON(NaN) succeeded")
	}
	if rec.Code != 500 {
		t.Errorf("unencodable value: status %d, want 500", rec.Code)
	}
}
