package rating

import (
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"time"

	"github.com/stratuskit/stratus/errdefs"
)

// Rate is a price in minor units of the book's currency per unit, as an
// exact decimal string ("2", "0.35": a third of a cent cannot be written,
// so no rounding hides in a rate). Amounts are rounded to whole minor
// units once per report line.
type Rate string

var rateRE = regexp.MustCompile(`^[0-9]{1,12}(\.[0-9]{1,9})?$`)

func (r Rate) rat() (*big.Rat, error) {
	if r == "" {
		return new(big.Rat), nil
	}
	if !rateRE.MatchString(string(r)) {
		return nil, fmt.Errorf("rate %q is not a decimal number of minor units", string(r))
	}
	v, ok := new(big.Rat).SetString(string(r))
	if !ok {
		return nil, fmt.Errorf("rate %q", string(r))
	}
	return v, nil
}

// Prices are the rates in force from Effective until the next entry's.
type Prices struct {
	Effective time.Time `json:"effective"`
	// FlavorHour is per server-hour of a flavor, by flavor id or name.
	FlavorHour map[string]Rate `json:"flavor_hour,omitempty"`
	// VCPUHour and RAMGiBHour are per vCPU-hour and GiB-hour of RAM of
	// a server's flavor.
	VCPUHour   Rate `json:"vcpu_hour,omitempty"`
	RAMGiBHour Rate `json:"ram_gib_hour,omitempty"`
	// VolumeGiBMonth, ObjectGiBMonth and ImageGiBMonth are per GiB-month
	// (a month is 30 days: 720 hours) of volumes, object-store bytes and
	// image bytes.
	VolumeGiBMonth Rate `json:"volume_gib_month,omitempty"`
	ObjectGiBMonth Rate `json:"object_gib_month,omitempty"`
	ImageGiBMonth  Rate `json:"image_gib_month,omitempty"`
	// FloatingIPHour is per floating-IP-hour.
	FloatingIPHour Rate `json:"floating_ip_hour,omitempty"`
}

// PriceBook is a currency and the prices in force over time.
type PriceBook struct {
	// Currency is an ISO 4217 code (EUR, USD); amounts are in its minor
	// units (cents).
	Currency string   `json:"currency"`
	Entries  []Prices `json:"entries"`
}

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// Validate checks the book: a currency, at least one entry, rates that are
// decimals, distinct effective dates.
func (b *PriceBook) Validate() error {
	if !currencyRE.MatchString(b.Currency) {
		return errdefs.Invalid("currency", "must be an ISO 4217 code such as EUR")
	}
	if len(b.Entries) == 0 {
		return errdefs.Invalid("entries", "at least one")
	}
	seen := map[int64]bool{}
	for _, e := range b.Entries {
		if seen[e.Effective.UnixNano()] {
			return errdefs.Invalid("entries", "two entries take effect at %s", e.Effective)
		}
		seen[e.Effective.UnixNano()] = true
		rates := []Rate{e.VCPUHour, e.RAMGiBHour, e.VolumeGiBMonth, e.ObjectGiBMonth, e.ImageGiBMonth, e.FloatingIPHour}
		for _, r := range e.FlavorHour {
			rates = append(rates, r)
		}
		for _, r := range rates {
			if _, err := r.rat(); err != nil {
				return errdefs.Invalid("entries", "%s", err)
			}
		}
	}
	return nil
}

// sorted returns the entries oldest first.
func (b *PriceBook) sorted() []Prices {
	es := slices.Clone(b.Entries)
	slices.SortFunc(es, func(x, y Prices) int { return x.Effective.Compare(y.Effective) })
	return es
}

// periods splits [from, to) at the effective dates: each piece with the
// prices in force (pieces before the first entry are free).
func (b *PriceBook) periods(from, to time.Time) []pricedSpan {
	var out []pricedSpan
	es := b.sorted()
	for i, e := range es {
		s, t := e.Effective, time.Time{}
		if i+1 < len(es) {
			t = es[i+1].Effective
		}
		if s.Before(from) {
			s = from
		}
		if t.IsZero() || t.After(to) {
			t = to
		}
		if s.Before(t) {
			out = append(out, pricedSpan{from: s, to: t, prices: e})
		}
	}
	return out
}

type pricedSpan struct {
	from, to time.Time
	prices   Prices
}
