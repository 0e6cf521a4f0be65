// Command stress is a mapper that exists to load the SDK's export glue and its GC workaround:
// every export reads all of its arguments, copies them (garbage for the collector) and
// answers with their lengths and an FNV-1a checksum, so a host-side test can call one
// instance many times with multi-megabyte arguments and check each answer. Build it with
// `../build.sh --stress`. It never calls a host import.
package main

import (
	"fmt"
	"hash/fnv"

	"interstate/sdk/mapper"
)

// StressPolicy implements mapper.Policy for the stress test.
type StressPolicy struct {
	settingsBytes int
}

func init() {
	mapper.Register(&StressPolicy{})
}

// main is never called.
func main() {}

// digest copies every part (garbage on purpose) and returns "len=<a>,<b>,... fnv=<hex>",
// the FNV-1a 32-bit hash of the parts concatenated.
func digest(parts ...string) string {
	hash := fnv.New32a()
	lengths := ""
	for i, part := range parts {
		copied := []byte(part)
		hash.Write(copied)
		if i > 0 {
			lengths += ","
		}
		lengths += fmt.Sprint(len(copied))
	}
	return fmt.Sprintf("len=%s fnv=%08x", lengths, hash.Sum32())
}

// Configure accepts any text and remembers its length.
func (p *StressPolicy) Configure(settingsJSON string) error {
	p.settingsBytes = len([]byte(settingsJSON))
	return nil
}

// Domains answers one domain.
func (p *StressPolicy) Domains() []string {
	return []string{"STRESS"}
}

// Authenticate rejects with the digest of username and password as the reason.
func (p *StressPolicy) Authenticate(login mapper.PasswordLogin) (mapper.AuthOutcome, error) {
	return mapper.Rejected(mapper.BadCredentials, digest(login.Username, login.Password)), nil
}

// ContinueAuthentication rejects with the digest of the state, the answers' values and the
// button (a disclaimer answer adds nothing to the state).
func (p *StressPolicy) ContinueAuthentication(state string, answer mapper.StepAnswer, _ mapper.ClientInfo) (mapper.AuthOutcome, error) {
	parts := []string{state}
	if answer.Tag() == mapper.TagDialogAnswer {
		for _, field := range answer.Dialog().Fields {
			parts = append(parts, field.Value)
		}
		parts = append(parts, answer.Dialog().ButtonId)
	}
	return mapper.Rejected(mapper.AccessDenied, digest(parts...)), nil
}

// ListDesktops answers one desktop whose name is the digest of the user name and attribute values.
func (p *StressPolicy) ListDesktops(user mapper.Identity, _ mapper.ClientInfo) ([]mapper.Desktop, error) {
	parts := []string{user.Username}
	for _, attribute := range user.Attributes {
		parts = append(parts, attribute.Value)
	}
	return []mapper.Desktop{{
		Id:          "stress",
		Name:        digest(parts...),
		Hostname:    "stress.invalid",
		AgentPort:   mapper.None[uint16](),
		SessionKind: mapper.SessionVDI,
		State:       mapper.StateUnknown,
		Operations:  []mapper.Operation{},
	}}, nil
}

// Allocate refuses with the digest of the user name and the desktop id.
func (p *StressPolicy) Allocate(user mapper.Identity, desktopID string, _ mapper.ClientInfo) (mapper.Allocation, error) {
	return mapper.Refused(mapper.UnknownDesktop, digest(user.Username, desktopID)), nil
}

// Operate refuses with the digest of the user name and the desktop id.
func (p *StressPolicy) Operate(user mapper.Identity, desktopID string, _ mapper.Operation, _ mapper.ClientInfo) (mapper.OperationOutcome, error) {
	return mapper.OperationRefused(digest(user.Username, desktopID)), nil
}

// ChangePassword refuses with the digest of the user name and both passwords.
func (p *StressPolicy) ChangePassword(change mapper.PasswordChange) (mapper.PasswordChangeOutcome, error) {
	return mapper.PasswordRejected(mapper.WrongPassword, digest(change.Username, change.OldPassword, change.NewPassword)), nil
}
