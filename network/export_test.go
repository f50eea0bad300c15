package network

// Internals for the external tests.
const (
	TestPortTable = portTable
	TestIPTable   = ipTable
)

// TestIPAlloc is the allocation record type.
type TestIPAlloc = ipAlloc

// EUI64 exposes eui64.
var EUI64 = eui64
