package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "allinone-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "allinone")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build allinone: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// loopback returns a random 127.x.y.z address, so that parallel runs and a
// developer's own `make run` do not collide on the conventional ports.
func loopback() string {
	return fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), rand.IntN(250), 1+rand.IntN(250))
}

type proc struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *strings.Builder
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	// The fake dataplane: tests never change the host's network (as
	// root, the default is the Linux one).
	cmd := exec.Command(binary, append([]string{"-network", "fake"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, lines: make(chan string, 16), stderr: &stderr}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			// What the all-in-one said, for the failure (its last 8 KiB).
			s := stderr.String()
			t.Logf("all-in-one stderr (tail):\n%s", s[max(0, len(s)-8192):])
		}
	})
	return p
}

func (p *proc) waitLine(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("process ended before printing %q; stderr:\n%s", prefix, p.stderr)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			t.Fatalf("no %q line in 60s; stderr:\n%s", prefix, p.stderr)
		}
	}
}

func (p *proc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	p.waitLine(t, "stratus: stopped")
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after %v: %v; stderr:\n%s", sig, err, p.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("did not exit 30s after %v", sig)
	}
}

func field(line, key string) string {
	for f := range strings.FieldsSeq(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

func TestReadyRestartKeepsState(t *testing.T) {
	data := t.TempDir()
	addr := loopback()
	p := start(t, "-data", data, "-listen", addr)
	ready := p.waitLine(t, "stratus: ready")
	cloud := field(ready, "cloud")
	if cloud == "" {
		t.Fatalf("ready line without a cloud id: %q", ready)
	}
	p.stop(t, syscall.SIGTERM)

	p = start(t, "-data", data, "-listen", addr)
	ready = p.waitLine(t, "stratus: ready")
	if got := field(ready, "cloud"); got != cloud {
		t.Fatalf("cloud id %q after restart, want %q (state lost)", got, cloud)
	}
	p.stop(t, syscall.SIGINT)
}

func TestSecondInstanceRefused(t *testing.T) {
	data := t.TempDir()
	p := start(t, "-data", data, "-listen", loopback())
	p.waitLine(t, "stratus: ready")

	cmd := exec.Command(binary, "-network", "fake", "-data", data, "-listen", loopback())
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("second instance on the same data directory started:\n%s", out)
	}
	want := fmt.Sprintf("data directory %s is in use by another stratus (pid %d)", data, p.cmd.Process.Pid)
	if !strings.Contains(string(out), want) {
		t.Fatalf("second instance said:\n%s\nwant it to contain %q", out, want)
	}
	p.stop(t, syscall.SIGTERM)
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"extra-arg"}, {"-log-level", "loud", "-data", t.TempDir()}, {"-virt-type", "xen", "-data", t.TempDir()}} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err == nil {
			t.Errorf("%v: started; output:\n%s", args, out)
		}
		if len(out) == 0 {
			t.Errorf("%v: failed without saying why", args)
		}
	}
}
