package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"
)

// Wrap returns h behind the standard middleware chain for a service of
// family fam, outermost first: [WithRequestID], [AccessLog] and [Recover].
// A nil logger means slog.Default().
func Wrap(h http.Handler, fam Family, logger *slog.Logger) http.Handler {
	return WithRequestID(AccessLog(Recover(h, fam, logger), logger), fam)
}

// AccessLog logs one Info record per request to logger (nil means
// slog.Default()) with the method, path (never the query, which may hold
// Swift temp-URL signatures), status, bytes written, duration, request id
// and remote address. A request whose handler aborted the response is
// logged with aborted=true.
//
// AccessLog also stores logger in the request context, where [Logger] and
// [WriteError] find it.
func AccessLog(next http.Handler, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := context.WithValue(r.Context(), loggerKey{}, logger)
		sw := &statusWriter{ResponseWriter: w}
		completed := false
		defer func() {
			status := sw.status
			if status == 0 && completed {
				status = http.StatusOK
			}
			logger.LogAttrs(ctx, slog.LevelInfo, "request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Int64("bytes", sw.bytes),
				slog.Duration("duration", time.Since(start)),
				slog.String("request_id", RequestID(ctx)),
				slog.String("remote", r.RemoteAddr),
				slog.Bool("aborted", !completed))
		}()
		next.ServeHTTP(sw, r.WithContext(ctx))
		completed = true
	})
}

// Recover turns a panicking handler into a 500 response in the family's
// error body and logs the panic value and stack with the request id; the
// process keeps serving. A panic with http.ErrAbortHandler is re-raised for
// net/http to abort the response, as is any panic after the response
// headers were sent (a truncated body must not look complete).
// A nil logger means the request's [Logger].
func Recover(next http.Handler, fam Family, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, ok := w.(*statusWriter)
		if !ok {
			sw = &statusWriter{ResponseWriter: w}
		}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // a recovered value, compared as net/http itself does
				panic(v)
			}
			l := logger
			if l == nil {
				l = Logger(r.Context())
			} else if id := RequestID(r.Context()); id != "" {
				l = l.With(slog.String("request_id", id))
			}
			l.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Any("panic", v),
				slog.String("stack", string(debug.Stack())))
			if sw.status != 0 {
				panic(http.ErrAbortHandler)
			}
			writeProblem(sw, fam, problem{status: http.StatusInternalServerError, message: msgInternal})
		}()
		next.ServeHTTP(sw, r)
	})
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int   // first final (>= 200) status written, or 0
	bytes  int64 // body bytes written
}

// WriteHeader implements http.ResponseWriter.
func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(p)
	s.bytes += int64(n)
	return n, err
}

// ReadFrom lets io.Copy use the underlying writer's ReadFrom (sendfile for
// Swift and Glance downloads).
func (s *statusWriter) ReadFrom(src io.Reader) (int64, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := io.Copy(s.ResponseWriter, src)
	s.bytes += n
	return n, err
}

// Flush implements http.Flusher.
func (s *statusWriter) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
