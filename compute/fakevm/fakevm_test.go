package fakevm_test

import (
	"testing"

	"github.com/stratuskit/stratus/compute/drivertest"
	"github.com/stratuskit/stratus/compute/fakevm"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) *drivertest.Harness {
		return &drivertest.Harness{Driver: fakevm.New(&fakevm.Options{Name: "h1"})}
	})
}
