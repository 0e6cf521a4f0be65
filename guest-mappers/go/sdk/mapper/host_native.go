//go:build !wasip1

package mapper

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"os"
)

// In a native build (`go test` on your machine) there is no broker to call, so these two
// functions do the work themselves: Log writes to stderr, and VerifyPassword understands the
// interstate_love_song format only. PHC strings ($argon2id$...) verify only inside the broker.

var levelNames = [...]string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR"}

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
