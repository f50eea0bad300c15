package orchestration

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"time"
)

func str(desc string) *PropSchema { return &PropSchema{Type: PropString, Description: desc} }

// randomString is OS::Heat::RandomString: a random string, kept with the
// resource; get_resource gives the string itself.
type randomString struct{}

const (
	lettersDigits = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
)

var charClasses = map[string]string{
	"lettersdigits": lettersDigits, "letters": lettersDigits[:52], "lowercase": lettersDigits[:26],
	"uppercase": lettersDigits[26:52], "digits": lettersDigits[52:], "hexdigits": "0123456789abcdef",
	"octdigits": "01234567",
}

func (randomString) Schema() *TypeSchema {
	return &TypeSchema{
		Description: "A random string, generated once and kept with the stack.",
		Properties: map[string]*PropSchema{
			"length": {Type: PropInteger, Default: 32, Description: "Length of the string.",
				Constraints: []Constraint{{IsRange: true, Min: ptr(1), Max: ptr(512)}}},
			"sequence": {Type: PropString, Description: "Character set (lettersdigits, letters, lowercase, uppercase, digits, hexdigits, octdigits).",
				Constraints: []Constraint{{AllowedValues: []any{"lettersdigits", "letters", "lowercase", "uppercase", "digits", "hexdigits", "octdigits"}}}},
			"character_classes": {Type: PropList, Description: "Character classes (class) the string must draw from."},
			"salt":              str("Changing it regenerates the string on update."),
		},
		Attributes: map[string]string{"value": "The random string."},
	}
}

func ptr(f float64) *float64 { return &f }

func (randomString) Create(_ context.Context, r *Resource) (string, error) {
	set := lettersDigits
	if q := r.Str("sequence"); q != "" {
		set = charClasses[q]
	}
	if cls := r.List("character_classes"); len(cls) > 0 {
		set = ""
		for _, c := range cls {
			m, _ := c.(map[string]any)
			name, _ := m["class"].(string)
			cs, ok := charClasses[name]
			if !ok {
				return "", invalid("character_classes", "unknown class %q", name)
			}
			set += cs
		}
	}
	n := r.Int("length")
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
		if err != nil {
			return "", err
		}
		b[i] = set[k.Int64()]
	}
	r.Data["value"] = string(b)
	return r.PhysicalName, nil
}

func (randomString) Delete(context.Context, *Resource) error { return nil }

func (randomString) Attribute(_ context.Context, r *Resource, name string) (any, error) {
	switch name {
	case "value":
		return r.Data["value"], nil
	case "show":
		return map[string]any{"value": r.Data["value"]}, nil
	}
	return nil, fmt.Errorf("no attribute %q", name)
}

func (randomString) RefID(r *Resource) string { return r.Data["value"] }

// nonePlugin is OS::Heat::None: accepts any properties, makes nothing.
type nonePlugin struct{}

func (nonePlugin) Schema() *TypeSchema {
	return &TypeSchema{Description: "A resource that makes nothing (a placeholder).", Properties: map[string]*PropSchema{}}
}

func (nonePlugin) Create(_ context.Context, r *Resource) (string, error) { return r.PhysicalName, nil }
func (nonePlugin) Delete(context.Context, *Resource) error               { return nil }
func (nonePlugin) Attribute(context.Context, *Resource, string) (any, error) {
	return nil, nil
}

// testResource is OS::Heat::TestResource: holds a value, can wait and
// fail on demand, for tests.
type testResource struct{}

func (testResource) Schema() *TypeSchema {
	return &TypeSchema{
		Description: "A resource for tests: it holds value, waits wait_secs and fails when fail is true.",
		Properties: map[string]*PropSchema{
			"value":            {Type: PropString, Default: "test_string", Description: "The value of the output attribute.", UpdateAllowed: true},
			"fail":             {Type: PropBoolean, Default: false, Description: "Fail the create.", UpdateAllowed: true},
			"wait_secs":        {Type: PropNumber, Default: 0.0, Description: "Seconds to wait before the action completes.", Constraints: []Constraint{{IsRange: true, Min: ptr(0), Max: ptr(3600)}}},
			"action_wait_secs": {Type: PropMap, Description: "Seconds to wait per action (create, delete)."},
			"update_replace":   {Type: PropBoolean, Default: false, Description: "Not updatable: changing it replaces the resource."},
			"client_name":      str("Unused; for compatibility."),
			"entity_name":      str("Unused; for compatibility."),
		},
		Attributes: map[string]string{"output": "The value of the value property."},
	}
}

func waitSecs(r *Resource, action string) time.Duration {
	secs, _ := toNumber(r.Properties["wait_secs"])
	if m := r.Map("action_wait_secs"); m != nil {
		if v, err := toNumber(m[action]); err == nil {
			secs = v
		}
	}
	return time.Duration(secs * float64(time.Second))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (testResource) Create(ctx context.Context, r *Resource) (string, error) {
	if err := sleepCtx(ctx, waitSecs(r, "create")); err != nil {
		return "", err
	}
	if r.Bool("fail") {
		return "", errors.New("test resource failed")
	}
	r.Data["output"] = r.Str("value")
	if m := r.Map("action_wait_secs"); m != nil {
		if v, err := toNumber(m["delete"]); err == nil {
			r.Data["delete_wait"] = fmt.Sprint(v)
		}
	}
	return r.PhysicalName, nil
}

// Update changes value (and fail) in place, failing when fail is true.
func (testResource) Update(ctx context.Context, r *Resource, _ map[string]any) error {
	if err := sleepCtx(ctx, waitSecs(r, "update")); err != nil {
		return err
	}
	if r.Bool("fail") {
		return errors.New("test resource failed")
	}
	r.Data["output"] = r.Str("value")
	return nil
}

func (testResource) Delete(ctx context.Context, r *Resource) error {
	secs, _ := toNumber(r.Data["delete_wait"])
	return sleepCtx(ctx, time.Duration(secs*float64(time.Second)))
}

func (testResource) Attribute(_ context.Context, r *Resource, name string) (any, error) {
	switch name {
	case "output":
		return r.Data["output"], nil
	case "show":
		return map[string]any{"output": r.Data["output"]}, nil
	}
	return nil, fmt.Errorf("no attribute %q", name)
}
