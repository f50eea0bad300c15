package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/stratuskit/stratus/network"
	"github.com/stratuskit/stratus/network/linuxnet"
)

// defaultNetwork is the dataplane -network defaults to: the Linux one as
// root, which alone may create bridges and namespaces, the fake otherwise.
func defaultNetwork() string {
	if os.Geteuid() == 0 {
		return "linux"
	}
	return "fake"
}

// External networks on physical network "external" (flat) use the
// host-local bridge br-ex, where the host has 203.0.113.1/24 (a
// documentation range): the host reaches floating IPs, guests reach the
// host, and nothing goes further (no masquerading to the uplink).
var (
	externalPhysnet = "external"
	externalBridge  = "br-ex"
	externalHost    = netip.MustParsePrefix("203.0.113.1/24")
)

// linuxBackend opens the Linux dataplane with its state under the data
// directory; dnsmasq's files go under /run (dnsmasq reads them as nobody,
// and the data directory is private). Guests reach the metadata service
// (169.254.169.254) in their network's DHCP and router namespaces; md
// answers it.
func linuxBackend(cfg Config, md *guestMetadata, logger *slog.Logger) (network.Backend, error) {
	run, err := runDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	return linuxnet.New(context.Background(), linuxnet.Config{
		StateDir:       filepath.Join(cfg.DataDir, "network"),
		DHCPDir:        filepath.Join(run, "dhcp"),
		BridgeMappings: map[string]string{externalPhysnet: externalBridge},
		BridgeAddrs:    map[string]netip.Prefix{externalBridge: externalHost},
		Metadata:       md,
		Logger:         logger,
	})
}

// runDir is the directory under /run of the cloud whose data directory is
// dataDir (named after a hash of its absolute path).
func runDir(dataDir string) (string, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256([]byte(abs))
	return filepath.Join("/run/stratus", hex.EncodeToString(h[:6])), nil
}
