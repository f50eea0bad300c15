package image

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// SortKeys are the attributes images can be sorted by.
var SortKeys = []string{"name", "status", "container_format", "disk_format", "size", "virtual_size", "id",
	"created_at", "updated_at", "visibility", "owner", "min_disk", "min_ram", "protected", "os_hidden"}

// Sort is one sort key and direction.
type Sort struct {
	Key  string
	Desc bool
}

// TimeFilter compares a time attribute: Op is gt, gte, lt, lte, eq or neq.
type TimeFilter struct {
	Op   string
	Time time.Time
}

// ListImagesOpts filter, sort and page an image list. The zero value lists
// what Glance lists by default: the caller's images, public images and
// shared images it accepted, hidden ones excepted, newest first.
type ListImagesOpts struct {
	// Visibility is "" (the default set above), "all" (community
	// included), or one visibility.
	Visibility string
	// MemberStatus selects shared images by the caller's membership
	// status: "" (accepted), pending, rejected or all.
	MemberStatus    string
	Name            string
	Names           []string // name=in:a,b
	IDs             []string // id=in:a,b
	Status          string
	Statuses        []string // status=in:a,b
	Owner           string
	DiskFormat      string
	ContainerFormat string
	// Tags must all be on the image.
	Tags []string
	// Hidden selects os_hidden images; nil means not hidden.
	Hidden     *bool
	Protected  *bool
	SizeMin    *int64
	SizeMax    *int64
	CreatedAt  []TimeFilter
	UpdatedAt  []TimeFilter
	Properties map[string]string
	Sort       []Sort
	Marker     string
	Limit      int // 0: no limit
}

// ListImages returns a page of the images the caller may see that match
// opts, and whether more follow.
func (s *Service) ListImages(ctx context.Context, opts ListImagesOpts) ([]*Image, bool, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, false, err
	}
	switch opts.Visibility {
	case "", "all", string(VisibilityPublic), string(VisibilityPrivate), string(VisibilityShared), string(VisibilityCommunity):
	default:
		return nil, false, errdefs.Invalid("visibility", "%q is not one of public, private, shared, community, all", opts.Visibility)
	}
	switch opts.MemberStatus {
	case "", "all", string(MemberAccepted), string(MemberPending), string(MemberRejected):
	default:
		return nil, false, errdefs.Invalid("member_status", "%q is not one of accepted, pending, rejected, all", opts.MemberStatus)
	}
	for _, k := range opts.Sort {
		if !slices.Contains(SortKeys, k.Key) {
			return nil, false, errdefs.Invalid("sort_key", "%q is not a sort key", k.Key)
		}
	}
	tx := s.st.Snapshot()
	memberOf := map[string]MemberStatus{}
	if c.ProjectID != "" {
		ms, err := store.List[Member](nil, tx, memberTable, "member", c.ProjectID)
		if err != nil {
			return nil, false, err
		}
		for m := range ms {
			memberOf[m.ImageID] = m.Status
		}
	}
	it, err := store.List[Image](nil, tx, imageTable, store.IDIndex)
	if err != nil {
		return nil, false, err
	}
	var out []*Image
	for img := range it {
		if listed(c, img, memberOf, opts) && matches(img, opts) {
			out = append(out, img)
		}
	}
	sorts := append(slices.Clone(opts.Sort), Sort{Key: "created_at", Desc: true}, Sort{Key: "id", Desc: true})
	if len(opts.Sort) > 0 {
		sorts = append(slices.Clone(opts.Sort), Sort{Key: "id", Desc: opts.Sort[0].Desc})
	}
	slices.SortStableFunc(out, func(a, b *Image) int {
		for _, k := range sorts {
			if r := compareBy(a, b, k.Key); r != 0 {
				if k.Desc {
					return -r
				}
				return r
			}
		}
		return 0
	})
	if opts.Marker != "" {
		i := slices.IndexFunc(out, func(img *Image) bool { return img.ID == opts.Marker })
		if i < 0 {
			return nil, false, errdefs.Invalid("marker", "marker %s not found", opts.Marker)
		}
		out = out[i+1:]
	}
	more := false
	if opts.Limit > 0 && len(out) > opts.Limit {
		out, more = out[:opts.Limit], true
	}
	for i, img := range out {
		out[i] = img.clone()
	}
	return out, more, nil
}

