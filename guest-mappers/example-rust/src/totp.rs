//! TOTP (RFC 6238) one-time codes: base32 secrets, 30 s steps, 6 digits.
//!
//! HMAC-SHA1 comes from RustCrypto's `hmac` and `sha1` crates and the constant-time compare
//! from `subtle`; only the RFC 4226/6238 arithmetic (truncation, time steps, the window) and
//! the forgiving base32 decoding of authenticator secrets are written here.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// The RFC 6238 time step, in seconds.
pub const STEP_SECONDS: i64 = 30;

/// The number of digits of a code.
pub const DIGITS: usize = 6;

/// HMAC-SHA1 (RFC 2104) of `message` under `key`.
pub fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    // HMAC takes a key of any length (a long one is hashed first), so this cannot fail.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Decodes a base32 (RFC 4648) secret as authenticator apps show it: case, white space and
/// missing `=` padding are forgiven. `None` when the text is not base32, or has a length that
/// whole bytes cannot produce (1, 3 or 6 characters mod 8).
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let clean = clean.trim_end_matches('=').to_ascii_uppercase();
    if matches!(clean.len() % 8, 1 | 3 | 6) {
        return None;
    }
    let mut out = Vec::with_capacity(clean.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for c in clean.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = ((buffer << 5) | u32::from(value)) & 0xffff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// HOTP (RFC 4226) with HMAC-SHA1: the 6-digit code for `counter`.
pub fn hotp(key: &[u8], counter: u64) -> String {
    let mac = hmac_sha1(key, &counter.to_be_bytes());
    let offset = usize::from(mac[19] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset],
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]) & 0x7fff_ffff;
    format!("{:06}", binary % 1_000_000)
}

/// TOTP (RFC 6238): the code for the step that contains `unix_seconds`.
pub fn totp(key: &[u8], unix_seconds: i64) -> String {
    hotp(key, unix_seconds.div_euclid(STEP_SECONDS).max(0) as u64)
}

/// Checks a 6-digit code against the previous, current and next step, which forgives clock
/// drift and a code typed just as it rolled over. White space in the code is ignored.
pub fn verify_totp(key: &[u8], code: &str, unix_seconds: i64) -> bool {
    let typed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if typed.len() != DIGITS || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let step = unix_seconds.div_euclid(STEP_SECONDS);
    let mut matched = false;
    // Every window is computed and compared in full, so the time taken does not reveal which
    // one matched.
    for candidate in [step - 1, step, step + 1] {
        if candidate >= 0 {
            matched |= bool::from(
                hotp(key, candidate as u64)
                    .as_bytes()
                    .ct_eq(typed.as_bytes()),
            );
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        let cases: [(Vec<u8>, Vec<u8>, &str); 7] = [
            (
                vec![0x0b; 20],
                b"Hi There".to_vec(),
                "b617318655057264e28bc0b6fb378c8ef146be00",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
            ),
            (
                vec![0xaa; 20],
                vec![0xdd; 50],
                "125d7342b9ac11cd91a39af48aa17b4f63f175d3",
            ),
            (
                (1..=25).collect(),
                vec![0xcd; 50],
                "4c9007f4026250c6bc8414f9bf50c86c2d7235da",
            ),
            (
                vec![0x0c; 20],
                b"Test With Truncation".to_vec(),
                "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04",
            ),
            (
                vec![0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "aa4ae5e15272d00e95705637ce8a3b55ed402112",
            ),
            (
                vec![0xaa; 80],
                b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data"
                    .to_vec(),
                "e8e99d0f45237d786d6bbaa7965c7808bbff1a91",
            ),
        ];
        for (key, message, expected) in cases {
            assert_eq!(hex(&hmac_sha1(&key, &message)), expected);
        }
    }

    #[test]
    fn hotp_matches_rfc_4226_appendix_d() {
        let key = b"12345678901234567890";
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(key, counter as u64), *code);
        }
    }

    #[test]
    fn totp_matches_rfc_6238_sha1_vectors() {
        // RFC 6238 Appendix B gives 8 digits; the last 6 are the 6-digit code.
        let key = b"12345678901234567890";
        for (time, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp(key, time), eight[2..]);
        }
    }

    #[test]
    fn base32_forgives_case_spaces_and_padding() {
        assert_eq!(
            base32_decode("JBSWY3DPEHPK3PXP").unwrap(),
            b"Hello!\xde\xad\xbe\xef"
        );
        assert_eq!(
            base32_decode("jbsw y3dp ehpk 3pxp").unwrap(),
            b"Hello!\xde\xad\xbe\xef"
        );
        assert_eq!(base32_decode("MZXW6===").unwrap(), b"foo");
        assert_eq!(base32_decode("MZXW6").unwrap(), b"foo");
        assert_eq!(base32_decode("").unwrap(), b"");
        assert_eq!(base32_decode("MZXW1"), None, "1 is not base32");
        assert_eq!(
            base32_decode("MZX"),
            None,
            "3 characters make no whole bytes"
        );
    }

    #[test]
    fn verify_accepts_the_neighbouring_steps_only() {
        let key = base32_decode("JBSWY3DPEHPK3PXP").unwrap();
        let now = 1_700_000_015;
        let current = totp(&key, now);
        assert!(verify_totp(&key, &current, now));
        assert!(verify_totp(
            &key,
            &format!(" {} {}", &current[..3], &current[3..]),
            now
        ));
        assert!(verify_totp(&key, &totp(&key, now - 30), now));
        assert!(verify_totp(&key, &totp(&key, now + 30), now));
        assert!(!verify_totp(&key, &totp(&key, now - 60), now));
        assert!(!verify_totp(&key, &totp(&key, now + 60), now));
        assert!(!verify_totp(&key, "12345", now));
        assert!(!verify_totp(&key, "1234567", now));
        assert!(!verify_totp(&key, "12345a", now));
        assert!(!verify_totp(&key, "", now));
    }
}
