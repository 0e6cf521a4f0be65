//go:build !interstate_no_gc_workaround

package export_interstate_mapper_policy

import "runtime/debug"

// The collector is off while the instance is idle; see the package documentation.
func init() {
	debug.SetGCPercent(-1)
}

// gcOn enables the collector for the duration of one export; use as `defer gcOn()()`.
// SetGCPercent(-1) on the way out waits for a running mark phase to finish, so no cycle is
// left to end inside the host's next cabi_realloc call.
func gcOn() func() {
	debug.SetGCPercent(100)
	return func() { debug.SetGCPercent(-1) }
}
