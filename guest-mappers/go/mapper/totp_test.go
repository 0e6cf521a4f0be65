package main

import "testing"

// The RFC 6238 appendix B test vectors for SHA-1 (8 digits there; the last 6 are ours).
var rfc6238 = []struct {
	seconds int64
	code    string
}{
	{59, "287082"},
	{1111111109, "081804"},
	{1111111111, "050471"},
	{1234567890, "005924"},
	{2000000000, "279037"},
	{20000000000, "353130"},
}

func rfcKey() []byte { return []byte("12345678901234567890") }

func TestTOTPMatchesRFC6238(t *testing.T) {
	for _, v := range rfc6238 {
		if got := TOTP(rfcKey(), v.seconds); got != v.code {
			t.Errorf("TOTP(%d) = %s, want %s", v.seconds, got, v.code)
		}
	}
}

func TestHOTPMatchesRFC4226(t *testing.T) {
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for counter, code := range want {
		if got := HOTP(rfcKey(), uint64(counter)); got != code {
			t.Errorf("HOTP(%d) = %s, want %s", counter, got, code)
		}
	}
}

func TestVerifyAcceptsNeighbouringStepsOnly(t *testing.T) {
	key := rfcKey()
	now := int64(1234567890)
	for _, offset := range []int64{-30, 0, 30} {
		if !VerifyTOTP(key, TOTP(key, now+offset), now) {
			t.Errorf("code of step %+d refused", offset/30)
		}
	}
	for _, offset := range []int64{-60, 60} {
		if VerifyTOTP(key, TOTP(key, now+offset), now) {
			t.Errorf("code of step %+d accepted", offset/30)
		}
	}
	if !VerifyTOTP(key, "005 924", now) {
		t.Error("spaces in the code are not forgiven")
	}
	for _, bad := range []string{"", "00592", "0059240", "00592a", "５５５５５５"} {
		if VerifyTOTP(key, bad, now) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBase32DecodeForgivesWhatAppsShow(t *testing.T) {
	want := "Hello!\xde\xad\xbe\xef"
	for _, text := range []string{"JBSWY3DPEHPK3PXP", "jbsw y3dp ehpk 3pxp", "JBSWY3DPEHPK3PXP===="} {
		if got := string(Base32Decode(text)); got != want {
			t.Errorf("Base32Decode(%q) = %q", text, got)
		}
	}
	for _, bad := range []string{"JBSWY3DP1", "J", "!!!!"} {
		if Base32Decode(bad) != nil {
			t.Errorf("Base32Decode(%q) is not nil", bad)
		}
	}
}
