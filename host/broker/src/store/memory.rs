//! The embedded session store: a map in this process.
//!
//! Each session sits behind its own async mutex, so the requests of one client are handled one at
//! a time while different clients never wait on each other. The maps are behind a short
//! synchronous lock that is never held across an await.
//!
//! Expiry comes from a time-ordered index (each session's deadline, kept current on every
//! commit), so a sweep or a full store touches only the sessions that are due, never the whole
//! table. Unauthenticated sessions are also indexed by age, overall and per client address, so
//! that the oldest of them give way to new ones (see [`StoreLimits`]).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::future::BoxFuture;
use interstate_protocol::Session;
use tracing::debug;

use super::{
    Checkout, PinStore, SessionKey, SessionStore, StoreError, StoreLimits, new_session_id,
    usable_log_id,
};

/// A session behind its own lock.
type SessionHandle = Arc<tokio::sync::Mutex<Session>>;

#[derive(Debug)]
struct Entry {
    session: SessionHandle,
    log_id: Option<String>,
    /// The client's address, when the session's client context names a valid one.
    address: Option<IpAddr>,
    /// When it expires unless used again; its key in `Inner::deadlines`.
    deadline: u64,
    /// Its creation order, the key of the unauthenticated indexes while nobody is logged in.
    seq: u64,
    /// True while nobody is logged in to it.
    unauthenticated: bool,
}

#[derive(Debug)]
struct Inner {
    sessions: HashMap<String, Entry>,
    /// `Client-Log-Id` -> (session id, client address), for fallback sessions.
    by_log_id: HashMap<String, (String, IpAddr)>,
    /// (deadline, id) of every session.
    deadlines: BTreeSet<(u64, String)>,
    /// (creation order, id) of the unauthenticated sessions.
    unauthenticated: BTreeSet<(u64, String)>,
    /// The same, per client address.
    unauthenticated_by_address: HashMap<IpAddr, BTreeSet<(u64, String)>>,
    next_seq: u64,
    limits: StoreLimits,
}

/// The in-memory session store.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// Agent certificate pins by `host:port` ([`PinStore`]); never expire.
    pins: Mutex<HashMap<String, [u8; 32]>>,
}

impl MemoryStore {
    /// An empty store with `limits`.
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            inner: Mutex::new(Inner {
                sessions: HashMap::new(),
                by_log_id: HashMap::new(),
                deadlines: BTreeSet::new(),
                unauthenticated: BTreeSet::new(),
                unauthenticated_by_address: HashMap::new(),
                next_seq: 0,
                limits,
            }),
            pins: Mutex::new(HashMap::new()),
        }
    }

    fn lock_pins(&self) -> MutexGuard<'_, HashMap<String, [u8; 32]>> {
        self.pins.lock().unwrap_or_else(PoisonError::into_inner)
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
        let address = session.client().address.parse::<IpAddr>().ok();
        if let Some(address) = address {
            inner.make_room_for(address);
        }
        if inner.sessions.len() >= inner.limits.max_sessions {
            inner.expire_due(now_ms);
            if inner.sessions.len() >= inner.limits.max_sessions && !inner.evict_oldest(None) {
                return Err(StoreError::Full(inner.limits.max_sessions));
            }
        }
        let id = new_session_id();
        let log_id = fallback
            .filter(|(log_id, _)| usable_log_id(log_id))
            .and_then(|(log_id, addr)| inner.claim_log_id(log_id, addr, &id));
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let deadline = session.expires_at(&inner.limits.lifetimes);
        let unauthenticated = session.is_unauthenticated();
        let entry = Entry {
            session: Arc::new(tokio::sync::Mutex::new(session)),
            log_id,
            address,
            deadline,
            seq,
            unauthenticated,
        };
        inner.index(&id, &entry);
        inner.sessions.insert(id.clone(), entry);
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
}

impl Inner {
    /// Adds `entry`'s keys to the indexes.
    fn index(&mut self, id: &str, entry: &Entry) {
        self.deadlines.insert((entry.deadline, id.to_owned()));
        if entry.unauthenticated {
            self.unauthenticated.insert((entry.seq, id.to_owned()));
            if let Some(address) = entry.address {
                self.unauthenticated_by_address
                    .entry(address)
                    .or_default()
                    .insert((entry.seq, id.to_owned()));
            }
        }
    }

    /// Removes `entry`'s keys from the indexes.
    fn unindex(&mut self, id: &str, entry: &Entry) {
        self.deadlines.remove(&(entry.deadline, id.to_owned()));
        if entry.unauthenticated {
            self.unauthenticated.remove(&(entry.seq, id.to_owned()));
            if let Some(address) = entry.address
                && let Some(set) = self.unauthenticated_by_address.get_mut(&address)
            {
                set.remove(&(entry.seq, id.to_owned()));
                if set.is_empty() {
                    self.unauthenticated_by_address.remove(&address);
                }
            }
        }
    }

