//! TOTP (RFC 6238) one-time codes: SHA-1, HMAC-SHA1, base32 secrets, 30 s steps, 6 digits.
//!
//! SHA-1 and HMAC are written out here (about 80 lines, checked against the FIPS 180 and
//! RFC 2202 vectors below) so that the example needs no crate beyond `serde_json`.

/// The RFC 6238 time step, in seconds.
pub const STEP_SECONDS: i64 = 30;

/// The number of digits of a code.
pub const DIGITS: usize = 6;

const SHA1_BLOCK: usize = 64;

/// SHA-1 (FIPS 180-4) of `message`.
pub fn sha1(message: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xefcd_ab89,
        0x98ba_dcfe,
        0x1032_5476,
        0xc3d2_e1f0,
    ];
    let bit_length = (message.len() as u64).wrapping_mul(8);
    let mut padded = message.to_vec();
    padded.push(0x80);
    while padded.len() % SHA1_BLOCK != SHA1_BLOCK - 8 {
        padded.push(0);
    }
    padded.extend_from_slice(&bit_length.to_be_bytes());

    let mut w = [0u32; 80];
    for block in padded.chunks_exact(SHA1_BLOCK) {
        for (t, word) in block.chunks_exact(4).enumerate() {
            w[t] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for t in 16..80 {
            w[t] = (w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (t, word) in w.iter().enumerate() {
            let (f, k) = match t {
                0..=19 => ((b & c) | (!b & d), 0x5a82_7999),
                20..=39 => (b ^ c ^ d, 0x6ed9_eba1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8f1b_bcdc),
                _ => (b ^ c ^ d, 0xca62_c1d6),
            };
            let temp = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*word);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = temp;
        }
        for (state, value) in h.iter_mut().zip([a, b, c, d, e]) {
            *state = state.wrapping_add(value);
        }
    }
    let mut digest = [0u8; 20];
    for (out, word) in digest.chunks_exact_mut(4).zip(h) {
        out.copy_from_slice(&word.to_be_bytes());
    }
    digest
}

/// HMAC-SHA1 (RFC 2104) of `message` under `key`.
pub fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    let mut block = [0u8; SHA1_BLOCK];
    if key.len() > SHA1_BLOCK {
        block[..20].copy_from_slice(&sha1(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Vec::with_capacity(SHA1_BLOCK + message.len());
    inner.extend(block.iter().map(|b| b ^ 0x36));
    inner.extend_from_slice(message);
    let mut outer = Vec::with_capacity(SHA1_BLOCK + 20);
    outer.extend(block.iter().map(|b| b ^ 0x5c));
    outer.extend_from_slice(&sha1(&inner));
    sha1(&outer)
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
            matched |= constant_time_eq(hotp(key, candidate as u64).as_bytes(), typed.as_bytes());
        }
    }
    matched
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha1_matches_fips_180_examples() {
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            hex(&sha1(&vec![b'a'; 1_000_000])),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
    }

    #[test]
    fn sha1_padding_boundaries() {
        // 55, 56 and 64 bytes straddle the one-block / two-block padding edge.
        assert_eq!(
            hex(&sha1(&[b'a'; 55])),
            "c1c8bbdc22796e28c0e15163d20899b65621d65a"
        );
        assert_eq!(
            hex(&sha1(&[b'a'; 56])),
            "c2db330f6083854c99d4b5bfb6e8f29f201be699"
        );
        assert_eq!(
            hex(&sha1(&[b'a'; 64])),
            "0098ba824b5c16427bd7a1122a5a442a25ec644d"
        );
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
