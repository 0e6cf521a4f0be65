// Package mapper is the Go face of the Interstate mapper contract (wit/mapper.wit, package
// interstate:mapper@0.2.0). A mapper is a type implementing Policy, registered once with
// Register from an init function of package main. The generated bindings, the export glue and
// the GC workaround live next to this package in sdk/ and need no editing.
//
// The contract in one paragraph: the broker makes a fresh instance for every call and calls
// Configure with the operator's settings JSON just before it, so keep what Configure parsed
// in your Policy value and nothing else between calls. A returned error fails the one request
// (use it for bugs and upstream outages); a refused user is an AuthOutcome made with
// Rejected. Never log a password or a one-time code.
//
// What the broker offers (log, password hashes, TOTP, the key-value store, the directory and
// outgoing HTTP) is in host.go: package functions (Log, VerifyTotp, StoreGet, HTTPDo...) and
// the same set as the Host interface (Broker is the real one), so that a policy can take a
// Host and its unit tests can give it a fake.
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
	// ContinueAuthentication continues a login that returned Challenge or Disclaimer: state
	// is that step's state, answer what the user did (a DialogAnswer, or the disclaimer
	// accepted; switch on answer.Tag() with TagDialogAnswer and TagDisclaimerAccepted).
	ContinueAuthentication(state string, answer StepAnswer, client ClientInfo) (AuthOutcome, error)
	// ListDesktops lists the desktops of an accepted user.
	ListDesktops(user Identity, client ClientInfo) ([]Desktop, error)
	// Allocate decides how to connect user to the desktop with desktopID.
	Allocate(user Identity, desktopID string, client ClientInfo) (Allocation, error)
	// Operate performs op on the desktop with desktopID, one the same user listed with op
	// among its Operations (the broker checks both first). Answer OperationUnsupported() when
	// the policy offers no operations.
	Operate(user Identity, desktopID string, op Operation, client ClientInfo) (OperationOutcome, error)
	// ChangePassword changes a password the client asked to change (after a login was
	// Rejected with ExpiredPassword). Answer PasswordChangeUnsupported() when the policy
	// cannot change passwords. Never log either password.
	ChangePassword(change PasswordChange) (PasswordChangeOutcome, error)
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
	DialogButton  = types.DialogButton
	Dialog        = types.Dialog
	Disclaimer    = types.Disclaimer
	AuthOutcome   = types.AuthOutcome
	PasswordLogin = types.PasswordLogin
	FieldAnswer   = types.FieldAnswer
	DialogAnswer  = types.DialogAnswer
	StepAnswer    = types.StepAnswer
	SessionKind   = types.SessionKind
	DesktopState  = types.DesktopState
	Operation     = types.Operation
	Desktop       = types.Desktop
	LaunchTarget  = types.LaunchTarget
	Launch        = types.Launch
	RefusalKind   = types.RefusalKind
	Allocation    = types.Allocation

	OperationOutcome      = types.OperationOutcome
	PasswordChange        = types.PasswordChange
	PasswordRejectionKind = types.PasswordRejectionKind
	PasswordRejection     = types.PasswordRejection
	PasswordChangeOutcome = types.PasswordChangeOutcome
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

	WrongPassword   = types.PasswordRejectionKind_WrongPassword
	WeakPassword    = types.PasswordRejectionKind_WeakPassword
	TooManyAttempts = types.PasswordRejectionKind_TooManyAttempts
	DirectoryError  = types.PasswordRejectionKind_DirectoryError
)

// The variants' tags, for switching on AuthOutcome.Tag(), StepAnswer.Tag(),
// Allocation.Tag(), OperationOutcome.Tag() and PasswordChangeOutcome.Tag().
const (
	TagAccepted   = types.AuthOutcome_Accepted
	TagRejected   = types.AuthOutcome_Rejected
	TagChallenge  = types.AuthOutcome_Challenge
	TagDisclaimer = types.AuthOutcome_Disclaimer

	TagDialogAnswer       = types.StepAnswer_Dialog
	TagDisclaimerAccepted = types.StepAnswer_DisclaimerAccepted

	TagLaunch   = types.Allocation_Launch
	TagDirect   = types.Allocation_Direct
	TagTryAgain = types.Allocation_TryAgain
	TagRefused  = types.Allocation_Refused

	TagOperationDone        = types.OperationOutcome_Done
	TagOperationTryAgain    = types.OperationOutcome_TryAgain
	TagOperationRefused     = types.OperationOutcome_Refused
	TagOperationUnsupported = types.OperationOutcome_Unsupported

	TagPasswordChanged     = types.PasswordChangeOutcome_Changed
	TagPasswordRejected    = types.PasswordChangeOutcome_Rejected
	TagPasswordUnsupported = types.PasswordChangeOutcome_Unsupported
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

// ShowDisclaimer asks the user to accept a notice first; state comes back to
// ContinueAuthentication with the answer TagDisclaimerAccepted.
func ShowDisclaimer(disclaimer Disclaimer) AuthOutcome {
	return types.MakeAuthOutcomeDisclaimer(disclaimer)
}

// DialogAnswered builds the step answer of a dialog (for tests: the broker builds the real ones).
func DialogAnswered(answer DialogAnswer) StepAnswer {
	return types.MakeStepAnswerDialog(answer)
}

// DisclaimerAccepted builds the step answer of an accepted disclaimer (for tests).
func DisclaimerAccepted() StepAnswer {
	return types.MakeStepAnswerDisclaimerAccepted()
}

// OperationDone: done, or accepted by the power API; detail goes to the log.
func OperationDone(detail string) OperationOutcome {
	return types.MakeOperationOutcomeDone(detail)
}

// OperationTryAgain: started but not finished; the user is told to try again in a moment.
func OperationTryAgain(detail string) OperationOutcome {
	return types.MakeOperationOutcomeTryAgain(detail)
}

// OperationRefused: refused, or the power API failed; detail goes to the log.
func OperationRefused(detail string) OperationOutcome {
	return types.MakeOperationOutcomeRefused(detail)
}

// OperationUnsupported: this policy cannot perform the operation on this desktop.
func OperationUnsupported() OperationOutcome {
	return types.MakeOperationOutcomeUnsupported()
}

// PasswordChanged: the password was changed and the login goes on as next says (Accepted,
// Challenge, ShowDisclaimer, or Rejected to ask for the password again).
func PasswordChanged(next AuthOutcome) PasswordChangeOutcome {
	return types.MakePasswordChangeOutcomeChanged(next)
}

// PasswordRejected: the password was not changed; reason goes to the log only.
func PasswordRejected(kind PasswordRejectionKind, reason string) PasswordChangeOutcome {
	return types.MakePasswordChangeOutcomeRejected(PasswordRejection{Kind: kind, Reason: reason})
}

// PasswordChangeUnsupported: this policy cannot change passwords.
func PasswordChangeUnsupported() PasswordChangeOutcome {
	return types.MakePasswordChangeOutcomeUnsupported()
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
