package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"interstate/sdk/mapper"
)

// maxCodeAttempts is how many wrong codes end a login.
const maxCodeAttempts = 3

// The texts of the one-time-code dialog (the same in every language's example).
const (
	codePrompt       = "Enter the 6-digit code from your authenticator app"
	wrongCodeText    = "Wrong code, try again"
	replayedCodeText = "That code was already used, wait for the next one"
)

// decoyHash is a well-formed ILS hash of a throw-away password, checked for unknown users so
// that a login with an unknown name costs the same host time as one with a wrong password.
const decoyHash = "9f70564e7357585cee52b79fa889026721f9eef260bca0ac64a5a549039e919b"

// passwordHashKey is the store key of a user's changed password hash.
func passwordHashKey(username string) string { return "password-hash:" + username }

// ExamplePolicy is the example policy: users and groups from the settings, an optional
// disclaimer, optional TOTP, password changes kept in the store, the last desktop listed
// first, and power operations through an optional power API. Edit it, or replace it with
// your own type implementing mapper.Policy.
type ExamplePolicy struct {
	settings *Settings
	// host is the broker (mapper.Broker); tests give a fake.
	host mapper.Host
}

// NewExamplePolicy returns the policy talking to the real broker.
func NewExamplePolicy() *ExamplePolicy {
	return &ExamplePolicy{host: mapper.Broker}
}

// Configure parses and validates the settings.
func (p *ExamplePolicy) Configure(settingsJSON string) error {
	settings, err := ParseSettings(settingsJSON)
	if err != nil {
		return err
	}
	p.settings = settings
	return nil
}

// Domains lists the logon domains to offer.
func (p *ExamplePolicy) Domains() []string {
	if p.settings == nil {
		return nil
	}
	return p.settings.Domains
}

// Authenticate checks a password login and logs the decision.
func (p *ExamplePolicy) Authenticate(login mapper.PasswordLogin) (mapper.AuthOutcome, error) {
	outcome, err := p.authenticate(login)
	if err != nil {
		return mapper.AuthOutcome{}, err
	}
	logUser(p.host, login.Username, describeAuth(outcome))
	return outcome, nil
}

func (p *ExamplePolicy) authenticate(login mapper.PasswordLogin) (mapper.AuthOutcome, error) {
	settings, err := p.current()
	if err != nil {
		return mapper.AuthOutcome{}, err
	}
	user, known := settings.Users[login.Username]
	if !known {
		p.host.VerifyPassword(login.Password, decoyHash)
		return mapper.Rejected(mapper.BadCredentials, "unknown user"), nil
	}
	hash, changed, err := p.passwordHash(user)
	if err != nil {
		return mapper.AuthOutcome{}, err
	}
	if !p.host.VerifyPassword(login.Password, hash) {
		return mapper.Rejected(mapper.BadCredentials, "wrong password"), nil
	}
	if refusal, refused := p.refusal(user); refused {
		return refusal, nil
	}
	if user.PasswordExpired && !changed {
		return mapper.Rejected(mapper.ExpiredPassword, "password expired"), nil
	}
	return p.afterPassword(user), nil
}

// refusal is step 3 of a login: a disabled user, or one without desktops, is refused.
func (p *ExamplePolicy) refusal(user User) (mapper.AuthOutcome, bool) {
	if user.Disabled {
		return mapper.Rejected(mapper.AccessDenied, "account disabled"), true
	}
	if len(p.settings.DesktopsOf(user)) == 0 {
		return mapper.Rejected(mapper.NoResources, "no desktops in the user's groups"), true
	}
	return mapper.AuthOutcome{}, false
}

// passwordHash is the hash a password is checked against: the changed one in the store when
// there is one (changed is then true), else the one in the settings. A store that cannot be
// read is an error: falling back to the settings would let an old password in.
func (p *ExamplePolicy) passwordHash(user User) (hash string, changed bool, err error) {
	stored, found, err := p.host.StoreGet(passwordHashKey(user.Username))
	if err != nil {
		return "", false, fmt.Errorf("reading the password hash of %s: %w", strconv.Quote(user.Username), err)
	}
	if found {
		return string(stored), true, nil
	}
	return user.PasswordHash, false, nil
}

// afterPassword is what follows a right password: the disclaimer if there is one, then the
// code dialog if the user has MFA, then acceptance.
func (p *ExamplePolicy) afterPassword(user User) mapper.AuthOutcome {
	if p.settings.Disclaimer != "" {
		return mapper.ShowDisclaimer(mapper.Disclaimer{
			Text:  p.settings.Disclaimer,
			State: disclaimerState(user.Username),
		})
	}
	return p.afterDisclaimer(user)
}

// afterDisclaimer is the code dialog if the user has MFA, else acceptance.
func (p *ExamplePolicy) afterDisclaimer(user User) mapper.AuthOutcome {
	if user.MFA {
		return codeDialog(user.Username, 0, "")
	}
	return p.accept(user)
}

