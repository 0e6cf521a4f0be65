//! Password hashes a mapper can check through `verify-password`.
//!
//! - **ILS**: lowercase hex of PBKDF2-HMAC-SHA256(password, salt `IGNORED`, 100000 iterations,
//!   32 bytes), exactly `interstate_love_song.plugins.simple.hash_pass`.
//! - **PHC** `$argon2id$v=19$m=..,t=..,p=..$salt$hash` and
//!   `$pbkdf2-sha256$i=..,l=..$salt$hash`, and passlib's `$pbkdf2-sha256$rounds$salt$hash`.
//!
//! Every comparison is constant-time. A hash in no known format, or with cost parameters
//! beyond [`MAX_ARGON2_MEMORY_KIB`], [`MAX_ARGON2_TIME`], [`MAX_ARGON2_PARALLELISM`] or
//! [`MAX_PBKDF2_ROUNDS`], never verifies and is never computed (a warning says so): the hash
//! comes from the mapper, and a crafted one must not pin the host's CPU or memory.

use argon2::Argon2;
use password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use pbkdf2::Pbkdf2;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The salt ILS used for every password.
const ILS_SALT: &[u8] = b"IGNORED";
/// ILS's PBKDF2 iteration count.
const ILS_ROUNDS: u32 = 100_000;
/// The most argon2 memory a hash may ask for (64 MiB; OWASP's argon2id advice is 19 to 46 MiB).
pub const MAX_ARGON2_MEMORY_KIB: u32 = 64 * 1024;
/// The most argon2 passes a hash may ask for.
pub const MAX_ARGON2_TIME: u32 = 10;
/// The most argon2 lanes a hash may ask for.
pub const MAX_ARGON2_PARALLELISM: u32 = 8;
/// The most PBKDF2 rounds a hash may ask for (OWASP's PBKDF2-SHA256 advice is 600,000).
pub const MAX_PBKDF2_ROUNDS: u32 = 1_000_000;

/// Whether `password` matches `hash` (ILS hex, PHC argon2id or pbkdf2-sha256). False for a
/// wrong password and for a hash in no known format.
pub fn verify(password: &str, hash: &str) -> bool {
    let hash = hash.trim();
    if let Some(expected) = ils_digest(hash) {
        return ils_key(password).ct_eq(&expected).into();
    }
    if hash.starts_with("$argon2id$") {
        return verify_argon2id(password, hash);
    }
    if hash.starts_with("$pbkdf2-sha256$") {
        return verify_pbkdf2(password, hash);
    }
    false
}

/// The ILS hash of `password` (what `interstate hash-password --ils` prints).
pub fn hash_ils(password: &str) -> String {
    hex::encode(*ils_key(password))
}

/// argon2id's memory cost for new hashes, in KiB (OWASP's first recommendation).
pub const ARGON2_MEMORY_KIB: u32 = 19_456;
/// argon2id's passes for new hashes.
pub const ARGON2_TIME: u32 = 2;
/// argon2id's lanes for new hashes.
pub const ARGON2_PARALLELISM: u32 = 1;

/// A PHC argon2id hash of `password` (m=19456 KiB, t=2, p=1, a fresh random 16-byte salt):
/// what `hash-password` and `interstate hash-password` produce, and [`verify`] accepts.
pub fn hash_argon2id(password: &str) -> String {
    let salt = SaltString::generate(&mut password_hash::rand_core::OsRng);
    let hasher = match argon2::Params::new(ARGON2_MEMORY_KIB, ARGON2_TIME, ARGON2_PARALLELISM, None)
    {
        Ok(params) => Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params),
        // Only reachable with invalid parameters, and these constants are valid.
        Err(err) => unreachable!(
            "argon2 parameters {ARGON2_MEMORY_KIB}/{ARGON2_TIME}/{ARGON2_PARALLELISM} are invalid: {err}"
        ),
    };
    match hasher.hash_password(password.as_bytes(), &salt) {
        Ok(hash) => hash.to_string(),
        // Only reachable with invalid parameters, and these are valid.
        Err(err) => unreachable!("argon2 with fixed valid parameters failed: {err}"),
    }
}

