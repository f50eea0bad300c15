package metering

import (
	"bufio"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/stratuskit/stratus/internal/httpapi"
)

// NewPrometheusHandler serves GET /metrics: the newest value of every
// metric of every resource in Prometheus's text format, one family per
// meter (stratus_<meter with '.' as '_'>), labelled with the resource id,
// type and project. It has no authentication: serve it on a listener only
// the operator reaches (the all-in-one's default is 127.0.0.1:9180).
func NewPrometheusHandler(svc *Service, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		ls, err := svc.LatestAll()
		if err != nil {
			httpapi.WriteError(w, r, httpapi.Generic, err)
			return
		}
		byMeter := map[string][]Latest{}
		for _, l := range ls {
			byMeter[l.Metric.Name] = append(byMeter[l.Metric.Name], l)
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		bw := bufio.NewWriter(w)
		for _, m := range meters {
			rows := byMeter[m.Name]
			if len(rows) == 0 {
				continue
			}
			name := promName(m.Name)
			typ := "gauge"
			if m.Kind == Cumulative {
				typ = "counter"
			}
			fmt.Fprintf(bw, "# HELP %s OpenStack meter %s in %s (%s).\n# TYPE %s %s\n", name, m.Name, m.Unit, m.Kind, name, typ)
			for _, l := range rows {
				fmt.Fprintf(bw, "%s{resource_id=%s,resource_type=%s,project_id=%s} %s %d\n", name,
					promLabel(l.Resource.ID), promLabel(l.Resource.Type), promLabel(l.Resource.ProjectID),
					strconv.FormatFloat(l.Value, 'g', -1, 64), l.Time.UnixMilli())
			}
		}
		_ = bw.Flush()
	})
	return httpapi.Wrap(mux, httpapi.Generic, logger)
}

func promName(meter string) string {
	return "stratus_" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, meter)
}

// promLabel quotes a label value as the text format wants: backslash,
// double quote and newline escaped.
func promLabel(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v) + `"`
}
