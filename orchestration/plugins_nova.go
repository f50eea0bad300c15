package orchestration

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
)

// nameOf is the name a plugin gives what it creates: the name property,
// else the resource's deterministic physical name.
func nameOf(r *Resource) string {
	if n := r.Str("name"); n != "" {
		return n
	}
	return r.PhysicalName
}

func strList(l []any) []string {
	out := make([]string, 0, len(l))
	for _, v := range l {
		out = append(out, textOf(v))
	}
	return out
}

// serverPlugin is OS::Nova::Server.
type serverPlugin struct{ c Compute }

func (p serverPlugin) Schema() *TypeSchema {
	_, resizes := p.c.(ServerResizer)
	return &TypeSchema{
		Description: "A compute server.",
		Properties: map[string]*PropSchema{
			"name":  str("Server name; default the resource's physical name."),
			"image": {Type: PropString, Description: "Image id or name.", Constraints: []Constraint{{Custom: "glance.image"}}},
			"flavor": {Type: PropString, Required: true, Description: "Flavor id or name; a change resizes the server.",
				Constraints: []Constraint{{Custom: "nova.flavor"}}, UpdateAllowed: resizes},
			"key_name":                {Type: PropString, Description: "Key pair name.", Constraints: []Constraint{{Custom: "nova.keypair"}}},
			"networks":                {Type: PropList, Description: "NICs: maps with network, port or fixed_ip."},
			"security_groups":         {Type: PropList, Description: "Security group names or ids."},
			"user_data":               str("User data, as is."),
			"user_data_format":        {Type: PropString, Default: "HEAT_CFNTOOLS", Constraints: []Constraint{{AllowedValues: []any{"HEAT_CFNTOOLS", "RAW", "SOFTWARE_CONFIG"}}}},
			"metadata":                {Type: PropMap, Description: "Server metadata."},
			"availability_zone":       str("Availability zone."),
			"scheduler_hints":         {Type: PropMap, Description: "Scheduler hints (group)."},
			"block_device_mapping_v2": {Type: PropList, Description: "Boot volume: a map with volume_id and boot_index 0."},
			"config_drive":            {Type: PropBoolean, Description: "Unused here."},
			"admin_pass":              str("Unused here."),
		},
		Attributes: map[string]string{
			"name": "Server name.", "addresses": "Addresses by network name.",
			"networks": "IP addresses by network name and id.", "first_address": "The first IP address (deprecated).",
			"accessIPv4": "The first IPv4 address.", "console_urls": "Unused here.",
		},
	}
}

func (p serverPlugin) Create(ctx context.Context, r *Resource) (string, error) {
	spec := ServerSpec{Name: nameOf(r), Image: r.Str("image"), Flavor: r.Str("flavor"), KeyName: r.Str("key_name"),
		UserData: r.Str("user_data"), AvailabilityZone: r.Str("availability_zone"),
		SecurityGroups: strList(r.List("security_groups")), Metadata: r.StrMap("metadata")}
	for i, n := range r.List("networks") {
		m, ok := n.(map[string]any)
		if !ok {
			return "", invalid("networks", "entry %d must be a map", i)
		}
		spec.Networks = append(spec.Networks, ServerNetwork{Network: textOf(m["network"]), Port: textOf(m["port"]), FixedIP: textOf(m["fixed_ip"])})
	}
	if h := r.Map("scheduler_hints"); h != nil {
		spec.SchedulerGroup = textOf(h["group"])
	}
	for _, b := range r.List("block_device_mapping_v2") {
		if m, ok := b.(map[string]any); ok && textOf(m["boot_index"]) == "0" {
			spec.BootVolume = textOf(m["volume_id"])
		}
	}
	if spec.Image == "" && spec.BootVolume == "" {
		return "", invalid("image", "a server needs an image or a boot volume")
	}
	return p.c.CreateServer(ctx, spec)
}

// Update resizes the server to a new flavor (the only property updated in
// place).
func (p serverPlugin) Update(ctx context.Context, r *Resource, old map[string]any) error {
	if r.Str("flavor") == textOf(old["flavor"]) {
		return nil
	}
	rz, ok := p.c.(ServerResizer)
	if !ok {
		return errdefs.Wrap(errdefs.ErrUnsupported, errors.New("this cloud cannot resize servers"))
	}
	return rz.ResizeServer(ctx, r.PhysicalID, r.Str("flavor"))
}

// DeleteBeforeReplace: a server on a port of the stack must leave it
// before its replacement can take it.
func (serverPlugin) DeleteBeforeReplace(old *Resource) bool {
	for _, n := range old.List("networks") {
		if m, ok := n.(map[string]any); ok && textOf(m["port"]) != "" {
			return true
		}
	}
	return false
}

