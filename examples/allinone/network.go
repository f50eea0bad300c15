package main

import (
	"fmt"
	"log/slog"

	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/network"
	"github.com/stratuskit/stratus/network/fakenet"
	"github.com/stratuskit/stratus/store"
)

// networkPort is Neutron's conventional port.
const networkPort = 9696

// networkBackends are the dataplanes -network may name; md serves guests'
// metadata where the dataplane has a metadata service.
var networkBackends = map[string]func(Config, *guestMetadata, *slog.Logger) (network.Backend, error){
	"fake":  func(Config, *guestMetadata, *slog.Logger) (network.Backend, error) { return fakenet.New(), nil },
	"linux": linuxBackend,
}

// networkCatalog is the network service's catalog entry: unversioned, as
// gophercloud and the SDK append v2.0 themselves.
func networkCatalog(cfg Config) identity.ServiceEndpoints {
	return identity.ServiceEndpoints{Type: "network", Name: "neutron", PublicURL: serviceURL(cfg, networkPort, "")}
}

// networkComponent builds the network service on the dataplane -network
// names; tokens are validated by ident; md is the dataplane's metadata
// service, connected to compute once both services exist.
func networkComponent(cfg Config, st *store.Store, ident *identity.Service, md *guestMetadata, logger *slog.Logger) (component, *network.Service, error) {
	name := cfg.Network
	if name == "" {
		name = defaultNetwork()
	}
	newBackend, ok := networkBackends[name]
	if !ok {
		return component{}, nil, fmt.Errorf("-network %q: unknown network backend (available: fake, linux)", name)
	}
	b, err := newBackend(cfg, md, logger)
	if err != nil {
		return component{}, nil, fmt.Errorf("-network %s: %w", name, err)
	}
	svc, err := network.New(network.Config{Store: st, Backend: b, Logger: logger})
	if err != nil {
		return component{}, nil, err
	}
	return component{name: "network", port: networkPort, handler: network.NewHandler(svc, ident, logger), start: svc.Start, close: svc.Close}, svc, nil
}
