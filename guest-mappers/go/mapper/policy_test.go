package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"interstate/sdk/mapper"
)

// These tests run the policy natively against fakeHost (host_test.go). Every rule of the
// example policy (docs: the 0.2 example policy, the same in every language) has a test here.

const (
	aliceSecret    = "JBSWY3DPEHPK3PXP"
	disclaimerText = "This workstation is for authorised studio work only. Sessions may be monitored."
	rightCode      = "123456"
	replayedCode   = "654321"
)

// configured is the policy with example.settings.json, changed by edit (nil: as it is).
func configured(t *testing.T, edit func(settings map[string]any)) (*ExamplePolicy, *fakeHost) {
	t.Helper()
	host := newFakeHost(t)
	host.verdicts[rightCode] = mapper.TotpAccepted
	host.verdicts[replayedCode] = mapper.TotpReplayed
	p := &ExamplePolicy{host: host}
	var settings map[string]any
	if err := json.Unmarshal([]byte(exampleSettings(t)), &settings); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(settings)
	}
	text, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Configure(string(text)); err != nil {
		t.Fatal(err)
	}
	return p, host
}

func noDisclaimer(settings map[string]any) { delete(settings, "disclaimer") }

func withPowerAPI(settings map[string]any) { settings["power_api"] = "http://power.example:8080/v1" }

func login(user, password string) mapper.PasswordLogin {
	return mapper.PasswordLogin{Username: user, Password: password, Domain: "EXAMPLE"}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(value T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return value
	}
}

func wantRejected(t *testing.T, outcome mapper.AuthOutcome, kind mapper.RejectionKind, reason string) {
	t.Helper()
	if outcome.Tag() != mapper.TagRejected || outcome.Rejected().Kind != kind || outcome.Rejected().Reason != reason {
		t.Fatalf("outcome %+v, want rejected(%s, %q)", outcome, rejectionNames[kind], reason)
	}
}

func wantAccepted(t *testing.T, outcome mapper.AuthOutcome, username string) mapper.Identity {
	t.Helper()
	if outcome.Tag() != mapper.TagAccepted || outcome.Accepted().Username != username {
		t.Fatalf("outcome %+v, want %s accepted", outcome, username)
	}
	return outcome.Accepted()
}

func wantDisclaimer(t *testing.T, outcome mapper.AuthOutcome, username string) mapper.Disclaimer {
	t.Helper()
	if outcome.Tag() != mapper.TagDisclaimer {
		t.Fatalf("outcome %+v, want the disclaimer", outcome)
	}
	disclaimer := outcome.Disclaimer()
	if disclaimer.Text != disclaimerText {
		t.Errorf("disclaimer text %q", disclaimer.Text)
	}
	wantState(t, disclaimer.State, map[string]any{"user": username, "stage": "disclaimer"})
	return disclaimer
}

// wantCodeDialog checks every text of the code dialog and its state.
func wantCodeDialog(t *testing.T, outcome mapper.AuthOutcome, username string, attempts int, errorText string) mapper.Dialog {
	t.Helper()
	if outcome.Tag() != mapper.TagChallenge {
		t.Fatalf("outcome %+v, want the code dialog", outcome)
	}
	dialog := outcome.Challenge()
	if dialog.Prompt != "Enter the 6-digit code from your authenticator app" || dialog.ErrorText != errorText {
		t.Errorf("prompt %q, error text %q (want %q)", dialog.Prompt, dialog.ErrorText, errorText)
	}
	if !slices.Equal(dialog.Fields, []mapper.DialogField{{Id: "code", Label: "Code", Kind: mapper.FieldSecret}}) {
		t.Errorf("fields %+v", dialog.Fields)
	}
	if !slices.Equal(dialog.Buttons, []mapper.DialogButton{
		{Id: "ok", Label: "Verify", IsDefault: true},
		{Id: "cancel", Label: "Cancel", IsDefault: false},
	}) {
		t.Errorf("buttons %+v", dialog.Buttons)
	}
	wantState(t, dialog.State, map[string]any{"user": username, "stage": "code", "attempts": float64(attempts)})
	return dialog
}

