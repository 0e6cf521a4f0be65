package main

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"interstate/sdk/mapper"
)

// fakeHost is the broker as the policy's tests see it: passwords are checked for real
// (mapper.VerifyPassword understands the ILS hashes of example.settings.json natively) and
// against the fake's own hashes; TOTP verdicts, the store and the power API are scripted; every
// call is recorded. Calls it does not override go to mapper.Broker, which fails natively.
type fakeHost struct {
	mapper.Host
	t *testing.T

	logs      []string
	verified  []string // the hashes VerifyPassword was asked about
	totpCalls [][2]string
	verdicts  map[string]mapper.TotpVerdict // code -> verdict (default: rejected)

	store    map[string][]byte
	ttls     map[string]time.Duration
	storeErr error // when set, every store call fails with it

	requests []mapper.HTTPRequest
	http     func(request mapper.HTTPRequest) (mapper.HTTPResponse, error)
}

func newFakeHost(t *testing.T) *fakeHost {
	return &fakeHost{
		Host:     mapper.Broker,
		t:        t,
		verdicts: map[string]mapper.TotpVerdict{},
		store:    map[string][]byte{},
		ttls:     map[string]time.Duration{},
	}
}

const fakeHashPrefix = "$fake-sha256$"

func (h *fakeHost) Log(level mapper.Level, message string) {
	names := [...]string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR"}
	h.logs = append(h.logs, names[level]+" "+message)
}

func (h *fakeHost) VerifyPassword(password, hash string) bool {
	h.verified = append(h.verified, hash)
	if strings.HasPrefix(hash, fakeHashPrefix) {
		return hash == h.HashPassword(password)
	}
	return mapper.VerifyPassword(password, hash)
}

func (h *fakeHost) HashPassword(password string) string {
	sum := sha256.Sum256([]byte(password))
	return fakeHashPrefix + hex.EncodeToString(sum[:])
}

func (h *fakeHost) VerifyTotp(secret, code string) mapper.TotpVerdict {
	h.totpCalls = append(h.totpCalls, [2]string{secret, code})
	if verdict, ok := h.verdicts[code]; ok {
		return verdict
	}
	return mapper.TotpRejected
}

func (h *fakeHost) StoreGet(key string) ([]byte, bool, error) {
	if h.storeErr != nil {
		return nil, false, h.storeErr
	}
	value, found := h.store[key]
	return value, found, nil
}

func (h *fakeHost) StoreSet(key string, value []byte, ttl time.Duration) error {
	if h.storeErr != nil {
		return h.storeErr
	}
	h.store[key] = append([]byte{}, value...)
	h.ttls[key] = ttl
	return nil
}

func (h *fakeHost) HTTPDo(request mapper.HTTPRequest) (mapper.HTTPResponse, error) {
	h.requests = append(h.requests, request)
	if h.http == nil {
		h.t.Fatalf("unexpected HTTP request %s %s", request.Method, request.URL)
	}
	return h.http(request)
}

// infoLines is the INFO lines logged so far.
func (h *fakeHost) infoLines() []string {
	var lines []string
	for _, line := range h.logs {
		if strings.HasPrefix(line, "INFO ") {
			lines = append(lines, line)
		}
	}
	return lines
}

// takeLogs returns the lines logged so far and forgets them.
func (h *fakeHost) takeLogs() []string {
	lines := h.logs
	h.logs = nil
	return lines
}