// ContinueAuthentication goes on after the disclaimer or the code dialog, and logs the
// decision.
func (p *ExamplePolicy) ContinueAuthentication(state string, answer mapper.StepAnswer, _ mapper.ClientInfo) (mapper.AuthOutcome, error) {
	outcome, username, err := p.continueAuthentication(state, answer)
	if err != nil {
		return mapper.AuthOutcome{}, err
	}
	logUser(p.host, username, describeAuth(outcome))
	return outcome, nil
}

func (p *ExamplePolicy) continueAuthentication(state string, answer mapper.StepAnswer) (outcome mapper.AuthOutcome, username string, err error) {
	settings, err := p.current()
	if err != nil {
		return mapper.AuthOutcome{}, "", err
	}
	pending, err := parseStepState(state)
	if err != nil {
		return mapper.AuthOutcome{}, "", err
	}
	answered := stageDisclaimer
	if answer.Tag() == mapper.TagDialogAnswer {
		answered = stageCode
	}
	if answered != pending.Stage {
		return mapper.AuthOutcome{}, "", errors.New("step answer does not match the pending step")
	}
	user, known := settings.Users[pending.User]
	if !known || user.Disabled || (pending.Stage == stageCode && !user.MFA) {
		return mapper.Rejected(mapper.AccessDenied, "user no longer allowed to log in"), pending.User, nil
	}
	if pending.Stage == stageDisclaimer {
		return p.afterDisclaimer(user), user.Username, nil
	}

	dialog := answer.Dialog()
	if dialog.ButtonId == "cancel" {
		return mapper.Rejected(mapper.AccessDenied, "code dialog cancelled"), user.Username, nil
	}
	code := ""
	for _, field := range dialog.Fields {
		if field.Id == "code" {
			code = field.Value
			break
		}
	}
	verdict := p.host.VerifyTotp(user.TOTPSecret, code)
	if verdict == mapper.TotpAccepted {
		return p.accept(user), user.Username, nil
	}
	attempts := pending.Attempts + 1
	if attempts >= maxCodeAttempts {
		return mapper.Rejected(mapper.BadCredentials, fmt.Sprintf("%d wrong codes", attempts)), user.Username, nil
	}
	errorText := wrongCodeText
	if verdict == mapper.TotpReplayed {
		errorText = replayedCodeText
	}
	return codeDialog(user.Username, attempts, errorText), user.Username, nil
}

func (p *ExamplePolicy) current() (*Settings, error) {
	if p.settings == nil {
		return nil, errors.New("configure was not called")
	}
	return p.settings, nil
}

func (p *ExamplePolicy) accept(user User) mapper.AuthOutcome {
	return mapper.Accepted(mapper.Identity{
		Username:   user.Username,
		Domain:     p.settings.LogonDomain,
		Attributes: []mapper.Attribute{{Key: "groups", Value: strings.Join(user.Groups, ",")}},
	})
}

var rejectionNames = map[mapper.RejectionKind]string{
	mapper.BadCredentials:  "bad-credentials",
	mapper.ExpiredPassword: "expired-password",
	mapper.AccessDenied:    "access-denied",
	mapper.NoResources:     "no-resources",
}

// describeAuth is an outcome as a log line says it (never a password or a code).
func describeAuth(outcome mapper.AuthOutcome) string {
	switch outcome.Tag() {
	case mapper.TagAccepted:
		return "accepted"
	case mapper.TagRejected:
		rejection := outcome.Rejected()
		return fmt.Sprintf("rejected (%s: %s)", rejectionNames[rejection.Kind], rejection.Reason)
	case mapper.TagDisclaimer:
		return "disclaimer"
	}
	dialog := outcome.Challenge()
	state, err := parseStepState(dialog.State)
	switch {
	case err != nil || state.Attempts == 0:
		return "code dialog"
	case dialog.ErrorText == replayedCodeText:
		return fmt.Sprintf("code dialog again (replayed code, attempt %d of %d)", state.Attempts, maxCodeAttempts)
	default:
		return fmt.Sprintf("code dialog again (wrong code, attempt %d of %d)", state.Attempts, maxCodeAttempts)
	}
}

// logUser writes one decision line; never pass it a password or a code.
func logUser(host mapper.Host, username, message string) {
	host.Log(mapper.Info, fmt.Sprintf("user %s: %s", strconv.Quote(username), message))
}

func codeDialog(username string, attempts int, errorText string) mapper.AuthOutcome {
	return mapper.Challenge(mapper.Dialog{
		Prompt:    codePrompt,
		ErrorText: errorText,
		Fields:    []mapper.DialogField{{Id: "code", Label: "Code", Kind: mapper.FieldSecret}},
		Buttons: []mapper.DialogButton{
			{Id: "ok", Label: "Verify", IsDefault: true},
			{Id: "cancel", Label: "Cancel", IsDefault: false},
		},
		State: codeState(username, attempts),
	})
}
