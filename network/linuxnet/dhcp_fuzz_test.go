package linuxnet

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stratuskit/stratus/network"
)

// FuzzDnsmasqFiles feeds hostile hostnames and extra DHCP options (they
// come from tenants' port attributes) to the generated dnsmasq files: no
// input may add a line, or a line not scoped to the port's or subnet's
// tag (a tenant must not set options for other ports).
func FuzzDnsmasqFiles(f *testing.F) {
	f.Add("host-1", "bootfile-name", "pxelinux.0")
	f.Add("a\nb", "66", "x\ntag:s0,option:router,6.6.6.6")
	f.Add("h,set:s0", "router,6.6.6.6\n", "1.2.3.4")
	f.Fuzz(func(t *testing.T, hostname, optName, optValue string) {
		spec := network.DHCPSpec{NetworkID: "n", MTU: 1450, Hosts: []network.DHCPHost{{PortID: "p", MAC: "fa:16:3e:00:00:01",
			Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.10")}, Hostname: hostname,
			ExtraOpts: []network.DHCPOpt{{OptName: optName, OptValue: optValue, IPVersion: 4}}}}}
		subs := []network.SubnetSpec{{ID: "s", CIDR: netip.MustParsePrefix("10.0.0.0/24"), EnableDHCP: true,
			Gateway: netip.MustParseAddr("10.0.0.1"), DHCPServer: netip.MustParseAddr("10.0.0.2"), MetadataRoute: true}}
		hosts, opts := dnsmasqFiles(spec, subs)
		hl := strings.Split(strings.TrimSuffix(string(hosts), "\n"), "\n")
		if len(hl) != 1 || strings.Count(hl[0], ",") > 3 || !strings.HasPrefix(hl[0], "fa:16:3e:00:00:01,set:p0,10.0.0.10") {
			t.Fatalf("hosts file %q", hosts)
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(opts), "\n"), "\n") {
			if !strings.HasPrefix(l, "tag:s0,") && !strings.HasPrefix(l, "tag:p0,") {
				t.Fatalf("option line %q escapes its tag", l)
			}
			if strings.HasPrefix(l, "tag:p0,") && strings.Count(l, "\n") > 0 {
				t.Fatalf("option line %q", l)
			}
		}
		if n := strings.Count(string(opts), "tag:p0,"); n > 1 {
			t.Fatalf("%d port option lines from one option: %q", n, opts)
		}
	})
}
