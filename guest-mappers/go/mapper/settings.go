package main

import (
	"bytes"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// maxIDBytes is the longest desktop id the contract allows.
const maxIDBytes = 128

// maxDisclaimerBytes is the longest disclaimer the contract allows.
const maxDisclaimerBytes = 4096

// The bounds and default of min_password_length.
const (
	minPasswordLengthLow     = 8
	minPasswordLengthHigh    = 128
	defaultMinPasswordLength = 12
)

// isHostname accepts a host name or an IP address: letters, digits and . _ : -.
func isHostname(text string) bool {
	return text != "" && strings.Trim(text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") == ""
}

// SettingsError is a settings mistake; Path names the key.
type SettingsError struct {
	Path    string
	Message string
}

func (e *SettingsError) Error() string { return e.Path + ": " + e.Message }

func fail(path, format string, args ...any) error {
	return &SettingsError{Path: path, Message: fmt.Sprintf(format, args...)}
}

// DesktopEntry is one desktop of a group.
type DesktopEntry struct {
	ID        string
	Name      string
	Hostname  string
	AgentPort uint16 // 0: the broker's default
}

// User is one user of the settings.
type User struct {
	Username     string
	PasswordHash string
	Groups       []string
	MFA          bool
	// TOTPSecret is the base32 secret as written (the host decodes it); empty for none.
	TOTPSecret string
	Disabled   bool
	// PasswordExpired: the password is right but must be changed.
	PasswordExpired bool
}

// Settings are the validated settings.
type Settings struct {
	Users       map[string]User
	Groups      map[string][]DesktopEntry
	Domains     []string
	LogonDomain string
	// Disclaimer is shown after every successful password step; empty for none.
	Disclaimer string
	// PowerAPI is the power API's base URL (no trailing slash); empty for none.
	PowerAPI string
	// MinPasswordLength is the shortest new password change-password accepts.
	MinPasswordLength int
}

// DesktopsOf is the union of the user's groups' desktops, in group order, without duplicates.
func (s *Settings) DesktopsOf(user User) []DesktopEntry {
	seen := map[string]bool{}
	var result []DesktopEntry
	for _, group := range user.Groups {
		for _, desktop := range s.Groups[group] {
			if !seen[desktop.ID] {
				seen[desktop.ID] = true
				result = append(result, desktop)
			}
		}
	}
	return result
}

// DesktopID is the stable desktop id: the host name in lower case, every character other
// than a letter, a digit or '-' replaced by '-' (ws-art-1.example.com -> ws-art-1-example-com).
// Zero clients remember desktops by id, so it must not depend on list order.
func DesktopID(hostname string) string {
	return strings.Map(func(r rune) rune {
		if ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(hostname))
}

// ParseSettings parses and validates the settings JSON; an error names the first offending key.
func ParseSettings(text string) (*Settings, error) {
	decoder := json.NewDecoder(bytes.NewReader([]byte(text)))
	decoder.UseNumber()
	var raw any
	if err := decoder.Decode(&raw); err != nil {
		return nil, fail("settings", "not valid JSON (%v)", err)
	}
	if decoder.More() {
		return nil, fail("settings", "not valid JSON (text after the object)")
	}
	top, err := object(raw, "settings")
	if err != nil {
		return nil, err
	}
	if err := allowKeys(top, "", "users", "groups", "domains", "logon_domain",
		"disclaimer", "power_api", "min_password_length"); err != nil {
		return nil, err
	}

	settings := &Settings{Users: map[string]User{}, MinPasswordLength: defaultMinPasswordLength}
	if settings.Groups, err = parseGroups(valueOr(top, "groups", map[string]any{})); err != nil {
		return nil, err
	}
	if settings.Domains, err = stringList(valueOr(top, "domains", []any{}), "domains"); err != nil {
		return nil, err
	}
	if settings.LogonDomain, err = str(valueOr(top, "logon_domain", ""), "logon_domain"); err != nil {
		return nil, err
	}

	if raw, present := top["disclaimer"]; present {
		text, ok := raw.(string)
		if !ok || text == "" || len(text) > maxDisclaimerBytes {
			return nil, fail("disclaimer", "expected a non-empty string of at most %d bytes", maxDisclaimerBytes)
		}
		settings.Disclaimer = text
	}
	if raw, present := top["power_api"]; present {
		text, ok := raw.(string)
		if !ok || !isBaseURL(text) {
			return nil, fail("power_api", "expected an http:// or https:// base URL without a trailing slash")
		}
		settings.PowerAPI = text
	}
	if raw, present := top["min_password_length"]; present {
		number, ok := raw.(json.Number)
		length, convErr := number.Int64()
		if !ok || convErr != nil || length < minPasswordLengthLow || length > minPasswordLengthHigh {
			return nil, fail("min_password_length", "expected an integer between %d and %d",
				minPasswordLengthLow, minPasswordLengthHigh)
		}
		settings.MinPasswordLength = int(length)
	}

	rawUsers, ok := top["users"]
	if !ok {
		return nil, fail("users", "missing (expected a list of users)")
	}
	users, ok := rawUsers.([]any)
	if !ok {
		return nil, fail("users", "expected a list of users")
	}
	for index, entry := range users {
		path := fmt.Sprintf("users[%d]", index)
		user, err := parseUser(entry, path, settings.Groups)
		if err != nil {
			return nil, err
		}
		if _, dup := settings.Users[user.Username]; dup {
			return nil, fail(path+".username", "duplicate user %q", user.Username)
		}
		settings.Users[user.Username] = user
	}
	return settings, nil
}

func parseGroups(value any) (map[string][]DesktopEntry, error) {
	groupsObject, err := object(value, "groups")
	if err != nil {
		return nil, err
	}
	type owner struct {
		path    string
		desktop DesktopEntry
	}
	owners := map[string]owner{}
	groups := map[string][]DesktopEntry{}
	// Sorted, so that the error about two clashing desktops is always the same one.
	for _, groupName := range sortedKeys(groupsObject) {
		groupPath := "groups." + groupName
		desktops, ok := groupsObject[groupName].([]any)
		if !ok {
			return nil, fail(groupPath, "expected a list of desktops")
		}
		entries := []DesktopEntry{}
		for index, item := range desktops {
			path := fmt.Sprintf("%s[%d]", groupPath, index)
			desktop, err := parseDesktop(item, path)
			if err != nil {
				return nil, err
			}
			first, seen := owners[desktop.ID]
			if !seen {
				owners[desktop.ID] = owner{path, desktop}
			} else if first.desktop.Name != desktop.Name || first.desktop.AgentPort != desktop.AgentPort {
				return nil, fail(path+".hostname",
					"desktop id %q is already used by %s with a different name or agent_port",
					desktop.ID, first.path)
			}
			entries = append(entries, desktop)
		}
		groups[groupName] = entries
	}
	return groups, nil
}

func parseDesktop(value any, path string) (DesktopEntry, error) {
	var desktop DesktopEntry
	fields, err := object(value, path)
	if err != nil {
		return desktop, err
	}
	if err := allowKeys(fields, path, "name", "hostname", "agent_port"); err != nil {
		return desktop, err
	}
	if desktop.Name, err = nonEmptyString(fields["name"], path+".name"); err != nil {
		return desktop, err
	}
	if desktop.Hostname, err = nonEmptyString(fields["hostname"], path+".hostname"); err != nil {
		return desktop, err
	}
	if !isHostname(desktop.Hostname) {
		return desktop, fail(path+".hostname", "expected a host name or an IP address")
	}
	desktop.ID = DesktopID(desktop.Hostname)
	if len(desktop.ID) > maxIDBytes {
		return desktop, fail(path+".hostname", "longer than %d characters", maxIDBytes)
	}
	if rawPort, present := fields["agent_port"]; present {
		number, ok := rawPort.(json.Number)
		port, convErr := number.Int64()
		if !ok || convErr != nil || port < 1 || port > 65535 {
			return desktop, fail(path+".agent_port", "expected a port number between 1 and 65535")
		}
		desktop.AgentPort = uint16(port)
	}
	return desktop, nil
}

func parseUser(value any, path string, groups map[string][]DesktopEntry) (User, error) {
	var user User
	fields, err := object(value, path)
	if err != nil {
		return user, err
	}
	if err := allowKeys(fields, path, "username", "password_hash", "groups", "mfa", "totp_secret", "disabled", "password_expired"); err != nil {
		return user, err
	}
	if user.Username, err = nonEmptyString(fields["username"], path+".username"); err != nil {
		return user, err
	}
	if user.PasswordHash, err = nonEmptyString(fields["password_hash"], path+".password_hash"); err != nil {
		return user, err
	}
	if user.Groups, err = stringList(valueOr(fields, "groups", []any{}), path+".groups"); err != nil {
		return user, err
	}
	for index, group := range user.Groups {
		if _, ok := groups[group]; !ok {
			return user, fail(fmt.Sprintf("%s.groups[%d]", path, index), "unknown group %q", group)
		}
	}
	if user.MFA, err = boolean(valueOr(fields, "mfa", false), path+".mfa"); err != nil {
		return user, err
	}
	if user.Disabled, err = boolean(valueOr(fields, "disabled", false), path+".disabled"); err != nil {
		return user, err
	}
	if user.PasswordExpired, err = boolean(valueOr(fields, "password_expired", false), path+".password_expired"); err != nil {
		return user, err
	}
	if rawSecret, present := fields["totp_secret"]; present {
		secret, err := nonEmptyString(rawSecret, path+".totp_secret")
		if err != nil {
			return user, err
		}
		if !isBase32(secret) {
			return user, fail(path+".totp_secret", "expected a base32 secret")
		}
		user.TOTPSecret = secret
	}
	if user.MFA && user.TOTPSecret == "" {
		return user, fail(path+".totp_secret", "missing (required when mfa is true)")
	}
	return user, nil
}

// isBase32 accepts what the host's verify-totp decodes: RFC 4648 base32, case, spaces and '='
// padding ignored, at least one byte.
func isBase32(secret string) bool {
	cleaned := strings.ToUpper(strings.NewReplacer(" ", "", "=", "").Replace(secret))
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(cleaned)
	return err == nil && len(key) > 0
}

// isBaseURL accepts an absolute http:// or https:// URL with a host, no user info, query or
// fragment, and no trailing slash, so that "/machines/..." can be appended to it.
func isBaseURL(text string) bool {
	if !strings.HasPrefix(text, "http://") && !strings.HasPrefix(text, "https://") {
		return false
	}
	if strings.HasSuffix(text, "/") || strings.ContainsAny(text, "?# \t\r\n") {
		return false
	}
	parsed, err := url.Parse(text)
	return err == nil && parsed.Host != "" && parsed.User == nil
}

func valueOr(fields map[string]any, key string, fallback any) any {
	if value, ok := fields[key]; ok {
		return value
	}
	return fallback
}

func object(value any, path string) (map[string]any, error) {
	fields, ok := value.(map[string]any)
	if !ok {
		return nil, fail(path, "expected an object")
	}
	return fields, nil
}

func allowKeys(fields map[string]any, path string, allowed ...string) error {
	for _, key := range sortedKeys(fields) {
		if !slices.Contains(allowed, key) {
			if path != "" {
				key = path + "." + key
			}
			return fail(key, "unknown key (expected one of: %s)", strings.Join(allowed, ", "))
		}
	}
	return nil
}

func str(value any, path string) (string, error) {
	text, ok := value.(string)
	if !ok {
		return "", fail(path, "expected a string")
	}
	return text, nil
}

func nonEmptyString(value any, path string) (string, error) {
	if value == nil {
		return "", fail(path, "missing (expected a non-empty string)")
	}
	text, ok := value.(string)
	if !ok || text == "" {
		return "", fail(path, "expected a non-empty string")
	}
	return text, nil
}

func boolean(value any, path string) (bool, error) {
	flag, ok := value.(bool)
	if !ok {
		return false, fail(path, "expected true or false")
	}
	return flag, nil
}

func stringList(value any, path string) ([]string, error) {
	items, ok := value.([]any)
	if !ok {
		return nil, fail(path, "expected a list of strings")
	}
	result := make([]string, 0, len(items))
	for _, item := range items {
		text, ok := item.(string)
		if !ok {
			return nil, fail(path, "expected a list of strings")
		}
		result = append(result, text)
	}
	return result, nil
}

func sortedKeys(fields map[string]any) []string {
	keys := make([]string, 0, len(fields))
	for key := range fields {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}
