//! itsdangerous `TimestampSigner` tokens, byte-compatible with itsdangerous 1.1.0 and 2.x and with
//! channelstream's browser signer (study §2).
//!
//! # Format
//!
//! ```text
//! token = VALUE "." TS "." SIG
//! TS    = b64url_nopad(big-endian unix seconds, leading zero bytes stripped)
//! SIG   = b64url_nopad(HMAC-SHA1(key, VALUE "." TS))
//! key   = SHA1("itsdangerous.Signer" || "signer" || secret)     ("django-concat" derivation)
//! ```
//!
//! Verification is deliberately as lenient as Python's and no more (§2.2, §2.4): the HMAC runs
//! over the literal received `VALUE.TS` bytes (the JS signer leaves one `=` in TS), both base64
//! alphabets and any trailing `=` padding are accepted, and everything else is refused. The MAC is
//! compared in constant time against every configured key, so key rotation costs one HMAC per key
//! and the comparison does not reveal which key, or how many bytes, matched.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac as _};
use sha1::{Digest as _, Sha1};
use subtle::ConstantTimeEq as _;

type HmacSha1 = Hmac<Sha1>;

/// Standard-alphabet decoding that ignores padding and tolerates non-zero trailing bits, as
/// Python's non-strict `b64decode` does.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// A derived itsdangerous signing key (20 bytes). `Debug` does not print it.
#[derive(Clone)]
pub struct SigningKey([u8; 20]);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// Derives the key itsdangerous uses for `secret` with its default salt.
    pub fn derive(secret: &[u8]) -> Self {
        let mut hasher = Sha1::new();
        hasher.update(b"itsdangerous.Signer");
        hasher.update(b"signer");
        hasher.update(secret);
        Self(hasher.finalize().into())
    }

    /// The raw derived key, for test vectors.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Signs `value` as dated `unix_secs`: what `TimestampSigner(secret).sign(value)` returns.
    pub fn sign(&self, value: &str, unix_secs: u64) -> String {
        let stamp = encode_timestamp(unix_secs);
        let signed_part = format!("{value}.{stamp}");
        let mac = self.mac(signed_part.as_bytes());
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac);
        format!("{signed_part}.{sig}")
    }

    fn mac(&self, data: &[u8]) -> [u8; 20] {
        // HMAC accepts keys of any length, so this cannot fail for a 20-byte key.
        let mut mac = match HmacSha1::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => return [0; 20],
        };
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

/// A token whose signature matched one of the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsigned<'a> {
    /// The signed VALUE.
    pub value: &'a str,
    /// The token's timestamp, in Unix seconds.
    pub unix_secs: u64,
    /// The decoded MAC (identifies the token for the replay cache).
    pub mac: [u8; 20],
}

/// Why a token was refused. Callers map every variant to one public answer, so these are for logs
/// and tests only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `.` separates a signature.
    #[error("no separator found")]
    Malformed,
    /// The signature is not valid base64 of 20 bytes.
    #[error("signature is not base64 of an HMAC-SHA1")]
    BadEncoding,
    /// No configured key produces this signature.
    #[error("signature does not match")]
    Mismatch,
    /// The timestamp part is missing or not a base64 integer of at most 8 bytes.
    #[error("malformed timestamp")]
    BadTimestamp,
}

/// Checks `token` against `keys` and splits it. Age checks are the caller's business.
///
/// # Errors
///
/// A [`SignatureError`] saying why the token is not authentic.
pub fn unsign<'a>(keys: &[SigningKey], token: &'a str) -> Result<Unsigned<'a>, SignatureError> {
    let (signed_part, sig) = token.rsplit_once('.').ok_or(SignatureError::Malformed)?;
    let sig = decode_lenient(sig).ok_or(SignatureError::BadEncoding)?;
    let sig: [u8; 20] = sig.try_into().map_err(|_| SignatureError::BadEncoding)?;
    let mut matched = subtle::Choice::from(0);
    for key in keys {
        matched |= key.mac(signed_part.as_bytes()).ct_eq(&sig);
    }
    if !bool::from(matched) {
        return Err(SignatureError::Mismatch);
    }
    let (value, stamp) = signed_part
        .rsplit_once('.')
        .ok_or(SignatureError::BadTimestamp)?;
    let stamp = decode_lenient(stamp).ok_or(SignatureError::BadTimestamp)?;
    if stamp.is_empty() || stamp.len() > 8 {
        return Err(SignatureError::BadTimestamp);
    }
    let mut bytes = [0_u8; 8];
    bytes[8 - stamp.len()..].copy_from_slice(&stamp);
    Ok(Unsigned {
        value,
        unix_secs: u64::from_be_bytes(bytes),
        mac: sig,
    })
}

