package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// identityPort is Keystone's conventional port.
const identityPort = 5000

// identityComponent builds the identity service. Its start runs Bootstrap
// (admin user, project, roles, and the catalog of every service in
// catalog) and writes DIR/admin-openrc.sh.
func identityComponent(cfg Config, st *store.Store, password string, logger *slog.Logger, catalog []identity.ServiceEndpoints) (component, *identity.Service, error) {
	svc, err := identity.New(identity.Config{Store: st, Logger: logger, Security: cfg.Identity.Security,
		KeyRotationInterval: cfg.Identity.KeyRotation, TokenTTL: cfg.Identity.TokenTTL})
	if err != nil {
		return component{}, nil, err
	}
	start := func(ctx context.Context) error {
		if err := svc.Start(ctx); err != nil {
			return err
		}
		if err := svc.Bootstrap(ctx, identity.BootstrapOptions{AdminPassword: password, Services: catalog,
			ServiceUsers: append([]identity.ServiceUser{{Name: heatUser, Password: servicePassword(password, heatUser)}},
				alarmingServiceUsers(password)...)}); err != nil {
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

// IdentityOptions configures the identity service beyond its defaults.
type IdentityOptions struct {
	// Security is keystone's [security_compliance].
	Security identity.SecurityCompliance
	// KeyRotation rotates the token keys on that schedule; zero never.
	KeyRotation time.Duration
	// TokenTTL is the lifetime of new tokens (default one hour).
	TokenTTL time.Duration
}

// identityFlags registers the identity options on fs.
func identityFlags(fs *flag.FlagSet, o *IdentityOptions) {
	sc := &o.Security
	fs.DurationVar(&o.TokenTTL, "token-ttl", time.Hour, "lifetime of new tokens")
	fs.IntVar(&sc.LockoutFailureAttempts, "lockout-failure-attempts", 0, "lock a user out after this many failed logins in a row (0: never)")
	fs.DurationVar(&sc.LockoutDuration, "lockout-duration", 30*time.Minute, "how long a locked-out user stays locked")
	fs.IntVar(&sc.UniqueLastPasswordCount, "unique-last-password-count", 0, "refuse a new password equal to one of the last N-1 (0 or 1: no history)")
	fs.IntVar(&sc.MinimumPasswordAge, "minimum-password-age", 0, "days a password must be kept before its user may change it")
	fs.IntVar(&sc.PasswordExpiresDays, "password-expires-days", 0, "days after which a password expires (0: never)")
	fs.StringVar(&sc.PasswordRegex, "password-regex", "", "regular expression every new password must match")
	fs.StringVar(&sc.PasswordRegexDescription, "password-regex-description", "", "what -password-regex requires, told to users")
	fs.BoolVar(&sc.ChangePasswordUponFirstUse, "change-password-upon-first-use", false, "users must change a password set by an admin before using it")
	fs.IntVar(&sc.DisableUserAccountDaysInactive, "disable-user-account-days-inactive", 0, "refuse users who have not logged in for this many days (0: never)")
	fs.DurationVar(&o.KeyRotation, "token-key-rotation", 0, "rotate the token encryption keys on this schedule (0: never; keep it above the token lifetime)")
}
