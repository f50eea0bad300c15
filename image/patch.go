package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
)

// PatchContentType is the media type of Glance's JSON-patch bodies.
const PatchContentType = "application/openstack-images-v2.1-json-patch"

// maxPatchOps bounds the operations of one PATCH.
const maxPatchOps = 1000

// PatchOp is one operation of an image update, in Glance's JSON-patch
// dialect: add, replace or remove of a top-level attribute (path "/name",
// "/tags", "/os_distro" ...).
type PatchOp struct {
	// Op is "add", "replace" or "remove".
	Op string
	// Path is the attribute the operation is about, decoded from its JSON
	// pointer ("/a~1b" is "a/b").
	Path string
	// Value is the JSON value of add and replace; nil for remove.
	Value json.RawMessage
}

// ParsePatch parses a JSON-patch body. A malformed body is an
// *errdefs.ValidationError with Glance's message.
func ParsePatch(body []byte) ([]PatchOp, error) {
	var raw []map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil || dec.More() {
		return nil, errdefs.Invalid("", "request body must be a JSON array of operation objects")
	}
	if len(raw) > maxPatchOps {
		return nil, errdefs.Invalid("", "at most %d operations are allowed in one request", maxPatchOps)
	}
	ops := make([]PatchOp, 0, len(raw))
	for _, m := range raw {
		if m == nil {
			return nil, errdefs.Invalid("", "operations must be JSON objects")
		}
		var op PatchOp
		if err := json.Unmarshal(m["op"], &op.Op); err != nil || !slices.Contains([]string{"add", "replace", "remove"}, op.Op) {
			return nil, errdefs.Invalid("op", "unable to find `op` in JSON Schema change; it must be one of the following: add, remove, replace")
		}
		var ptr string
		if err := json.Unmarshal(m["path"], &ptr); err != nil {
			return nil, errdefs.Invalid("path", "unable to find `path` in JSON Schema change; it must be a JSON pointer such as \"/name\"")
		}
		path, err := decodePointer(ptr)
		if err != nil {
			return nil, err
		}
		op.Path = path
		v, ok := m["value"]
		if op.Op != "remove" {
			if !ok {
				return nil, errdefs.Invalid("value", "operation %q requires a member named \"value\"", op.Op)
			}
			op.Value = v
		}
		for k := range m {
			if k != "op" && k != "path" && k != "value" {
				return nil, errdefs.Invalid("", "operation objects must not contain %q", k)
			}
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// decodePointer decodes a one-segment JSON pointer.
func decodePointer(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", errdefs.Invalid("path", "pointer `%s` does not start with \"/\"", p)
	}
	seg := p[1:]
	if strings.Contains(seg, "/") {
		if strings.HasPrefix(seg, "locations/") {
			return "locations", nil // read-only: refused with 403 below
		}
		return "", errdefs.Invalid("path", "invalid JSON pointer for this resource: '%s'", p)
	}
	for i := 0; i < len(seg); i++ {
		if seg[i] == '~' && (i+1 == len(seg) || (seg[i+1] != '0' && seg[i+1] != '1')) {
			return "", errdefs.Invalid("path", "pointer `%s` contains \"~\" not part of a recognized escape sequence", p)
		}
	}
	seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
	if seg == "" {
		return "", errdefs.Invalid("path", "invalid JSON pointer for this resource: '%s'", p)
	}
	return seg, nil
}

// UpdateImage applies ops to an image the caller owns, all or nothing.
// Read-only attributes (status, checksum, size, locations, direct_url ...)
// and reserved names (os_glance_*) are refused with ErrForbidden: no
// update can change where an image's bytes are or what they are.
func (s *Service) UpdateImage(ctx context.Context, id string, ops []PatchOp) (*Image, error) {
	for _, op := range ops {
		if op.Op != "add" && op.Op != "replace" && op.Op != "remove" {
			return nil, errdefs.Invalid("op", "%q is not one of add, remove, replace", op.Op)
		}
		if slices.Contains(readOnly, op.Path) {
			return nil, forbidden("attribute '%s' is read-only", op.Path)
		}
		if strings.HasPrefix(op.Path, "os_glance") {
			return nil, forbidden("attribute '%s' is reserved", op.Path)
		}
	}
	return s.changeImage(ctx, id, func(c *identity.Credentials, img *Image) error {
		for _, op := range ops {
			if err := s.apply(c, img, op); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Service) apply(c *identity.Credentials, img *Image, op PatchOp) error {
	p := op.Path
	isNull := bytes.Equal(bytes.TrimSpace(op.Value), []byte("null"))
	str := func(dst *string, nullable bool) error {
		if isNull && nullable {
			*dst = ""
			return nil
		}
		if err := json.Unmarshal(op.Value, dst); err != nil {
			return errdefs.Invalid(p, "must be a string")
		}
		return nil
	}
	switch p {
	case "name", "visibility", "protected", "os_hidden", "min_disk", "min_ram", "disk_format", "container_format", "tags", "owner":
		if op.Op == "remove" {
			return forbidden("properties %s cannot be removed", p)
		}
	}
	switch p {
	case "name":
		return str(&img.Name, true)
	case "visibility":
		var v string
		if err := str(&v, false); err != nil {
			return err
		}
		img.Visibility = Visibility(v)
		return nil
	case "protected", "os_hidden":
		var b bool
		if err := json.Unmarshal(op.Value, &b); err != nil {
			return errdefs.Invalid(p, "must be a boolean")
		}
		if p == "protected" {
			img.Protected = b
		} else {
			img.Hidden = b
		}
		return nil
	case "min_disk", "min_ram":
		var n int64
		if err := json.Unmarshal(op.Value, &n); err != nil {
			return errdefs.Invalid(p, "must be an integer")
		}
		if p == "min_disk" {
			img.MinDisk = n
		} else {
			img.MinRAM = n
		}
		return nil
	case "disk_format", "container_format":
		if img.Status != StatusQueued && img.Status != StatusUploading {
			return forbidden("attribute %s can be only replaced for a queued image", p)
		}
		if p == "disk_format" {
			return str(&img.DiskFormat, true)
		}
		return str(&img.ContainerFormat, true)
	case "tags":
		var tags []string
		if err := json.Unmarshal(op.Value, &tags); err != nil {
			return errdefs.Invalid("tags", "must be a list of strings")
		}
		img.Tags = dedupe(tags)
		return nil
	case "owner":
		var o string
		if err := str(&o, false); err != nil {
			return err
		}
		if o != img.Owner {
			if err := s.allowed(c, "image:set_owner", o); err != nil {
				return forbidden("you are not permitted to change the owner of an image")
			}
			img.Owner = o
		}
		return nil
	}
	if err := checkPropertyName(p); err != nil {
		return err
	}
	_, exists := img.Properties[p]
	switch {
	case op.Op == "remove" || (isNull && (p == "kernel_id" || p == "ramdisk_id")):
		if !exists && op.Op == "remove" {
			return conflict("property %s does not exist", p)
		}
		delete(img.Properties, p)
		return nil
	case op.Op == "replace" && !exists:
		return conflict("property %s does not exist", p)
	}
	var v string
	if err := json.Unmarshal(op.Value, &v); err != nil {
		return errdefs.Invalid(p, "property values must be strings, not %s", truncate(string(op.Value), 40))
	}
	if img.Properties == nil {
		img.Properties = map[string]string{}
	}
	img.Properties[p] = v
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s…", s[:n])
}