func wantState(t *testing.T, state string, want map[string]any) {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal([]byte(state), &got); err != nil {
		t.Fatalf("state %q: %v", state, err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("state %s, want %v", state, want)
	}
}

func answerCode(code string) mapper.StepAnswer {
	return mapper.DialogAnswered(mapper.DialogAnswer{Fields: []mapper.FieldAnswer{{Id: "code", Value: code}}, ButtonId: "ok"})
}

func cont(t *testing.T, p *ExamplePolicy, state string, answer mapper.StepAnswer) mapper.AuthOutcome {
	t.Helper()
	return must[mapper.AuthOutcome](t)(p.ContinueAuthentication(state, answer, mapper.ClientInfo{}))
}

func auth(t *testing.T, p *ExamplePolicy, user, password string) mapper.AuthOutcome {
	t.Helper()
	return must[mapper.AuthOutcome](t)(p.Authenticate(login(user, password)))
}

// Step 1 to 3 and 6: the password, refusals, and the accepted identity.
func TestPasswordOutcomes(t *testing.T) {
	p, host := configured(t, noDisclaimer)
	identity := wantAccepted(t, auth(t, p, "bob", "bob-pw"), "bob")
	if identity.Domain != "EXAMPLE" || !slices.Equal(identity.Attributes, []mapper.Attribute{{Key: "groups", Value: "artists,render"}}) {
		t.Errorf("bob's identity: %+v", identity)
	}
	wantRejected(t, auth(t, p, "bob", "wrong"), mapper.BadCredentials, "wrong password")
	wantRejected(t, auth(t, p, "carol", "carol-pw"), mapper.AccessDenied, "account disabled")
	wantRejected(t, auth(t, p, "carol", "not-carols"), mapper.BadCredentials, "wrong password")

	host.verified = nil
	wantRejected(t, auth(t, p, "mallory", "bob-pw"), mapper.BadCredentials, "unknown user")
	if !slices.Equal(host.verified, []string{decoyHash}) {
		t.Errorf("an unknown user costs a decoy hash check; checked %v", host.verified)
	}
}

func TestAUserWithoutDesktopsHasNoResources(t *testing.T) {
	p, _ := configured(t, func(settings map[string]any) {
		settings["users"].([]any)[1].(map[string]any)["groups"] = []any{}
	})
	wantRejected(t, auth(t, p, "bob", "bob-pw"), mapper.NoResources, "no desktops in the user's groups")
}

// Step 2: a changed password in the store replaces the settings' hash.
func TestAStoredPasswordHashWins(t *testing.T) {
	p, host := configured(t, noDisclaimer)
	host.store["password-hash:bob"] = []byte(host.HashPassword("a-new-password"))
	wantRejected(t, auth(t, p, "bob", "bob-pw"), mapper.BadCredentials, "wrong password")
	wantAccepted(t, auth(t, p, "bob", "a-new-password"), "bob")

	host.storeErr = &mapper.StoreError{Kind: mapper.StoreUnavailable, Detail: "redis down"}
	if _, err := p.Authenticate(login("bob", "bob-pw")); err == nil || !strings.Contains(err.Error(), "redis down") {
		t.Errorf("an unreadable store must fail the login, not fall back to the old password: %v", err)
	}
}

// Step 4: an expired password, unless it was changed since.
func TestAnExpiredPasswordMustBeChanged(t *testing.T) {
	p, host := configured(t, nil)
	wantRejected(t, auth(t, p, "dave", "dave-pw"), mapper.ExpiredPassword, "password expired")
	wantRejected(t, auth(t, p, "dave", "wrong"), mapper.BadCredentials, "wrong password")
	host.store["password-hash:dave"] = []byte(host.HashPassword("daves-new-password"))
	wantDisclaimer(t, auth(t, p, "dave", "daves-new-password"), "dave")
}

// Step 5: disclaimer, then the code dialog, then acceptance.
func TestTheDisclaimerComesFirst(t *testing.T) {
	p, _ := configured(t, nil)
	disclaimer := wantDisclaimer(t, auth(t, p, "bob", "bob-pw"), "bob")
	wantAccepted(t, cont(t, p, disclaimer.State, mapper.DisclaimerAccepted()), "bob")

	disclaimer = wantDisclaimer(t, auth(t, p, "alice", "alice-pw"), "alice")
	dialog := wantCodeDialog(t, cont(t, p, disclaimer.State, mapper.DisclaimerAccepted()), "alice", 0, "")
	wantAccepted(t, cont(t, p, dialog.State, answerCode(rightCode)), "alice")
}

func TestMFAChallengeThenRightCode(t *testing.T) {
	p, host := configured(t, noDisclaimer)
	dialog := wantCodeDialog(t, auth(t, p, "alice", "alice-pw"), "alice", 0, "")
	wantAccepted(t, cont(t, p, dialog.State, answerCode(rightCode)), "alice")
	if !slices.Equal(host.totpCalls, [][2]string{{aliceSecret, rightCode}}) {
		t.Errorf("verify-totp calls: %v", host.totpCalls)
	}
}

func TestWrongAndReplayedCodesCountAndTheThirdEndsTheLogin(t *testing.T) {
	p, _ := configured(t, noDisclaimer)
	state := wantCodeDialog(t, auth(t, p, "alice", "alice-pw"), "alice", 0, "").State
	state = wantCodeDialog(t, cont(t, p, state, answerCode("000000")), "alice", 1, "Wrong code, try again").State
	state = wantCodeDialog(t, cont(t, p, state, answerCode(replayedCode)), "alice", 2,
		"That code was already used, wait for the next one").State
	wantRejected(t, cont(t, p, state, answerCode("111111")), mapper.BadCredentials, "3 wrong codes")

	// Three replays end it the same way; a right code on the last try still gets in.
	state = wantCodeDialog(t, auth(t, p, "alice", "alice-pw"), "alice", 0, "").State
	state = cont(t, p, state, answerCode(replayedCode)).Challenge().State
	state = cont(t, p, state, answerCode(replayedCode)).Challenge().State
	wantAccepted(t, cont(t, p, state, answerCode(rightCode)), "alice")
	state = wantCodeDialog(t, auth(t, p, "alice", "alice-pw"), "alice", 0, "").State
	state = cont(t, p, state, answerCode(replayedCode)).Challenge().State
	state = cont(t, p, state, answerCode(replayedCode)).Challenge().State
	wantRejected(t, cont(t, p, state, answerCode(replayedCode)), mapper.BadCredentials, "3 wrong codes")
}

func TestCancelEndsTheLogin(t *testing.T) {
	p, host := configured(t, noDisclaimer)
	state := wantCodeDialog(t, auth(t, p, "alice", "alice-pw"), "alice", 0, "").State
	cancel := mapper.DialogAnswered(mapper.DialogAnswer{Fields: []mapper.FieldAnswer{{Id: "code", Value: rightCode}}, ButtonId: "cancel"})
	wantRejected(t, cont(t, p, state, cancel), mapper.AccessDenied, "code dialog cancelled")
	if len(host.totpCalls) != 0 {
		t.Errorf("a cancelled dialog spent a code: %v", host.totpCalls)
	}
}

func TestAnAnswerMustMatchThePendingStep(t *testing.T) {
	p, _ := configured(t, nil)
	disclaimer := wantDisclaimer(t, auth(t, p, "alice", "alice-pw"), "alice").State
	code := cont(t, p, disclaimer, mapper.DisclaimerAccepted()).Challenge().State
	for _, mismatch := range []struct {
		state  string
		answer mapper.StepAnswer
	}{
		{disclaimer, answerCode(rightCode)},
		{code, mapper.DisclaimerAccepted()},
	} {
		_, err := p.ContinueAuthentication(mismatch.state, mismatch.answer, mapper.ClientInfo{})
		if err == nil || err.Error() != "step answer does not match the pending step" {
			t.Errorf("state %s: %v", mismatch.state, err)
		}
	}
	for _, forged := range []string{"not json", `{"user":"alice"}`, `{"user":"alice","stage":"code"}`,
		`{"user":"alice","stage":"code","attempts":-1}`, `{"user":"alice","stage":"code","attempts":3}`,
		`{"user":"alice","stage":"sudo"}`} {
		if _, err := p.ContinueAuthentication(forged, answerCode(rightCode), mapper.ClientInfo{}); err == nil {
			t.Errorf("forged state %s was accepted", forged)
		}
	}
}

func TestAUserDisabledMidLoginIsRefused(t *testing.T) {
	p, _ := configured(t, nil)
	state := wantDisclaimer(t, auth(t, p, "alice", "alice-pw"), "alice").State
	if err := p.Configure(strings.Replace(exampleSettings(t), `"mfa": true`, `"mfa": true, "disabled": true`, 1)); err != nil {
		t.Fatal(err)
	}
	wantRejected(t, cont(t, p, state, mapper.DisclaimerAccepted()), mapper.AccessDenied, "user no longer allowed to log in")
}

func TestDesktopsAndAllocation(t *testing.T) {
	p, host := configured(t, nil)
	// Attributes are not trusted: the user is looked up again.
	bob := mapper.Identity{Username: "bob", Attributes: []mapper.Attribute{{Key: "groups", Value: "nothing"}}}
	desktops := must[[]mapper.Desktop](t)(p.ListDesktops(bob, mapper.ClientInfo{}))
	if len(desktops) != 2 || desktops[0].Id != "ws-art-1-example-com" {
		t.Fatalf("%+v", desktops)
	}
	render := desktops[1]
	if render.Id != "render-7-example-com" || render.Name != "Render Node 7" || render.Hostname != "render-7.example.com" ||
		render.AgentPort.SomeOr(0) != 60443 || desktops[0].AgentPort.IsSome() ||
		render.SessionKind != mapper.SessionVDI || render.State != mapper.StateUnknown ||
		render.Operations == nil || len(render.Operations) != 0 {
		t.Errorf("render desktop: %+v", render)
	}
	allocation := must[mapper.Allocation](t)(p.Allocate(bob, render.Id, mapper.ClientInfo{}))
	if allocation.Tag() != mapper.TagLaunch {
		t.Fatalf("%+v", allocation)
	}
	launch := allocation.Launch()
	if launch.Hostname != "render-7.example.com" || launch.AgentPort.SomeOr(0) != 60443 ||
		launch.Username.IsSome() || launch.Domain.IsSome() {
		t.Errorf("launch: %+v", launch)
	}
	if string(host.store["last-desktop:bob"]) != render.Id || host.ttls["last-desktop:bob"].Hours() != 30*24 {
		t.Errorf("last desktop kept as %q for %v", host.store["last-desktop:bob"], host.ttls["last-desktop:bob"])
	}
	refused := must[mapper.Allocation](t)(p.Allocate(mapper.Identity{Username: "alice"}, render.Id, mapper.ClientInfo{}))
	if refused.Tag() != mapper.TagRefused || refused.Refused().F0 != mapper.UnknownDesktop {
		t.Errorf("alice got bob's render node: %+v", refused)
	}
	if _, kept := host.store["last-desktop:alice"]; kept {
		t.Error("a refused allocation was remembered")
	}
	for _, who := range []string{"carol", "mallory"} {
		if got, _ := p.ListDesktops(mapper.Identity{Username: who}, mapper.ClientInfo{}); len(got) != 0 {
			t.Errorf("%s has desktops: %+v", who, got)
		}
	}
}

func ids(desktops []mapper.Desktop) []string {
	var result []string
	for _, desktop := range desktops {
		result = append(result, desktop.Id)
	}
	return result
}

func TestTheLastDesktopIsListedFirst(t *testing.T) {
	p, host := configured(t, func(settings map[string]any) {
		groups := settings["groups"].(map[string]any)
		groups["render"] = append(groups["render"].([]any),
			map[string]any{"name": "Render Node 8", "hostname": "render-8.example.com"},
			map[string]any{"name": "Render Node 9", "hostname": "render-9.example.com"})
	})
	bob := mapper.Identity{Username: "bob"}
	list := func() []string { return ids(must[[]mapper.Desktop](t)(p.ListDesktops(bob, mapper.ClientInfo{}))) }
	natural := []string{"ws-art-1-example-com", "render-7-example-com", "render-8-example-com", "render-9-example-com"}
	if got := list(); !slices.Equal(got, natural) {
		t.Fatalf("before any launch: %v", got)
	}
	must[mapper.Allocation](t)(p.Allocate(bob, "render-8-example-com", mapper.ClientInfo{}))
	if got := list(); !slices.Equal(got, []string{"render-8-example-com", "ws-art-1-example-com", "render-7-example-com", "render-9-example-com"}) {
		t.Errorf("after launching render-8: %v", got)
	}
	host.store["last-desktop:bob"] = []byte("somebody-elses-desktop")
	if got := list(); !slices.Equal(got, natural) {
		t.Errorf("a remembered id that is not bob's changes nothing: %v", got)
	}

	host.takeLogs()
	host.storeErr = &mapper.StoreError{Kind: mapper.StoreUnavailable, Detail: "redis down"}
	if got := list(); !slices.Equal(got, natural) {
		t.Errorf("with the store down: %v", got)
	}
	allocation := must[mapper.Allocation](t)(p.Allocate(bob, "render-9-example-com", mapper.ClientInfo{}))
	if allocation.Tag() != mapper.TagLaunch {
		t.Errorf("a store error must not stop a launch: %+v", allocation)
	}
	warnings := 0
	for _, line := range host.takeLogs() {
		if strings.HasPrefix(line, "WARN ") && strings.Contains(line, "redis down") {
			warnings++
		}
	}
	if warnings != 2 {
		t.Errorf("want one warning for the listing and one for the launch, got %d", warnings)
	}
}

func TestOperationsNeedAPowerAPI(t *testing.T) {
	p, _ := configured(t, nil)
	bob := mapper.Identity{Username: "bob"}
	outcome := must[mapper.OperationOutcome](t)(p.Operate(bob, "render-7-example-com", mapper.OperationRestart, mapper.ClientInfo{}))
	if outcome.Tag() != mapper.TagOperationUnsupported {
		t.Errorf("without power_api: %+v", outcome)
	}
	p, _ = configured(t, withPowerAPI)
	for _, desktop := range must[[]mapper.Desktop](t)(p.ListDesktops(bob, mapper.ClientInfo{})) {
		if !slices.Equal(desktop.Operations, []mapper.Operation{mapper.OperationRestart, mapper.OperationPowerDown, mapper.OperationPowerUp}) {
			t.Errorf("%s offers %v", desktop.Id, desktop.Operations)
		}
	}
}

// powerAPI answers from a table "METHOD URL" -> (status, body); anything else is a transport error.
func powerAPI(routes map[string]mapper.HTTPResponse) func(mapper.HTTPRequest) (mapper.HTTPResponse, error) {
	return func(request mapper.HTTPRequest) (mapper.HTTPResponse, error) {
		if len(request.Body) != 0 {
			return mapper.HTTPResponse{}, errors.New("a body was sent")
		}
		if response, ok := routes[request.Method+" "+request.URL]; ok {
			return response, nil
		}
		return mapper.HTTPResponse{}, errors.New("request to power.example: connection refused")
	}
}

func answer(status int, body string) mapper.HTTPResponse {
	return mapper.HTTPResponse{Status: status, Body: []byte(body)}
}

func TestOperateThroughThePowerAPI(t *testing.T) {
	const machine = "http://power.example:8080/v1/machines/render-7.example.com"
	cases := []struct {
		name     string
		op       mapper.Operation
		routes   map[string]mapper.HTTPResponse
		tag      uint8
		detail   string
		requests []string
	}{
		{"running", mapper.OperationPowerUp, map[string]mapper.HTTPResponse{"GET " + machine: answer(200, `{"state":"running"}`)},
			mapper.TagOperationDone, "running", []string{"GET " + machine}},
		{"starting", mapper.OperationPowerUp, map[string]mapper.HTTPResponse{"GET " + machine: answer(200, `{"state": "starting"}`)},
			mapper.TagOperationTryAgain, "starting", []string{"GET " + machine}},
		{"stopped", mapper.OperationPowerUp, map[string]mapper.HTTPResponse{
			"GET " + machine: answer(200, `{"state":"stopped"}`), "POST " + machine + "/power-up": answer(202, "")},
			mapper.TagOperationTryAgain, "powering on", []string{"GET " + machine, "POST " + machine + "/power-up"}},
		{"stopped, power-up refused", mapper.OperationPowerUp, map[string]mapper.HTTPResponse{
			"GET " + machine: answer(200, `{"state":"stopped"}`), "POST " + machine + "/power-up": answer(409, "busy")},
			mapper.TagOperationRefused, "power API: POST " + machine + "/power-up answered 409", nil},
		{"state unavailable", mapper.OperationPowerUp, map[string]mapper.HTTPResponse{"GET " + machine: answer(503, "")},
			mapper.TagOperationRefused, "power API: GET " + machine + " answered 503", nil},
		{"malformed body", mapper.OperationPowerUp, map[string]mapper.HTTPResponse{"GET " + machine: answer(200, `<html>`)},
			mapper.TagOperationRefused, "power API: GET " + machine + ": malformed body", nil},
		{"no state", mapper.OperationPowerUp, map[string]mapper.HTTPResponse{"GET " + machine: answer(200, `{"status":"running"}`)},
			mapper.TagOperationRefused, "power API: GET " + machine + ": malformed body", nil},
		{"unknown state", mapper.OperationPowerUp, map[string]mapper.HTTPResponse{"GET " + machine: answer(200, `{"state":"melted"}`)},
			mapper.TagOperationRefused, `power API: GET ` + machine + `: unknown state "melted"`, nil},
		{"transport error", mapper.OperationPowerUp, map[string]mapper.HTTPResponse{},
			mapper.TagOperationRefused, "power API: request to power.example: connection refused", nil},
		{"restart", mapper.OperationRestart, map[string]mapper.HTTPResponse{"POST " + machine + "/restart": answer(204, "")},
			mapper.TagOperationDone, "requested", []string{"POST " + machine + "/restart"}},
		{"power-down", mapper.OperationPowerDown, map[string]mapper.HTTPResponse{"POST " + machine + "/power-down": answer(200, "{}")},
			mapper.TagOperationDone, "requested", []string{"POST " + machine + "/power-down"}},
		{"restart refused", mapper.OperationRestart, map[string]mapper.HTTPResponse{"POST " + machine + "/restart": answer(500, "")},
			mapper.TagOperationRefused, "power API: POST " + machine + "/restart answered 500", nil},
		{"power-down unreachable", mapper.OperationPowerDown, map[string]mapper.HTTPResponse{},
			mapper.TagOperationRefused, "power API: request to power.example: connection refused", nil},
	}
	for _, c := range cases {
		p, host := configured(t, withPowerAPI)
		host.http = powerAPI(c.routes)
		outcome, err := p.Operate(mapper.Identity{Username: "bob"}, "render-7-example-com", c.op, mapper.ClientInfo{})
		if err != nil {
			t.Errorf("%s: an error instead of an outcome: %v", c.name, err)
			continue
		}
		if outcome.Tag() != c.tag || describeOperation(outcome) != describeOperation(outcomeOf(c.tag, c.detail)) {
			t.Errorf("%s: %s, want %s", c.name, describeOperation(outcome), describeOperation(outcomeOf(c.tag, c.detail)))
		}
		if c.requests != nil {
			var sent []string
			for _, request := range host.requests {
				sent = append(sent, request.Method+" "+request.URL)
			}
			if !slices.Equal(sent, c.requests) {
				t.Errorf("%s: sent %v, want %v", c.name, sent, c.requests)
			}
		}
	}
}

func outcomeOf(tag uint8, detail string) mapper.OperationOutcome {
	switch tag {
	case mapper.TagOperationDone:
		return mapper.OperationDone(detail)
	case mapper.TagOperationTryAgain:
		return mapper.OperationTryAgain(detail)
	case mapper.TagOperationRefused:
		return mapper.OperationRefused(detail)
	}
	return mapper.OperationUnsupported()
}

func TestOperateEncodesTheHostNameAndRefusesOthersDesktops(t *testing.T) {
	p, host := configured(t, func(settings map[string]any) {
		withPowerAPI(settings)
		settings["groups"].(map[string]any)["render"] = []any{map[string]any{"name": "v6", "hostname": "fe80::1"}}
	})
	host.http = powerAPI(map[string]mapper.HTTPResponse{
		"POST http://power.example:8080/v1/machines/fe80%3A%3A1/restart": answer(200, ""),
	})
	outcome := must[mapper.OperationOutcome](t)(p.Operate(mapper.Identity{Username: "bob"}, DesktopID("fe80::1"), mapper.OperationRestart, mapper.ClientInfo{}))
	if outcome.Tag() != mapper.TagOperationDone {
		t.Errorf("%s (sent %+v)", describeOperation(outcome), host.requests)
	}
	host.requests = nil
	for _, who := range []string{"alice", "carol", "mallory"} {
		outcome := must[mapper.OperationOutcome](t)(p.Operate(mapper.Identity{Username: who}, DesktopID("fe80::1"), mapper.OperationRestart, mapper.ClientInfo{}))
		if outcome.Tag() != mapper.TagOperationRefused || outcome.Refused() != "unknown desktop" {
			t.Errorf("%s: %s", who, describeOperation(outcome))
		}
	}
	if len(host.requests) != 0 {
		t.Errorf("the power API was called for another user's desktop: %+v", host.requests)
	}
}

func change(user, old, new string) mapper.PasswordChange {
	return mapper.PasswordChange{Username: user, OldPassword: old, NewPassword: new}
}

func wantChangeRejected(t *testing.T, outcome mapper.PasswordChangeOutcome, kind mapper.PasswordRejectionKind) {
	t.Helper()
	if outcome.Tag() != mapper.TagPasswordRejected || outcome.Rejected().Kind != kind {
		t.Fatalf("outcome %+v, want a %s refusal", outcome, passwordRejectionNames[kind])
	}
}

func changePassword(t *testing.T, p *ExamplePolicy, c mapper.PasswordChange) mapper.PasswordChangeOutcome {
	t.Helper()
	return must[mapper.PasswordChangeOutcome](t)(p.ChangePassword(c))
}

func TestChangePasswordRefusals(t *testing.T) {
	p, host := configured(t, nil)
	wantChangeRejected(t, changePassword(t, p, change("mallory", "x", "long-enough-password")), mapper.WrongPassword)
	if !slices.Contains(host.verified, decoyHash) {
		t.Error("an unknown user costs a decoy hash check")
	}
	wantChangeRejected(t, changePassword(t, p, change("dave", "not-daves", "long-enough-password")), mapper.WrongPassword)
	wantChangeRejected(t, changePassword(t, p, change("dave", "dave-pw", "short-pw123")), mapper.WeakPassword) // 11 < 12
	wantChangeRejected(t, changePassword(t, p, change("dave", "dave-pw", "ééééééééééé")), mapper.WeakPassword) // 11 characters, 22 bytes
	host.store["password-hash:dave"] = []byte(host.HashPassword("long-enough-password"))
	wantChangeRejected(t, changePassword(t, p, change("dave", "long-enough-password", "long-enough-password")), mapper.WeakPassword)
	wantChangeRejected(t, changePassword(t, p, change("dave", "dave-pw", "another-long-password")), mapper.WrongPassword)

	host.storeErr = &mapper.StoreError{Kind: mapper.StoreUnavailable, Detail: "redis down"}
	wantChangeRejected(t, changePassword(t, p, change("dave", "long-enough-password", "another-long-password")), mapper.DirectoryError)
	if !strings.Contains(changePassword(t, p, change("bob", "bob-pw", "another-long-password")).Rejected().Reason, "redis down") {
		t.Error("the store's error is the reason")
	}

	p, _ = configured(t, func(settings map[string]any) { settings["min_password_length"] = 20 })
	wantChangeRejected(t, changePassword(t, p, change("dave", "dave-pw", "nineteen-characters")), mapper.WeakPassword)
	if outcome := changePassword(t, p, change("dave", "dave-pw", "twenty-characters-ok")); outcome.Tag() != mapper.TagPasswordChanged {
		t.Errorf("20 characters with min_password_length 20: %+v", outcome)
	}
}

func TestChangePasswordKeepsAHashAndGoesOnAsALogin(t *testing.T) {
	p, host := configured(t, nil)
	outcome := changePassword(t, p, change("dave", "dave-pw", "daves-new-password"))
	if outcome.Tag() != mapper.TagPasswordChanged {
		t.Fatalf("%+v", outcome)
	}
	wantDisclaimer(t, outcome.Changed(), "dave")
	stored := string(host.store["password-hash:dave"])
	if stored != host.HashPassword("daves-new-password") || host.ttls["password-hash:dave"] != 0 {
		t.Errorf("stored %q for %v: want the host's hash, with the store's maximum lifetime", stored, host.ttls["password-hash:dave"])
	}
	wantRejected(t, auth(t, p, "dave", "dave-pw"), mapper.BadCredentials, "wrong password")
	wantDisclaimer(t, auth(t, p, "dave", "daves-new-password"), "dave")
	// The old password is now the stored one.
	if changePassword(t, p, change("dave", "daves-new-password", "daves-third-password")).Tag() != mapper.TagPasswordChanged {
		t.Error("a second change checks the stored hash")
	}

	p, _ = configured(t, noDisclaimer)
	wantAccepted(t, changePassword(t, p, change("bob", "bob-pw", "bobs-new-password")).Changed(), "bob")
	wantCodeDialog(t, changePassword(t, p, change("alice", "alice-pw", "alices-new-password")).Changed(), "alice", 0, "")
	wantRejected(t, changePassword(t, p, change("carol", "carol-pw", "carols-new-password")).Changed(),
		mapper.AccessDenied, "account disabled")
}

// Every decision logs one INFO line, and no line ever holds a password or a code.
func TestOneLogLinePerDecisionAndNoSecrets(t *testing.T) {
	p, host := configured(t, withPowerAPI)
	host.http = powerAPI(map[string]mapper.HTTPResponse{})
	bob := mapper.Identity{Username: "bob"}
	decisions := []func(){
		func() { auth(t, p, "bob", "bob-pw") },
		func() { auth(t, p, "bob", "wrong-secret-pw") },
		func() { auth(t, p, "mallory", "bob-pw") },
		func() { auth(t, p, "dave", "dave-pw") },
		func() { cont(t, p, disclaimerState("alice"), mapper.DisclaimerAccepted()) },
		func() { cont(t, p, codeState("alice", 0), answerCode("000000")) },
		func() { cont(t, p, codeState("alice", 1), answerCode(replayedCode)) },
		func() { cont(t, p, codeState("alice", 2), answerCode("222222")) },
		func() { cont(t, p, codeState("alice", 0), answerCode(rightCode)) },
		func() { p.ListDesktops(bob, mapper.ClientInfo{}) },
		func() { p.Allocate(bob, "render-7-example-com", mapper.ClientInfo{}) },
		func() { p.Allocate(bob, "nope", mapper.ClientInfo{}) },
		func() { p.Operate(bob, "render-7-example-com", mapper.OperationRestart, mapper.ClientInfo{}) },
		func() { p.ChangePassword(change("dave", "dave-pw", "short")) },
		func() { p.ChangePassword(change("dave", "dave-pw", "daves-new-password")) },
	}
	for index, decide := range decisions {
		host.takeLogs()
		decide()
		if lines := host.infoLines(); len(lines) != 1 {
			t.Errorf("decision %d logged %d INFO lines: %q", index, len(lines), lines)
		}
	}
	all := strings.Join(host.logs, "\n")
	for _, secret := range []string{"bob-pw", "wrong-secret-pw", "dave-pw", "short", "daves-new-password",
		"000000", replayedCode, "222222", rightCode, aliceSecret} {
		if strings.Contains(all, secret) {
			t.Errorf("a log line holds %q:\n%s", secret, all)
		}
	}
}

func TestCallsBeforeConfigureFail(t *testing.T) {
	p := NewExamplePolicy()
	if _, err := p.Authenticate(login("bob", "bob-pw")); err == nil {
		t.Error("authenticate before configure succeeded")
	}
	if _, err := p.Operate(mapper.Identity{Username: "bob"}, "x", mapper.OperationRestart, mapper.ClientInfo{}); err == nil {
		t.Error("operate before configure succeeded")
	}
	if _, err := p.ChangePassword(change("bob", "bob-pw", "long-enough-password")); err == nil {
		t.Error("change-password before configure succeeded")
	}
	if p.Domains() != nil {
		t.Error("domains before configure")
	}
}
