package linuxnet_test

import (
	"context"
	"log"
	"net/netip"

	"github.com/stratuskit/stratus/network"
	"github.com/stratuskit/stratus/network/linuxnet"
)

// The all-in-one's configuration: state under its data directory, the
// external physical network on the host-local bridge br-ex where the
// host has 203.0.113.1/24, and a network with one port (a tap for a VM).
// It needs root, so it is compiled but not run by go test.
func ExampleNew() {
	ctx := context.Background()
	b, err := linuxnet.New(ctx, linuxnet.Config{
		StateDir:       "/var/lib/stratus/network",
		BridgeMappings: map[string]string{"external": "br-ex"},
		BridgeAddrs:    map[string]netip.Prefix{"br-ex": netip.MustParsePrefix("203.0.113.1/24")},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	netID, portID := "7b0e56a4-4d7c-4a3e-9d43-8b1f0c9a1e01", "c2d1f4e8-6a0b-4f3c-8e2d-5a9b7c6d4e02"
	if err := b.EnsureNetwork(ctx, network.NetworkSpec{ID: netID, NetworkType: network.TypeVXLAN, MTU: 1450, AdminStateUp: true}); err != nil {
		log.Fatal(err)
	}
	vif, err := b.EnsurePort(ctx, network.PortSpec{ID: portID, NetworkID: netID, DevName: network.TapName(portID),
		MAC: "fa:16:3e:12:34:56", MTU: 1450, AdminStateUp: true, PortSecurity: true, SecurityGroups: []string{"default"},
		FixedIPs: []network.PortAddr{{Addr: netip.MustParsePrefix("10.0.0.10/24")}}})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("attach %s (%s)", vif.DevName, vif.MAC)
}
