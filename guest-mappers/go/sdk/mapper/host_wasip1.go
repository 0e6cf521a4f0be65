//go:build wasip1

package mapper

import host "interstate/sdk/bindings/interstate_mapper_host"

// Log writes one line to the broker's log, tagged with the mapper and the request. Lines are
// rate-limited and truncated at 2 KiB. Never log passwords or codes.
func Log(level Level, message string) {
	host.Log(host.Level(level), message)
}

// VerifyPassword checks password against a stored hash on the host, in constant time. It
// accepts the interstate_love_song format (hex PBKDF2-HMAC-SHA256, salt "IGNORED", 100000
// iterations; `interstate hash-password` prints one) and PHC strings ($argon2id$...,
// $pbkdf2-sha256$...). It returns false for a wrong password and for an unknown format.
func VerifyPassword(password, hash string) bool {
	return host.VerifyPassword(password, hash)
}