    /// Ends a session: out of the map, the indexes and the log-id keys.
    fn remove(&mut self, id: &str) {
        let Some(entry) = self.sessions.remove(id) else {
            return;
        };
        self.unindex(id, &entry);
        if let Some(log_id) = entry.log_id
            && self
                .by_log_id
                .get(&log_id)
                .is_some_and(|(owner, _)| owner == id)
        {
            self.by_log_id.remove(&log_id);
        }
    }

    /// Keys `log_id` to the new session `id` from `addr`, unless another address holds it.
    fn claim_log_id(&mut self, log_id: &str, addr: IpAddr, id: &str) -> Option<String> {
        match self.by_log_id.get(log_id) {
            Some((_, bound)) if *bound != addr => {
                debug!("a hello from another address reused a live fallback log id; not keyed");
                None
            }
            Some((old, _)) => {
                let old = old.clone();
                self.remove(&old);
                self.by_log_id
                    .insert(log_id.to_owned(), (id.to_owned(), addr));
                Some(log_id.to_owned())
            }
            None => {
                self.by_log_id
                    .insert(log_id.to_owned(), (id.to_owned(), addr));
                Some(log_id.to_owned())
            }
        }
    }

    /// Keeps `address` under its cap of unauthenticated sessions by ending its oldest one.
    fn make_room_for(&mut self, address: IpAddr) {
        let held = self
            .unauthenticated_by_address
            .get(&address)
            .map_or(0, BTreeSet::len);
        if held >= self.limits.max_unauthenticated_per_address {
            self.evict_oldest(Some(address));
        }
    }

    /// Ends the oldest unauthenticated session (of `address`, or of any) that no request holds.
    /// False when there is none.
    fn evict_oldest(&mut self, address: Option<IpAddr>) -> bool {
        let candidates: Vec<String> = match address {
            Some(address) => self
                .unauthenticated_by_address
                .get(&address)
                .into_iter()
                .flatten()
                .map(|(_, id)| id.clone())
                .take(8)
                .collect(),
            None => self
                .unauthenticated
                .iter()
                .map(|(_, id)| id.clone())
                .take(8)
                .collect(),
        };
        for id in candidates {
            let idle = self
                .sessions
                .get(&id)
                .is_some_and(|entry| entry.session.try_lock().is_ok());
            if idle {
                self.remove(&id);
                return true;
            }
        }
        false
    }

    /// Ends the sessions whose deadline has passed and that no request holds; returns how many.
    fn expire_due(&mut self, now_ms: u64) -> usize {
        let due: Vec<String> = self
            .deadlines
            .iter()
            .take_while(|(deadline, _)| *deadline <= now_ms)
            .map(|(_, id)| id.clone())
            .collect();
        let mut ended = 0;
        for id in due {
            let idle = self
                .sessions
                .get(&id)
                .is_some_and(|entry| entry.session.try_lock().is_ok());
            if idle {
                self.remove(&id);
                ended += 1;
            }
        }
        ended
    }

    /// Re-reads a session's deadline and whether anyone is logged in, after a request.
    fn refresh(&mut self, id: &str, session: &Session) {
        let Some(mut entry) = self.sessions.remove(id) else {
            return;
        };
        self.unindex(id, &entry);
        entry.deadline = session.expires_at(&self.limits.lifetimes);
        entry.unauthenticated = session.is_unauthenticated();
        self.index(id, &entry);
        self.sessions.insert(id.to_owned(), entry);
    }
}

impl PinStore for MemoryStore {
    fn pin<'a>(&'a self, agent: &'a str) -> BoxFuture<'a, super::pins::PinResult> {
        Box::pin(std::future::ready(Ok(self.lock_pins().get(agent).copied())))
    }