// listed applies Glance's visibility rules for lists.
func listed(c *identity.Credentials, img *Image, memberOf map[string]MemberStatus, opts ListImagesOpts) bool {
	if opts.Visibility != "" && opts.Visibility != "all" && string(img.Visibility) != opts.Visibility {
		return false
	}
	if c.IsCloudAdmin() {
		return true
	}
	own := img.Owner != "" && img.Owner == c.ProjectID
	switch img.Visibility {
	case VisibilityPublic:
		return true
	case VisibilityCommunity:
		return own || opts.Visibility == "all" || opts.Visibility == string(VisibilityCommunity)
	case VisibilityShared:
		if own {
			return true
		}
		st, ok := memberOf[img.ID]
		want := opts.MemberStatus
		if want == "" {
			want = string(MemberAccepted)
		}
		return ok && (want == "all" || string(st) == want)
	}
	return own
}

func matches(img *Image, o ListImagesOpts) bool {
	hidden := false
	if o.Hidden != nil {
		hidden = *o.Hidden
	}
	size := int64(-1)
	if img.Size != nil {
		size = *img.Size
	}
	switch {
	case img.Hidden != hidden,
		o.Name != "" && img.Name != o.Name,
		len(o.Names) > 0 && !slices.Contains(o.Names, img.Name),
		len(o.IDs) > 0 && !slices.Contains(o.IDs, img.ID),
		o.Status != "" && string(img.Status) != o.Status,
		len(o.Statuses) > 0 && !slices.Contains(o.Statuses, string(img.Status)),
		o.Owner != "" && img.Owner != o.Owner,
		o.DiskFormat != "" && img.DiskFormat != o.DiskFormat,
		o.ContainerFormat != "" && img.ContainerFormat != o.ContainerFormat,
		o.Protected != nil && img.Protected != *o.Protected,
		o.SizeMin != nil && size < *o.SizeMin,
		o.SizeMax != nil && (size < 0 || size > *o.SizeMax):
		return false
	}
	for _, t := range o.Tags {
		if !slices.Contains(img.Tags, t) {
			return false
		}
	}
	for k, v := range o.Properties {
		if img.Properties[k] != v {
			return false
		}
	}
	return timeMatch(img.CreatedAt, o.CreatedAt) && timeMatch(img.UpdatedAt, o.UpdatedAt)
}

func timeMatch(t time.Time, fs []TimeFilter) bool {
	for _, f := range fs {
		c := t.Compare(f.Time)
		ok := map[string]bool{"gt": c > 0, "gte": c >= 0, "lt": c < 0, "lte": c <= 0, "eq": c == 0, "neq": c != 0}[f.Op]
		if !ok {
			return false
		}
	}
	return true
}

func compareBy(a, b *Image, key string) int {
	i64 := func(p *int64) int64 {
		if p == nil {
			return -1
		}
		return *p
	}
	bl := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	switch key {
	case "name":
		return cmp.Compare(a.Name, b.Name)
	case "status":
		return cmp.Compare(a.Status, b.Status)
	case "container_format":
		return cmp.Compare(a.ContainerFormat, b.ContainerFormat)
	case "disk_format":
		return cmp.Compare(a.DiskFormat, b.DiskFormat)
	case "size":
		return cmp.Compare(i64(a.Size), i64(b.Size))
	case "virtual_size":
		return cmp.Compare(i64(a.VirtualSize), i64(b.VirtualSize))
	case "id":
		return cmp.Compare(a.ID, b.ID)
	case "created_at":
		return a.CreatedAt.Compare(b.CreatedAt)
	case "updated_at":
		return a.UpdatedAt.Compare(b.UpdatedAt)
	case "visibility":
		return cmp.Compare(a.Visibility, b.Visibility)
	case "owner":
		return cmp.Compare(a.Owner, b.Owner)
	case "min_disk":
		return cmp.Compare(a.MinDisk, b.MinDisk)
	case "min_ram":
		return cmp.Compare(a.MinRAM, b.MinRAM)
	case "protected":
		return cmp.Compare(bl(a.Protected), bl(b.Protected))
	case "os_hidden":
		return cmp.Compare(bl(a.Hidden), bl(b.Hidden))
	}
	return 0
}
