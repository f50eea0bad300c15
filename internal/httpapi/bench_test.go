package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The benchmarks measure the middleware chain's overhead per request:
// compare BenchmarkWrapped (and BenchmarkWrappedNoLog, whose logger is
// disabled) with BenchmarkBare.

var benchHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"servers":[]}`)
})

func runBench(b *testing.B, h http.Handler) {
	b.ReportAllocs()
	r := httptest.NewRequest("GET", "/v2.1/servers", nil)
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
	}
}

// BenchmarkBare is the handler alone.
func BenchmarkBare(b *testing.B) { runBench(b, benchHandler) }

// BenchmarkWrapped is the handler behind Wrap with a JSON access log
// written to io.Discard.
func BenchmarkWrapped(b *testing.B) {
	runBench(b, Wrap(benchHandler, Nova, slog.New(slog.NewJSONHandler(io.Discard, nil))))
}

// BenchmarkWrappedNoLog is Wrap with a disabled logger: the cost of the
// request id, recovery and status recording alone.
func BenchmarkWrappedNoLog(b *testing.B) {
	runBench(b, Wrap(benchHandler, Nova, slog.New(slog.DiscardHandler)))
}

// BenchmarkRouter is the handler behind a Router and Wrap, as a service
// runs it.
func BenchmarkRouter(b *testing.B) {
	rt := NewRouter(Nova)
	rt.Handle("GET /v2.1/servers", benchHandler)
	runBench(b, Wrap(rt, Nova, slog.New(slog.NewJSONHandler(io.Discard, nil))))
}
