package rating

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/metering"
	"github.com/stratuskit/stratus/metering/tsdb"
)

// Usage is what rating reads from metering (metering.Service is one):
// the stored events, the resources and their measures.
type Usage interface {
	ListEvents(ctx context.Context, opts metering.ListEventsOpts) ([]*metering.Event, error)
	ListResources(ctx context.Context, opts metering.ListResourcesOpts) ([]*metering.Resource, error)
	Measures(ctx context.Context, metricID string, q metering.MeasuresQuery) ([]tsdb.Point, error)
}

// Flavor is what rating needs of a server's flavor.
type Flavor struct {
	ID, Name string
	VCPUs    int
	RAMMB    int
}

// Flavors looks flavors up by id (compute does).
type Flavors interface {
	Flavor(ctx context.Context, id string) (Flavor, error)
}

// Config configures the rating service.
type Config struct {
	// Usage is metering (required).
	Usage Usage
	// Flavors resolves servers' flavors (required).
	Flavors Flavors
	// Prices is the price book (required; SetPrices replaces it).
	Prices PriceBook
	// BillStopped bills a stopped server like a running one (default
	// true, as Nova's usage report and CloudKitty's flavor-hour do: its
	// resources stay reserved on its host). With NoBillStopped, stopped
	// time is free.
	NoBillStopped bool
	// Clock is the current time, the default end of a report; default
	// time.Now.
	Clock func() time.Time
}

// Service rates usage with a price book. Tenants read their own project's
// report; cloud admins any project's or every project's.
type Service struct {
	cfg Config

	mu     sync.Mutex
	prices PriceBook
}

// New returns a rating service.
func New(cfg Config) (*Service, error) {
	if cfg.Usage == nil || cfg.Flavors == nil {
		return nil, errors.New("rating: Config.Usage and Config.Flavors are required")
	}
	if err := cfg.Prices.Validate(); err != nil {
		return nil, fmt.Errorf("rating: price book: %w", err)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Service{cfg: cfg, prices: cfg.Prices}, nil
}

// SetPrices replaces the price book (cloud admins only).
func (s *Service) SetPrices(ctx context.Context, b PriceBook) error {
	c := identity.CredentialsFrom(ctx)
	if c == nil || !c.IsCloudAdmin() {
		return fmt.Errorf("rating: set prices: %w", errdefs.ErrForbidden)
	}
	if err := b.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prices = b
	return nil
}

// Prices returns the price book.
func (s *Service) Prices() PriceBook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prices
}

// ReportOpts selects a report.
type ReportOpts struct {
	// ProjectID is the project; empty is the caller's, or every project
	// for a cloud admin.
	ProjectID string
	// Start and End bound the period, [Start, End); End defaults to now.
	Start, End time.Time
}

// Line is one charge: a resource's use of one priced item over one price
// period.
type Line struct {
	ResourceID   string    `json:"resource_id"`
	ResourceType string    `json:"resource_type"`
	Item         string    `json:"item"` // flavor:<name>, vcpu, ram, volume, objects, image, floating_ip
	Start        time.Time `json:"start"`
	End          time.Time `json:"end"`
	Seconds      int64     `json:"seconds"`
	// Quantity is the units held (vCPUs, GiB, 1 for a flavor or an IP).
	Quantity string `json:"quantity"`
	Rate     Rate   `json:"rate"`
	Unit     string `json:"unit"` // hour or month
	Amount   int64  `json:"amount"`
}

// ResourceTotal is a resource's charges.
type ResourceTotal struct {
	ResourceID   string `json:"resource_id"`
	ResourceType string `json:"resource_type"`
	Amount       int64  `json:"amount"`
	Lines        []Line `json:"lines"`
}

// ProjectReport is a project's charges.
type ProjectReport struct {
	ProjectID string          `json:"project_id"`
	Amount    int64           `json:"amount"`
	Resources []ResourceTotal `json:"resources"`
}

// Report is the charges of a period, in minor units of Currency.
type Report struct {
	Start    time.Time       `json:"start"`
	End      time.Time       `json:"end"`
	Currency string          `json:"currency"`
	Total    int64           `json:"total"`
	Projects []ProjectReport `json:"projects"`
}

const (
	hour  = 3600
	month = 30 * 24 * hour
	gib   = 1 << 30
)

// span is a stretch of a resource's life with constant quantities.
type span struct {
	from, to time.Time
	flavor   string  // servers
	vcpus    int     // servers
	ramMB    int     // servers
	size     float64 // GiB held (volumes, objects, images)
}

