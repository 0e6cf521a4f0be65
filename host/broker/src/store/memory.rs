//! The embedded session store: a map in this process.
//!
//! Each session sits behind its own async mutex, so the requests of one client are handled one at
//! a time while different clients never wait on each other. The map itself is behind a short
//! synchronous lock that is never held across an await.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::future::BoxFuture;
use interstate_protocol::Session;

use super::{
    Checkout, SessionKey, SessionStore, StoreError, StoreLimits, new_session_id, usable_log_id,
};

/// A session behind its own lock.
type SessionHandle = Arc<tokio::sync::Mutex<Session>>;

#[derive(Debug)]
struct Entry {
    session: SessionHandle,
    log_id: Option<String>,
}

#[derive(Debug)]
struct Inner {
    sessions: HashMap<String, Entry>,
    /// `Client-Log-Id` -> (session id, client address), for fallback sessions.
    by_log_id: HashMap<String, (String, IpAddr)>,
    limits: StoreLimits,
}

/// The in-memory session store.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store with `limits`.
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            inner: Mutex::new(Inner {
                sessions: HashMap::new(),
                by_log_id: HashMap::new(),
                limits,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the maps half-updated in a way that matters
        // more than losing the broker, so keep serving.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn insert_now(
        &self,
        session: Session,
        fallback: Option<(&str, IpAddr)>,
        now_ms: u64,
    ) -> Result<String, StoreError> {
        let mut inner = self.lock();
        let max = inner.limits.max_sessions;
        if inner.sessions.len() >= max {
            inner.sweep(now_ms);
            if inner.sessions.len() >= max {
                return Err(StoreError::Full(max));
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

    /// The id and lock of the session `key` names.
    fn find(&self, key: SessionKey<'_>) -> Option<(String, SessionHandle)> {
        let inner = self.lock();
        let id = match key {
            SessionKey::Id(id) => id,
            SessionKey::LogId(log_id, addr) => {
                if !usable_log_id(log_id) {
                    return None;
                }
                let (id, bound) = inner.by_log_id.get(log_id)?;
                if *bound != addr {
                    return None;
                }
                id.as_str()
            }
        };
        let entry = inner.sessions.get(id)?;
        Some((id.to_owned(), entry.session.clone()))
    }

    fn remove_now(&self, id: &str) {
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
}

impl Inner {
    fn sweep(&mut self, now_ms: u64) -> usize {
        let before = self.sessions.len();
        let lifetimes = self.limits.lifetimes;
        self.sessions
            .retain(|_, entry| match entry.session.try_lock() {
                Ok(session) => !session.is_expired(now_ms, &lifetimes),
                Err(_) => true,
            });
        let sessions = &self.sessions;
        self.by_log_id
            .retain(|_, (id, _)| sessions.contains_key(id));
        before - self.sessions.len()
    }
}

impl SessionStore for MemoryStore {
    fn insert<'a>(
        &'a self,
        session: Session,
        fallback: Option<(&'a str, IpAddr)>,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<String, StoreError>> {
        Box::pin(std::future::ready(
            self.insert_now(session, fallback, now_ms),
        ))
    }

    fn checkout<'a>(&'a self, key: SessionKey<'a>) -> BoxFuture<'a, Option<Checkout>> {
        Box::pin(async move {
            let (id, handle) = self.find(key)?;
            let guard = handle.clone().lock_owned().await;
            // The session may have ended (bye, a replacing hello) while this request waited.
            let live = self
                .lock()
                .sessions
                .get(&id)
                .is_some_and(|entry| Arc::ptr_eq(&entry.session, &handle));
            live.then(|| Checkout::locked(id, guard))
        })
    }

    fn commit(&self, checkout: Checkout, keep: bool) -> BoxFuture<'_, ()> {
        if !keep {
            self.remove_now(checkout.id());
        }
        drop(checkout);
        Box::pin(std::future::ready(()))
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()> {
        self.remove_now(id);
        Box::pin(std::future::ready(()))
    }

    fn sweep(&self, now_ms: u64) -> BoxFuture<'_, usize> {
        let swept = self.lock().sweep(now_ms);
        Box::pin(std::future::ready(swept))
    }

    fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    fn limits(&self) -> StoreLimits {
        self.lock().limits
    }

    fn set_limits(&self, limits: StoreLimits) {
        self.lock().limits = limits;
    }
}
