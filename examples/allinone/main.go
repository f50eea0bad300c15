// Command allinone runs a whole Stratus cloud in one process on embedded
// defaults: state in a bbolt file under the data directory, every service
// that exists on its conventional OpenStack port.
//
//	go run ./examples/allinone -data DIR [-listen 127.0.0.1] [-etcd URL,...] [-port-offset N]
//
// It prints a line containing "stratus: ready" once every API answers,
// writes DIR/admin-openrc.sh once the identity service exists, and shuts
// down cleanly on SIGINT or SIGTERM. Restarting with the same -data keeps
// all state; a second instance on the same data directory is refused.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/stratuskit/stratus/compute/libvirtvm"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// defaultDataDir is /var/lib/stratus for root and ./stratus-data otherwise.
func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/stratus"
	}
	return "./stratus-data"
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("allinone", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	fs.StringVar(&cfg.DataDir, "data", defaultDataDir(), "data directory: state, lock, admin-openrc.sh")
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1", "address every API listens on")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	etcd := fs.String("etcd", "", "comma-separated etcd endpoints to keep the state in, instead of DATA/stratus.db; every all-in-one with the same endpoints serves the same cloud")
	fs.StringVar(&cfg.Network, "network", defaultNetwork(), "network dataplane: linux (bridges, nftables, dnsmasq; the default as root) or fake (in memory)")
	fs.IntVar(&cfg.PortOffset, "port-offset", 0, "added to every conventional port (5000, 8774, ...), to run several controllers on one address")
	identityFlags(fs, &cfg.Identity)
	webHosts := fs.String("image-web-download-hosts", "", "comma-separated hosts the image import method web-download may fetch from (default: none)")
	fs.StringVar(&cfg.Hypervisor, "hypervisor", hypervisorAuto, "compute driver: auto (libvirt when -libvirt-uri answers, else fake), libvirt or fake")
	fs.StringVar(&cfg.LibvirtURI, "libvirt-uri", "qemu:///system", "libvirt connection URI of the libvirt hypervisor")
	fs.StringVar(&cfg.VirtType, "virt-type", libvirtvm.VirtAuto, "libvirt virtualisation type: auto (KVM when a guest actually boots under it), kvm or qemu (software emulation)")
	fs.StringVar(&cfg.GuestDir, "guest", ".cache/guest", "directory of the tiny guest (make guest), registered as public images when built; empty: none")
	fs.IntVar(&cfg.FakeHosts, "fake-hosts", 3, "number of fake compute hosts with -hypervisor fake")
	fs.StringVar(&cfg.Objects, "objects", "", "object store backend (image data too): empty for DATA/objects; fs:DIR[,DIR...] for directories (several: 3 replicas across them, replicated and audited); or s3://[ACCESS:SECRET@]HOST:PORT/BUCKET (s3+https:// for TLS, ?insecure=true; ?trailer=false for servers without aws-chunked trailers; credentials default to $STRATUS_S3_ACCESS_KEY, $STRATUS_S3_SECRET_KEY)")
	fs.DurationVar(&cfg.FakeSpawnDelay, "fake-spawn-delay", 0, "how long a fake host takes to spawn a server (for tests)")
	meteringFlags(fs, &cfg.Metering)
	alarmingFlags(fs, &cfg.Alarming)
	fs.DurationVar(&cfg.FakeMoveDelay, "fake-move-delay", 0, "how long a fake host takes to migrate, resize or snapshot a server (for tests)")
	fs.DurationVar(&cfg.ResizeConfirmWindow, "resize-confirm-window", 0, "confirm resizes and migrations left unconfirmed this long (0: never)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *etcd != "" {
		cfg.Etcd = strings.Split(*etcd, ",")
	}
	if *webHosts != "" {
		cfg.ImageWebDownloadHosts = strings.Split(*webHosts, ",")
	}
	if h := cfg.Hypervisor; h != hypervisorAuto && h != hypervisorLibvirt && h != hypervisorFake {
		fmt.Fprintf(stderr, "allinone: -hypervisor %q: want auto, libvirt or fake\n", h)
		return 2
	}
	if v := cfg.VirtType; v != libvirtvm.VirtAuto && v != libvirtvm.VirtKVM && v != libvirtvm.VirtQEMU {
		fmt.Fprintf(stderr, "allinone: -virt-type %q: want auto, kvm or qemu\n", v)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "allinone: unexpected arguments: %v\n", fs.Args())
		return 2
	}
	if err := Run(ctx, cfg, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "stratus: %v\n", err)
		return 1
	}
	return 0
}
