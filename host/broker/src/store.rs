//! Live broker sessions, in memory.
//!
//! Each session sits behind its own async mutex, so the requests of one client are handled one at
//! a time (the protocol allows one outstanding transaction per session) while different clients
//! never wait on each other. The map itself is behind a short synchronous lock that is never held
//! across an await.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use interstate_protocol::{Limits, Session};
use rand::RngCore;

/// A session behind its own lock.
pub type SessionHandle = Arc<tokio::sync::Mutex<Session>>;

/// The store is full of live sessions.
#[derive(Debug, thiserror::Error)]
#[error("the broker holds its maximum of {0} sessions")]
pub struct StoreFull(pub usize);

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

#[derive(Debug)]
struct Entry {
    session: SessionHandle,
    log_id: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<String, Entry>,
    /// `Client-Log-Id` -> (session id, client address), for `--fallback-sessions`.
    by_log_id: HashMap<String, (String, IpAddr)>,
}

/// The in-memory session store.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    max_sessions: usize,
    limits: Limits,
}

impl MemoryStore {
    /// An empty store holding at most `max_sessions`.
    pub fn new(max_sessions: usize, limits: Limits) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_sessions,
            limits,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the maps half-updated in a way that matters
        // more than losing the broker, so keep serving.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The expiry limits sessions are checked against.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Adds a session and returns its new id. With `fallback`, the session is also found by the
    /// client's log id from the same address.
    pub fn insert(
        &self,
        session: Session,
        fallback: Option<(&str, IpAddr)>,
        now_ms: u64,
    ) -> Result<String, StoreFull> {
        let mut inner = self.lock();
        if inner.sessions.len() >= self.max_sessions {
            Self::sweep_locked(&mut inner, &self.limits, now_ms);
            if inner.sessions.len() >= self.max_sessions {
                return Err(StoreFull(self.max_sessions));
            }
        }
        let id = new_session_id();
        let log_id = fallback
            .filter(|(log_id, _)| usable_log_id(log_id))
            .map(|(log_id, addr)| {
                if let Some((old, _)) = inner
                    .by_log_id
                    .insert(log_id.to_owned(), (id.clone(), addr))
                {
                    inner.sessions.remove(&old);
                }
                log_id.to_owned()
            });
        inner.sessions.insert(
            id.clone(),
            Entry {
                session: Arc::new(tokio::sync::Mutex::new(session)),
                log_id,
            },
        );
        Ok(id)
    }

    /// The session with this id.
    pub fn get(&self, id: &str) -> Option<SessionHandle> {
        self.lock().sessions.get(id).map(|e| e.session.clone())
    }

    /// The session keyed by this log id, if it was made from the same address.
    pub fn get_by_log_id(&self, log_id: &str, addr: IpAddr) -> Option<(String, SessionHandle)> {
        if !usable_log_id(log_id) {
            return None;
        }
        let inner = self.lock();
        let (id, bound) = inner.by_log_id.get(log_id)?;
        if *bound != addr {
            return None;
        }
        let entry = inner.sessions.get(id)?;
        Some((id.clone(), entry.session.clone()))
    }

    /// Ends a session.
    pub fn remove(&self, id: &str) {
        let mut inner = self.lock();
        if let Some(entry) = inner.sessions.remove(id)
            && let Some(log_id) = entry.log_id
            && inner
                .by_log_id
                .get(&log_id)
                .is_some_and(|(owner, _)| owner == id)
        {
            inner.by_log_id.remove(&log_id);
        }
    }

    /// Live sessions.
    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    /// True when no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops expired sessions; returns how many. Sessions busy with a request are left alone.
    pub fn sweep(&self, now_ms: u64) -> usize {
        let mut inner = self.lock();
        Self::sweep_locked(&mut inner, &self.limits, now_ms)
    }

    fn sweep_locked(inner: &mut Inner, limits: &Limits, now_ms: u64) -> usize {
        let before = inner.sessions.len();
        inner
            .sessions
            .retain(|_, entry| match entry.session.try_lock() {
                Ok(session) => !session.is_expired(now_ms, limits),
                Err(_) => true,
            });
        let sessions = &inner.sessions;
        inner
            .by_log_id
            .retain(|_, (id, _)| sessions.contains_key(id));
        before - inner.sessions.len()
    }
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