// life is a rated resource's spans.
type life struct {
	id, typ, project string
	spans            []span
}

// Report computes a usage report: each resource's life to the second
// (from metering's events: creation, resizes, stops and starts, deletion;
// sizes of objects and images from their measures), priced by the book's
// entries in force at each second.
func (s *Service) Report(ctx context.Context, o ReportOpts) (*Report, error) {
	c := identity.CredentialsFrom(ctx)
	if c == nil {
		return nil, fmt.Errorf("rating: %w: no credentials", errdefs.ErrUnauthenticated)
	}
	admin := c.IsCloudAdmin() || c.IsSystemReader()
	switch {
	case o.ProjectID == "" && !admin:
		o.ProjectID = c.ProjectID
	case o.ProjectID != "" && !admin && o.ProjectID != c.ProjectID:
		return nil, fmt.Errorf("rating: report of project %q: %w", o.ProjectID, errdefs.ErrNotFound)
	}
	if !admin && o.ProjectID == "" {
		return nil, fmt.Errorf("rating: %w: a project-scoped token is needed", errdefs.ErrForbidden)
	}
	if o.End.IsZero() {
		o.End = s.cfg.Clock()
	}
	o.Start, o.End = o.Start.UTC().Truncate(time.Second), o.End.UTC().Truncate(time.Second)
	if !o.Start.Before(o.End) {
		return nil, errdefs.Invalid("end", "must be after start")
	}
	if o.End.Sub(o.Start) > 366*24*time.Hour {
		return nil, errdefs.Invalid("end", "a report covers at most 366 days")
	}
	// Rating reads every project's usage as the system; the filter below
	// keeps the one asked for.
	sys := identity.WithCredentials(ctx, identity.SystemAdmin())
	lives, err := s.lives(sys, o)
	if err != nil {
		return nil, err
	}
	book := s.Prices()
	rep := &Report{Start: o.Start, End: o.End, Currency: book.Currency, Projects: []ProjectReport{}}
	byProject := map[string]*ProjectReport{}
	for _, l := range lives {
		if o.ProjectID != "" && l.project != o.ProjectID {
			continue
		}
		rt := ResourceTotal{ResourceID: l.id, ResourceType: l.typ}
		for _, sp := range l.spans {
			sp.from, sp.to = maxT(sp.from, o.Start), minT(sp.to, o.End)
			if !sp.from.Before(sp.to) {
				continue
			}
			for _, ps := range book.periods(sp.from, sp.to) {
				lines, err := price(l, sp, ps)
				if err != nil {
					return nil, err
				}
				rt.Lines = append(rt.Lines, lines...)
			}
		}
		if len(rt.Lines) == 0 {
			continue
		}
		for _, ln := range rt.Lines {
			rt.Amount += ln.Amount
		}
		pr := byProject[l.project]
		if pr == nil {
			pr = &ProjectReport{ProjectID: l.project}
			byProject[l.project] = pr
		}
		pr.Resources = append(pr.Resources, rt)
		pr.Amount += rt.Amount
	}
	for _, p := range byProject {
		slices.SortFunc(p.Resources, func(a, b ResourceTotal) int {
			return cmp.Or(cmp.Compare(a.ResourceType, b.ResourceType), cmp.Compare(a.ResourceID, b.ResourceID))
		})
		rep.Projects = append(rep.Projects, *p)
		rep.Total += p.Amount
	}
	slices.SortFunc(rep.Projects, func(a, b ProjectReport) int { return cmp.Compare(a.ProjectID, b.ProjectID) })
	return rep, nil
}

