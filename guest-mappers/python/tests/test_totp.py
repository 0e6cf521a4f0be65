import unittest

from example_mapper.totp import base32_decode, hotp, totp, verify_totp

RFC_KEY = b"12345678901234567890"


class TotpTest(unittest.TestCase):
    def test_hotp_matches_rfc_4226_appendix_d(self) -> None:
        expected = [
            "755224",
            "287082",
            "359152",
            "969429",
            "338314",
            "254676",
            "287922",
            "162583",
            "399871",
            "520489",
        ]
        self.assertEqual([hotp(RFC_KEY, counter) for counter in range(10)], expected)

    def test_totp_matches_rfc_6238_appendix_b_sha1(self) -> None:
        vectors = [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ]
        for time, code in vectors:
            with self.subTest(time=time):
                self.assertEqual(totp(RFC_KEY, time, 8), code)

    def test_base32_forgives_case_spaces_and_padding(self) -> None:
        self.assertEqual(base32_decode("JBSWY3DPEHPK3PXP"), bytes.fromhex("48656c6c6f21deadbeef"))
        self.assertEqual(base32_decode("mzxw 6ytb oi"), b"foobar")
        self.assertEqual(base32_decode("MZXW6YTBOI======"), b"foobar")
        self.assertEqual(base32_decode("MY"), b"f")
        self.assertIsNone(base32_decode("JBSWY3DP1"))
        self.assertIsNone(base32_decode("JBSW-Y3DP"))
        self.assertIsNone(base32_decode("ABC"))

    def test_accepts_previous_current_and_next_step_only(self) -> None:
        key = base32_decode("JBSWY3DPEHPK3PXP")
        assert key is not None
        now = 1_700_000_015
        for offset, expected in [(0, True), (-30, True), (30, True), (-60, False), (60, False)]:
            with self.subTest(offset=offset):
                self.assertEqual(verify_totp(key, totp(key, now + offset), now), expected)
        code = totp(key, now)
        self.assertTrue(verify_totp(key, f" {code[:3]} {code[3:]} ", now))

    def test_refuses_malformed_codes(self) -> None:
        key = base32_decode("JBSWY3DPEHPK3PXP")
        assert key is not None
        now = 1_700_000_015
        good = totp(key, now)
        for code in ["", "12345", "1234567", "abcdef", good + "0", "+" + good[1:], "١٢٣٤٥٦"]:
            with self.subTest(code=code):
                self.assertFalse(verify_totp(key, code, now))


if __name__ == "__main__":
    unittest.main()
