//go:build !cgo

package libvirtvm

import (
	"context"
	"errors"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
)

// Driver is the libvirt driver; without cgo it cannot be built and New
// always fails.
type Driver struct{ compute.Hypervisor }

// New returns errdefs.ErrUnavailable: the libvirt driver needs cgo.
func New(context.Context, Options) (*Driver, error) {
	return nil, errors.Join(errors.New("libvirtvm: built without cgo: the libvirt driver is unavailable"), errdefs.ErrUnavailable)
}

// VirtType is empty: there is no driver without cgo.
func (d *Driver) VirtType() string { return "" }
