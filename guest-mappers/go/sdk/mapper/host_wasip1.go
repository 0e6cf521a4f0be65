//go:build wasip1

package mapper

import (
	"time"

	directory "interstate/sdk/bindings/interstate_mapper_directory"
	host "interstate/sdk/bindings/interstate_mapper_host"
	store "interstate/sdk/bindings/interstate_mapper_store"
)

// Log writes one line to the broker's log, tagged with the mapper and the request. Lines are
// rate-limited and truncated at 2 KiB. Never log passwords or codes.
func Log(level Level, message string) {
	host.Log(host.Level(level), message)
}

// VerifyPassword checks password against a stored hash on the host, in constant time. It
// accepts the interstate_love_song format (hex PBKDF2-HMAC-SHA256, salt "IGNORED", 100000
// iterations; `interstate hash-password --ils` prints one) and PHC strings ($argon2id$...,
// $pbkdf2-sha256$...). It returns false for a wrong password and for an unknown format.
func VerifyPassword(password, hash string) bool {
	return host.VerifyPassword(password, hash)
}

// HashPassword hashes password on the host's hash pool into a $argon2id$ PHC string for a
// later VerifyPassword. Keep the hash (in the store, say), never the password.
func HashPassword(password string) string {
	return host.HashPassword(password)
}

// VerifyTotp checks a 6-digit TOTP code (RFC 6238, SHA-1, 30 s, one step of drift) against
// secret, the base32 text of an otpauth:// URI. A right code is accepted once per secret and
// time step across every broker node; a second use is TotpReplayed.
func VerifyTotp(secret, code string) TotpVerdict {
	return TotpVerdict(host.VerifyTotp(secret, code))
}

func storeError(e store.Error) error {
	switch e.Tag() {
	case store.Error_TooLarge:
		return &StoreError{Kind: StoreTooLarge, Detail: e.TooLarge()}
	case store.Error_Full:
		return &StoreError{Kind: StoreFull}
	default:
		return &StoreError{Kind: StoreUnavailable, Detail: e.Unavailable()}
	}
}

// StoreGet reads key from the mapper's store (shared by every broker node); found is false
// when the key is absent or expired. An error is a *StoreError.
func StoreGet(key string) (value []byte, found bool, err error) {
	result := store.Get(key)
	if result.IsErr() {
		return nil, false, storeError(result.Err())
	}
	option := result.Ok()
	if option.IsNone() {
		return nil, false, nil
	}
	return option.Some(), true, nil
}

// StoreSet sets key to value for ttl (0: the store's maximum, 30 days by default).
func StoreSet(key string, value []byte, ttl time.Duration) error {
	if value == nil {
		value = []byte{}
	}
	result := store.Set(key, value, ttlOption(ttl))
	if result.IsErr() {
		return storeError(result.Err())
	}
	return nil
}

// StoreDelete deletes key; true when it existed.
func StoreDelete(key string) (bool, error) {
	result := store.Delete(key)
	if result.IsErr() {
		return false, storeError(result.Err())
	}
	return result.Ok(), nil
}

// StoreCompareAndSwap atomically replaces the value of key with replacement (None deletes
// it) if its current value is expected (None: only if absent); true when swapped.
func StoreCompareAndSwap(key string, expected, replacement Option[[]byte], ttl time.Duration) (bool, error) {
	result := store.CompareAndSwap(key, expected, replacement, ttlOption(ttl))
	if result.IsErr() {
		return false, storeError(result.Err())
	}
	return result.Ok(), nil
}

func directoryFailure(f directory.Failure) error {
	return &DirectoryFailure{Kind: DirectoryFailureKind(f.Kind), Detail: f.Detail}
}

func directoryUser(u directory.User) DirectoryUser {
	return DirectoryUser{DN: u.Dn, Login: u.Login, Attributes: u.Attributes}
}

// DirectoryAuthenticate checks username/password against the operator's directory profile.
// A refusal is a *DirectoryFailure (DirectoryWrongPassword, DirectoryPasswordExpired...).
func DirectoryAuthenticate(profile, username, password string) (DirectoryUser, error) {
	result := directory.Authenticate(profile, username, password)
	if result.IsErr() {
		return DirectoryUser{}, directoryFailure(result.Err())
	}
	return directoryUser(result.Ok()), nil
}

// DirectoryLookup looks username up with the profile's service account; found is false when
// no entry matches. attributes adds to the profile's attribute list.
func DirectoryLookup(profile, username string, attributes []string) (DirectoryUser, bool, error) {
	if attributes == nil {
		attributes = []string{}
	}
	result := directory.Lookup(profile, username, attributes)
	if result.IsErr() {
		return DirectoryUser{}, false, directoryFailure(result.Err())
	}
	option := result.Ok()
	if option.IsNone() {
		return DirectoryUser{}, false, nil
	}
	return directoryUser(option.Some()), true, nil
}

// DirectoryGroups lists the user's groups, nested ones included.
func DirectoryGroups(profile, username string) ([]DirectoryGroup, error) {
	result := directory.Groups(profile, username)
	if result.IsErr() {
		return nil, directoryFailure(result.Err())
	}
	groups := make([]DirectoryGroup, 0, len(result.Ok()))
	for _, group := range result.Ok() {
		groups = append(groups, DirectoryGroup{DN: group.Dn, Name: group.Name})
	}
	return groups, nil
}

// DirectoryChangePassword changes the user's password in the directory, as the user.
func DirectoryChangePassword(profile, username, oldPassword, newPassword string) error {
	result := directory.ChangePassword(profile, username, oldPassword, newPassword)
	if result.IsErr() {
		return directoryFailure(result.Err())
	}
	return nil
}
