package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/stratuskit/stratus/alarming"
	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/metering"
	"github.com/stratuskit/stratus/rating"
	"github.com/stratuskit/stratus/store"
)

// AlarmingOptions configure alarms in the all-in-one.
type AlarmingOptions struct {
	// Interval is how often alarms are evaluated; default 60 s.
	Interval time.Duration
	// AllowedHosts are the hosts webhooks may call besides loopback,
	// comma-separated.
	AllowedHosts string
	// Prices is a JSON price book file (rating.PriceBook); empty: the
	// default book.
	Prices string
}

func alarmingFlags(fs *flag.FlagSet, o *AlarmingOptions) {
	fs.DurationVar(&o.Interval, "alarm-interval", time.Minute, "how often alarms are evaluated")
	fs.StringVar(&o.AllowedHosts, "alarm-allowed-hosts", "", "comma-separated hosts alarm webhooks may call besides loopback")
	fs.StringVar(&o.Prices, "rating-prices", "", "JSON price book for rating reports (currency, entries with effective dates and rates); default: illustrative EUR rates")
}

// alarmingCatalog is Aodh's catalog entry: the metering port, where
// /v2/alarms is served beside Gnocchi's /v1.
func alarmingCatalog(cfg Config) identity.ServiceEndpoints {
	return identity.ServiceEndpoints{Type: "alarming", Name: "aodh", PublicURL: serviceURL(cfg, meteringPort, "")}
}

// aodhUser is the alarming service's user, the trustee of the trusts its
// trust+http(s) actions act through.
const aodhUser = "aodh"

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

// meteringMux serves Aodh's /v2 and rating's /v1/rating beside Gnocchi on
// the metering port.
func meteringMux(gnocchi, aodh, rate http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v2/", aodh)
	mux.Handle("/v1/rating/", rate)
	mux.Handle("/", gnocchi)
	return mux
}

// identityTrusts makes and uses trusts from alarm creators to the aodh
// user.
type identityTrusts struct {
	ids      *identity.Service
	password string

	mu    sync.Mutex
	creds *identity.Credentials // aodh's own, until they expire
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

// defaultPrices is the all-in-one's price book unless -rating-prices names
// one: illustrative euro-cent rates.
func defaultPrices() rating.PriceBook {
	return rating.PriceBook{Currency: "EUR", Entries: []rating.Prices{{Effective: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		VCPUHour: "1.2", RAMGiBHour: "0.4", VolumeGiBMonth: "8", ObjectGiBMonth: "2", ImageGiBMonth: "2", FloatingIPHour: "0.5"}}}
}

// loadPrices reads the price book: the JSON file -rating-prices names, or
// the default.
func loadPrices(path string) (rating.PriceBook, error) {
	if path == "" {
		return defaultPrices(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return rating.PriceBook{}, err
	}
	var book rating.PriceBook
	if err := json.Unmarshal(b, &book); err != nil {
		return rating.PriceBook{}, fmt.Errorf("-rating-prices %s: %w", path, err)
	}
	return book, nil
}

// ratingFlavors reads flavors from compute.
type ratingFlavors struct{ compute *compute.Service }

func (f ratingFlavors) Flavor(ctx context.Context, id string) (rating.Flavor, error) {
	fl, err := f.compute.GetFlavor(system(ctx), id)
	if err != nil {
		return rating.Flavor{}, err
	}
	return rating.Flavor{ID: fl.ID, Name: fl.Name, VCPUs: fl.VCPUs, RAMMB: fl.RAMMB}, nil
}
