package main

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode"
)

// stepSeconds is the RFC 6238 time step.
const stepSeconds = 30

// Base32Decode decodes a base32 secret as authenticator apps show it: case, spaces and
// missing '=' padding are forgiven. It returns nil when the text is not base32.
func Base32Decode(text string) []byte {
	clean := strings.ToUpper(strings.TrimRight(strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, text), "="))
	switch len(clean) % 8 {
	case 1, 3, 6:
		// No whole number of bytes encodes to these lengths.
		return nil
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(clean)
	if err != nil {
		return nil
	}
	return key
}

// HOTP is RFC 4226 with HMAC-SHA1 and 6 digits.
func HOTP(key []byte, counter uint64) string {
	mac := hmac.New(sha1.New, key)
	var message [8]byte
	binary.BigEndian.PutUint64(message[:], counter)
	mac.Write(message[:])
	sum := mac.Sum(nil)
	offset := sum[len(sum)-1] & 0x0f
	code := binary.BigEndian.Uint32(sum[offset:offset+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", code%1_000_000)
}

// TOTP is RFC 6238 for the step that contains unixSeconds.
func TOTP(key []byte, unixSeconds int64) string {
	return HOTP(key, uint64(unixSeconds/stepSeconds))
}

// VerifyTOTP checks a 6-digit code against the previous, current and next step. The
// neighbouring steps forgive clock drift and a code typed just as it rolled over. Spaces in
// the code are ignored.
func VerifyTOTP(key []byte, code string, unixSeconds int64) bool {
	typed := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, code)
	if len(typed) != 6 || strings.Trim(typed, "0123456789") != "" {
		return false
	}
	step := unixSeconds / stepSeconds
	matched := 0
	// Every window is computed, so the time taken does not reveal which one matched.
	for candidate := step - 1; candidate <= step+1; candidate++ {
		if candidate >= 0 {
			matched |= subtle.ConstantTimeCompare([]byte(HOTP(key, uint64(candidate))), []byte(typed))
		}
	}
	return matched == 1
}
