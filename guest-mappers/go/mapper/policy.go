package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"interstate/sdk/mapper"
)

// maxCodeAttempts is how many wrong codes end a login.
const maxCodeAttempts = 3

// codePrompt is the prompt of the one-time-code dialog.
const codePrompt = "Enter the 6-digit code from your authenticator app"

// wrongCodeText is the dialog's error after a wrong code.
const wrongCodeText = "Wrong code, try again"

// decoyHash is a well-formed ILS hash of a throw-away password, checked for unknown users so
// that a login with an unknown name costs the same host time as one with a wrong password.
const decoyHash = "9f70564e7357585cee52b79fa889026721f9eef260bca0ac64a5a549039e919b"

// ExamplePolicy is the example policy: users and groups from the settings, optional TOTP.
// Edit it, or replace it with your own type implementing mapper.Policy.
type ExamplePolicy struct {
	settings *Settings
	// now is the wall clock (WASI's in the component); tests replace it.
	now func() time.Time
}

// NewExamplePolicy returns the policy with the real clock.
func NewExamplePolicy() *ExamplePolicy {
	return &ExamplePolicy{now: time.Now}
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

// Authenticate checks a password login.
func (p *ExamplePolicy) Authenticate(login mapper.PasswordLogin) (mapper.AuthOutcome, error) {
	settings, err := p.current()
	if err != nil {
		return mapper.AuthOutcome{}, err
	}
	user, known := settings.Users[login.Username]
	if !known {
		mapper.VerifyPassword(login.Password, decoyHash)
		return p.reject(login.Username, mapper.BadCredentials, "unknown user"), nil
	}
	if !mapper.VerifyPassword(login.Password, user.PasswordHash) {
		return p.reject(login.Username, mapper.BadCredentials, "wrong password"), nil
	}
	if user.Disabled {
		return p.reject(login.Username, mapper.AccessDenied, "account disabled"), nil
	}
	if len(settings.DesktopsOf(user)) == 0 {
		return p.reject(login.Username, mapper.NoResources, "no desktops in the user's groups"), nil
	}
	if user.MFA {
		logUser(user.Username, "challenge")
		return challenge(user.Username, 0, ""), nil
	}
	logUser(user.Username, "accepted")
	return p.accept(user), nil
}

// ContinueAuthentication checks the one-time code of a challenged login.
func (p *ExamplePolicy) ContinueAuthentication(state string, answers []mapper.FieldAnswer, _ mapper.ClientInfo) (mapper.AuthOutcome, error) {
	settings, err := p.current()
	if err != nil {
		return mapper.AuthOutcome{}, err
	}
	pending, err := parseState(state)
	if err != nil {
		return mapper.AuthOutcome{}, err
	}
	user, known := settings.Users[pending.User]
	if !known || user.Disabled || !user.MFA || user.TOTPKey == nil {
		return p.reject(pending.User, mapper.AccessDenied, "user no longer allowed to log in"), nil
	}
	code := ""
	for _, answer := range answers {
		if answer.Id == "code" {
			code = answer.Value
			break
		}
	}
	if VerifyTOTP(user.TOTPKey, code, p.now().Unix()) {
		logUser(user.Username, "accepted")
		return p.accept(user), nil
	}
	attempts := pending.Attempts + 1
	if attempts >= maxCodeAttempts {
		return p.reject(user.Username, mapper.BadCredentials, fmt.Sprintf("%d wrong codes", attempts)), nil
	}
	logUser(user.Username, fmt.Sprintf("wrong code (attempt %d of %d)", attempts, maxCodeAttempts))
	return challenge(user.Username, attempts, wrongCodeText), nil
}

// ListDesktops lists the desktops of a user, looked up again in the settings: the identity's
// attributes are not trusted, and the settings may have changed since login.
func (p *ExamplePolicy) ListDesktops(user mapper.Identity, _ mapper.ClientInfo) ([]mapper.Desktop, error) {
	entries, err := p.desktopsOf(user.Username)
	if err != nil {
		return nil, err
	}
	desktops := make([]mapper.Desktop, 0, len(entries))
	for _, entry := range entries {
		desktops = append(desktops, mapper.Desktop{
			Id:          entry.ID,
			Name:        entry.Name,
			Hostname:    entry.Hostname,
			AgentPort:   agentPort(entry),
			SessionKind: mapper.SessionVDI,
			State:       mapper.StateUnknown,
			Operations:  []mapper.Operation{},
		})
	}
	logUser(user.Username, fmt.Sprintf("%d desktop(s)", len(desktops)))
	return desktops, nil
}

// Allocate launches the user's desktop with that id, or refuses.
func (p *ExamplePolicy) Allocate(user mapper.Identity, desktopID string, _ mapper.ClientInfo) (mapper.Allocation, error) {
	entries, err := p.desktopsOf(user.Username)
	if err != nil {
		return mapper.Allocation{}, err
	}
	for _, entry := range entries {
		if entry.ID == desktopID {
			logUser(user.Username, "launch on "+entry.Hostname)
			return mapper.LaunchOn(mapper.Launch{
				Hostname:  entry.Hostname,
				AgentPort: agentPort(entry),
				Username:  mapper.None[string](),
				Domain:    mapper.None[string](),
			}), nil
		}
	}
	logUser(user.Username, "refused desktop "+strconv.Quote(desktopID))
	return mapper.Refused(mapper.UnknownDesktop, strconv.Quote(desktopID)+" is not one of the user's desktops"), nil
}

func (p *ExamplePolicy) current() (*Settings, error) {
	if p.settings == nil {
		return nil, errors.New("configure was not called")
	}
	return p.settings, nil
}

// desktopsOf is the desktops of a known, enabled user; none otherwise.
func (p *ExamplePolicy) desktopsOf(username string) ([]DesktopEntry, error) {
	settings, err := p.current()
	if err != nil {
		return nil, err
	}
	user, known := settings.Users[username]
	if !known || user.Disabled {
		return nil, nil
	}
	return settings.DesktopsOf(user), nil
}

func (p *ExamplePolicy) accept(user User) mapper.AuthOutcome {
	return mapper.Accepted(mapper.Identity{
		Username:   user.Username,
		Domain:     p.settings.LogonDomain,
		Attributes: []mapper.Attribute{{Key: "groups", Value: strings.Join(user.Groups, ",")}},
	})
}

func (p *ExamplePolicy) reject(username string, kind mapper.RejectionKind, reason string) mapper.AuthOutcome {
	kindNames := map[mapper.RejectionKind]string{
		mapper.BadCredentials:  "bad-credentials",
		mapper.ExpiredPassword: "expired-password",
		mapper.AccessDenied:    "access-denied",
		mapper.NoResources:     "no-resources",
	}
	logUser(username, fmt.Sprintf("rejected (%s: %s)", kindNames[kind], reason))
	return mapper.Rejected(kind, reason)
}

func agentPort(entry DesktopEntry) mapper.Option[uint16] {
	if entry.AgentPort == 0 {
		return mapper.None[uint16]()
	}
	return mapper.Some(entry.AgentPort)
}

// logUser writes one decision line; never pass it a password or a code.
func logUser(username, message string) {
	mapper.Log(mapper.Info, fmt.Sprintf("user %s: %s", strconv.Quote(username), message))
}

// challengeState is what the dialog's opaque state carries to the next step.
type challengeState struct {
	User     string `json:"user"`
	Attempts int    `json:"attempts"`
}

func challenge(username string, attempts int, errorText string) mapper.AuthOutcome {
	// Marshalling a struct of a string and an int cannot fail.
	state, _ := json.Marshal(challengeState{User: username, Attempts: attempts})
	return mapper.Challenge(mapper.Dialog{
		Prompt:    codePrompt,
		ErrorText: errorText,
		Fields:    []mapper.DialogField{{Id: "code", Label: "Code", Kind: mapper.FieldSecret}},
		State:     string(state),
	})
}

func parseState(state string) (challengeState, error) {
	var parsed struct {
		User     *string `json:"user"`
		Attempts *int    `json:"attempts"`
	}
	if err := json.Unmarshal([]byte(state), &parsed); err != nil {
		return challengeState{}, errors.New("challenge state is not valid JSON")
	}
	if parsed.User == nil || parsed.Attempts == nil || *parsed.Attempts < 0 {
		return challengeState{}, errors.New("challenge state is malformed")
	}
	return challengeState{User: *parsed.User, Attempts: *parsed.Attempts}, nil
}
