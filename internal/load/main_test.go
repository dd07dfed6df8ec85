package load

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if they leave goroutines behind
// (requests, progress printers, drain waiters, clusters).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
