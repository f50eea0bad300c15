package metering

// Kind says how a meter's values behave.
type Kind string

// The meter kinds, as Ceilometer names them.
const (
	// Gauge is a level sampled now (memory, a volume's size).
	Gauge Kind = "gauge"
	// Cumulative is a counter that only grows, except when the thing
	// counted restarts (CPU time, bytes sent): ask for rate:<method> to
	// get the increase per bucket, resets taken into account.
	Cumulative Kind = "cumulative"
	// Delta is a change since the previous sample.
	Delta Kind = "delta"
)

// Meter is one measured quantity, with OpenStack's name and unit.
type Meter struct {
	Name string `json:"name"`
	Unit string `json:"unit"`
	Kind Kind   `json:"type"`
	// ResourceType is the Gnocchi resource type the meter's metrics hang
	// on.
	ResourceType string `json:"resource_type"`
}

// The resource types the meters use, with Gnocchi's names.
const (
	TypeGeneric   = "generic"
	TypeInstance  = "instance"
	TypeDisk      = "instance_disk"
	TypeInterface = "instance_network_interface"
	TypeVolume    = "volume"
	TypeImage     = "image"
	TypeAccount   = "swift_account"
	TypeNetwork   = "network"
)

// The meters Stratus samples.
var meters = []Meter{
	{"cpu", "ns", Cumulative, TypeInstance},
	{"vcpus", "vcpu", Gauge, TypeInstance},
	{"memory", "MB", Gauge, TypeInstance},
	{"memory.usage", "MB", Gauge, TypeInstance},
	{"instance", "instance", Gauge, TypeInstance},
	{"disk.device.read.bytes", "B", Cumulative, TypeDisk},
	{"disk.device.write.bytes", "B", Cumulative, TypeDisk},
	{"disk.device.read.requests", "request", Cumulative, TypeDisk},
	{"disk.device.write.requests", "request", Cumulative, TypeDisk},
	{"network.incoming.bytes", "B", Cumulative, TypeInterface},
	{"network.outgoing.bytes", "B", Cumulative, TypeInterface},
	{"network.incoming.packets", "packet", Cumulative, TypeInterface},
	{"network.outgoing.packets", "packet", Cumulative, TypeInterface},
	{"volume.size", "GB", Gauge, TypeVolume},
	{"image.size", "B", Gauge, TypeImage},
	{"storage.objects", "object", Gauge, TypeAccount},
	{"storage.objects.size", "B", Gauge, TypeAccount},
	{"ip.floating", "ip", Gauge, TypeNetwork},
}

// Meters returns the meters Stratus samples.
func Meters() []Meter { return append([]Meter(nil), meters...) }

// meterByName returns the meter called name.
func meterByName(name string) (Meter, bool) {
	for _, m := range meters {
		if m.Name == name {
			return m, true
		}
	}
	return Meter{}, false
}

// resourceTypes are the resource types and their attributes.
var resourceTypes = []ResourceType{
	{Name: TypeGeneric},
	{Name: TypeInstance, Attributes: []string{"display_name", "flavor_id", "flavor_name", "host", "image_ref", "status", "server_group"}},
	{Name: TypeDisk, Attributes: []string{"name", "instance_id"}},
	{Name: TypeInterface, Attributes: []string{"name", "instance_id"}},
	{Name: TypeVolume, Attributes: []string{"display_name", "volume_type"}},
	{Name: TypeImage, Attributes: []string{"name", "container_format", "disk_format"}},
	{Name: TypeAccount},
	{Name: TypeNetwork, Attributes: []string{"floating_ip_address"}},
}

// ResourceType is a kind of resource and the attributes it carries.
type ResourceType struct {
	Name       string   `json:"name"`
	Attributes []string `json:"attributes"`
}

// ResourceTypes returns the resource types.
func ResourceTypes() []ResourceType { return append([]ResourceType(nil), resourceTypes...) }

func knownType(name string) bool {
	for _, t := range resourceTypes {
		if t.Name == name {
			return true
		}
	}
	return false
}
