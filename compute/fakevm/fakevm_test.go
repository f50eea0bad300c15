package fakevm_test

import (
	"path/filepath"
	"testing"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/compute/drivertest"
	"github.com/stratuskit/stratus/compute/fakevm"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) *drivertest.Harness {
		d := fakevm.New(&fakevm.Options{Name: "h1"})
		return &drivertest.Harness{Driver: d,
			NewVolume: func(t *testing.T) compute.ConnectionInfo {
				return compute.ConnectionInfo{DriverVolumeType: "file", File: &compute.FileConnection{Path: filepath.Join(t.TempDir(), "vol"), Format: "raw"}}
			},
			Disks: func(_ *testing.T, id string) []string { return d.Disks(id) }}
	})
}
