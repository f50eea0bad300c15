package httpapi

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

var requestIDPattern = regexp.MustCompile(`^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestRequestID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fam     Family
		transID bool
	}{
		{Nova, false},
		{Keystone, false},
		{Swift, true},
	}
	for _, tt := range tests {
		t.Run(tt.fam.String(), func(t *testing.T) {
			t.Parallel()
			var inCtx string
			h := WithRequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inCtx = RequestID(r.Context())
			}), tt.fam)
			seen := map[string]bool{}
			for range 3 {
				rec := httptest.NewRecorder()
				r := httptest.NewRequest("GET", "/", nil)
				r.Header.Set(RequestIDHeader, "req-from-client")
				h.ServeHTTP(rec, r)
				id := rec.Header().Get(RequestIDHeader)
				if !requestIDPattern.MatchString(id) {
					t.Fatalf("request id %q is not req-<uuid4>", id)
				}
				if id != inCtx {
					t.Errorf("header %q != context %q", id, inCtx)
				}
				if seen[id] {
					t.Errorf("request id %q repeated", id)
				}
				seen[id] = true
				if got := rec.Header().Get(TransIDHeader); (got == id) != tt.transID {
					t.Errorf("X-Trans-Id = %q (want it: %v)", got, tt.transID)
				}
			}
		})
	}
	if got := RequestID(t.Context()); got != "" {
		t.Errorf("RequestID of a bare context = %q", got)
	}
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	logger, logs := newTestLogger()
	h := Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "hello")
	}), Nova, logger)
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/servers?temp_url_sig=secret", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	h.ServeHTTP(rec, r)

	var entry map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(logs.String())), &entry); err != nil {
		t.Fatalf("log %q: %v", logs, err)
	}
	want := map[string]any{
		"msg": "request", "method": "POST", "path": "/servers", "status": float64(202),
		"bytes": float64(5), "request_id": rec.Header().Get(RequestIDHeader),
		"remote": "192.0.2.1:1234", "aborted": false,
	}
	for k, v := range want {
		if entry[k] != v {
			t.Errorf("log %s = %v, want %v", k, entry[k], v)
		}
	}
	if _, ok := entry["duration"]; !ok {
		t.Error("log has no duration")
	}
	if strings.Contains(logs.String(), "secret") {
		t.Error("access log contains the query")
	}
}

func TestAccessLogImplicitStatus(t *testing.T) {
	t.Parallel()
	logger, logs := newTestLogger()
	h := AccessLog(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), logger)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if !strings.Contains(logs.String(), `"status":200`) {
		t.Errorf("log %s lacks status 200", logs)
	}
}

// TestRecoverKeepsServing runs a real server: a panicking handler answers
// 500 in the family body and the next request on the same server succeeds.
func TestRecoverKeepsServing(t *testing.T) {
	t.Parallel()
	logger, logs := newTestLogger()
	rt := NewRouter(Neutron)
	rt.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) { panic("kaboom") })
	rt.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fine") })
	srv := httptest.NewServer(Wrap(rt, Neutron, logger))
	defer srv.Close()

	for range 2 {
		resp, err := http.Get(srv.URL + "/panic")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 500 {
			t.Fatalf("status %d, want 500", resp.StatusCode)
		}
		jsonEqual(t, b, `{"NeutronError":{"type":"HTTPInternalServerError","message":"`+msgInternal+`","detail":""}}`)
		if resp.Header.Get(RequestIDHeader) == "" {
			t.Error("500 has no request id")
		}
	}
	resp, err := http.Get(srv.URL + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "fine" {
		t.Errorf("after panic: %d %q", resp.StatusCode, b)
	}
	out := logs.String()
	for _, want := range []string{"panic serving request", "kaboom", "middleware_test.go", `"status":500`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// TestRecoverAbort checks that http.ErrAbortHandler, and any panic after
// the headers were sent, abort the response instead of completing it.
func TestRecoverAbort(t *testing.T) {
	t.Parallel()
	logger, _ := newTestLogger()
	rt := NewRouter(Nova)
	rt.HandleFunc("GET /abort", func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) })
	rt.HandleFunc("GET /late", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		io.WriteString(w, "partial")
		http.NewResponseController(w).Flush()
		panic("late")
	})
	srv := httptest.NewServer(Wrap(rt, Nova, logger))
	defer srv.Close()

	if resp, err := http.Get(srv.URL + "/abort"); err == nil {
		resp.Body.Close()
		t.Errorf("abort: got a response, status %d", resp.StatusCode)
	}
	resp, err := http.Get(srv.URL + "/late")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("late panic: body read completely, want an error")
	}
}

func TestStatusWriterPassesThrough(t *testing.T) {
	t.Parallel()
	h := Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			t.Error("wrapped writer is not a Flusher")
		}
		if _, ok := w.(io.ReaderFrom); !ok {
			t.Error("wrapped writer is not a ReaderFrom")
		}
		io.Copy(w, strings.NewReader("copied"))
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
	}), Swift, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if line != "copied" {
		t.Errorf("body %q", line)
	}
}