// DeleteBeforeReplace: a key pair's name is its id.
func (keypairPlugin) DeleteBeforeReplace(*Resource) bool { return true }

func (p serverPlugin) Find(ctx context.Context, r *Resource) (string, error) {
	return p.c.FindServer(ctx, nameOf(r))
}

func (p serverPlugin) Ready(ctx context.Context, r *Resource) (bool, error) {
	s, err := p.c.GetServer(ctx, r.PhysicalID)
	if err != nil {
		return false, err
	}
	switch s.Status {
	case "ACTIVE":
		return true, nil
	case "ERROR":
		msg := s.Fault
		if msg == "" {
			msg = "unknown"
		}
		return false, fmt.Errorf("went to status ERROR due to %q", msg)
	}
	return false, nil
}

func (p serverPlugin) Delete(ctx context.Context, r *Resource) error {
	return p.c.DeleteServer(ctx, r.PhysicalID)
}

func (p serverPlugin) Attribute(ctx context.Context, r *Resource, name string) (any, error) {
	s, err := p.c.GetServer(ctx, r.PhysicalID)
	if err != nil {
		return nil, err
	}
	switch name {
	case "name":
		return s.Name, nil
	case "show":
		return s.Show, nil
	case "addresses":
		out := map[string]any{}
		for n, as := range s.Addresses {
			l := make([]any, len(as))
			for i, a := range as {
				l[i] = map[string]any{"addr": a.Addr, "version": a.Version, "OS-EXT-IPS:type": a.Type, "OS-EXT-IPS-MAC:mac_addr": a.MAC, "port": a.PortID}
			}
			out[n] = l
		}
		return out, nil
	case "networks":
		out := map[string]any{}
		for n, as := range s.Addresses {
			var l []any
			for _, a := range as {
				if a.Type != "floating" {
					l = append(l, a.Addr)
				}
			}
			out[n] = l
		}
		return out, nil
	case "first_address", "accessIPv4":
		for _, n := range slices.Sorted(maps.Keys(s.Addresses)) {
			for _, a := range s.Addresses[n] {
				if a.Version == 4 && a.Type != "floating" {
					return a.Addr, nil
				}
			}
		}
		return "", nil
	case "console_urls":
		return map[string]any{}, nil
	}
	return nil, fmt.Errorf("no attribute %q", name)
}

// keypairPlugin is OS::Nova::KeyPair; its physical id is its name.
type keypairPlugin struct{ c Compute }

func (keypairPlugin) Schema() *TypeSchema {
	return &TypeSchema{
		Description: "A compute key pair, imported or generated.",
		Properties: map[string]*PropSchema{
			"name":             {Type: PropString, Required: true, Description: "Key pair name.", Constraints: []Constraint{{IsLength: true, Min: ptr(1), Max: ptr(255)}}},
			"public_key":       str("Public key to import; a key pair is generated when absent."),
			"save_private_key": {Type: PropBoolean, Default: false, Description: "Keep the generated private key as an attribute."},
			"type":             {Type: PropString, Constraints: []Constraint{{AllowedValues: []any{"ssh", "x509"}}}},
			"user":             str("Unused here."),
		},
		Attributes: map[string]string{"public_key": "The public key.", "private_key": "The private key, if generated and saved."},
	}
}

func (p keypairPlugin) Create(ctx context.Context, r *Resource) (string, error) {
	pub, priv, err := p.c.CreateKeypair(ctx, r.Str("name"), r.Str("public_key"))
	if err != nil {
		return "", err
	}
	r.Data["public_key"] = pub
	if r.Bool("save_private_key") {
		r.Data["private_key"] = priv
	}
	return r.Str("name"), nil
}

func (p keypairPlugin) Delete(ctx context.Context, r *Resource) error {
	return p.c.DeleteKeypair(ctx, r.PhysicalID)
}

func (p keypairPlugin) Attribute(_ context.Context, r *Resource, name string) (any, error) {
	switch name {
	case "public_key", "private_key":
		return r.Data[name], nil
	case "show":
		return map[string]any{"name": r.PhysicalID, "public_key": r.Data["public_key"]}, nil
	}
	return nil, fmt.Errorf("no attribute %q", name)
}

// flavorPlugin is OS::Nova::Flavor.
type flavorPlugin struct{ c Compute }

