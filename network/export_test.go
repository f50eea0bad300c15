package network

// Internals for the external tests.
const (
	TestPortTable = portTable
	TestIPIndex   = ipIndex
	TestMACIndex  = macIndex
	TestIPTable   = ipTable
	TestMACTable  = macTable
)

// TestLegacyAlloc is the record type of the legacy allocation tables.
type TestLegacyAlloc = legacyAlloc

// EUI64 exposes eui64.
var EUI64 = eui64
