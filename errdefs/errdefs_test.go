package errdefs_test

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
)

type rawErr struct{ code int }

func (e rawErr) Error() string { return fmt.Sprintf("raw code %d", e.code) }

func TestWrapKeepsKindAndRaw(t *testing.T) {
	raw := rawErr{code: 42}
	err := fmt.Errorf("compute: domain %q: %w", "d1", errdefs.Wrap(errdefs.ErrNotFound, raw))
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("errors.Is(ErrNotFound) = false for %v", err)
	}
	var got rawErr
	if !errors.As(err, &got) || got.code != 42 {
		t.Fatalf("errors.As(rawErr) = %v, %+v", errors.As(err, &got), got)
	}
	if errors.Is(err, errdefs.ErrConflict) {
		t.Fatal("wrapped NotFound also matches ErrConflict")
	}
	if want := `compute: domain "d1": raw code 42`; err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}
	if errdefs.Wrap(errdefs.ErrNotFound, nil) != nil {
		t.Fatal("Wrap(kind, nil) != nil")
	}
	// The raw error's own chain stays reachable.
	if !errors.Is(errdefs.Wrap(errdefs.ErrNotFound, fmt.Errorf("open: %w", fs.ErrNotExist)), fs.ErrNotExist) {
		t.Fatal("raw chain lost")
	}
}

func TestValidationError(t *testing.T) {
	err := fmt.Errorf("network: %w", errdefs.Invalid("subnet.cidr", "%q is not a CIDR", "10.0.0.0/33"))
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatal("ValidationError does not match ErrInvalid")
	}
	var ve *errdefs.ValidationError
	if !errors.As(err, &ve) || ve.Field != "subnet.cidr" {
		t.Fatalf("errors.As: %v %+v", errors.As(err, &ve), ve)
	}
	if want := `network: invalid subnet.cidr: "10.0.0.0/33" is not a CIDR`; err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}
}

func TestKind(t *testing.T) {
	cases := []struct {
		err  error
		want error
	}{
		{nil, nil},
		{errors.New("boom"), nil},
		{fmt.Errorf("x: %w", errdefs.ErrQuotaExceeded), errdefs.ErrQuotaExceeded},
		{errdefs.Invalid("name", "too long"), errdefs.ErrInvalid},
		{errdefs.Wrap(errdefs.ErrUnavailable, errors.New("no space left on device")), errdefs.ErrUnavailable},
	}
	for _, c := range cases {
		if got := errdefs.Kind(c.err); !errors.Is(got, c.want) || (got == nil) != (c.want == nil) {
			t.Errorf("Kind(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if !errdefs.IsNotFound(fmt.Errorf("a: %w", errdefs.ErrNotFound)) || errdefs.IsConflict(errdefs.ErrNotFound) {
		t.Fatal("IsNotFound/IsConflict wrong")
	}
}

func ExampleWrap() {
	raw := errors.New("virDomainLookupByUUIDString: no domain with matching uuid")
	err := fmt.Errorf("libvirtvm: domain %q: %w", "4f1c", errdefs.Wrap(errdefs.ErrNotFound, raw))
	fmt.Println(errors.Is(err, errdefs.ErrNotFound))
	fmt.Println(err)
	// Output:
	// true
	// libvirtvm: domain "4f1c": virDomainLookupByUUIDString: no domain with matching uuid
}
