package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// identityPort is Keystone's conventional port.
const identityPort = 5000

// identityComponent builds the identity service. Its start runs Bootstrap
// (admin user, project, roles, and the catalog of every service in
// catalog) and writes DIR/admin-openrc.sh.
func identityComponent(cfg Config, st *store.Store, password string, logger *slog.Logger, catalog []identity.ServiceEndpoints) (component, *identity.Service, error) {
	svc, err := identity.New(identity.Config{Store: st, Logger: logger})
	if err != nil {
		return component{}, nil, err
	}
	start := func(ctx context.Context) error {
		if err := svc.Start(ctx); err != nil {
			return err
		}
		if err := svc.Bootstrap(ctx, identity.BootstrapOptions{AdminPassword: password, Services: catalog}); err != nil {
			return err
		}
		return writeOpenRC(cfg, password)
	}
	return component{name: "identity", port: identityPort, handler: identity.NewHandler(svc, logger), start: start, close: svc.Close}, svc, nil
}

// serviceURL returns http://<listen>:port+path, with a usable host when
// listening on every address.
func serviceURL(cfg Config, port int, path string) string {
	host := cfg.Listen
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(port+cfg.PortOffset)) + path
}

// writeOpenRC writes DIR/admin-openrc.sh for the openstack CLI.
func writeOpenRC(cfg Config, password string) error {
	rc := fmt.Sprintf(`# Credentials of the Stratus cloud admin: source this file, then run openstack.
export OS_AUTH_URL=%s
export OS_USERNAME=admin
export OS_PASSWORD='%s'
export OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_IDENTITY_API_VERSION=3
export OS_REGION_NAME=%s
`, serviceURL(cfg, identityPort, "/v3"), password, identity.DefaultRegion)
	return os.WriteFile(filepath.Join(cfg.DataDir, "admin-openrc.sh"), []byte(rc), 0o600)
}
