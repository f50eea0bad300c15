package linuxnet

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stratuskit/stratus/network"
)

// shell runs a shell script in the test's host namespace.
func (e *env) shell(tb testing.TB, script string) {
	tb.Helper()
	cmd := exec.Command("nsenter", "--net="+e.cfg.HostNS, "sh", "-e")
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("shell baseline: %v\n%s", err, out)
	}
}

func benchPorts(e *env, netID string, n int) []network.PortSpec {
	var ports []network.PortSpec
	for i := range n {
		id := e.id()
		ports = append(ports, network.PortSpec{ID: id, NetworkID: netID, ProjectID: "p1", Host: "h1", DevName: network.TapName(id),
			MAC: e.mac(), MTU: 1450, AdminStateUp: true, PortSecurity: true, SecurityGroups: []string{"sg"},
			FixedIPs: []network.PortAddr{{SubnetID: "s", Addr: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 90, byte(i / 250), byte(i%250 + 2)}), 16)}}})
	}
	return ports
}

// BenchmarkPlug100Ports plugs 100 ports (tap, bridge, anti-spoofing and
// security group chains) through the Backend, and the same with a shell
// loop of ip and nft commands (one tuntap, two link sets and one nft
// batch of as many rules per port), in the same run.
func BenchmarkPlug100Ports(b *testing.B) {
	const n = 100
	e := newEnv(b, func(c *Config) { c.VethPorts = false })
	ctx := context.Background()
	netID := e.id()
	must(b, e.b.EnsureNetwork(ctx, network.NetworkSpec{ID: netID, NetworkType: network.TypeVXLAN, MTU: 1450, AdminStateUp: true}))
	must(b, e.b.EnsureSecurityGroup(ctx, network.SecurityGroupSpec{ID: "sg", Stateful: true, Rules: []network.RuleSpec{
		{ID: "e", Direction: "egress", Ethertype: "IPv4", Protocol: -1}, {ID: "i", Direction: "ingress", Ethertype: "IPv4", Protocol: 1, PortMin: -1, PortMax: -1}}}))
	br := BridgeName(netID)
	var ours, shell time.Duration
	for b.Loop() {
		ports := benchPorts(e, netID, n)
		start := time.Now()
		for _, p := range ports {
			if _, err := e.b.EnsurePort(ctx, p); err != nil {
				b.Fatal(err)
			}
		}
		ours += time.Since(start)
		for _, p := range ports {
			must(b, e.b.DeletePort(ctx, p.ID))
		}

		var sh strings.Builder
		sh.WriteString("nft add table netdev bench; nft add table ip bench\n")
		sh.WriteString("nft 'add chain ip bench ingress { type filter hook forward priority 0; }'\n")
		for i, p := range ports {
			dev := fmt.Sprintf("bt%d", i)
			ip := p.FixedIPs[0].Addr.Addr()
			fmt.Fprintf(&sh, "ip tuntap add dev %s mode tap vnet_hdr\nip link set %s mtu 1450 master %s alias stratus:port:%s\n", dev, dev, br, p.ID)
			fmt.Fprintf(&sh, `nft -f - <<NFTEOF
add chain netdev bench as%[1]d { type filter hook ingress device %[2]s priority 0; policy drop; }
add rule netdev bench as%[1]d meta protocol ip udp sport 67 drop
add rule netdev bench as%[1]d meta protocol ip6 udp sport 547 drop
add rule netdev bench as%[1]d meta protocol ip6 icmpv6 type 134 drop
add rule netdev bench as%[1]d meta protocol ip ether saddr %[3]s ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept
add rule netdev bench as%[1]d meta protocol ip6 ether saddr %[3]s ip6 saddr :: accept
add rule netdev bench as%[1]d meta protocol arp ether saddr %[3]s arp saddr ether %[3]s arp saddr ip 0.0.0.0 accept
add rule netdev bench as%[1]d meta protocol ip ether saddr %[3]s ip saddr %[4]s accept
add rule netdev bench as%[1]d meta protocol arp ether saddr %[3]s arp saddr ether %[3]s arp saddr ip %[4]s accept
add rule netdev bench as%[1]d meta protocol ip6 ether saddr %[3]s ip6 saddr fe80::1 accept
add chain ip bench i%[1]d
add rule ip bench i%[1]d ct state established,related accept
add rule ip bench i%[1]d ct state invalid drop
add rule ip bench i%[1]d udp sport 67 udp dport 68 accept
add rule ip bench i%[1]d ip protocol icmp accept
add rule ip bench i%[1]d drop
add rule ip bench ingress oifname %[2]s jump i%[1]d
NFTEOF
ip link set %[2]s up
`, i, dev, p.MAC, ip)
		}
		start = time.Now()
		e.shell(b, sh.String())
		shell += time.Since(start)
		e.shell(b, fmt.Sprintf("nft delete table netdev bench; nft delete table ip bench; for i in $(seq 0 %d); do ip link del bt$i; done", n-1))
	}
	b.ReportMetric(float64(ours.Microseconds())/float64(b.N*n), "µs/port")
	b.ReportMetric(float64(shell.Microseconds())/float64(b.N*n), "shell-µs/port")
	b.ReportMetric(float64(shell)/float64(ours), "speedup")
}

// BenchmarkSecurityGroup100Rules applies a 100-rule security group used
// by 10 ports (one nftables transaction), against a shell loop of 100
// `nft add rule` commands.
func BenchmarkSecurityGroup100Rules(b *testing.B) {
	e := newEnv(b, func(c *Config) { c.VethPorts = false })
	ctx := context.Background()
	netID := e.id()
	must(b, e.b.EnsureNetwork(ctx, network.NetworkSpec{ID: netID, NetworkType: network.TypeVXLAN, MTU: 1450, AdminStateUp: true}))
	for _, p := range benchPorts(e, netID, 10) {
		_, err := e.b.EnsurePort(ctx, p)
		must(b, err)
	}
	spec := network.SecurityGroupSpec{ID: "sg", Stateful: true}
	for i := range 100 {
		spec.Rules = append(spec.Rules, network.RuleSpec{ID: fmt.Sprint(i), Direction: "ingress", Ethertype: "IPv4", Protocol: 6,
			PortMin: 1000 + i, PortMax: 1000 + i, RemotePrefix: netip.MustParsePrefix("192.0.2.0/24")})
	}
	var ours, shell time.Duration
	for b.Loop() {
		start := time.Now()
		must(b, e.b.EnsureSecurityGroup(ctx, spec))
		ours += time.Since(start)
		must(b, e.b.DeleteSecurityGroup(ctx, "sg"))

		var sh strings.Builder
		sh.WriteString("nft add table ip bench\nnft add chain ip bench gi\n")
		for i := range 100 {
			fmt.Fprintf(&sh, "nft add rule ip bench gi ip saddr 192.0.2.0/24 tcp dport %d accept\n", 1000+i)
		}
		start = time.Now()
		e.shell(b, sh.String())
		shell += time.Since(start)
		e.shell(b, "nft delete table ip bench")
	}
	b.ReportMetric(float64(ours.Microseconds())/float64(b.N), "µs/group")
	b.ReportMetric(float64(shell.Microseconds())/float64(b.N), "shell-µs/group")
	b.ReportMetric(float64(shell)/float64(ours), "speedup")
}
