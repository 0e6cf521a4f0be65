package mapper

import (
	"fmt"
	"time"
)

// Level is a log severity for Log.
type Level uint8

// The log levels, lowest first.
const (
	Trace Level = iota
	Debug
	Info
	Warn
	Error
)

// TotpVerdict is the answer of VerifyTotp.
type TotpVerdict uint8

// The verdicts of VerifyTotp.
const (
	// TotpAccepted: the code is right for the current 30-second step (or one step either
	// side) and had not been used; it is now spent.
	TotpAccepted TotpVerdict = iota
	// TotpRejected: a wrong code, a code that is not 6 digits, or a secret that is not base32.
	TotpRejected
	// TotpReplayed: the code is right but was already accepted once for this secret and time
	// step, on this broker or another sharing its session store. Treat it as wrong.
	TotpReplayed
)

// StoreErrorKind says why a store call failed.
type StoreErrorKind uint8

// The kinds of StoreError.
const (
	// StoreTooLarge: the key (at most 256 bytes, not empty) or the value (64 KiB) is too large.
	StoreTooLarge StoreErrorKind = iota
	// StoreFull: the mapper's namespace holds its maximum of live keys.
	StoreFull
	// StoreUnavailable: the store could not be reached (Redis down); retry on a later request.
	StoreUnavailable
)

// StoreError is a failed store call (StoreGet, StoreSet, StoreDelete, StoreCompareAndSwap).
type StoreError struct {
	Kind   StoreErrorKind
	Detail string
}

func (e *StoreError) Error() string {
	switch e.Kind {
	case StoreTooLarge:
		return "store: too large: " + e.Detail
	case StoreFull:
		return "store: full"
	default:
		return "store: unavailable: " + e.Detail
	}
}

// DirectoryFailureKind says why a directory call failed.
type DirectoryFailureKind uint8

// The kinds of DirectoryFailure, in the contract's order.
const (
	DirectoryWrongPassword DirectoryFailureKind = iota
	DirectoryPasswordExpired
	DirectoryMustChangePassword
	DirectoryAccountDisabled
	DirectoryAccountExpired
	DirectoryLockedOut
	DirectoryOutsideLogonHours
	DirectoryWeakPassword
	DirectoryUnreachable
	DirectoryUnknownProfile
)

var directoryKindNames = [...]string{
	"wrong-password", "password-expired", "must-change-password", "account-disabled",
	"account-expired", "locked-out", "outside-logon-hours", "weak-password", "unreachable",
	"unknown-profile",
}

// DirectoryFailure is a failed directory call; Detail is for the log (it never holds a
// password). Find it with errors.As.
type DirectoryFailure struct {
	Kind   DirectoryFailureKind
	Detail string
}

func (f *DirectoryFailure) Error() string {
	name := fmt.Sprintf("kind %d", f.Kind)
	if int(f.Kind) < len(directoryKindNames) {
		name = directoryKindNames[f.Kind]
	}
	return "directory: " + name + ": " + f.Detail
}

// DirectoryUser is a user found in the directory.
type DirectoryUser struct {
	// DN is the entry's distinguished name.
	DN string
	// Login is the login name as the directory spells it.
	Login string
	// Attributes are the attributes asked for; a multi-valued one appears once per value.
	Attributes []Attribute
}

// DirectoryGroup is a group a user belongs to, directly or through nested groups.
type DirectoryGroup struct {
	DN string
	// Name is the group's cn.
	Name string
}

