package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/stratuskit/stratus/alarming"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/metering"
	"github.com/stratuskit/stratus/store"
)

// AlarmingOptions configure alarms in the all-in-one.
type AlarmingOptions struct {
	// Interval is how often alarms are evaluated; default 60 s.
	Interval time.Duration
	// AllowedHosts are the hosts webhooks may call besides loopback,
	// comma-separated.
	AllowedHosts string
}

func alarmingFlags(fs *flag.FlagSet, o *AlarmingOptions) {
	fs.DurationVar(&o.Interval, "alarm-interval", time.Minute, "how often alarms are evaluated")
	fs.StringVar(&o.AllowedHosts, "alarm-allowed-hosts", "", "comma-separated hosts alarm webhooks may call besides loopback")
}

// alarmingCatalog is Aodh's catalog entry: the metering port, where
// /v2/alarms is served beside Gnocchi's /v1.
func alarmingCatalog(cfg Config) identity.ServiceEndpoints {
	return identity.ServiceEndpoints{Type: "alarming", Name: "aodh", PublicURL: serviceURL(cfg, meteringPort, "")}
}

// aodhUser is the alarming service's user, the trustee of the trusts its
// trust+http(s) actions act through.
const aodhUser = "aodh"

// servicePassword derives a service user's password from the cloud's
// generated admin password, so that every controller knows it.
func servicePassword(adminPassword, user string) string {
	m := hmac.New(sha256.New, []byte(adminPassword))
	m.Write([]byte("stratus-service-user\x00" + user))
	return hex.EncodeToString(m.Sum(nil))
}

// alarmingServiceUsers are the service users identity's Bootstrap makes
// for alarming.
func alarmingServiceUsers(adminPassword string) []identity.ServiceUser {
	return []identity.ServiceUser{{Name: aodhUser, Password: servicePassword(adminPassword, aodhUser)}}
}

// newAlarming builds the alarming service on metering.
func newAlarming(cfg Config, st *store.Store, meter *metering.Service, ids *identity.Service, adminPassword string, logger *slog.Logger) (*alarming.Service, error) {
	var hosts []string
	for h := range strings.SplitSeq(cfg.Alarming.AllowedHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	key := hmac.New(sha256.New, []byte(adminPassword))
	key.Write([]byte("stratus-alarm-webhook-key"))
	return alarming.New(alarming.Config{Store: st, Metrics: meter, Clock: cfg.Metering.Clock, EvaluationInterval: cfg.Alarming.Interval,
		Trusts: &identityTrusts{ids: ids, password: servicePassword(adminPassword, aodhUser)}, WebhookKey: key.Sum(nil),
		AllowedHosts: hosts, Logger: logger})
}

// meteringMux serves Aodh's /v2 beside Gnocchi on the metering port.
func meteringMux(gnocchi, aodh http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v2/", aodh)
	mux.Handle("/", gnocchi)
	return mux
}

// identityTrusts makes and uses trusts from alarm creators to the aodh
// user.
type identityTrusts struct {
	ids      *identity.Service
	password string

	mu      sync.Mutex
	creds   *identity.Credentials // aodh's own, until they expire
	aodhID  string
	project string
}

// login returns aodh's own credentials, logging in again when they expire.
func (t *identityTrusts) login(ctx context.Context) (*identity.Credentials, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.creds != nil && time.Until(t.creds.ExpiresAt) > time.Minute {
		return t.creds, nil
	}
	_, tok, err := t.ids.Authenticate(ctx, identity.AuthRequest{Methods: []string{"password"},
		Password: &identity.PasswordAuth{UserName: aodhUser, DomainID: identity.DefaultDomainID, Password: t.password},
		Scope:    identity.AuthScope{ProjectName: identity.ServiceProjectName, ProjectDomainID: identity.DefaultDomainID}})
	if err != nil {
		return nil, err
	}
	t.creds = tok.Credentials()
	t.aodhID = t.creds.UserID
	return t.creds, nil
}

func (t *identityTrusts) Delegate(ctx context.Context) (string, error) {
	c := identity.CredentialsFrom(ctx)
	if c == nil || c.ProjectID == "" {
		return "", errors.New("a project-scoped token is needed for trust actions")
	}
	own, err := t.login(ctx)
	if err != nil {
		return "", err
	}
	var roles []identity.Ref
	for _, r := range c.Roles {
		roles = append(roles, identity.Ref{Name: r})
	}
	tr, err := t.ids.CreateTrust(ctx, identity.CreateTrustOpts{TrustorUserID: c.UserID, TrusteeUserID: own.UserID,
		ProjectID: c.ProjectID, Impersonation: true, Roles: roles})
	if err != nil {
		return "", err
	}
	return tr.ID, nil
}

func (t *identityTrusts) Token(ctx context.Context, trustID string) (string, error) {
	own, err := t.login(ctx)
	if err != nil {
		return "", err
	}
	tok, _, err := t.ids.AuthenticateTrust(identity.WithCredentials(ctx, own), trustID)
	return tok, err
}

func (t *identityTrusts) Revoke(ctx context.Context, trustID string) error {
	return t.ids.DeleteTrust(identity.WithCredentials(ctx, identity.SystemAdmin()), trustID)
}
