// Package s3test starts a real S3 server (versitygw on a posix directory)
// on loopback for tests of S3 backends.
//
// The server binary comes from $STRATUS_S3_SERVER, or from
// .cache/bin/versitygw-<version> at the module's root where `make
// versitygw` installs it. Without one a test skips, except in CI
// (CI=true), where it fails.
package s3test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Version is the versitygw release the Makefile pins.
const Version = "v1.8.0"

// EnvServer names the variable that holds the server binary's path.
const EnvServer = "STRATUS_S3_SERVER"

// Server is a running S3 server.
type Server struct {
	// Endpoint is its host:port.
	Endpoint string
	// AccessKey and SecretKey are its root credentials.
	AccessKey, SecretKey string
	// Dir is the directory it keeps buckets in.
	Dir string
}

// Binary returns the server binary's path, or "" if there is none.
func Binary() string {
	if p := os.Getenv(EnvServer); p != "" {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".cache", "bin", "versitygw-"+Version)
			if _, err := os.Stat(p); err == nil {
				return p
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Start starts a server for t in a temporary directory and stops it when
// t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		msg := "no S3 server: run `make versitygw` or set " + EnvServer
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := &Server{AccessKey: "stratus-test", SecretKey: "stratus-test-secret", Dir: t.TempDir()}
	var lastErr error
	for range 3 { // the port picked can be taken before the server binds it
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s.Endpoint = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		var out bytes.Buffer
		cmd := exec.Command(bin, "--port", s.Endpoint, "--access", s.AccessKey, "--secret", s.SecretKey, "--quiet", "posix", s.Dir)
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if lastErr = waitReady(s.Endpoint, exited); lastErr == nil {
			t.Cleanup(func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case err := <-exited:
					_ = err // stopped by the signal
				case <-time.After(5 * time.Second):
					_ = cmd.Process.Kill()
					err := <-exited
					_ = err
				}
			})
			return s
		}
		_ = cmd.Process.Kill()
		lastErr = fmt.Errorf("%w: %s", lastErr, out.String())
	}
	t.Fatalf("S3 server did not start: %v", lastErr)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitReady(addr string, exited <-chan error) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("server exited: %w", err)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("server not listening on %s", addr)
}
