package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"interstate/sdk/mapper"
)

// These tests run the policy natively: mapper.VerifyPassword checks the ILS hashes of
// example.settings.json with a real PBKDF2 (see sdk/mapper/host_native.go).

var clock = time.Unix(1_800_000_000, 0)

func configured(t *testing.T) *ExamplePolicy {
	t.Helper()
	p := &ExamplePolicy{now: func() time.Time { return clock }}
	if err := p.Configure(exampleSettings(t)); err != nil {
		t.Fatal(err)
	}
	return p
}

func login(user, password string) mapper.PasswordLogin {
	return mapper.PasswordLogin{Username: user, Password: password}
}

func mustAuth(t *testing.T) func(mapper.AuthOutcome, error) mapper.AuthOutcome {
	return func(outcome mapper.AuthOutcome, err error) mapper.AuthOutcome {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return outcome
	}
}

func wantRejected(t *testing.T, outcome mapper.AuthOutcome, kind mapper.RejectionKind) {
	t.Helper()
	if outcome.Tag() != mapper.TagRejected || outcome.Rejected().Kind != kind {
		t.Fatalf("outcome %+v, want rejected kind %d", outcome, kind)
	}
}

func TestPasswordOutcomes(t *testing.T) {
	p := configured(t)
	bob := mustAuth(t)(p.Authenticate(login("bob", "bob-pw")))
	if bob.Tag() != mapper.TagAccepted {
		t.Fatalf("bob: %+v", bob)
	}
	identity := bob.Accepted()
	if identity.Username != "bob" || identity.Domain != "EXAMPLE" ||
		len(identity.Attributes) != 1 || identity.Attributes[0] != (mapper.Attribute{Key: "groups", Value: "artists,render"}) {
		t.Errorf("bob's identity: %+v", identity)
	}
	wantRejected(t, mustAuth(t)(p.Authenticate(login("bob", "wrong"))), mapper.BadCredentials)
	wantRejected(t, mustAuth(t)(p.Authenticate(login("mallory", "bob-pw"))), mapper.BadCredentials)
	wantRejected(t, mustAuth(t)(p.Authenticate(login("carol", "carol-pw"))), mapper.AccessDenied)
}

func TestAUserWithoutDesktopsHasNoResources(t *testing.T) {
	p := configured(t)
	settings := strings.Replace(exampleSettings(t), `"groups": ["artists", "render"]`, `"groups": []`, 1)
	if err := p.Configure(settings); err != nil {
		t.Fatal(err)
	}
	wantRejected(t, mustAuth(t)(p.Authenticate(login("bob", "bob-pw"))), mapper.NoResources)
}

func challengeOf(t *testing.T, outcome mapper.AuthOutcome) mapper.Dialog {
	t.Helper()
	if outcome.Tag() != mapper.TagChallenge {
		t.Fatalf("outcome %+v, want a challenge", outcome)
	}
	return outcome.Challenge()
}

func code(value string) []mapper.FieldAnswer {
	return []mapper.FieldAnswer{{Id: "code", Value: value}}
}

func TestMFAChallengeThenRightCode(t *testing.T) {
	p := configured(t)
	dialog := challengeOf(t, mustAuth(t)(p.Authenticate(login("alice", "alice-pw"))))
	if dialog.Prompt != "Enter the 6-digit code from your authenticator app" || dialog.ErrorText != "" ||
		len(dialog.Fields) != 1 || dialog.Fields[0].Id != "code" || dialog.Fields[0].Kind != mapper.FieldSecret {
		t.Errorf("dialog: %+v", dialog)
	}
	var state map[string]any
	if err := json.Unmarshal([]byte(dialog.State), &state); err != nil || state["user"] != "alice" || state["attempts"] != 0.0 {
		t.Errorf("state %q: %v", dialog.State, err)
	}
	right := TOTP(Base32Decode("JBSWY3DPEHPK3PXP"), clock.Unix())
	outcome := mustAuth(t)(p.ContinueAuthentication(dialog.State, code(right), mapper.ClientInfo{}))
	if outcome.Tag() != mapper.TagAccepted || outcome.Accepted().Username != "alice" {
		t.Errorf("right code: %+v", outcome)
	}
}

func TestThreeWrongCodesAreRefused(t *testing.T) {
	p := configured(t)
	state := challengeOf(t, mustAuth(t)(p.Authenticate(login("alice", "alice-pw")))).State
	for attempt := 1; attempt < 3; attempt++ {
		dialog := challengeOf(t, mustAuth(t)(p.ContinueAuthentication(state, code("000000"), mapper.ClientInfo{})))
		if dialog.ErrorText != "Wrong code, try again" || !strings.Contains(dialog.State, `"attempts":`) {
			t.Fatalf("attempt %d: %+v", attempt, dialog)
		}
		state = dialog.State
	}
	wantRejected(t, mustAuth(t)(p.ContinueAuthentication(state, nil, mapper.ClientInfo{})), mapper.BadCredentials)
	if _, err := p.ContinueAuthentication("not json", nil, mapper.ClientInfo{}); err == nil {
		t.Error("a forged state was accepted")
	}
}

func TestDesktopsAndAllocation(t *testing.T) {
	p := configured(t)
	// Attributes are not trusted: the user is looked up again.
	bob := mapper.Identity{Username: "bob", Attributes: []mapper.Attribute{{Key: "groups", Value: "nothing"}}}
	desktops, err := p.ListDesktops(bob, mapper.ClientInfo{})
	if err != nil || len(desktops) != 2 {
		t.Fatalf("%v %+v", err, desktops)
	}
	render := desktops[1]
	if render.Id != "render-7-example-com" || render.Name != "Render Node 7" || render.Hostname != "render-7.example.com" ||
		render.AgentPort.SomeOr(0) != 60443 || desktops[0].AgentPort.IsSome() ||
		render.SessionKind != mapper.SessionVDI || render.State != mapper.StateUnknown || len(render.Operations) != 0 {
		t.Errorf("render desktop: %+v", render)
	}
	allocation, err := p.Allocate(bob, render.Id, mapper.ClientInfo{})
	if err != nil || allocation.Tag() != mapper.TagLaunch {
		t.Fatalf("%v %+v", err, allocation)
	}
	launch := allocation.Launch()
	if launch.Hostname != "render-7.example.com" || launch.AgentPort.SomeOr(0) != 60443 ||
		launch.Username.IsSome() || launch.Domain.IsSome() {
		t.Errorf("launch: %+v", launch)
	}
	refused, _ := p.Allocate(mapper.Identity{Username: "alice"}, render.Id, mapper.ClientInfo{})
	if refused.Tag() != mapper.TagRefused || refused.Refused().F0 != mapper.UnknownDesktop {
		t.Errorf("alice got bob's render node: %+v", refused)
	}
	for _, who := range []string{"carol", "mallory"} {
		if got, _ := p.ListDesktops(mapper.Identity{Username: who}, mapper.ClientInfo{}); len(got) != 0 {
			t.Errorf("%s has desktops: %+v", who, got)
		}
	}
}

func TestCallsBeforeConfigureFail(t *testing.T) {
	p := NewExamplePolicy()
	if _, err := p.Authenticate(login("bob", "bob-pw")); err == nil {
		t.Error("authenticate before configure succeeded")
	}
	if p.Domains() != nil {
		t.Error("domains before configure")
	}
}