func (flavorPlugin) Schema() *TypeSchema {
	return &TypeSchema{
		Description: "A compute flavor (admin only).",
		Properties: map[string]*PropSchema{
			"name":        str("Flavor name; default the physical name."),
			"ram":         {Type: PropInteger, Required: true, Description: "Memory in MB.", Constraints: []Constraint{{IsRange: true, Min: ptr(1)}}},
			"vcpus":       {Type: PropInteger, Default: 1, Constraints: []Constraint{{IsRange: true, Min: ptr(1)}}},
			"disk":        {Type: PropInteger, Default: 0, Constraints: []Constraint{{IsRange: true, Min: ptr(0)}}},
			"ephemeral":   {Type: PropInteger, Default: 0},
			"swap":        {Type: PropInteger, Default: 0},
			"is_public":   {Type: PropBoolean, Default: true},
			"extra_specs": {Type: PropMap},
			"flavorid":    str("Unused here."),
			"rxtx_factor": {Type: PropNumber},
			"tenants":     {Type: PropList},
		},
		Attributes: map[string]string{"is_public": "Whether the flavor is public.", "extra_specs": "Extra specs."},
	}
}

func (p flavorPlugin) Create(ctx context.Context, r *Resource) (string, error) {
	return p.c.CreateFlavor(ctx, FlavorSpec{Name: nameOf(r), RAMMB: r.Int("ram"), VCPUs: r.Int("vcpus"), DiskGB: r.Int("disk"),
		EphemeralGB: r.Int("ephemeral"), SwapMB: r.Int("swap"), IsPublic: r.Bool("is_public"), ExtraSpecs: r.StrMap("extra_specs")})
}

func (p flavorPlugin) Delete(ctx context.Context, r *Resource) error {
	return p.c.DeleteFlavor(ctx, r.PhysicalID)
}

func (flavorPlugin) Attribute(context.Context, *Resource, string) (any, error) { return nil, nil }

// serverGroupPlugin is OS::Nova::ServerGroup.
type serverGroupPlugin struct{ c Compute }

func (serverGroupPlugin) Schema() *TypeSchema {
	return &TypeSchema{
		Description: "A server group with a placement policy.",
		Properties: map[string]*PropSchema{
			"name": str("Group name; default the physical name."),
			"policies": {Type: PropList, Default: []any{"anti-affinity"},
				Constraints: []Constraint{{AllowedValues: []any{"anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity"}}}},
			"rules": {Type: PropMap},
		},
		Attributes: map[string]string{},
	}
}

func (p serverGroupPlugin) Create(ctx context.Context, r *Resource) (string, error) {
	return p.c.CreateServerGroup(ctx, nameOf(r), strList(r.List("policies")))
}

func (p serverGroupPlugin) Delete(ctx context.Context, r *Resource) error {
	return p.c.DeleteServerGroup(ctx, r.PhysicalID)
}

func (serverGroupPlugin) Attribute(context.Context, *Resource, string) (any, error) { return nil, nil }

// volumePlugin is OS::Cinder::Volume.
type volumePlugin struct{ v Volumes }

func (volumePlugin) Schema() *TypeSchema {
	return &TypeSchema{
		Description: "A block storage volume.",
		Properties: map[string]*PropSchema{
			"size":              {Type: PropInteger, Description: "Size in GiB.", Constraints: []Constraint{{IsRange: true, Min: ptr(1)}}},
			"name":              str("Volume name; default the physical name."),
			"description":       str("Description."),
			"volume_type":       {Type: PropString, Constraints: []Constraint{{Custom: "cinder.vtype"}}},
			"image":             {Type: PropString, Constraints: []Constraint{{Custom: "glance.image"}}},
			"source_volid":      {Type: PropString, Constraints: []Constraint{{Custom: "cinder.volume"}}},
			"availability_zone": str("Availability zone."),
			"metadata":          {Type: PropMap},
		},
		Attributes: map[string]string{"size": "Size in GiB.", "status": "Status.", "display_name": "Name.", "attachments_list": "Attachments."},
	}
}

func (p volumePlugin) Create(ctx context.Context, r *Resource) (string, error) {
	if r.Int("size") == 0 && r.Str("image") == "" && r.Str("source_volid") == "" {
		return "", invalid("size", "a volume needs a size, an image or a source volume")
	}
	return p.v.CreateVolume(ctx, VolumeSpec{Name: nameOf(r), Description: r.Str("description"), VolumeType: r.Str("volume_type"),
		Image: r.Str("image"), SourceVolume: r.Str("source_volid"), AvailabilityZone: r.Str("availability_zone"),
		SizeGB: r.Int("size"), Metadata: r.StrMap("metadata")})
}

func (p volumePlugin) Find(ctx context.Context, r *Resource) (string, error) {
	return p.v.FindVolume(ctx, nameOf(r))
}