func maxT(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minT(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// price makes the lines of one span in one price period.
func price(l life, sp span, ps pricedSpan) ([]Line, error) {
	from, to := maxT(sp.from, ps.from), minT(sp.to, ps.to)
	secs := int64(to.Sub(from) / time.Second)
	if secs <= 0 {
		return nil, nil
	}
	var out []Line
	add := func(item string, qty *big.Rat, rate Rate, unitSecs int64, unit string) error {
		if rate == "" || qty.Sign() == 0 {
			return nil
		}
		r, err := rate.rat()
		if err != nil {
			return err
		}
		// amount = rate × quantity × seconds / seconds per unit
		amt := new(big.Rat).Mul(r, qty)
		amt.Mul(amt, new(big.Rat).SetInt64(secs))
		amt.Quo(amt, new(big.Rat).SetInt64(unitSecs))
		out = append(out, Line{ResourceID: l.id, ResourceType: l.typ, Item: item, Start: from, End: to, Seconds: secs,
			Quantity: ratString(qty), Rate: rate, Unit: unit, Amount: roundHalfUp(amt)})
		return nil
	}
	one := big.NewRat(1, 1)
	p := ps.prices
	var err error
	switch l.typ {
	case metering.TypeInstance:
		if r, ok := p.FlavorHour[sp.flavor]; ok {
			err = errors.Join(err, add("flavor:"+sp.flavor, one, r, hour, "hour"))
		}
		err = errors.Join(err,
			add("vcpu", big.NewRat(int64(sp.vcpus), 1), p.VCPUHour, hour, "hour"),
			add("ram", big.NewRat(int64(sp.ramMB), 1024), p.RAMGiBHour, hour, "hour"))
	case metering.TypeVolume:
		err = add("volume", ratOf(sp.size), p.VolumeGiBMonth, month, "month")
	case metering.TypeAccount:
		err = add("objects", ratOf(sp.size), p.ObjectGiBMonth, month, "month")
	case metering.TypeImage:
		err = add("image", ratOf(sp.size), p.ImageGiBMonth, month, "month")
	case metering.TypeNetwork:
		err = add("floating_ip", one, p.FloatingIPHour, hour, "hour")
	}
	return out, err
}

func ratOf(f float64) *big.Rat {
	r := new(big.Rat)
	r.SetFloat64(f)
	return r
}

func ratString(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	return strings.TrimRight(strings.TrimRight(r.FloatString(9), "0"), ".")
}

// roundHalfUp rounds a non-negative amount to whole minor units, halves
// up.
func roundHalfUp(r *big.Rat) int64 {
	n := new(big.Int).Mul(r.Num(), big.NewInt(2))
	n.Add(n, r.Denom())
	n.Quo(n, new(big.Int).Mul(r.Denom(), big.NewInt(2)))
	return n.Int64()
}

// lives reads every resource's life that overlaps the period.
func (s *Service) lives(ctx context.Context, o ReportOpts) ([]life, error) {
	evs, err := s.cfg.Usage.ListEvents(ctx, metering.ListEventsOpts{Until: o.End})
	if err != nil {
		return nil, err
	}
	byRes := map[string][]*metering.Event{}
	for _, e := range evs {
		byRes[e.ResourceID] = append(byRes[e.ResourceID], e)
	}
	for _, es := range byRes {
		slices.SortStableFunc(es, func(a, b *metering.Event) int { return a.Generated.Compare(b.Generated) })
	}
	rs, err := s.cfg.Usage.ListResources(ctx, metering.ListResourcesOpts{})
	if err != nil {
		return nil, err
	}
	flavors := map[string]Flavor{}
	var out []life
	for _, r := range rs {
		if o.ProjectID != "" && r.ProjectID != o.ProjectID {
			continue
		}
		end := o.End
		if r.EndedAt != nil {
			end = minT(*r.EndedAt, o.End)
		}
		if !r.StartedAt.Before(o.End) || !r.StartedAt.Before(end) || !end.After(o.Start) {
			continue
		}
		l := life{id: r.ID, typ: r.Type, project: r.ProjectID}
		switch r.Type {
		case metering.TypeInstance:
			l.spans, err = s.serverSpans(ctx, r, byRes[r.ID], end, flavors)
		case metering.TypeVolume:
			l.spans, err = s.volumeSpans(ctx, r, byRes[r.ID], end)
		case metering.TypeNetwork:
			l.spans = []span{{from: r.StartedAt, to: end}}
		case metering.TypeAccount:
			l.spans, err = s.gaugeSpans(ctx, r, "storage.objects.size", end)
		case metering.TypeImage:
			l.spans, err = s.gaugeSpans(ctx, r, "image.size", end)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("rating: resource %s: %w", r.ID, err)
		}
		out = append(out, l)
	}
	return out, nil
}

func (s *Service) flavor(ctx context.Context, id string, cache map[string]Flavor) (Flavor, error) {
	if f, ok := cache[id]; ok {
		return f, nil
	}
	f, err := s.cfg.Flavors.Flavor(ctx, id)
	if err != nil {
		return Flavor{}, err
	}
	cache[id] = f
	return f, nil
}

// serverSpans cuts a server's life at its resizes (compute.server.resize
// and .resize.revert carry the flavor it runs on from then) and, unless stopped
// servers are billed, at its stops and starts.
func (s *Service) serverSpans(ctx context.Context, r *metering.Resource, evs []*metering.Event, end time.Time, cache map[string]Flavor) ([]span, error) {
	flavorID := r.Attributes["flavor_id"]
	for _, e := range evs {
		if e.Type == "compute.server.create" && e.Traits["flavor"] != "" {
			flavorID = e.Traits["flavor"]
		}
	}
	// Billing starts when the server first became active (Nova's
	// launched_at); a server that failed to build and never did is free.
	from, stopped := r.StartedAt, false
	var active, failed bool
	for _, e := range evs {
		switch e.Type {
		case "compute.server.active":
			if !active {
				from = maxT(e.Generated, r.StartedAt)
			}
			active = true
		case "compute.server.error":
			failed = failed || !active
		}
	}
	if failed && !active {
		return nil, nil
	}
	var out []span
	cut := func(at time.Time) error {
		if !at.After(from) {
			return nil
		}
		if (!stopped || !s.cfg.NoBillStopped) && flavorID != "" {
			f, err := s.flavor(ctx, flavorID, cache)
			if err != nil {
				return err
			}
			out = append(out, span{from: from, to: at, flavor: f.Name, vcpus: f.VCPUs, ramMB: f.RAMMB})
		}
		from = at
		return nil
	}
	for _, e := range evs {
		if !e.Generated.Before(end) {
			break
		}
		if e.Generated.Before(from) {
			continue
		}
		switch {
		case e.Type == "compute.server.action":
			switch e.Traits["action"] {
			case "stop", "suspend", "shelve":
				if err := cut(e.Generated); err != nil {
					return nil, err
				}
				stopped = true
			case "start", "resume", "unshelve", "reboot":
				if err := cut(e.Generated); err != nil {
					return nil, err
				}
				stopped = false
			}
		case (e.Type == "compute.server.resize" || e.Type == "compute.server.resize.revert") && e.Traits["flavor"] != "":
			if err := cut(e.Generated); err != nil {
				return nil, err
			}
			flavorID = e.Traits["flavor"]
		}
	}
	if err := cut(end); err != nil {
		return nil, err
	}
	return out, nil
}

// volumeSpans cuts a volume's life at its resizes: the sizes in its
// create and resize events, else its newest volume.size measure.
func (s *Service) volumeSpans(ctx context.Context, r *metering.Resource, evs []*metering.Event, end time.Time) ([]span, error) {
	size := -1.0
	var out []span
	from := r.StartedAt
	for _, e := range evs {
		if !e.Generated.Before(end) {
			break
		}
		v, err := strconv.ParseFloat(e.Traits["size"], 64)
		if err != nil || (e.Type != "volume.create.start" && e.Type != "volume.resize.start") {
			continue
		}
		if size >= 0 && e.Generated.After(from) {
			out = append(out, span{from: from, to: e.Generated, size: size})
			from = e.Generated
		}
		size = v
	}
	if size < 0 {
		ps, err := s.gaugeSpans(ctx, r, "volume.size", end)
		if err != nil || len(ps) == 0 {
			return nil, err
		}
		size = ps[len(ps)-1].size * gib // gaugeSpans divides by GiB; volume.size is in GiB already
	}
	if end.After(from) {
		out = append(out, span{from: from, to: end, size: size})
	}
	return out, nil
}

// gaugeSpans holds each measure bucket's last value (bytes, as GiB) from
// the bucket's start until the next bucket's, using the finest buckets
// still kept and coarser ones before them.
func (s *Service) gaugeSpans(ctx context.Context, r *metering.Resource, metric string, end time.Time) ([]span, error) {
	id, ok := r.Metrics[metric]
	if !ok {
		return nil, nil
	}
	ps, err := s.cfg.Usage.Measures(ctx, id, metering.MeasuresQuery{Aggregation: "last", Stop: end})
	if err != nil {
		return nil, err
	}
	byGran := map[time.Duration][]tsdb.Point{}
	var grans []time.Duration
	for _, p := range ps {
		if _, ok := byGran[p.Granularity]; !ok {
			grans = append(grans, p.Granularity)
		}
		byGran[p.Granularity] = append(byGran[p.Granularity], p)
	}
	slices.Sort(grans) // finest first
	var merged []tsdb.Point
	for _, g := range grans {
		var before []tsdb.Point
		for _, p := range byGran[g] {
			if len(merged) == 0 || p.Time.Before(merged[0].Time) {
				before = append(before, p)
			}
		}
		merged = append(before, merged...)
	}
	var out []span
	for i, p := range merged {
		from := maxT(p.Time, r.StartedAt)
		to := end
		if i+1 < len(merged) {
			to = minT(merged[i+1].Time, end)
		}
		if from.Before(to) {
			out = append(out, span{from: from, to: to, size: p.Value / gib})
		}
	}
	return out, nil
}
