//! Who may call the REST API: itsdangerous tokens in `X-Channelstream-Secret`, verified the way
//! channelstream should have verified them (study §1.1, §8.5).
//!
//! # What is checked, in order
//!
//! 1. The token comes from the `X-Channelstream-Secret` header only. A `secret` query parameter
//!    is refused outright (it ends up in proxy and access logs); see [`crate::service`].
//! 2. The signature matches one of the configured keys (rotation: the first key signs, all verify),
//!    compared in constant time ([`crate::signer`]).
//! 3. The token is at most `max_age` seconds old (60 s by default; `age == max_age` passes as in
//!    itsdangerous) and at most `future_skew` seconds in the future (2 s by default: enough for
//!    clocks kept by NTP, far from channelstream's "any future date").
//! 4. The signed VALUE binds the request, per [`AuthMode`]:
//!    - [`AuthMode::Compat`]: VALUE is the endpoint path, e.g. `/connect`, exactly as the
//!      channelstream README's example signs it (`signer.sign('/connect')`). The path is relative
//!      to the feed's mount point; the full request path is accepted too.
//!    - [`AuthMode::Strict`]: VALUE is `METHOD SP PATH SP HEX`, where `METHOD` is the upper-case
//!      request method, `PATH` the request target exactly as received (path and, if present, `?`
//!      and the query; the mount prefix included), and `HEX` the lower-case hex SHA-256 of the
//!      request body bytes (of the empty string for no body). Example:
//!      `POST /feed/connect 44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a`.
//! 5. The request was not seen before: a replay cache remembers every accepted
//!    `(VALUE, TS, method, target, SHA-256 of the body)` for `max_age + future_skew` seconds,
//!    which is as long as the token could verify. In strict mode VALUE already names the request,
//!    so this is "each token once". In compat mode it cannot be: itsdangerous gives every call to
//!    `/message` within one second the very same token, so refusing a token's second use would
//!    break the apps compat mode exists for. There a token authorises each distinct request once;
//!    replaying a captured request is refused, but a captured compat token can carry another body
//!    to the same endpoint for up to `max_age`. That is the limit of endpoint-bound tokens, and
//!    why the broker's own calls use strict mode.
//!    The cache is bounded; when it is full of live entries the request is refused (fail closed)
//!    rather than forgetting an entry that could then be replayed.
//!
//! Every refusal of steps 2–5 answers channelstream's 401 `{"request":"Bad Signature"}`; the
//! reason is logged at debug level, never the token.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use crate::clock::Timestamp;
use crate::signer::{self, SigningKey};

/// How the signed VALUE must bind the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// VALUE is `METHOD PATH sha256hex(body)`: a token authorises one request, not an endpoint.
    #[default]
    Strict,
    /// VALUE is the endpoint path (channelstream's documented scheme), for existing apps.
    Compat,
}

/// The parts of a request a token may be bound to.
#[derive(Debug, Clone, Copy)]
pub struct RequestBinding<'a> {
    /// The request method, e.g. `POST`.
    pub method: &'a str,
    /// The request target as received: path plus `?query` if any.
    pub target: &'a str,
    /// The full request path without the query.
    pub path: &'a str,
    /// The path relative to the feed's mount point, e.g. `/connect`.
    pub endpoint: &'a str,
    /// The request body.
    pub body: &'a [u8],
}

