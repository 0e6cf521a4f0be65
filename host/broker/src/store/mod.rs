//! Where live broker sessions are kept: the [`SessionStore`] contract and its implementations.
//!
//! A request of a session runs between [`SessionStore::checkout`] and [`SessionStore::commit`]:
//! the checkout gives the request the session to drive, and only one request of a session holds
//! it at a time (the protocol allows one outstanding transaction per session), while requests
//! of different sessions never wait on each other. A checkout dropped without a commit (the
//! client went away mid-request) leaves the store as the last commit left it.
//!
//! - [`memory`]: the embedded store (the default): a map in this process.
//! - [`pins`]: the agent certificate pins (trust on first use) a store also keeps, so that every
//!   node sharing the store trusts the same agent certificates.

use std::fmt;
use std::net::IpAddr;
use std::ops::{Deref, DerefMut};

use futures_util::future::BoxFuture;
use interstate_protocol::{Limits, Session};
use rand::RngCore;
use tokio::sync::OwnedMutexGuard;

pub mod memory;
pub mod pins;

pub use memory::MemoryStore;
pub use pins::{PinStore, parse_agent, pin_key};

/// How a request names its session.
#[derive(Clone, Copy, Debug)]
pub enum SessionKey<'a> {
    /// The `JSESSIONID` cookie.
    Id(&'a str),
    /// The `Client-Log-Id` of a client that drops cookies (`server.fallback_sessions`), from the
    /// address the session was made from.
    LogId(&'a str, IpAddr),
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store holds its maximum of live sessions.
    #[error("the broker holds its maximum of {0} sessions")]
    Full(usize),
}

/// What a store may hold and for how long; replaced on reload.
///
/// A flood of hellos makes only sessions nobody has logged in to ("unauthenticated"). They
/// live briefly (`lifetimes.unauthenticated_ms`), each client address may hold a bounded number
/// of them, and when the store is full the oldest of them give way; a session somebody has
/// logged in to is never evicted to make room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreLimits {
    /// Live sessions at most.
    pub max_sessions: usize,
    /// Unauthenticated sessions per client address at most; past it, the address's oldest one
    /// gives way.
    pub max_unauthenticated_per_address: usize,
    /// When a session expires.
    pub lifetimes: Limits,
}

/// One request's hold on its session; derefs to the session.
pub struct Checkout {
    id: String,
    slot: Slot,
}

/// How the checkout holds the session.
enum Slot {
    /// The session's own lock, held until the checkout is committed or dropped: changes are
    /// made in place.
    Locked(OwnedMutexGuard<Session>),
}

impl Checkout {
    /// A checkout holding the session's lock.
    pub fn locked(id: String, guard: OwnedMutexGuard<Session>) -> Self {
        Self {
            id,
            slot: Slot::Locked(guard),
        }
    }

    /// The session id (the cookie value).
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for Checkout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkout").finish_non_exhaustive()
    }
}

impl Deref for Checkout {
    type Target = Session;

    fn deref(&self) -> &Session {
        match &self.slot {
            Slot::Locked(guard) => guard,
        }
    }
}

impl DerefMut for Checkout {
    fn deref_mut(&mut self) -> &mut Session {
        match &mut self.slot {
            Slot::Locked(guard) => guard,
        }
    }
}

/// Live sessions, keyed by id (and by log id for fallback sessions).
pub trait SessionStore: Send + Sync + fmt::Debug {
    /// Adds a session and returns its new id. With `fallback`, it is also found by the client's
    /// log id from the same address ([`SessionKey::LogId`]); a newer session with the same log
    /// id from the same address replaces it, one from another address neither replaces nor
    /// reaches it (and is found by its cookie only).
    fn insert<'a>(
        &'a self,
        session: Session,
        fallback: Option<(&'a str, IpAddr)>,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<String, StoreError>>;

    /// The session for one request, waiting while another request of the same session holds
    /// it. `None` when there is no such session.
    fn checkout<'a>(&'a self, key: SessionKey<'a>) -> BoxFuture<'a, Option<Checkout>>;

    /// Ends a request: keeps the session's new state, or ends the session when `keep` is false.
    fn commit(&self, checkout: Checkout, keep: bool) -> BoxFuture<'_, ()>;

    /// Ends a session that no request holds (a new hello replacing the client's old session).
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()>;

    /// Drops expired sessions that no request holds; returns how many.
    fn sweep(&self, now_ms: u64) -> BoxFuture<'_, usize>;

    /// Live sessions.
    fn len(&self) -> usize;

    /// True when no session is live.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The limits in force.
    fn limits(&self) -> StoreLimits;

    /// Applies new limits (a reload): new sessions and expiry checks use them at once.
    fn set_limits(&self, limits: StoreLimits);
}

/// A fresh session id: 128 random bits as 32 lowercase hex digits.
pub fn new_session_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// True for a `Client-Log-Id` that may key a fallback session: present, sane, and not all zeros
/// (clients log with the all-zero id before they have a session).
pub fn usable_log_id(log_id: &str) -> bool {
    !log_id.is_empty()
        && log_id.len() <= 64
        && log_id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        && log_id.bytes().any(|b| b.is_ascii_hexdigit() && b != b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_128_bit_hex_and_distinct() {
        let a = new_session_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_session_id());
    }

    #[test]
    fn all_zero_and_junk_log_ids_never_key_a_session() {
        assert!(!usable_log_id("00000000-0000-0000-0000-000000000000"));
        assert!(!usable_log_id(""));
        assert!(!usable_log_id("not a uuid"));
        assert!(usable_log_id("ddff1100-72e7-1039-8825-000000000000"));
    }
}
