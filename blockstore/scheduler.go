package blockstore

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// pool is a backend pool as the scheduler sees it.
type pool struct {
	PoolStats
	backend     string
	multiattach bool
	// provisionedGiB is what the records place on the pool.
	provisionedGiB float64
}

// poolStats asks the backends for their pools; with fixed, only the pool
// that volume is on (snapshots and clones stay on their source's pool).
func (s *Service) poolStats(ctx context.Context, fixed *Volume) ([]pool, error) {
	var out []pool
	for _, bc := range s.cfg.Backends {
		if fixed != nil && bc.Name != fixed.Backend {
			continue
		}
		ps, err := bc.Backend.Pools(ctx)
		if err != nil {
			return nil, fmt.Errorf("blockstore: backend %s: %w", bc.Name, errdefs.Wrap(errdefs.ErrUnavailable, err))
		}
		for _, p := range ps {
			if fixed != nil && p.Name != fixed.Pool {
				continue
			}
			out = append(out, pool{PoolStats: p, backend: bc.Name, multiattach: bc.Backend.Capabilities().Multiattach})
		}
	}
	return out, nil
}

// schedule picks the pool for v among pools, with the provisioned capacity
// taken from the records in tx: the capacity filter and the capabilities
// filter, then the capacity weigher (most virtual free capacity wins).
func (s *Service) schedule(tx *store.Txn, pools []pool, t *VolumeType, v *Volume) (*pool, error) {
	prov := map[string]float64{}
	it, err := store.List[Volume](nil, tx, volumeTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	for o := range it {
		if !o.QuotaReleased {
			prov[o.Backend+"#"+o.Pool] += float64(o.quotaSize())
		}
	}
	var best *pool
	var bestWeight float64
	for i := range pools {
		p := &pools[i]
		p.provisionedGiB = prov[p.backend+"#"+p.Name]
		if !matches(p, t, v) || !Fits(p.PoolStats, p.provisionedGiB, v.SizeGiB) {
			continue
		}
		if w := VirtualFree(p.PoolStats, p.provisionedGiB); best == nil || w > bestWeight {
			best, bestWeight = p, w
		}
	}
	if best == nil {
		return nil, errdefs.Wrap(errdefs.ErrUnavailable, errorf("No valid backend was found. No weighed backends available: no pool has %d GiB free for type %s", v.SizeGiB, typeName(t)))
	}
	return best, nil
}

func typeName(t *VolumeType) string {
	if t == nil {
		return DefaultTypeName
	}
	return t.Name
}

// matches is the capabilities filter: the type's volume_backend_name, its
// "capabilities:" specs and multiattach must fit the pool.
func matches(p *pool, t *VolumeType, v *Volume) bool {
	if v.Multiattach && !p.multiattach {
		return false
	}
	if t == nil {
		return true
	}
	for k, want := range t.ExtraSpecs {
		switch {
		case k == SpecBackendName:
			if want != p.backend {
				return false
			}
		case strings.HasPrefix(k, SpecCapabilityPrefix):
			have, ok := p.Capabilities[strings.TrimPrefix(k, SpecCapabilityPrefix)]
			if !ok || !specMatch(have, want) {
				return false
			}
		}
	}
	return true
}

// specMatch compares a capability with a spec: "<in> a b", "<or> a <or>
// b", "<is> True" or a plain value.
func specMatch(have, want string) bool {
	f := strings.Fields(want)
	switch {
	case len(f) >= 2 && f[0] == "<in>":
		return slices.Contains(f[1:], have)
	case len(f) >= 2 && f[0] == "<or>":
		for i := 1; i < len(f); i += 2 {
			if f[i] == have {
				return true
			}
		}
		return false
	case len(f) == 2 && f[0] == "<is>":
		return strings.EqualFold(f[1], have)
	}
	return want == have
}

// Fits is the capacity filter: a thick pool needs size GiB free above its
// reserve; a thin pool needs the provisioned capacity after the volume to
// stay within MaxOverSubscriptionRatio times its total, and free space
// above its reserve.
func Fits(p PoolStats, provisionedGiB float64, size int) bool {
	reserved := p.TotalGiB * float64(p.ReservedPercentage) / 100
	free := p.FreeGiB - reserved
	if !p.Thin || p.MaxOverSubscriptionRatio < 1 {
		return free >= float64(size)
	}
	if p.TotalGiB <= 0 || free <= 0 {
		return false
	}
	return (provisionedGiB+float64(size))/p.TotalGiB <= p.MaxOverSubscriptionRatio
}

// VirtualFree is the capacity weigher: free capacity, over-subscribed for
// thin pools.
func VirtualFree(p PoolStats, provisionedGiB float64) float64 {
	reserved := p.TotalGiB * float64(p.ReservedPercentage) / 100
	if p.Thin && p.MaxOverSubscriptionRatio >= 1 {
		return p.TotalGiB*p.MaxOverSubscriptionRatio - provisionedGiB - reserved
	}
	return p.FreeGiB - reserved
}
