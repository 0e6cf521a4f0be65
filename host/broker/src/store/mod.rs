//! Where live broker sessions are kept: the [`SessionStore`] contract and its implementations.
//!
//! A request of a session runs between [`SessionStore::checkout`] and [`SessionStore::commit`]:
//! the checkout gives the request the session to drive, and only one request of a session holds
//! it at a time (the protocol allows one outstanding transaction per session), while requests
//! of different sessions never wait on each other. A checkout dropped without a commit (the
//! client went away mid-request) leaves the store as the last commit left it.
//!
//! - [`memory`]: the embedded store (the default): a map in this process.
//! - [`redis`]: the shared store: Redis (or Valkey, a Redis Cluster, a Sentinel-watched master)
//!   that any number of broker nodes use as one. A checkout there takes a lease (a compare-and-set
//!   in a Lua script), so a request racing another one of the same session on another node gets
//!   [`StoreError::Busy`] at once, and a commit is a compare-and-set on the session's version.
//! - [`seal`]: the AEAD under which the shared store keeps sessions and passwords.
//! - [`kv`]: the mappers' key-value store in Redis (the memory store's is `MemoryKv`).
//! - [`pins`]: the agent certificate pins (trust on first use) a store also keeps, so that every
//!   node sharing the store trusts the same agent certificates.

use std::fmt;
use std::net::IpAddr;
use std::ops::{Deref, DerefMut};

use futures_util::future::BoxFuture;
use interstate_protocol::{Limits, Session};
use rand::RngCore;
use tokio::sync::OwnedMutexGuard;

pub mod kv;
pub mod memory;
pub mod pins;
pub mod redis;
pub mod seal;

pub use kv::RedisKv;
pub use memory::MemoryStore;
pub use pins::{PinStore, parse_agent, pin_key};
pub use redis::{RedisStore, RedisStoreError};
pub use seal::{KeyFileError, SealKeys};

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
    /// Another request of the session holds it (on another node: the client sent two requests
    /// at once, or a node died holding it and its lease has not run out yet).
    #[error("another request holds the session")]
    Busy,
    /// The session changed since this request took it (it lost a race, or its lease ran out).
    #[error("the session changed under this request")]
    Conflict,
    /// The store cannot be reached or answered nonsense; the reason is for the log.
    #[error("the session store is unavailable: {0}")]
    Unavailable(String),
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
    /// The longest a request may hold its session (its mapper and agent deadlines); a shared
    /// store's lease on a session runs out after it, should the node holding it die.
    pub hold_ms: u64,
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
    /// A copy, under a lease on the stored session.
    Leased(Box<Session>, Lease),
}

/// A shared store's lease on a session: what the commit must match, and what gives the lease
/// back when the checkout is dropped without a commit.
pub struct Lease {
    /// The session's version when it was taken.
    pub version: u64,
    /// The lease's token.
    pub token: String,
    /// Where the session was found by its log id, the log id (kept on commit).
    pub log_id: Option<String>,
    release: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Lease {
    /// A lease that `release` gives back if the checkout is dropped uncommitted.
    pub fn new(
        version: u64,
        token: String,
        release: impl FnOnce() + Send + Sync + 'static,
    ) -> Self {
        Self {
            version,
            token,
            log_id: None,
            release: Some(Box::new(release)),
        }
    }

    /// The lease is being committed: dropping it gives nothing back.
    pub fn disarm(&mut self) {
        self.release = None;
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            release();
        }
    }
}

impl Checkout {
    /// A checkout holding the session's lock.
    pub fn locked(id: String, guard: OwnedMutexGuard<Session>) -> Self {
        Self {
            id,
            slot: Slot::Locked(guard),
        }
    }

    /// A checkout of a session read from a shared store, under `lease`.
    pub fn leased(id: String, session: Session, lease: Lease) -> Self {
        Self {
            id,
            slot: Slot::Leased(Box::new(session), lease),
        }
    }

