package httpapi

// Family selects the OpenStack conventions a service follows on the wire:
// the shape of its error bodies and a few per-service differences such as
// the quota status code and Swift's X-Trans-Id header.
//
// The zero Family is [Generic].
type Family int

// The service families.
const (
	// Generic is a plain JSON API, for Go-native services such as metering.
	// Its error body has the Keystone shape.
	Generic Family = iota
	// Keystone is the identity service:
	// {"error":{"code":404,"message":"…","title":"Not Found"}}.
	Keystone
	// Nova is the compute service, and also Cinder (block storage), which
	// shares its fault format: {"itemNotFound":{"code":404,"message":"…"}}.
	Nova
	// Neutron is the network service:
	// {"NeutronError":{"type":"NotFound","message":"…","detail":""}}.
	Neutron
	// Glance is the image service, whose errors are text.
	Glance
	// Swift is the object store, whose errors are text and whose responses
	// also carry X-Trans-Id.
	Swift
	// Heat is the orchestration service:
	// {"code":404,"title":"Not Found","explanation":"…","error":{"type":"EntityNotFound","message":"…","traceback":null}}.
	Heat
)

// Cinder is an alias of [Nova]: the block-storage API uses Nova's fault body.
const Cinder = Nova

var familyNames = [...]string{
	Generic:  "generic",
	Keystone: "keystone",
	Nova:     "nova",
	Neutron:  "neutron",
	Glance:   "glance",
	Swift:    "swift",
	Heat:     "heat",
}

// String returns the family's lowercase name, for logs.
func (f Family) String() string {
	if f >= 0 && int(f) < len(familyNames) {
		return familyNames[f]
	}
	return "unknown"
}
