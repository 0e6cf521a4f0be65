// Package mapper is the Go face of the Interstate mapper contract (wit/mapper.wit, package
// interstate:mapper@0.1.0). A mapper is a type implementing Policy, registered once with
// Register from an init function of package main. The generated bindings, the export glue and
// the GC workaround live next to this package in sdk/ and need no editing.
//
// The contract in one paragraph: the broker makes a fresh instance for every call and calls
// Configure with the operator's settings JSON just before it, so keep what Configure parsed
// in your Policy value and nothing else between calls. A returned error fails the one request
// (use it for bugs and upstream outages); a refused user is an AuthOutcome made with
// Rejected. Never log a password or a one-time code.
package mapper

import (
	witTypes "go.bytecodealliance.org/pkg/wit/types"

	types "interstate/sdk/bindings/interstate_mapper_types"
)

// Policy is what a mapper implements: one method per export of interstate:mapper/policy.
type Policy interface {
	// Configure receives the operator's mapper.settings object as JSON. Validate it and keep
	// it for the call that follows; an error names the key and what was expected.
	Configure(settingsJSON string) error
	// Domains lists the logon domains offered to clients, in display order.
	Domains() []string
	// Authenticate checks a password login.
	Authenticate(login PasswordLogin) (AuthOutcome, error)
	// ContinueAuthentication continues a login that returned Challenge, with the dialog's
	// state and the user's answers.
	ContinueAuthentication(state string, answers []FieldAnswer, client ClientInfo) (AuthOutcome, error)
	// ListDesktops lists the desktops of an accepted user.
	ListDesktops(user Identity, client ClientInfo) ([]Desktop, error)
	// Allocate decides how to connect user to the desktop with desktopID.
	Allocate(user Identity, desktopID string, client ClientInfo) (Allocation, error)
}

var registered Policy

// Register installs the policy the component's exports call. Call it once, from an init
// function of package main.
func Register(p Policy) {
	registered = p
}

// Registered returns the policy given to Register, or nil.
func Registered() Policy {
	return registered
}

// The contract's records, under shorter names.
type (
	ClientInfo    = types.ClientInfo
	Attribute     = types.Attribute
	Identity      = types.Identity
	RejectionKind = types.RejectionKind
	Rejection     = types.Rejection
	FieldKind     = types.FieldKind
	DialogField   = types.DialogField
	Dialog        = types.Dialog
	AuthOutcome   = types.AuthOutcome
	PasswordLogin = types.PasswordLogin
	FieldAnswer   = types.FieldAnswer
	SessionKind   = types.SessionKind
	DesktopState  = types.DesktopState
	Operation     = types.Operation
	Desktop       = types.Desktop
	LaunchTarget  = types.LaunchTarget
	Launch        = types.Launch
	RefusalKind   = types.RefusalKind
	Allocation    = types.Allocation
)

// The contract's enums.
const (
	BadCredentials  = types.RejectionKind_BadCredentials
	ExpiredPassword = types.RejectionKind_ExpiredPassword
	AccessDenied    = types.RejectionKind_AccessDenied
	NoResources     = types.RejectionKind_NoResources

	FieldText     = types.FieldKind_Text
	FieldSecret   = types.FieldKind_Secret
	FieldNumber   = types.FieldKind_Number
	FieldReadOnly = types.FieldKind_ReadOnly

	SessionVDI = types.SessionKind_Vdi
	SessionRDS = types.SessionKind_Rds

	StateUnknown  = types.DesktopState_Unknown
	StateRunning  = types.DesktopState_Running
	StateStopped  = types.DesktopState_Stopped
	StateStarting = types.DesktopState_Starting

	OperationRestart   = types.Operation_Restart
	OperationPowerDown = types.Operation_PowerDown
	OperationPowerUp   = types.Operation_PowerUp

	UnknownDesktop = types.RefusalKind_UnknownDesktop
	NoLicense      = types.RefusalKind_NoLicense
	Unavailable    = types.RefusalKind_Unavailable
)

// The variants' tags, for switching on AuthOutcome.Tag() and Allocation.Tag().
const (
	TagAccepted  = types.AuthOutcome_Accepted
	TagRejected  = types.AuthOutcome_Rejected
	TagChallenge = types.AuthOutcome_Challenge

	TagLaunch   = types.Allocation_Launch
	TagDirect   = types.Allocation_Direct
	TagTryAgain = types.Allocation_TryAgain
	TagRefused  = types.Allocation_Refused
)

// Accepted lets the user in.
func Accepted(identity Identity) AuthOutcome {
	return types.MakeAuthOutcomeAccepted(identity)
}

// Rejected refuses the user; reason goes to the log only.
func Rejected(kind RejectionKind, reason string) AuthOutcome {
	return types.MakeAuthOutcomeRejected(Rejection{Kind: kind, Reason: reason})
}

// Challenge asks the user for another step, shown as a dialog.
func Challenge(dialog Dialog) AuthOutcome {
	return types.MakeAuthOutcomeChallenge(dialog)
}

// LaunchOn asks the broker to launch the session on the desktop's agent.
func LaunchOn(launch Launch) Allocation {
	return types.MakeAllocationLaunch(launch)
}

// Direct connects the client to a session the mapper prepared itself.
func Direct(target LaunchTarget) Allocation {
	return types.MakeAllocationDirect(target)
}

// TryAgain tells the client to retry later; reason goes to the log.
func TryAgain(reason string) Allocation {
	return types.MakeAllocationTryAgain(reason)
}

// Refused refuses the allocation; reason goes to the log.
func Refused(kind RefusalKind, reason string) Allocation {
	return types.MakeAllocationRefused(witTypes.Tuple2[RefusalKind, string]{F0: kind, F1: reason})
}

// Option is the contract's option type (Desktop.AgentPort, Launch.Username...).
type Option[T any] = witTypes.Option[T]

// Some and None build the contract's option values (Desktop.AgentPort, Launch.Username...).
func Some[T any](value T) witTypes.Option[T] { return witTypes.Some(value) }

// None is the empty option; see Some.
func None[T any]() witTypes.Option[T] { return witTypes.None[T]() }
