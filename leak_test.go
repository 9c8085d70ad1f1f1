//go:build !e2e

package podsandbox

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the unit tests when any goroutine outlives them: every goroutine the library
// starts has an owner (a Client, a sandbox, a pool, a manager) that waits for it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
