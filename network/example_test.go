package network_test

import (
	"context"
	"fmt"

	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/network"
	"github.com/stratuskit/stratus/network/fakenet"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// Example to create a network and a subnet, then a port bound to a host
// as compute does, and wait for the dataplane to plug it.
func Example() {
	ctx := context.Background()
	st, _ := store.Open(ctx, memstore.New(), network.Tables(), nil)
	defer st.Close()
	svc, _ := network.New(network.Config{Store: st, Backend: fakenet.New()})
	_ = svc.Start(ctx)
	defer svc.Close()

	user := identity.WithCredentials(ctx, &identity.Credentials{ProjectID: "demo", Roles: []string{"member", "reader"}})
	system := identity.WithCredentials(ctx, identity.SystemAdmin())

	n, _ := svc.CreateNetwork(user, network.CreateNetworkOpts{Name: "private"})
	sub, _ := svc.CreateSubnet(user, network.CreateSubnetOpts{NetworkID: n.ID, CIDR: "192.168.10.0/24"})
	p, _ := svc.CreatePort(user, network.CreatePortOpts{NetworkID: n.ID, FixedIPs: []network.FixedIP{{SubnetID: sub.ID, IPAddress: "192.168.10.20"}}})
	_, _ = svc.BindPort(system, p.ID, "compute-1", "server-1", "")
	vif, err := svc.WaitPortActive(system, p.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sub.Gateway(), vif.Type, vif.DevName == network.TapName(p.ID), vif.MTU, vif.FixedIPs[0].IPAddress)
	// Output: 192.168.10.1 tap true 1450 192.168.10.20
}