    /// The session id (the cookie value).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The session and its lease, for a shared store's commit; `None` for a locked checkout.
    pub fn into_leased(self) -> Result<(String, Session, Lease), Self> {
        match self.slot {
            Slot::Leased(session, lease) => Ok((self.id, *session, lease)),
            slot @ Slot::Locked(_) => Err(Self { id: self.id, slot }),
        }
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
            Slot::Leased(session, _) => session,
        }
    }
}

impl DerefMut for Checkout {
    fn deref_mut(&mut self) -> &mut Session {
        match &mut self.slot {
            Slot::Locked(guard) => guard,
            Slot::Leased(session, _) => session,
        }
    }
}

/// A live session as operators see it (the admin API's list). `id` is the raw session id, a
/// credential: the admin API shows only its hash and uses the id to end the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSummary {
    /// The session id (never shown).
    pub id: String,
    /// The authenticated user, if any.
    pub user: Option<String>,
    /// The client's address as the session recorded it.
    pub client_address: String,
    /// Where the session is; `None` while a request holds it (the memory store does not wait).
    pub phase: Option<interstate_protocol::Phase>,
    /// When it was created (unix ms).
    pub created_at_ms: u64,
    /// When it was last used (unix ms).
    pub last_seen_ms: u64,
    /// The desktop allocated last, once one was.
    pub desktop: Option<String>,
    /// The node that created it, when the store records it (the shared store does; in the
    /// memory store every session is this node's).
    pub node: Option<String>,
}

impl SessionSummary {
    /// The summary of session `id`.
    pub fn of(id: &str, session: &Session) -> Self {
        Self {
            id: id.to_owned(),
            user: session.identity().map(|i| i.username.clone()),
            client_address: session.client().address.clone(),
            phase: Some(session.phase()),
            created_at_ms: session.created_at(),
            last_seen_ms: session.last_seen(),
            desktop: session.desktop().map(str::to_owned),
            node: None,
        }
    }

    /// The summary of session `id` from its stored record (no password needed).
    pub fn of_record(id: &str, record: &interstate_protocol::SessionRecord) -> Self {
        Self {
            id: id.to_owned(),
            user: record.identity().map(|i| i.username.clone()),
            client_address: record.client().address.clone(),
            phase: Some(record.phase()),
            created_at_ms: record.created_at(),
            last_seen_ms: record.last_seen(),
            desktop: record.desktop().map(str::to_owned),
            node: None,
        }
    }
}

/// Listing live sessions, for operators. A trait of its own (a supertrait of
/// [`SessionStore`]) so that each store implements it in an impl block of its own.
pub trait ListSessions {
    /// Up to `limit` live sessions (of every node sharing the store), in no particular order.
    fn list(&self, limit: usize) -> BoxFuture<'_, Result<Vec<SessionSummary>, StoreError>>;
}

/// Live sessions, keyed by id (and by log id for fallback sessions).
pub trait SessionStore: ListSessions + Send + Sync + fmt::Debug {
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

    /// The session for one request. The memory store waits while another request of the same
    /// session holds it; a shared store answers [`StoreError::Busy`]. `None` when there is no
    /// such session.
    fn checkout<'a>(
        &'a self,
        key: SessionKey<'a>,
    ) -> BoxFuture<'a, Result<Option<Checkout>, StoreError>>;

    /// Ends a request: keeps the session's new state, or ends the session when `keep` is false.
    /// [`StoreError::Conflict`] when the session changed since the checkout.
    fn commit(&self, checkout: Checkout, keep: bool) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Ends a session that no request holds (a new hello replacing the client's old session).
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Drops expired sessions that no request holds; returns how many. (A shared store's
    /// sessions expire by themselves; its sweep trims its indexes.)
    fn sweep(&self, now_ms: u64) -> BoxFuture<'_, Result<usize, StoreError>>;

    /// Live sessions (of every node sharing the store).
    fn live_sessions(&self) -> BoxFuture<'_, Result<usize, StoreError>>;

    /// Whether the store can serve now (`/healthz` readiness).
    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(std::future::ready(Ok(())))
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