// Host is everything the broker offers a mapper, as an interface: give your policy a Host
// (Broker in the component) and its unit tests a fake. A fake can embed Broker and override
// only what it needs; outside the broker, Broker's store, directory and HTTP calls fail and
// HashPassword and VerifyTotp panic, so a forgotten fake shows.
type Host interface {
	// Log writes one line to the broker's log. Never log a password or a code.
	Log(level Level, message string)
	// VerifyPassword checks a password against a stored hash, in constant time.
	VerifyPassword(password, hash string) bool
	// HashPassword hashes a password for a later VerifyPassword ($argon2id$ PHC string).
	HashPassword(password string) string
	// VerifyTotp checks a TOTP code against a base32 secret, once per code.
	VerifyTotp(secret, code string) TotpVerdict
	// StoreGet reads a key of the mapper's store; found is false when it is absent.
	StoreGet(key string) (value []byte, found bool, err error)
	// StoreSet writes a key; ttl 0 means the store's maximum (30 days by default).
	StoreSet(key string, value []byte, ttl time.Duration) error
	// StoreDelete deletes a key; true when it existed.
	StoreDelete(key string) (bool, error)
	// StoreCompareAndSwap replaces the value of key with replacement (None deletes it) if its
	// value is expected (None: only if absent); true when swapped.
	StoreCompareAndSwap(key string, expected, replacement Option[[]byte], ttl time.Duration) (bool, error)
	// DirectoryAuthenticate checks username/password against a directory profile.
	DirectoryAuthenticate(profile, username, password string) (DirectoryUser, error)
	// DirectoryLookup looks a user up; found is false when no entry matches.
	DirectoryLookup(profile, username string, attributes []string) (user DirectoryUser, found bool, err error)
	// DirectoryGroups lists the user's groups, nested ones included.
	DirectoryGroups(profile, username string) ([]DirectoryGroup, error)
	// DirectoryChangePassword changes the user's password, as the user.
	DirectoryChangePassword(profile, username, oldPassword, newPassword string) error
	// HTTPDo sends one HTTP request (wasi:http) and reads the whole answer.
	HTTPDo(request HTTPRequest) (HTTPResponse, error)
}

// Broker is the real Host: each method calls the package function of the same name.
var Broker Host = broker{}

type broker struct{}

func (broker) Log(level Level, message string)           { Log(level, message) }
func (broker) VerifyPassword(password, hash string) bool { return VerifyPassword(password, hash) }
func (broker) HashPassword(password string) string       { return HashPassword(password) }
func (broker) VerifyTotp(secret, code string) TotpVerdict {
	return VerifyTotp(secret, code)
}
func (broker) StoreGet(key string) ([]byte, bool, error) { return StoreGet(key) }
func (broker) StoreSet(key string, value []byte, ttl time.Duration) error {
	return StoreSet(key, value, ttl)
}
func (broker) StoreDelete(key string) (bool, error) { return StoreDelete(key) }
func (broker) StoreCompareAndSwap(key string, expected, replacement Option[[]byte], ttl time.Duration) (bool, error) {
	return StoreCompareAndSwap(key, expected, replacement, ttl)
}
func (broker) DirectoryAuthenticate(profile, username, password string) (DirectoryUser, error) {
	return DirectoryAuthenticate(profile, username, password)
}
func (broker) DirectoryLookup(profile, username string, attributes []string) (DirectoryUser, bool, error) {
	return DirectoryLookup(profile, username, attributes)
}
func (broker) DirectoryGroups(profile, username string) ([]DirectoryGroup, error) {
	return DirectoryGroups(profile, username)
}
func (broker) DirectoryChangePassword(profile, username, oldPassword, newPassword string) error {
	return DirectoryChangePassword(profile, username, oldPassword, newPassword)
}
func (broker) HTTPDo(request HTTPRequest) (HTTPResponse, error) { return HTTPDo(request) }

// ttlOption converts a Go TTL to the contract's option<u64> of milliseconds: 0 (or less) is
// none, the store's maximum; anything positive is at least 1 ms.
func ttlOption(ttl time.Duration) Option[uint64] {
	if ttl <= 0 {
		return None[uint64]()
	}
	ms := ttl.Milliseconds()
	if ms == 0 {
		ms = 1
	}
	return Some(uint64(ms))
}
