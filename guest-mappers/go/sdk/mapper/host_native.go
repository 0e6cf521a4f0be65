//go:build !wasip1

package mapper

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"
)

// In a native build (`go test` on your machine) there is no broker to call. Log writes to
// stderr and VerifyPassword understands the interstate_love_song format only (PHC strings
// such as $argon2id$ verify only inside the broker). Everything else needs the broker: the
// store and the directory answer "unavailable", HTTPDo fails, and HashPassword and VerifyTotp
// panic. Give your policy a fake Host in its tests instead (see mapper/policy_test.go).

var levelNames = [...]string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR"}

const outsideBroker = "only inside the broker (give the policy a fake mapper.Host in tests)"

// Log writes one line to stderr (to the broker's log in the component).
func Log(level Level, message string) {
	name := "LEVEL?"
	if int(level) < len(levelNames) {
		name = levelNames[level]
	}
	fmt.Fprintf(os.Stderr, "mapper %s %s\n", name, message)
}

// VerifyPassword checks password against an interstate_love_song hash (hex
// PBKDF2-HMAC-SHA256, salt "IGNORED", 100000 iterations). Inside the broker the host also
// accepts $argon2id$ and $pbkdf2-sha256$ PHC strings.
func VerifyPassword(password, hash string) bool {
	want, err := hex.DecodeString(hash)
	if err != nil || len(want) != sha256.Size {
		return false
	}
	got, err := pbkdf2.Key(sha256.New, password, []byte("IGNORED"), 100000, sha256.Size)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(got, want) == 1
}

// HashPassword panics outside the broker.
func HashPassword(string) string {
	panic("mapper.HashPassword works " + outsideBroker)
}

// VerifyTotp panics outside the broker.
func VerifyTotp(string, string) TotpVerdict {
	panic("mapper.VerifyTotp works " + outsideBroker)
}

func noStore() error {
	return &StoreError{Kind: StoreUnavailable, Detail: "the store exists " + outsideBroker}
}

// StoreGet fails outside the broker.
func StoreGet(string) ([]byte, bool, error) { return nil, false, noStore() }

// StoreSet fails outside the broker.
func StoreSet(string, []byte, time.Duration) error { return noStore() }

// StoreDelete fails outside the broker.
func StoreDelete(string) (bool, error) { return false, noStore() }

// StoreCompareAndSwap fails outside the broker.
func StoreCompareAndSwap(string, Option[[]byte], Option[[]byte], time.Duration) (bool, error) {
	return false, noStore()
}

func noDirectory() error {
	return &DirectoryFailure{Kind: DirectoryUnreachable, Detail: "the directory exists " + outsideBroker}
}

// DirectoryAuthenticate fails outside the broker.
func DirectoryAuthenticate(string, string, string) (DirectoryUser, error) {
	return DirectoryUser{}, noDirectory()
}

// DirectoryLookup fails outside the broker.
func DirectoryLookup(string, string, []string) (DirectoryUser, bool, error) {
	return DirectoryUser{}, false, noDirectory()
}

// DirectoryGroups fails outside the broker.
func DirectoryGroups(string, string) ([]DirectoryGroup, error) { return nil, noDirectory() }

// DirectoryChangePassword fails outside the broker.
func DirectoryChangePassword(string, string, string, string) error { return noDirectory() }

// HTTPDo fails outside the broker.
func HTTPDo(HTTPRequest) (HTTPResponse, error) {
	return HTTPResponse{}, errors.New("mapper.HTTPDo works " + outsideBroker)
}
