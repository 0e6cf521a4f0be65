//! RFC 6238 one-time codes for the test client (alice's authenticator in the example mappers),
//! over RustCrypto's HMAC-SHA1 and `data-encoding`'s base32; the RFC's vectors check it.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The secret of a `otpauth://` URI (RFC 4648 base32, padding optional, case-insensitive).
pub fn base32_decode(secret: &str) -> Option<Vec<u8>> {
    let mut text = secret.trim().to_ascii_uppercase().replace('=', "");
    while !text.len().is_multiple_of(8) {
        text.push('=');
    }
    data_encoding::BASE32.decode(text.as_bytes()).ok()
}

/// The 6-digit code for `key` at unix time `now` (30 s steps, HMAC-SHA1).
pub fn totp(key: &[u8], now: i64) -> String {
    let step = u64::try_from(now.div_euclid(30)).unwrap_or(0);
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let word = u32::from_be_bytes([
        digest[offset],
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]) & 0x7fff_ffff;
    format!("{:06}", word % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vectors() {
        let key = b"12345678901234567890";
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(totp(key, time), code[2..], "t={time}");
        }
        assert_eq!(
            base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").as_deref(),
            Some(&key[..])
        );
    }
}