fn ils_key(password: &str) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0_u8; 32]);
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), ILS_SALT, ILS_ROUNDS, key.as_mut());
    key
}

/// The 32 bytes of an ILS hash (64 hex digits, either case).
fn ils_digest(hash: &str) -> Option<[u8; 32]> {
    if hash.len() != 64 {
        return None;
    }
    let mut digest = [0_u8; 32];
    hex::decode_to_slice(hash, &mut digest).ok()?;
    Some(digest)
}

fn verify_argon2id(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let param = |name: &str| parsed.params.get_decimal(name).unwrap_or(u32::MAX);
    let (m, t, p) = (param("m"), param("t"), param("p"));
    if m > MAX_ARGON2_MEMORY_KIB || t > MAX_ARGON2_TIME || p > MAX_ARGON2_PARALLELISM {
        refused_cost(&format!(
            "argon2id m={m} KiB, t={t}, p={p} (at most m={MAX_ARGON2_MEMORY_KIB}, \
             t={MAX_ARGON2_TIME}, p={MAX_ARGON2_PARALLELISM})"
        ));
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

fn verify_pbkdf2(password: &str, hash: &str) -> bool {
    if let Some(passlib) = PasslibPbkdf2::parse(hash) {
        return passlib.verify(password);
    }
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let rounds = parsed.params.get_decimal("i").unwrap_or(u32::MAX);
    if rounds > MAX_PBKDF2_ROUNDS {
        refused_cost(&format!("pbkdf2-sha256 with {rounds} rounds"));
        return false;
    }
    Pbkdf2.verify_password(password.as_bytes(), &parsed).is_ok()
}

/// Logs a hash refused for its cost (never computed).
fn refused_cost(what: &str) {
    tracing::warn!(
        target: "interstate::mapper",
        "verify-password refused a hash beyond the cost caps as a non-match, without computing it: \
         {what}"
    );
}

/// passlib's `$pbkdf2-sha256$<rounds>$<salt>$<hash>`, with its "adapted base64" (`.` for `+`).
struct PasslibPbkdf2 {
    rounds: u32,
    salt: Vec<u8>,
    digest: Vec<u8>,
}

impl PasslibPbkdf2 {
    fn parse(hash: &str) -> Option<Self> {
        let mut parts = hash.strip_prefix("$pbkdf2-sha256$")?.split('$');
        let rounds = parts.next()?;
        if rounds.is_empty() || !rounds.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let salt = ab64_decode(parts.next()?)?;
        let digest = ab64_decode(parts.next()?)?;
        if parts.next().is_some() || digest.is_empty() || digest.len() > 64 {
            return None;
        }
        Some(Self {
            rounds: rounds.parse().ok()?,
            salt,
            digest,
        })
    }

    fn verify(&self, password: &str) -> bool {
        if self.rounds == 0 || self.rounds > MAX_PBKDF2_ROUNDS {
            refused_cost(&format!("pbkdf2-sha256 with {} rounds", self.rounds));
            return false;
        }
        let mut key = Zeroizing::new(vec![0_u8; self.digest.len()]);
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &self.salt, self.rounds, &mut key);
        key.as_slice().ct_eq(&self.digest).into()
    }
}

/// Decodes unpadded base64 in the standard alphabet, also accepting passlib's `.` for `+`.
fn ab64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(byte: u8) -> Option<u32> {
        Some(
            match byte {
                b'A'..=b'Z' => byte - b'A',
                b'a'..=b'z' => byte - b'a' + 26,
                b'0'..=b'9' => byte - b'0' + 52,
                b'+' | b'.' => 62,
                b'/' => 63,
                _ => return None,
            }
            .into(),
        )
    }
    let text = text.trim_end_matches('=');
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut acc = 0_u32;
        for &byte in chunk {
            acc = (acc << 6) | value(byte)?;
        }
        let bits = chunk.len() * 6;
        acc <<= 24 - bits;
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..1 + bits / 8]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed with Python's hashlib.pbkdf2_hmac("sha256", pw.encode(), b"IGNORED", 100000).hex(),
    // the body of interstate_love_song 2.0.3's plugins/simple.py `hash_pass`.
    const ILS_CHBS: &str = "660738cb8ad3c9ba4a7fc7337e868e3022de55272d487b269e45ff81b4561021";
    const ILS_PW: &str = "175596f80f34d0477f3ac3604549bd3abb5183f12946589cbff65d5a15e3b0d0";
    const ILS_UNICODE: &str = "8ab92b3a1cc1ed3d00f79ea960972acd737ac8f1830ec810c18aeafee45f352c";
    const ILS_EMPTY: &str = "f66d130275b884a58a19b7cd407e0be3536c1339e52f21f2bed85f652c510a4a";
    // argon2-cffi 25: PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
    //     .hash("correct horse battery staple", salt=b"interstatesalt16")
    const ARGON2ID: &str = "$argon2id$v=19$m=19456,t=2,p=1$aW50ZXJzdGF0ZXNhbHQxNg$7iflLm9HX8kW2mYzDnzHJDEvkIacMNFP/KCo2k8eDlU";
    // hashlib.pbkdf2_hmac("sha256", pw, b"interstatesalt16", 10000), PHC-encoded by hand.
    const PHC_PBKDF2: &str = "$pbkdf2-sha256$i=10000,l=32$aW50ZXJzdGF0ZXNhbHQxNg$fiG3oZZzYGwrAHasuMB23pAYkFoBRP9eD++JjnOdE0s";
    // passlib.hash.pbkdf2_sha256.using(rounds=10000, salt=b"interstatesalt16").hash(pw)
    const PASSLIB_PBKDF2: &str =
        "$pbkdf2-sha256$10000$aW50ZXJzdGF0ZXNhbHQxNg$fiG3oZZzYGwrAHasuMB23pAYkFoBRP9eD..JjnOdE0s";
    const CHBS: &str = "correct horse battery staple";

    #[test]
    fn ils_hashes_match_python() {
        assert_eq!(hash_ils(CHBS), ILS_CHBS);
        assert_eq!(hash_ils("pw"), ILS_PW);
        assert_eq!(hash_ils("pässwörd €"), ILS_UNICODE);
        assert_eq!(hash_ils(""), ILS_EMPTY);
    }

    #[test]
    fn ils_verifies_and_refuses() {
        assert!(verify(CHBS, ILS_CHBS));
        assert!(verify(CHBS, &ILS_CHBS.to_uppercase()));
        assert!(verify(CHBS, &format!(" {ILS_CHBS}\n")));
        assert!(verify("pässwörd €", ILS_UNICODE));
        assert!(verify("", ILS_EMPTY));
        assert!(!verify("correct horse battery stapl", ILS_CHBS));
        assert!(!verify(CHBS, &ILS_CHBS[..63]));
        assert!(!verify("", ILS_CHBS));
    }

    #[test]
    fn phc_argon2id_and_pbkdf2_verify() {
        assert!(verify(CHBS, ARGON2ID));
        assert!(!verify("wrong", ARGON2ID));
        assert!(verify(CHBS, PHC_PBKDF2));
        assert!(!verify("wrong", PHC_PBKDF2));
        assert!(verify(CHBS, PASSLIB_PBKDF2));
        assert!(!verify("wrong", PASSLIB_PBKDF2));
    }

    #[test]
    fn generated_hashes_round_trip() {
        let hash = hash_argon2id("s3cret ✓");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let salt = hash.split('$').nth(4).unwrap_or_default();
        assert_eq!(salt.len(), 22, "a 16-byte salt in unpadded base64: {hash}");
        assert!(verify("s3cret ✓", &hash));
        assert!(!verify("s3cret", &hash));
        assert_ne!(hash, hash_argon2id("s3cret ✓"), "salts must differ");
    }

    #[test]
    fn unknown_formats_and_abusive_costs_never_verify() {
        for hash in [
            "",
            "change_me",
            "pw",
            "$2b$12$abcdefghijklmnopqrstuv",
            "$argon2i$v=19$m=19456,t=2,p=1$aW50ZXJzdGF0ZXNhbHQxNg$7iflLm9HX8kW2mYzDnzHJDEvkIacMNFP/KCo2k8eDlU",
            "$argon2id$v=19$m=4194304,t=2,p=1$aW50ZXJzdGF0ZXNhbHQxNg$7iflLm9HX8kW2mYzDnzHJDEvkIacMNFP/KCo2k8eDlU",
            "$pbkdf2-sha256$i=1000000000,l=32$aW50ZXJzdGF0ZXNhbHQxNg$fiG3oZZzYGwrAHasuMB23pAYkFoBRP9eD++JjnOdE0s",
            "$pbkdf2-sha256$999999999$aW50ZXJzdGF0ZXNhbHQxNg$fiG3oZZzYGwrAHasuMB23pAYkFoBRP9eD..JjnOdE0s",
            "$pbkdf2-sha256$10000$!!!$fiG3",
        ] {
            assert!(!verify(CHBS, hash), "{hash:?} must not verify");
        }
    }

    /// Issue #13 item 3: a crafted hash cannot make the host allocate 256 MiB or spin for
    /// 10^8 PBKDF2 rounds; it is refused before any hashing, so at once.
    #[test]
    fn over_cost_hashes_are_refused_without_computing() {
        let salt_hash = "aW50ZXJzdGF0ZXNhbHQxNg$7iflLm9HX8kW2mYzDnzHJDEvkIacMNFP/KCo2k8eDlU";
        let pbkdf2_tail = "aW50ZXJzdGF0ZXNhbHQxNg$fiG3oZZzYGwrAHasuMB23pAYkFoBRP9eD++JjnOdE0s";
        let passlib_tail = "aW50ZXJzdGF0ZXNhbHQxNg$fiG3oZZzYGwrAHasuMB23pAYkFoBRP9eD..JjnOdE0s";
        for hash in [
            format!("$argon2id$v=19$m=262144,t=2,p=1${salt_hash}"),
            format!("$argon2id$v=19$m=65537,t=1,p=1${salt_hash}"),
            format!("$argon2id$v=19$m=19456,t=1000,p=1${salt_hash}"),
            format!("$argon2id$v=19$m=19456,t=2,p=64${salt_hash}"),
            format!("$pbkdf2-sha256$i=100000000,l=32${pbkdf2_tail}"),
            format!("$pbkdf2-sha256$100000000${passlib_tail}"),
            format!("$pbkdf2-sha256$1000001${passlib_tail}"),
        ] {
            let started = std::time::Instant::now();
            assert!(!verify(CHBS, &hash), "{hash}");
            // A 256 MiB argon2 or 10^8 rounds takes seconds; a refusal takes microseconds.
            // 50 ms leaves room for a busy machine and still rules out computing either.
            let took = started.elapsed();
            assert!(
                took < std::time::Duration::from_millis(50),
                "{hash}: {took:?}"
            );
        }
    }

    #[test]
    fn ab64_decodes_like_python() {
        assert_eq!(
            ab64_decode("aW50ZXJzdGF0ZXNhbHQxNg").unwrap(),
            b"interstatesalt16"
        );
        assert_eq!(ab64_decode("YQ").unwrap(), b"a");
        assert_eq!(ab64_decode("YWI").unwrap(), b"ab");
        assert!(ab64_decode("Y").is_none());
    }
}
