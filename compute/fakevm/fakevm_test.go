package fakevm_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"

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

func TestStateFileKeepsDomains(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "h1.json")
	d := fakevm.New(&fakevm.Options{Name: "h1", StateFile: file})
	id := drivertest.NewServerID()
	if err := d.Spawn(ctx, drivertest.SampleSpec(id)); err != nil {
		t.Fatal(err)
	}
	if err := d.PowerOff(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	again := fakevm.New(&fakevm.Options{Name: "h1", StateFile: file})
	st, err := again.State(ctx, id)
	if err != nil || st.Power != compute.PowerShutdown {
		t.Fatalf("after reload: %+v %v", st, err)
	}
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	a, b := fakevm.New(&fakevm.Options{Name: "a"}), fakevm.New(&fakevm.Options{Name: "b"})
	id := drivertest.NewServerID()
	if err := a.Spawn(ctx, drivertest.SampleSpec(id)); err != nil {
		t.Fatal(err)
	}
	if err := a.Migrate(ctx, id, b, false); !errdefs.IsConflict(err) {
		t.Fatalf("cold migration of a running domain: %v", err)
	}
	if err := a.Migrate(ctx, id, b, true); err != nil {
		t.Fatal(err)
	}
	if err := a.Migrate(ctx, id, b, true); err != nil {
		t.Fatalf("repeated migration: %v", err)
	}
	if !slices.Equal(a.Domains(), nil) || !slices.Equal(b.Domains(), []string{id}) {
		t.Fatalf("after live migration: a %v, b %v", a.Domains(), b.Domains())
	}
	if err := b.PowerOff(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Migrate(ctx, id, a, false); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Domains(), []string{id}) || !slices.Equal(b.Domains(), []string{id}) {
		t.Fatalf("a cold migration keeps the source until confirm: a %v, b %v", a.Domains(), b.Domains())
	}
}
