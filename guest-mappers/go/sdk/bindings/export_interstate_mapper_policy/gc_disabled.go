//go:build interstate_no_gc_workaround

package export_interstate_mapper_policy

// Built with the interstate_no_gc_workaround tag (`build.sh --no-gc-workaround`): the
// collector runs whenever Go likes, as in plain generated bindings. This exists only to show
// that the workaround is needed; such a component traps under load.
func gcOn() func() {
	return func() {}
}
