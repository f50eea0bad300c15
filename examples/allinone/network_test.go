package main

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

func TestNetworkFlag(t *testing.T) {
	out, err := exec.Command(binary, "-data", t.TempDir(), "-listen", loopback(), "-network", "bogus").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `-network "bogus": unknown network backend`) {
		t.Fatalf("-network bogus: %v\n%s", err, out)
	}
	p := start(t, "-data", t.TempDir(), "-listen", loopback(), "-network", "fake")
	ready := p.waitLine(t, "stratus: ready")
	if field(ready, "network") == "" {
		t.Fatalf("ready line without the network API: %q", ready)
	}
	p.stop(t, syscall.SIGTERM)
}
