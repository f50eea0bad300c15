package compute_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
)

// cycle creates a server over HTTP, polls it to ACTIVE, deletes it and
// polls it to 404.
func cycle(ctx context.Context, c *gophercloud.ServiceClient) error {
	s, err := servers.Create(ctx, c, servers.CreateOpts{Name: "bench", ImageRef: imageID, FlavorRef: benchFlavor}, nil).Extract()
	if err != nil {
		return err
	}
	for {
		v, err := servers.Get(ctx, c, s.ID).Extract()
		if err != nil {
			return err
		}
		if v.Status == "ACTIVE" {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := servers.Delete(ctx, c, s.ID).ExtractErr(); err != nil {
		return err
	}
	for {
		_, err := servers.Get(ctx, c, s.ID).Extract()
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

var benchFlavor string

// BenchmarkHTTPServerCycle measures create→ACTIVE→delete→gone cycles per
// second over the Nova API with the fake hypervisor, 8 clients at once.
func BenchmarkHTTPServerCycle(b *testing.B) {
	c := newCloudTB(b)
	benchFlavor = c.flavor.ID
	unlimited := -1
	if _, err := c.svc.UpdateQuota(c.env.admin, c.p1, computeUnlimited(&unlimited)); err != nil {
		b.Fatal(err)
	}
	cl := c.clientTB(b, "alice", "alice-pw", "p1", "")
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range 8 {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := cycle(ctx, cl); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "cycles/s")
}
