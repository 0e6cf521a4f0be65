//go:build !wasip1

package mapper

import (
	"errors"
	"testing"
	"time"
)

func TestTTLBecomesMilliseconds(t *testing.T) {
	for ttl, want := range map[time.Duration]Option[uint64]{
		0:                       None[uint64](),
		-time.Second:            None[uint64](),
		time.Microsecond:        Some[uint64](1),
		1500 * time.Millisecond: Some[uint64](1500),
		30 * 24 * time.Hour:     Some[uint64](2_592_000_000),
	} {
		if got := ttlOption(ttl); got != want {
			t.Errorf("ttlOption(%v) = %+v, want %+v", ttl, got, want)
		}
	}
}

// Outside the broker, Broker fails loudly instead of pretending.
func TestBrokerOutsideTheBrokerFailsLoudly(t *testing.T) {
	var storeErr *StoreError
	if _, _, err := Broker.StoreGet("k"); !errors.As(err, &storeErr) || storeErr.Kind != StoreUnavailable {
		t.Errorf("StoreGet: %v", err)
	}
	if err := Broker.StoreSet("k", nil, 0); !errors.As(err, &storeErr) {
		t.Errorf("StoreSet: %v", err)
	}
	var failure *DirectoryFailure
	if _, err := Broker.DirectoryGroups("corp", "bob"); !errors.As(err, &failure) || failure.Kind != DirectoryUnreachable {
		t.Errorf("DirectoryGroups: %v", err)
	}
	if _, err := Broker.HTTPDo(HTTPRequest{URL: "https://example.com"}); err == nil {
		t.Error("HTTPDo succeeded outside the broker")
	}
	for name, call := range map[string]func(){
		"HashPassword": func() { Broker.HashPassword("pw") },
		"VerifyTotp":   func() { Broker.VerifyTotp("JBSWY3DPEHPK3PXP", "123456") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			call()
		}()
	}
	// The ILS format verifies natively: bob-pw of example.settings.json.
	if !Broker.VerifyPassword("bob-pw", "8ff41da5ef01bf7ddb6aef29749422ebad97fb879df33126aed850aeb22325e8") ||
		Broker.VerifyPassword("bob-pw", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA") {
		t.Error("VerifyPassword natively")
	}
}

func TestErrorTexts(t *testing.T) {
	for err, want := range map[error]string{
		&StoreError{Kind: StoreTooLarge, Detail: "key over 256 bytes"}: "store: too large: key over 256 bytes",
		&StoreError{Kind: StoreFull}:                                   "store: full",
		&StoreError{Kind: StoreUnavailable, Detail: "redis down"}:      "store: unavailable: redis down",
		&DirectoryFailure{Kind: DirectoryLockedOut, Detail: "775"}:     "directory: locked-out: 775",
		&DirectoryFailure{Kind: 42, Detail: "?"}:                       "directory: kind 42: ?",
	} {
		if err.Error() != want {
			t.Errorf("%q, want %q", err.Error(), want)
		}
	}
}