fn encode_timestamp(unix_secs: u64) -> String {
    let bytes = unix_secs.to_be_bytes();
    let first = bytes
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(bytes.len());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[first..])
}

/// Python's `urlsafe_b64decode` after itsdangerous re-pads: both alphabets, trailing `=` ignored.
fn decode_lenient(text: &str) -> Option<Vec<u8>> {
    let trimmed = text.trim_end_matches('=');
    if trimmed.len() % 4 == 1 {
        return None;
    }
    let mapped: String = trimmed
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            other => other,
        })
        .collect();
    LENIENT.decode(mapped).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> SigningKey {
        SigningKey::derive(secret.as_bytes())
    }

    /// The token table of study §2.3.
    #[test]
    fn reproduces_the_reference_vectors() {
        assert_eq!(
            hex::encode(key("secret").as_bytes()),
            "3a1c28f7aad5a02fe672d24f1003fb52a7312ed7"
        );
        assert_eq!(
            hex::encode(key("s3cr3t-ż").as_bytes()),
            "154a169fe3b5106db7275ea327e0ba583487c022"
        );
        let vectors = [
            (
                "secret",
                "channelstream",
                1_600_000_000,
                "channelstream.X14QAA.QLT3kgcJYg14C3PAy4wtyg5uGgI",
            ),
            (
                "secret",
                "/connect",
                1_700_000_000,
                "/connect.ZVPxAA.LGgz2XYmQrtshS37benqptPevTY",
            ),
            (
                "s3cr3t-ż",
                "channelstream",
                1_234_567_890,
                "channelstream.SZYC0g.gz2c3fOZg83UKQa91EzQZPlKy_A",
            ),
            (
                "secret",
                "channelstream",
                1_600_000_001,
                "channelstream.X14QAQ.96lv0yj3r3-I-N5ttBbtFs9KEIQ",
            ),
        ];
        for (secret, value, ts, token) in vectors {
            assert_eq!(key(secret).sign(value, ts), token);
            let unsigned = unsign(&[key(secret)], token).unwrap();
            assert_eq!((unsigned.value, unsigned.unix_secs), (value, ts));
        }
        let raw = unsign(
            &[key("secret")],
            "/connect.ZVPxAA.LGgz2XYmQrtshS37benqptPevTY",
        )
        .unwrap();
        assert_eq!(
            hex::encode(raw.mac),
            "2c6833d9762642bb6c852dfb6de9eaa6d3debd36"
        );
    }

    /// The leniency table of §2.3 and the JS signer quirks of §2.4.
    #[test]
    fn accepts_padding_both_alphabets_and_js_tokens() {
        let keys = [key("secret")];
        for token in [
            "channelstream.X14QAA.QLT3kgcJYg14C3PAy4wtyg5uGgI=",
            "channelstream.X14QAQ.96lv0yj3r3+I-N5ttBbtFs9KEIQ",
            "channelstream.X14QAQ.96lv0yj3r3+I+N5ttBbtFs9KEIQ==",
            "channelstream.X14QAA=.Puy6fglMxTJx42nbfWGFGCF6P7M",
        ] {
            let unsigned = unsign(&keys, token).unwrap();
            assert_eq!(unsigned.value, "channelstream");
        }
    }

    #[test]
    fn refuses_tampering_garbage_and_wrong_keys() {
        let keys = [key("secret")];
        assert_eq!(
            unsign(&keys, "channelstreaM.X14QAA.QLT3kgcJYg14C3PAy4wtyg5uGgI"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(unsign(&keys, "garbage"), Err(SignatureError::Malformed));
        assert!(unsign(&keys, "abc.def").is_err());
        assert!(unsign(&keys, "channelstream.X14QAA.QLT3kgcJ!g14C3PAy4wtyg5uGgI").is_err());
        assert_eq!(
            unsign(
                &[key("other")],
                "channelstream.X14QAA.QLT3kgcJYg14C3PAy4wtyg5uGgI"
            ),
            Err(SignatureError::Mismatch)
        );
        assert!(unsign(&keys, "").is_err());
        assert!(unsign(&keys, "...").is_err());
    }

    #[test]
    fn any_key_of_a_rotation_list_verifies() {
        let token = key("old").sign("/connect", 1_700_000_000);
        assert!(unsign(&[key("new"), key("old")], &token).is_ok());
        assert!(unsign(&[key("new")], &token).is_err());
        assert!(unsign(&[], &token).is_err());
    }
}
