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
	if len(s.Users) != 4 || !s.Users["alice"].MFA || s.Users["alice"].TOTPSecret != "JBSWY3DPEHPK3PXP" ||
		!s.Users["carol"].Disabled || !s.Users["dave"].PasswordExpired || s.Users["bob"].PasswordExpired {
		t.Errorf("users: %+v", s.Users)
	}
	if s.Disclaimer != "This workstation is for authorised studio work only. Sessions may be monitored." ||
		s.PowerAPI != "" || s.MinPasswordLength != 12 {
		t.Errorf("disclaimer %q, power_api %q, min_password_length %d", s.Disclaimer, s.PowerAPI, s.MinPasswordLength)
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
		`{"users":[],"colour":1}`: "colour: unknown key (expected one of: users, groups, domains, logon_domain, disclaimer, power_api, min_password_length)",
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
		`{"users":[` + user + `,"password_expired":1}]}`:                                              "users[0].password_expired: expected true or false",
		`{"users":[],"disclaimer":7}`:                                                                 "disclaimer: expected a non-empty string of at most 4096 bytes",
		`{"users":[],"disclaimer":""}`:                                                                "disclaimer: expected a non-empty string",
		`{"users":[],"disclaimer":"` + strings.Repeat("é", 2049) + `"}`:                               "disclaimer: expected a non-empty string of at most 4096 bytes",
		`{"users":[],"power_api":"ftp://power.example"}`:                                              "power_api: expected an http:// or https:// base URL without a trailing slash",
		`{"users":[],"power_api":"https://power.example/"}`:                                           "power_api: expected an http:// or https:// base URL",
		`{"users":[],"power_api":"https://"}`:                                                         "power_api: expected an http:// or https:// base URL",
		`{"users":[],"power_api":"https://power.example/v1?x=1"}`:                                     "power_api: expected an http:// or https:// base URL",
		`{"users":[],"power_api":"https://user:pw@power.example"}`:                                    "power_api: expected an http:// or https:// base URL",
		`{"users":[],"power_api":true}`:                                                               "power_api: expected an http:// or https:// base URL",
		`{"users":[],"min_password_length":7}`:                                                        "min_password_length: expected an integer between 8 and 128",
		`{"users":[],"min_password_length":129}`:                                                      "min_password_length: expected an integer between 8 and 128",
		`{"users":[],"min_password_length":12.5}`:                                                     "min_password_length: expected an integer between 8 and 128",
		`{"users":[],"min_password_length":"12"}`:                                                     "min_password_length: expected an integer between 8 and 128",
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

func TestNewSettingsAccepted(t *testing.T) {
	s, err := ParseSettings(`{"users":[],"disclaimer":"` + strings.Repeat("x", 4096) + `",` +
		`"power_api":"https://power.example:8443/api/v1","min_password_length":8}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Disclaimer) != 4096 || s.PowerAPI != "https://power.example:8443/api/v1" || s.MinPasswordLength != 8 {
		t.Errorf("%+v", s)
	}
	if s, err := ParseSettings(`{"users":[],"power_api":"http://10.0.0.1","min_password_length":128}`); err != nil ||
		s.PowerAPI != "http://10.0.0.1" || s.MinPasswordLength != 128 {
		t.Errorf("%v %+v", err, s)
	}
	if _, err := ParseSettings(`{"users":[{"username":"u","password_hash":"h","mfa":true,"totp_secret":"jbsw y3dp ehpk 3pxp===="}]}`); err != nil {
		t.Errorf("a secret in lower case, with spaces and padding: %v", err)
	}
}
