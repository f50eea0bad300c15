package network

import (
	"context"
	"slices"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// Tag resource kinds, as the REST API names their collections.
const (
	KindNetworks       = "networks"
	KindSubnets        = "subnets"
	KindPorts          = "ports"
	KindRouters        = "routers"
	KindFloatingIPs    = "floatingips"
	KindSecurityGroups = "security-groups"
)

type kindOps struct {
	table string
	get   func(s *Service, c *identity.Credentials, tx *store.Txn, id string) (record, error)
}

func wrapGet[T any, PT interface {
	*T
	record
}](f func(s *Service, c *identity.Credentials, tx *store.Txn, id string) (*T, error)) func(*Service, *identity.Credentials, *store.Txn, string) (record, error) {
	return func(s *Service, c *identity.Credentials, tx *store.Txn, id string) (record, error) {
		v, err := f(s, c, tx, id)
		if err != nil {
			return nil, err
		}
		return PT(v), nil
	}
}

var tagKinds = map[string]kindOps{
	KindNetworks:       {networkTable, wrapGet[Network]((*Service).getNetworkTx)},
	KindSubnets:        {subnetTable, wrapGet[Subnet]((*Service).getSubnetTx)},
	KindPorts:          {portTable, wrapGet[Port]((*Service).getPortTx)},
	KindRouters:        {routerTable, wrapGet[Router]((*Service).getRouterTx)},
	KindFloatingIPs:    {fipTable, wrapGet[FloatingIP]((*Service).getFIPTx)},
	KindSecurityGroups: {sgTable, wrapGet[SecurityGroup]((*Service).getSGTx)},
}

func kindOf(kind string) (kindOps, error) {
	k, ok := tagKinds[kind]
	if !ok {
		return kindOps{}, fault("NotFound", errdefs.ErrNotFound, "resource type %s has no tags", kind)
	}
	return k, nil
}

// Tags returns the tags of a resource the caller can see.
func (s *Service) Tags(ctx context.Context, kind, id string) ([]string, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	k, err := kindOf(kind)
	if err != nil {
		return nil, err
	}
	r, err := k.get(s, c, s.st.Snapshot(), id)
	if err != nil {
		return nil, err
	}
	return slices.Clone(r.std().Tags), nil
}

// SetTags changes a resource's tags with edit, under the same policy as
// any other change of the resource: a caller who may only see it (a
// shared or external network) gets ErrForbidden (OSSA-2024-005).
func (s *Service) SetTags(ctx context.Context, kind, id string, edit func(tags []string) ([]string, error)) ([]string, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	k, err := kindOf(kind)
	if err != nil {
		return nil, err
	}
	var out []string
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		r, err := k.get(s, c, tx, id)
		if err != nil {
			return err
		}
		if err := s.mayWrite(c, r.std().ProjectID); err != nil {
			return err
		}
		tags, err := edit(slices.Clone(r.std().Tags))
		if err != nil {
			return err
		}
		tags = dedupe(tags)
		if err := checkTags(tags); err != nil {
			return err
		}
		r.std().Tags = tags
		touch(r, tx.Now())
		out = tags
		return tx.Update(k.table, r)
	})
	return out, err
}

// ReplaceTags sets a resource's tags.
func (s *Service) ReplaceTags(ctx context.Context, kind, id string, tags []string) ([]string, error) {
	return s.SetTags(ctx, kind, id, func([]string) ([]string, error) { return nonNil(tags), nil })
}

// AddTag adds one tag to a resource.
func (s *Service) AddTag(ctx context.Context, kind, id, tag string) error {
	_, err := s.SetTags(ctx, kind, id, func(t []string) ([]string, error) { return append(t, tag), nil })
	return err
}

// RemoveTag removes one tag; a missing tag is ErrNotFound.
func (s *Service) RemoveTag(ctx context.Context, kind, id, tag string) error {
	_, err := s.SetTags(ctx, kind, id, func(t []string) ([]string, error) {
		i := slices.Index(t, tag)
		if i < 0 {
			return nil, fault("TagNotFound", errdefs.ErrNotFound, "tag %s could not be found for resource %s", tag, id)
		}
		return slices.Delete(t, i, i+1), nil
	})
	return err
}
