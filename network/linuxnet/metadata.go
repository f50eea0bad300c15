package linuxnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/vishvananda/netns"
)

// MetadataAddr is where guests find the metadata service.
var MetadataAddr = netip.MustParseAddr("169.254.169.254")

// metaServer is the metadata service of one namespace.
type metaServer struct {
	srv *http.Server
}

func (m *metaServer) close() { _ = m.srv.Close() }

// startMetadata opens 169.254.169.254:80 inside ns (on a thread locked
// while it enters the namespace and discarded afterwards: the socket
// stays in ns, the serving goroutines run anywhere) and serves it.
// networkOf says which network a source address came from; requests are
// identified by that and the source address alone, never by headers, so
// a guest can only read its own server's metadata (OSSA-2013-033); the
// port's anti-spoofing guarantees the source.
func (b *Backend) startMetadata(name string, ns netns.NsHandle, networkOf func(netip.Addr) (string, bool)) error {
	if b.cfg.Metadata == nil {
		return nil
	}
	if _, ok := b.meta[name]; ok {
		return nil
	}
	var ln net.Listener
	err := inNS(ns, func() error {
		var err error
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(MetadataAddr, 80).String())
		return err
	})
	if err != nil {
		return fmt.Errorf("linuxnet: metadata in %s: %w", name, err)
	}
	md := b.cfg.Metadata
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		src := ap.Addr().Unmap()
		netID, ok := networkOf(src)
		if !ok {
			http.NotFound(w, r)
			return
		}
		handler, err := md.MetadataHandler(r.Context(), netID, src)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		handler.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
		BaseContext: func(net.Listener) context.Context { return context.Background() }}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Warn("linuxnet: metadata service stopped", "namespace", name, "err", err)
		}
	}()
	b.meta[name] = &metaServer{srv: srv}
	return nil
}

func (b *Backend) stopMetadata(name string) {
	if m, ok := b.meta[name]; ok {
		m.close()
		delete(b.meta, name)
	}
}
