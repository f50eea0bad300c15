package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"
)

// Server defaults.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultShutdownTimeout   = 10 * time.Second
)

// Listen opens a TCP listener on addr ("127.0.0.1:5000", ":8774"). When the
// port is taken the error says so and names the address, for example
// "httpapi: listen 127.0.0.1:5000: address already in use"; it still matches
// syscall.EADDRINUSE with errors.Is.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &listenError{addr: addr, err: err}
	}
	return ln, nil
}

type listenError struct {
	addr string
	err  error
}

func (e *listenError) Error() string {
	reason := e.err.Error()
	if errors.Is(e.err, syscall.EADDRINUSE) {
		reason = "address already in use"
	} else if oe, ok := errors.AsType[*net.OpError](e.err); ok && oe.Err != nil {
		reason = oe.Err.Error() // drop net's own "listen tcp <addr>: "
	}
	return "httpapi: listen " + e.addr + ": " + reason
}

func (e *listenError) Unwrap() error { return e.err }

// Server serves HTTP on a listener until its context is done. The zero
// values of its durations are the defaults.
//
// Server sets no read or write timeout, since image and object transfers can
// be long; clients that stall while sending headers are cut off by
// ReadHeaderTimeout.
type Server struct {
	// Handler serves the requests.
	Handler http.Handler
	// Logger receives server errors; nil means slog.Default().
	Logger *slog.Logger
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds how long a keep-alive connection waits.
	IdleTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown: in-flight requests get
	// this long to finish before their contexts are cancelled and their
	// connections closed.
	ShutdownTimeout time.Duration
}

// Serve serves on ln, which it closes, until ctx is done, then shuts down
// gracefully within ShutdownTimeout. It returns nil after a clean shutdown,
// an error wrapping context.DeadlineExceeded when in-flight requests
// outlived the timeout, or the error that stopped serving early.
//
// Request contexts carry ctx's values but are not cancelled with it, so
// that requests in flight can finish; they are cancelled if the shutdown
// times out.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	logger := s.Logger
	if logger == nil {
		logger = slog.Default()
	}
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: orDefault(s.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		IdleTimeout:       orDefault(s.IdleTimeout, DefaultIdleTimeout),
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
	}
	addr := ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		_ = srv.Close()
		return fmt.Errorf("httpapi: serve %s: %w", addr, err)
	case <-ctx.Done():
	}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), orDefault(s.ShutdownTimeout, DefaultShutdownTimeout))
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		logger.Warn("httpapi: shutdown timed out; closing connections", "addr", addr, "error", err)
		cancelBase()
		_ = srv.Close()
		err = fmt.Errorf("httpapi: shutdown %s: %w", addr, err)
	}
	if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("httpapi: serve %s: %w", addr, serr)
	}
	return err
}

// Serve serves handler on ln until ctx is done, with the default timeouts;
// see [Server.Serve].
func Serve(ctx context.Context, ln net.Listener, handler http.Handler, logger *slog.Logger) error {
	s := &Server{Handler: handler, Logger: logger}
	return s.Serve(ctx, ln)
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
