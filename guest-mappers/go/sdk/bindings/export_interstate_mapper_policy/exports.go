// Package export_interstate_mapper_policy is what the generated export glue
// (sdk/bindings/exports) calls for each export of interstate:mapper/policy. It is written by
// hand, not generated: it forwards every call to the policy registered with mapper.Register,
// turns Go errors and panics into the contract's err strings, and carries the GC workaround.
//
// # The GC workaround (gc.go)
//
// Go's garbage collector reads the wall clock when a cycle ends. If a cycle ends inside
// cabi_realloc, which the host calls to copy arguments in, that clock read is an import call
// where the component model forbids one, and the instance traps with "cannot leave component
// instance" (wasmtime issue #14318). So the collector is off whenever the instance is idle
// (init) and on only inside an export body, where imports are allowed. Turning it off again
// waits for a running mark phase to finish, so the clock read happens before the export
// returns. The cost is about 1 µs per call.
package export_interstate_mapper_policy

import (
	"fmt"

	witTypes "go.bytecodealliance.org/pkg/wit/types"

	"interstate/sdk/bindings/interstate_mapper_types"
	"interstate/sdk/mapper"
)

// call runs f and converts its error, or a panic, into the contract's result.
func call[T any](export string, f func(mapper.Policy) (T, error)) (result witTypes.Result[T, string]) {
	defer func() {
		if p := recover(); p != nil {
			result = witTypes.Err[T, string](fmt.Sprintf("%s panicked: %v", export, p))
		}
	}()
	policy := mapper.Registered()
	if policy == nil {
		return witTypes.Err[T, string]("no policy registered: call mapper.Register in an init function of package main")
	}
	value, err := f(policy)
	if err != nil {
		return witTypes.Err[T, string](err.Error())
	}
	return witTypes.Ok[T, string](value)
}

// Configure forwards to Policy.Configure.
func Configure(settingsJSON string) witTypes.Result[witTypes.Unit, string] {
	defer gcOn()()
	return call("configure", func(p mapper.Policy) (witTypes.Unit, error) {
		return witTypes.Unit{}, p.Configure(settingsJSON)
	})
}

// Domains forwards to Policy.Domains; a panic there yields no domains.
func Domains() (domains []string) {
	defer gcOn()()
	result := call("domains", func(p mapper.Policy) ([]string, error) {
		return p.Domains(), nil
	})
	if result.IsErr() {
		return nil
	}
	return result.Ok()
}

// Authenticate forwards to Policy.Authenticate.
func Authenticate(login interstate_mapper_types.PasswordLogin) witTypes.Result[interstate_mapper_types.AuthOutcome, string] {
	defer gcOn()()
	return call("authenticate", func(p mapper.Policy) (interstate_mapper_types.AuthOutcome, error) {
		return p.Authenticate(login)
	})
}

// ContinueAuthentication forwards to Policy.ContinueAuthentication.
func ContinueAuthentication(state string, answer interstate_mapper_types.StepAnswer, client interstate_mapper_types.ClientInfo) witTypes.Result[interstate_mapper_types.AuthOutcome, string] {
	defer gcOn()()
	return call("continue-authentication", func(p mapper.Policy) (interstate_mapper_types.AuthOutcome, error) {
		return p.ContinueAuthentication(state, answer, client)
	})
}

// ListDesktops forwards to Policy.ListDesktops.
func ListDesktops(user interstate_mapper_types.Identity, client interstate_mapper_types.ClientInfo) witTypes.Result[[]interstate_mapper_types.Desktop, string] {
	defer gcOn()()
	return call("list-desktops", func(p mapper.Policy) ([]interstate_mapper_types.Desktop, error) {
		return p.ListDesktops(user, client)
	})
}

// Allocate forwards to Policy.Allocate.
func Allocate(user interstate_mapper_types.Identity, desktopID string, client interstate_mapper_types.ClientInfo) witTypes.Result[interstate_mapper_types.Allocation, string] {
	defer gcOn()()
	return call("allocate", func(p mapper.Policy) (interstate_mapper_types.Allocation, error) {
		return p.Allocate(user, desktopID, client)
	})
}

// Operate forwards to Policy.Operate.
func Operate(user interstate_mapper_types.Identity, desktopID string, op interstate_mapper_types.Operation, client interstate_mapper_types.ClientInfo) witTypes.Result[interstate_mapper_types.OperationOutcome, string] {
	defer gcOn()()
	return call("operate", func(p mapper.Policy) (interstate_mapper_types.OperationOutcome, error) {
		return p.Operate(user, desktopID, op, client)
	})
}

// ChangePassword forwards to Policy.ChangePassword.
func ChangePassword(change interstate_mapper_types.PasswordChange) witTypes.Result[interstate_mapper_types.PasswordChangeOutcome, string] {
	defer gcOn()()
	return call("change-password", func(p mapper.Policy) (interstate_mapper_types.PasswordChangeOutcome, error) {
		return p.ChangePassword(change)
	})
}
