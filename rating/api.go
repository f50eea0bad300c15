package rating

import (
	"encoding/csv"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/internal/httpapi"
)

// NewHandler returns the rating API, authenticated by v:
//
//	GET /v1/rating/report?project_id=&start=&end=&format=json|csv
//	GET /v1/rating/prices
//
// start and end are RFC 3339 times; end defaults to now, start to the
// start of end's month (UTC). The all-in-one serves it on the metering
// port.
func NewHandler(svc *Service, v identity.TokenValidator, logger *slog.Logger) http.Handler {
	h := identity.Middleware(v, routes(svc), &identity.MiddlewareOptions{ServiceType: "rating"})
	return httpapi.Wrap(h, httpapi.Generic, logger)
}

func routes(svc *Service) http.Handler {
	rt := httpapi.NewRouter(httpapi.Generic)
	rt.HandleFunc("GET /v1/rating/report", func(w http.ResponseWriter, r *http.Request) { report(svc, w, r) })
	rt.HandleFunc("GET /v1/rating/prices", func(w http.ResponseWriter, r *http.Request) {
		if identity.CredentialsFrom(r.Context()) == nil {
			httpapi.WriteError(w, r, httpapi.Generic, errdefs.ErrUnauthenticated)
			return
		}
		_ = httpapi.WriteJSON(w, http.StatusOK, svc.Prices())
	})
	return rt
}

func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, errdefs.Invalid(field, "must be an RFC 3339 time such as 2026-11-01T00:00:00Z")
	}
	return t, nil
}

func report(svc *Service, w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	start, err := parseTime("start", q.Get("start"))
	if err != nil {
		httpapi.WriteError(w, r, httpapi.Generic, err)
		return
	}
	end, err := parseTime("end", q.Get("end"))
	if err != nil {
		httpapi.WriteError(w, r, httpapi.Generic, err)
		return
	}
	if end.IsZero() {
		end = svc.cfg.Clock().UTC()
	}
	if start.IsZero() {
		e := end.UTC()
		start = time.Date(e.Year(), e.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		httpapi.WriteError(w, r, httpapi.Generic, errdefs.Invalid("format", "must be json or csv"))
		return
	}
	rep, err := svc.Report(r.Context(), ReportOpts{ProjectID: q.Get("project_id"), Start: start, End: end})
	if err != nil {
		httpapi.WriteError(w, r, httpapi.Generic, err)
		return
	}
	if format != "csv" {
		_ = httpapi.WriteJSON(w, http.StatusOK, rep)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	_ = WriteCSV(w, rep)
}

// WriteCSV writes a report as CSV: one row per line, a "total" row per
// resource and per project, and a "grand total" row. Amounts are in minor
// units of the currency column.
func WriteCSV(w interface{ Write([]byte) (int, error) }, rep *Report) error {
	cw := csv.NewWriter(w)
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	amt := func(n int64) string { return strconv.FormatInt(n, 10) }
	_ = cw.Write([]string{"project_id", "resource_type", "resource_id", "item", "start", "end", "seconds", "quantity", "rate", "unit", "amount", "currency"})
	for _, p := range rep.Projects {
		for _, rt := range p.Resources {
			for _, l := range rt.Lines {
				_ = cw.Write([]string{p.ProjectID, l.ResourceType, l.ResourceID, l.Item, ts(l.Start), ts(l.End),
					strconv.FormatInt(l.Seconds, 10), l.Quantity, string(l.Rate), l.Unit, amt(l.Amount), rep.Currency})
			}
			_ = cw.Write([]string{p.ProjectID, rt.ResourceType, rt.ResourceID, "total", ts(rep.Start), ts(rep.End), "", "", "", "", amt(rt.Amount), rep.Currency})
		}
		_ = cw.Write([]string{p.ProjectID, "", "", "project total", ts(rep.Start), ts(rep.End), "", "", "", "", amt(p.Amount), rep.Currency})
	}
	_ = cw.Write([]string{"", "", "", "grand total", ts(rep.Start), ts(rep.End), "", "", "", "", amt(rep.Total), rep.Currency})
	cw.Flush()
	return cw.Error()
}
