package main

import (
	"os"
	"strings"
	"testing"
)

func exampleSettings(t *testing.T) string {
	t.Helper()
	text, err := os.ReadFile("../example.settings.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(text)
}

func TestExampleSettingsParse(t *testing.T) {
	s, err := ParseSettings(exampleSettings(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Users) != 3 || !s.Users["alice"].MFA || !s.Users["carol"].Disabled {
		t.Errorf("users: %+v", s.Users)
	}
	if got := s.DesktopsOf(s.Users["bob"]); len(got) != 2 ||
		got[0].ID != "ws-art-1-example-com" || got[1].ID != "render-7-example-com" ||
		got[1].AgentPort != 60443 || got[0].AgentPort != 0 {
		t.Errorf("bob's desktops: %+v", got)
	}
	if len(s.Domains) != 1 || s.Domains[0] != "EXAMPLE" || s.LogonDomain != "EXAMPLE" {
		t.Errorf("domains: %v %q", s.Domains, s.LogonDomain)
	}
}

func TestSettingsErrorsNameTheKey(t *testing.T) {
	const user = `{"username":"u","password_hash":"h"`
	cases := map[string]string{
		`[]`:                      "settings: expected an object",
		`{`:                       "settings: not valid JSON",
		`{"users":[],"colour":1}`: "colour: unknown key (expected one of: users, groups, domains, logon_domain)",
		`{}`:                      "users: missing (expected a list of users)",
		`{"users":{}}`:            "users: expected a list of users",
		`{"users":[` + user + `},` + user + `,"groups":"a"}]}`:                                        "users[1].groups: expected a list of strings",
		`{"users":[` + user + `,"groups":["nope"]}]}`:                                                 `users[0].groups[0]: unknown group "nope"`,
		`{"users":[` + user + `,"shoe":1}]}`:                                                          "users[0].shoe: unknown key",
		`{"users":[` + user + `,"mfa":"yes"}]}`:                                                       "users[0].mfa: expected true or false",
		`{"users":[` + user + `,"mfa":true}]}`:                                                        "users[0].totp_secret: missing (required when mfa is true)",
		`{"users":[` + user + `,"totp_secret":"1!"}]}`:                                                "users[0].totp_secret: expected a base32 secret",
		`{"users":[{"password_hash":"h"}]}`:                                                           "users[0].username: missing",
		`{"users":[` + user + `},` + user + `}]}`:                                                     `users[1].username: duplicate user "u"`,
		`{"users":[],"groups":{"g":{}}}`:                                                              "groups.g: expected a list of desktops",
		`{"users":[],"groups":{"g":[{"name":"n"}]}}`:                                                  "groups.g[0].hostname: missing",
		`{"users":[],"groups":{"g":[{"name":"n","hostname":"a b"}]}}`:                                 "groups.g[0].hostname: expected a host name",
		`{"users":[],"groups":{"g":[{"name":"n","hostname":"h","agent_port":0}]}}`:                    "groups.g[0].agent_port: expected a port number between 1 and 65535",
		`{"users":[],"groups":{"g":[{"name":"n","hostname":"h","agent_port":true}]}}`:                 "groups.g[0].agent_port: expected a port",
		`{"users":[],"groups":{"g":[{"name":"n","hostname":"h","agent_port":1.5}]}}`:                  "groups.g[0].agent_port: expected a port",
		`{"users":[],"groups":{"a":[{"name":"n","hostname":"H"}],"b":[{"name":"m","hostname":"h"}]}}`: `groups.b[0].hostname: desktop id "h" is already used by groups.a[0]`,
		`{"users":[],"domains":"EXAMPLE"}`:                                                            "domains: expected a list of strings",
		`{"users":[],"logon_domain":false}`:                                                           "logon_domain: expected a string",
	}
	for input, want := range cases {
		_, err := ParseSettings(input)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("ParseSettings(%s) = %v, want an error starting with %q", input, err, want)
		}
	}
}

func TestDesktopIDIsDerivedFromTheHostname(t *testing.T) {
	for hostname, want := range map[string]string{
		"WS-Art-1.example.com": "ws-art-1-example-com",
		"10.0.0.7":             "10-0-0-7",
		"fe80::1":              "fe80--1",
	} {
		if got := DesktopID(hostname); got != want {
			t.Errorf("DesktopID(%q) = %q, want %q", hostname, got, want)
		}
	}
}
