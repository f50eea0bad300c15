package rating_test

import (
	"os"
	"time"

	"github.com/stratuskit/stratus/rating"
)

// A report as CSV: one row per line, then totals per resource, per
// project and for all.
func ExampleWriteCSV() {
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	rep := &rating.Report{Start: day, End: day.Add(24 * time.Hour), Currency: "EUR", Total: 14,
		Projects: []rating.ProjectReport{{ProjectID: "p1", Amount: 14, Resources: []rating.ResourceTotal{{
			ResourceID: "fip-1", ResourceType: "network", Amount: 14,
			Lines: []rating.Line{{ResourceID: "fip-1", ResourceType: "network", Item: "floating_ip", Start: day,
				End: day.Add(24 * time.Hour), Seconds: 86400, Quantity: "1", Rate: "0.6", Unit: "hour", Amount: 14}},
		}}}}}
	_ = rating.WriteCSV(os.Stdout, rep)
	// Output:
	// project_id,resource_type,resource_id,item,start,end,seconds,quantity,rate,unit,amount,currency
	// p1,network,fip-1,floating_ip,2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,86400,1,0.6,hour,14,EUR
	// p1,network,fip-1,total,2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,,,,,14,EUR
	// p1,,,project total,2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,,,,,14,EUR
	// ,,,grand total,2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,,,,,14,EUR
}