impl RequestBinding<'_> {
    /// The VALUE a strict-mode token must carry for this request.
    pub fn strict_value(&self) -> String {
        let digest = Sha256::digest(self.body);
        format!(
            "{} {} {}",
            self.method.to_ascii_uppercase(),
            self.target,
            hex::encode(digest)
        )
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token was presented.
    #[error("no token")]
    Missing,
    /// The signature does not verify.
    #[error("bad signature: {0}")]
    Signature(#[from] signer::SignatureError),
    /// The token is older than the maximum age.
    #[error("token expired")]
    Expired,
    /// The token is dated further in the future than the allowed skew.
    #[error("token dated in the future")]
    FromTheFuture,
    /// The signed VALUE does not match this request.
    #[error("token is not bound to this request")]
    Unbound,
    /// The token was already used.
    #[error("token replayed")]
    Replayed,
    /// The replay cache is full of live entries, so the token cannot be remembered.
    #[error("replay cache full")]
    Saturated,
}

/// Verifies tokens; shared by all requests of one feed.
#[derive(Debug)]
pub struct Authenticator {
    keys: Vec<SigningKey>,
    max_age_secs: i64,
    future_skew_secs: i64,
    replay: Mutex<ReplayCache>,
}

impl Authenticator {
    /// An authenticator over `keys` (first signs, all verify).
    pub fn new(
        keys: Vec<SigningKey>,
        max_age_secs: u32,
        future_skew_secs: u32,
        replay_capacity: usize,
    ) -> Self {
        Self {
            keys,
            max_age_secs: i64::from(max_age_secs),
            future_skew_secs: i64::from(future_skew_secs),
            replay: Mutex::new(ReplayCache::new(replay_capacity)),
        }
    }

    /// Signs `value` with the first key, dated `now`; for the broker's own clients and tests.
    /// `None` when no key is configured.
    pub fn sign(&self, value: &str, now: Timestamp) -> Option<String> {
        let secs = u64::try_from(now.secs()).ok()?;
        self.keys.first().map(|key| key.sign(value, secs))
    }

    /// Checks `token` for the request `binding` under `mode` at time `now`, and remembers it.
    ///
    /// # Errors
    ///
    /// An [`AuthError`] saying why the request is refused.
    pub fn verify(
        &self,
        token: Option<&str>,
        mode: AuthMode,
        binding: &RequestBinding<'_>,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        let token = token.ok_or(AuthError::Missing)?;
        let unsigned = signer::unsign(&self.keys, token)?;
        let issued = i64::try_from(unsigned.unix_secs).map_err(|_| AuthError::FromTheFuture)?;
        let age = now.secs().saturating_sub(issued);
        if age > self.max_age_secs {
            return Err(AuthError::Expired);
        }
        if age < -self.future_skew_secs {
            return Err(AuthError::FromTheFuture);
        }
        let bound = match mode {
            AuthMode::Strict => unsigned.value == binding.strict_value(),
            AuthMode::Compat => {
                unsigned.value == binding.endpoint || unsigned.value == binding.path
            }
        };
        if !bound {
            return Err(AuthError::Unbound);
        }
        let mut identity = Sha256::new();
        identity.update(unsigned.value.as_bytes());
        identity.update([0]);
        identity.update(unsigned.unix_secs.to_be_bytes());
        identity.update(binding.method.as_bytes());
        identity.update([0]);
        identity.update(binding.target.as_bytes());
        identity.update([0]);
        identity.update(Sha256::digest(binding.body));
        let retain_until =
            now.plus_micros((self.max_age_secs + self.future_skew_secs + 1) * 1_000_000);
        let mut replay = self
            .replay
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        replay.insert(identity.finalize().into(), now, retain_until)
    }
}

/// Identities of accepted tokens, each kept until it could no longer verify.
#[derive(Debug)]
struct ReplayCache {
    capacity: usize,
    seen: HashSet<[u8; 32]>,
    /// Insertion order; expiry times are non-decreasing because the retention window is fixed.
    order: VecDeque<(Timestamp, [u8; 32])>,
}

impl ReplayCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    fn insert(
        &mut self,
        identity: [u8; 32],
        now: Timestamp,
        retain_until: Timestamp,
    ) -> Result<(), AuthError> {
        while let Some((expiry, old)) = self.order.front() {
            if *expiry > now {
                break;
            }
            self.seen.remove(old);
            self.order.pop_front();
        }
        if self.seen.contains(&identity) {
            return Err(AuthError::Replayed);
        }
        if self.order.len() >= self.capacity {
            return Err(AuthError::Saturated);
        }
        self.seen.insert(identity);
        self.order.push_back((retain_until, identity));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn authenticator(capacity: usize) -> Authenticator {
        Authenticator::new(
            vec![SigningKey::derive(b"new"), SigningKey::derive(b"secret")],
            60,
            2,
            capacity,
        )
    }

    fn binding(body: &[u8]) -> RequestBinding<'_> {
        RequestBinding {
            method: "POST",
            target: "/feed/connect",
            path: "/feed/connect",
            endpoint: "/connect",
            body,
        }
    }

    fn token(value: &str, at: i64) -> String {
        SigningKey::derive(b"secret").sign(value, u64::try_from(at).unwrap())
    }

    fn check(auth: &Authenticator, token: &str, mode: AuthMode, now: i64) -> Result<(), AuthError> {
        auth.verify(
            Some(token),
            mode,
            &binding(b"{}"),
            Timestamp::from_secs(now),
        )
    }

    #[test]
    fn compat_mode_wants_the_endpoint_path() {
        let auth = authenticator(16);
        assert_eq!(
            check(&auth, &token("/connect", NOW), AuthMode::Compat, NOW),
            Ok(())
        );
        assert_eq!(
            check(&auth, &token("/feed/connect", NOW), AuthMode::Compat, NOW),
            Ok(())
        );
        assert_eq!(
            check(&auth, &token("channelstream", NOW), AuthMode::Compat, NOW),
            Err(AuthError::Unbound)
        );
        assert_eq!(
            check(&auth, &token("/message", NOW), AuthMode::Compat, NOW),
            Err(AuthError::Unbound)
        );
    }

    #[test]
    fn strict_mode_binds_method_target_and_body() {
        let auth = authenticator(16);
        let value = binding(b"{}").strict_value();
        assert_eq!(
            value,
            "POST /feed/connect 44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(
            check(&auth, &token(&value, NOW), AuthMode::Strict, NOW),
            Ok(())
        );
        assert_eq!(
            check(&auth, &token("/connect", NOW), AuthMode::Strict, NOW),
            Err(AuthError::Unbound)
        );
        let other_body = binding(b"{\"username\":\"x\"}").strict_value();
        assert_eq!(
            check(&auth, &token(&other_body, NOW), AuthMode::Strict, NOW),
            Err(AuthError::Unbound)
        );
    }

    #[test]
    fn age_limits_are_inclusive_and_future_skew_is_small() {
        let auth = authenticator(16);
        assert_eq!(
            check(&auth, &token("/connect", NOW), AuthMode::Compat, NOW + 60),
            Ok(())
        );
        assert_eq!(
            check(&auth, &token("/connect", NOW), AuthMode::Compat, NOW + 61),
            Err(AuthError::Expired)
        );
        assert_eq!(
            check(&auth, &token("/connect", NOW + 2), AuthMode::Compat, NOW),
            Ok(())
        );
        assert_eq!(
            check(&auth, &token("/connect", NOW + 3), AuthMode::Compat, NOW),
            Err(AuthError::FromTheFuture)
        );
        assert_eq!(
            check(&auth, &token("/connect", NOW + 30), AuthMode::Compat, NOW),
            Err(AuthError::FromTheFuture)
        );
    }

    #[test]
    fn a_token_is_accepted_once_even_in_another_encoding() {
        let auth = authenticator(16);
        let first = token("/connect", NOW);
        assert_eq!(check(&auth, &first, AuthMode::Compat, NOW), Ok(()));
        assert_eq!(
            check(&auth, &first, AuthMode::Compat, NOW + 1),
            Err(AuthError::Replayed)
        );
        assert_eq!(
            check(&auth, &format!("{first}=="), AuthMode::Compat, NOW + 1),
            Err(AuthError::Replayed)
        );
        assert_eq!(
            check(
                &auth,
                &token("/connect", NOW + 1),
                AuthMode::Compat,
                NOW + 1
            ),
            Ok(())
        );
    }

    #[test]
    fn compat_tokens_cover_distinct_requests_once_each() {
        let auth = authenticator(16);
        let shared = token("/connect", NOW);
        let at = Timestamp::from_secs(NOW);
        let one = binding(b"{\"username\":\"a\"}");
        let two = binding(b"{\"username\":\"b\"}");
        assert_eq!(
            auth.verify(Some(&shared), AuthMode::Compat, &one, at),
            Ok(())
        );
        assert_eq!(
            auth.verify(Some(&shared), AuthMode::Compat, &two, at),
            Ok(())
        );
        assert_eq!(
            auth.verify(Some(&shared), AuthMode::Compat, &one, at),
            Err(AuthError::Replayed)
        );
    }

    #[test]
    fn the_replay_cache_is_bounded_and_forgets_only_dead_tokens() {
        let auth = authenticator(2);
        assert_eq!(
            check(&auth, &token("/connect", NOW), AuthMode::Compat, NOW),
            Ok(())
        );
        assert_eq!(
            check(
                &auth,
                &token("/connect", NOW + 1),
                AuthMode::Compat,
                NOW + 1
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &auth,
                &token("/connect", NOW + 2),
                AuthMode::Compat,
                NOW + 2
            ),
            Err(AuthError::Saturated)
        );
        // After the window the first entry can no longer verify, so its slot is reused.
        assert_eq!(
            check(
                &auth,
                &token("/connect", NOW + 63),
                AuthMode::Compat,
                NOW + 63
            ),
            Ok(())
        );
    }

    #[test]
    fn missing_and_wrong_key_tokens_are_refused() {
        let auth = authenticator(16);
        assert_eq!(
            auth.verify(
                None,
                AuthMode::Compat,
                &binding(b""),
                Timestamp::from_secs(NOW)
            ),
            Err(AuthError::Missing)
        );
        let foreign = SigningKey::derive(b"intruder").sign("/connect", 1_700_000_000);
        assert!(matches!(
            check(&auth, &foreign, AuthMode::Compat, NOW),
            Err(AuthError::Signature(_))
        ));
    }
}