func (p volumePlugin) Ready(ctx context.Context, r *Resource) (bool, error) {
	v, err := p.v.GetVolume(ctx, r.PhysicalID)
	if err != nil {
		return false, err
	}
	switch v.Status {
	case "available", "in-use":
		return true, nil
	case "error":
		return false, errors.New("volume went to status error")
	}
	return false, nil
}

func (p volumePlugin) Delete(ctx context.Context, r *Resource) error {
	return p.v.DeleteVolume(ctx, r.PhysicalID)
}

func (p volumePlugin) Attribute(ctx context.Context, r *Resource, name string) (any, error) {
	v, err := p.v.GetVolume(ctx, r.PhysicalID)
	if err != nil {
		return nil, err
	}
	switch name {
	case "size":
		return v.SizeGB, nil
	case "status":
		return v.Status, nil
	case "display_name":
		return v.Name, nil
	case "show":
		return v.Show, nil
	case "attachments_list":
		return v.Show["attachments"], nil
	}
	return nil, fmt.Errorf("no attribute %q", name)
}

// attachmentPlugin is OS::Cinder::VolumeAttachment.
type attachmentPlugin struct{ a VolumeAttacher }

func (attachmentPlugin) Schema() *TypeSchema {
	return &TypeSchema{
		Description: "A volume attached to a server.",
		Properties: map[string]*PropSchema{
			"instance_uuid": {Type: PropString, Required: true, Description: "Server id.", UpdateAllowed: true},
			"volume_id":     {Type: PropString, Required: true, Description: "Volume id.", UpdateAllowed: true},
			"mountpoint":    str("Device name, such as /dev/vdb."),
		},
		Attributes: map[string]string{},
	}
}

func (p attachmentPlugin) Create(ctx context.Context, r *Resource) (string, error) {
	r.Data["server"], r.Data["volume"] = r.Str("instance_uuid"), r.Str("volume_id")
	return p.a.AttachVolume(ctx, r.Data["server"], r.Data["volume"], r.Str("mountpoint"))
}

func (p attachmentPlugin) Delete(ctx context.Context, r *Resource) error {
	err := p.a.DetachVolume(ctx, r.Data["server"], r.Data["volume"])
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

func (attachmentPlugin) Attribute(_ context.Context, r *Resource, name string) (any, error) {
	if name == "show" {
		return map[string]any{"id": r.PhysicalID, "serverId": r.Data["server"], "volumeId": r.Data["volume"]}, nil
	}
	return nil, nil
}

// containerPlugin is OS::Swift::Container; its physical id is its name.
type containerPlugin struct{ c Containers }

func (containerPlugin) Schema() *TypeSchema {
	return &TypeSchema{
		Description: "An object storage container in the project's account.",
		Properties: map[string]*PropSchema{
			"name":              str("Container name; default the physical name."),
			"X-Container-Read":  str("Read ACL."),
			"X-Container-Write": str("Write ACL."),
			"X-Container-Meta":  {Type: PropMap, Description: "Container metadata."},
			"X-Account-Meta":    {Type: PropMap, Description: "Unused here."},
			"PurgeOnDelete":     {Type: PropBoolean, Default: false, Description: "Delete the objects with the container."},
		},
		Attributes: map[string]string{"RootURL": "The container's URL.", "DomainName": "The host of the URL.", "WebsiteURL": "The container's URL."},
	}
}

func (p containerPlugin) Create(ctx context.Context, r *Resource) (string, error) {
	h := map[string]string{}
	for _, k := range []string{"X-Container-Read", "X-Container-Write"} {
		if v := r.Str(k); v != "" {
			h[k] = v
		}
	}
	for k, v := range r.StrMap("X-Container-Meta") {
		h["X-Container-Meta-"+k] = v
	}
	name := nameOf(r)
	if r.Bool("PurgeOnDelete") {
		r.Data["purge"] = "true"
	}
	if err := p.c.CreateContainer(ctx, name, h); err != nil {
		return "", err
	}
	return name, nil
}

func (p containerPlugin) Delete(ctx context.Context, r *Resource) error {
	return p.c.DeleteContainer(ctx, r.PhysicalID, r.Data["purge"] == "true")
}

func (p containerPlugin) Attribute(ctx context.Context, r *Resource, name string) (any, error) {
	u, err := p.c.ContainerURL(ctx, r.PhysicalID)
	if err != nil {
		return nil, err
	}
	switch name {
	case "RootURL", "WebsiteURL":
		return u, nil
	case "DomainName":
		if _, rest, ok := strings.Cut(u, "://"); ok {
			host, _, _ := strings.Cut(rest, "/")
			return host, nil
		}
		return "", nil
	case "show":
		return map[string]any{"name": r.PhysicalID, "url": u}, nil
	}
	return nil, fmt.Errorf("no attribute %q", name)
}
