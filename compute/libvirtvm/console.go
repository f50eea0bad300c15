//go:build cgo

package libvirtvm

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"libvirt.org/go/libvirt"
)

// maxConsole bounds how much of a console log ConsoleOutput reads (the
// tail). virtlogd rotates the log itself.
const maxConsole = 1 << 20

func (d *Driver) consolePath(id string) string { return filepath.Join(d.serverDir(id), "console.log") }

// consoleMark appends the driver's own line to a server's console log, so
// that the log tells each start apart.
func (d *Driver) consoleMark(id, what string) {
	f, err := os.OpenFile(d.consolePath(id), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer func() { _ = f.Close() }()
	_, _ = fmt.Fprintf(f, "stratus: %s %s domain %s (%s)\n", time.Now().UTC().Format(time.RFC3339), what, domainName(id), d.virtType)
}

// ConsoleOutput implements compute.Hypervisor: the tail of the server's
// serial console log, carriage returns removed.
func (d *Driver) ConsoleOutput(ctx context.Context, id string, lines int) (string, error) {
	var out string
	err := d.withDomain(ctx, id, func(*libvirt.Domain) error {
		b, err := readTail(d.consolePath(id), maxConsole)
		if err != nil {
			return fmt.Errorf("libvirtvm: console of server %s: %w", id, err)
		}
		out = lastLines(strings.ReplaceAll(string(b), "\r", ""), lines)
		return nil
	})
	return out, err
}

func readTail(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(fi.Size()-limit, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	if err != nil {
		return nil, err
	}
	if off > 0 {
		// Drop the partial first line.
		if i := strings.IndexByte(string(b), '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return b, nil
}

// lastLines returns the last n lines of s (all when n <= 0).
func lastLines(s string, n int) string {
	if n <= 0 {
		return s
	}
	t := strings.TrimRight(s, "\n")
	i := len(t)
	for range n {
		j := strings.LastIndexByte(t[:i], '\n')
		if j < 0 {
			return s
		}
		i = j
	}
	return s[i+1:]
}
