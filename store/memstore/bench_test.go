package memstore_test

import (
	"testing"

	"github.com/stratuskit/stratus/store/storetest"
)

func BenchmarkStore(b *testing.B) { storetest.Bench(b, config()) }