    fn pin_if_absent<'a>(
        &'a self,
        agent: &'a str,
        fingerprint: [u8; 32],
    ) -> BoxFuture<'a, super::pins::PinResult> {
        let mut pins = self.lock_pins();
        let existing = match pins.get(agent) {
            Some(pin) => Some(*pin),
            None => {
                pins.insert(agent.to_owned(), fingerprint);
                None
            }
        };
        Box::pin(std::future::ready(Ok(existing)))
    }

    fn set_pin<'a>(
        &'a self,
        agent: &'a str,
        fingerprint: Option<[u8; 32]>,
    ) -> BoxFuture<'a, super::pins::PinResult> {
        let mut pins = self.lock_pins();
        let old = match fingerprint {
            Some(pin) => pins.insert(agent.to_owned(), pin),
            None => pins.remove(agent),
        };
        Box::pin(std::future::ready(Ok(old)))
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

    fn checkout<'a>(
        &'a self,
        key: SessionKey<'a>,
    ) -> BoxFuture<'a, Result<Option<Checkout>, StoreError>> {
        Box::pin(async move {
            let Some((id, handle)) = self.find(key) else {
                return Ok(None);
            };
            let guard = handle.clone().lock_owned().await;
            // The session may have ended (bye, a replacing hello) while this request waited.
            let live = self
                .lock()
                .sessions
                .get(&id)
                .is_some_and(|entry| Arc::ptr_eq(&entry.session, &handle));
            Ok(live.then(|| Checkout::locked(id, guard)))
        })
    }

    fn commit(&self, checkout: Checkout, keep: bool) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut inner = self.lock();
        if keep {
            inner.refresh(checkout.id(), &checkout);
        } else {
            inner.remove(checkout.id());
        }
        drop(inner);
        drop(checkout);
        Box::pin(std::future::ready(Ok(())))
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.lock().remove(id);
        Box::pin(std::future::ready(Ok(())))
    }

    fn sweep(&self, now_ms: u64) -> BoxFuture<'_, Result<usize, StoreError>> {
        let swept = self.lock().expire_due(now_ms);
        Box::pin(std::future::ready(Ok(swept)))
    }

    fn live_sessions(&self) -> BoxFuture<'_, Result<usize, StoreError>> {
        let len = self.lock().sessions.len();
        Box::pin(std::future::ready(Ok(len)))
    }

    fn limits(&self) -> StoreLimits {
        self.lock().limits
    }

    fn set_limits(&self, limits: StoreLimits) {
        let mut inner = self.lock();
        inner.limits = limits;
        // New lifetimes move every deadline; a session in a request keeps its old one until its
        // commit refreshes it.
        let ids: Vec<String> = inner.sessions.keys().cloned().collect();
        for id in ids {
            let handle = inner.sessions.get(&id).map(|entry| entry.session.clone());
            if let Some(handle) = handle
                && let Ok(session) = handle.try_lock()
            {
                inner.refresh(&id, &session);
            }
        }
    }
}

impl super::ListSessions for MemoryStore {
    fn list(&self, limit: usize) -> BoxFuture<'_, Result<Vec<super::SessionSummary>, StoreError>> {
        let handles: Vec<(String, SessionHandle)> = self
            .lock()
            .sessions
            .iter()
            .take(limit)
            .map(|(id, entry)| (id.clone(), entry.session.clone()))
            .collect();
        // A session a request holds is listed without waiting for it: its phase is unknown.
        let list = handles
            .into_iter()
            .map(|(id, handle)| match handle.try_lock() {
                Ok(session) => super::SessionSummary::of(&id, &session),
                Err(_) => super::SessionSummary {
                    id,
                    user: None,
                    client_address: String::new(),
                    phase: None,
                    created_at_ms: 0,
                    last_seen_ms: 0,
                    desktop: None,
                    node: None,
                },
            })
            .collect();
        Box::pin(std::future::ready(Ok(list)))
    }
}

#[cfg(test)]
mod pin_tests {
    use super::*;
    use interstate_protocol::Limits;

    fn store() -> MemoryStore {
        MemoryStore::new(StoreLimits {
            max_sessions: 10,
            max_unauthenticated_per_address: 10,
            lifetimes: Limits {
                idle_ms: 1,
                unauthenticated_ms: 1,
                absolute_ms: 1,
            },
            hold_ms: 30_000,
        })
    }

    #[tokio::test]
    async fn the_first_pin_stays_until_the_operator_replaces_or_forgets_it() {
        let store = store();
        assert_eq!(
            store
                .pin("ws1:60443")
                .await
                .expect("the memory store answers"),
            None
        );
        assert_eq!(
            store
                .pin_if_absent("ws1:60443", [1; 32])
                .await
                .expect("the memory store answers"),
            None
        );
        // A second certificate does not replace the first: the first is answered.
        assert_eq!(
            store
                .pin_if_absent("ws1:60443", [2; 32])
                .await
                .expect("the memory store answers"),
            Some([1; 32])
        );
        assert_eq!(
            store
                .pin("ws1:60443")
                .await
                .expect("the memory store answers"),
            Some([1; 32])
        );
        // Pins are per address.
        assert_eq!(
            store
                .pin_if_absent("ws1:4172", [2; 32])
                .await
                .expect("the memory store answers"),
            None
        );
        assert_eq!(
            store
                .set_pin("ws1:60443", Some([3; 32]))
                .await
                .expect("the memory store answers"),
            Some([1; 32])
        );
        assert_eq!(
            store
                .pin("ws1:60443")
                .await
                .expect("the memory store answers"),
            Some([3; 32])
        );
        assert_eq!(
            store
                .set_pin("ws1:60443", None)
                .await
                .expect("the memory store answers"),
            Some([3; 32])
        );
        assert_eq!(
            store
                .pin_if_absent("ws1:60443", [4; 32])
                .await
                .expect("the memory store answers"),
            None
        );
        assert_eq!(
            store
                .pin("ws1:60443")
                .await
                .expect("the memory store answers"),
            Some([4; 32])
        );
    }
}
