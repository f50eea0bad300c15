package orchestration

import (
	"context"
	"fmt"
)

// webImagePlugin is OS::Glance::WebImage: an image whose data the image
// service downloads from a URL (web-download import, within the image
// service's allow-list).
type webImagePlugin struct{ im Images }

func (webImagePlugin) Schema() *TypeSchema {
	return &TypeSchema{
		Description: "An image imported from a URL by the image service (web-download).",
		Properties: map[string]*PropSchema{
			"location": {Type: PropString, Required: true, Description: "The http(s) URL of the image data."},
			"name":     str("Image name; default the physical name."),
			"disk_format": {Type: PropString, Required: true,
				Constraints: []Constraint{{AllowedValues: []any{"ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"}}}},
			"container_format": {Type: PropString, Default: "bare",
				Constraints: []Constraint{{AllowedValues: []any{"ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"}}}},
			"min_disk":     {Type: PropInteger, Default: 0, Constraints: []Constraint{{IsRange: true, Min: ptr(0)}}},
			"min_ram":      {Type: PropInteger, Default: 0, Constraints: []Constraint{{IsRange: true, Min: ptr(0)}}},
			"visibility":   {Type: PropString, Default: "private", Constraints: []Constraint{{AllowedValues: []any{"public", "private", "community", "shared"}}}},
			"protected":    {Type: PropBoolean, Default: false},
			"tags":         {Type: PropList, Default: []any{}},
			"os_distro":    str("Unused here."),
			"architecture": str("Unused here."),
			"id":           str("Unused here."),
		},
		Attributes: map[string]string{"status": "The image's status.", "name": "The image's name."},
	}
}

func (p webImagePlugin) Create(ctx context.Context, r *Resource) (string, error) {
	return p.im.CreateWebImage(ctx, WebImageSpec{Name: nameOf(r), Location: r.Str("location"), DiskFormat: r.Str("disk_format"),
		ContainerFormat: r.Str("container_format"), Visibility: r.Str("visibility"), MinDiskGB: r.Int("min_disk"),
		MinRAMMB: r.Int("min_ram"), Protected: r.Bool("protected"), Tags: strList(r.List("tags"))})
}

func (p webImagePlugin) Find(ctx context.Context, r *Resource) (string, error) {
	return p.im.FindImage(ctx, nameOf(r))
}

// Ready is true once the download made the image active; a failed import
// fails the resource.
func (p webImagePlugin) Ready(ctx context.Context, r *Resource) (bool, error) {
	img, err := p.im.GetImage(ctx, r.PhysicalID)
	if err != nil {
		return false, err
	}
	switch {
	case img.Status == "active":
		return true, nil
	case img.FailedImport != "":
		return false, fmt.Errorf("the image import failed: %s", img.FailedImport)
	case img.Status == "killed" || img.Status == "deleted":
		return false, fmt.Errorf("the image went to status %s", img.Status)
	}
	return false, nil
}

func (p webImagePlugin) Delete(ctx context.Context, r *Resource) error {
	return p.im.DeleteImage(ctx, r.PhysicalID)
}

func (p webImagePlugin) Attribute(ctx context.Context, r *Resource, name string) (any, error) {
	img, err := p.im.GetImage(ctx, r.PhysicalID)
	if err != nil {
		return nil, err
	}
	switch name {
	case "status":
		return img.Status, nil
	case "name":
		return img.Name, nil
	case "show":
		return img.Show, nil
	}
	return nil, fmt.Errorf("no attribute %q", name)
}
