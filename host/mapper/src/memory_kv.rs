//! [`MemoryKv`]: the key-value store of one process (the default of a
//! [`MapperRuntime`](crate::MapperRuntime), and the broker's memory session store).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use interstate_protocol::capability::{KeyValue, KvError, KvLimits};
use interstate_protocol::policy::BoxFuture;

/// Writes between two sweeps of every expired entry.
const PURGE_EVERY_WRITES: u64 = 1024;
/// Longest time between two sweeps (checked on writes).
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// Most `claim_once` records kept at once (a `verify-totp` match each, for 90 s); past it a
/// claim fails, and `verify-totp` fails closed.
const MAX_CLAIMS: usize = 1_000_000;

/// A bounded, expiring, in-memory [`KeyValue`]. Every operation runs under one lock, so a
/// namespace's key count is checked atomically with the write that would exceed it. Expired
/// entries are invisible at once and swept on writes (every 1,024 writes or every minute, and
/// in a full namespace before a write is refused).
#[derive(Debug, Default)]
pub struct MemoryKv {
    state: Mutex<State>,
}

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expires: Instant,
}

#[derive(Debug)]
struct State {
    namespaces: HashMap<String, HashMap<String, Entry>>,
    claims: HashMap<String, Instant>,
    writes: u64,
    last_purge: Instant,
}

impl Default for State {
    fn default() -> Self {
        Self {
            namespaces: HashMap::new(),
            claims: HashMap::new(),
            writes: 0,
            last_purge: Instant::now(),
        }
    }
}

impl State {
    /// Counts a write and sweeps every expired entry when one is due.
    fn wrote(&mut self, now: Instant) {
        self.writes = self.writes.wrapping_add(1);
        if self.writes.is_multiple_of(PURGE_EVERY_WRITES) || now >= self.last_purge + PURGE_EVERY {
            self.namespaces.retain(|_, entries| {
                entries.retain(|_, entry| entry.expires > now);
                !entries.is_empty()
            });
            self.claims.retain(|_, expires| *expires > now);
            self.last_purge = now;
        }
    }

    fn live(&self, namespace: &str, key: &str, now: Instant) -> Option<&Entry> {
        self.namespaces
            .get(namespace)?
            .get(key)
            .filter(|entry| entry.expires > now)
    }

    /// Writes `key` unless that adds a live key to a namespace already holding `max_keys`.
    fn put(
        &mut self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        ttl_ms: u64,
        limits: &KvLimits,
        now: Instant,
    ) -> Result<(), KvError> {
        let entries = self.namespaces.entry(namespace.to_owned()).or_default();
        let exists = entries.get(key).is_some_and(|entry| entry.expires > now);
        if !exists && count(entries.len()) >= limits.max_keys {
            entries.retain(|_, entry| entry.expires > now);
            if count(entries.len()) >= limits.max_keys {
                return Err(KvError::Full);
            }
        }
        entries.insert(
            key.to_owned(),
            Entry {
                value,
                expires: now + Duration::from_millis(ttl_ms),
            },
        );
        self.wrote(now);
        Ok(())
    }

    fn remove(&mut self, namespace: &str, key: &str, now: Instant) -> bool {
        let Some(entries) = self.namespaces.get_mut(namespace) else {
            return false;
        };
        let existed = entries.remove(key).is_some_and(|entry| entry.expires > now);
        if entries.is_empty() {
            self.namespaces.remove(namespace);
        }
        existed
    }
}

fn count(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

impl MemoryKv {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The lock; a panic while it was held cannot leave a half-written entry, so a poisoned
    /// lock is still used.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl KeyValue for MemoryKv {
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, KvError>> {
        let value = self
            .lock()
            .live(namespace, key, Instant::now())
            .map(|entry| entry.value.clone());
        Box::pin(async move { Ok(value) })
    }

    fn set<'a>(
        &'a self,
        namespace: &'a str,
        key: &'a str,
        value: Vec<u8>,
        ttl_ms: u64,
        limits: &'a KvLimits,
    ) -> BoxFuture<'a, Result<(), KvError>> {
        let result = self
            .lock()
            .put(namespace, key, value, ttl_ms, limits, Instant::now());
        Box::pin(async move { result })
    }

    fn delete<'a>(
        &'a self,
        namespace: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, KvError>> {
        let existed = self.lock().remove(namespace, key, Instant::now());
        Box::pin(async move { Ok(existed) })
    }

    fn compare_and_swap<'a>(
        &'a self,
        namespace: &'a str,
        key: &'a str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        ttl_ms: u64,
        limits: &'a KvLimits,
    ) -> BoxFuture<'a, Result<bool, KvError>> {
        let now = Instant::now();
        let mut state = self.lock();
        let current = state.live(namespace, key, now).map(|entry| &entry.value);
        let result = if current != expected.as_ref() {
            Ok(false)
        } else {
            match new {
                Some(value) => state
                    .put(namespace, key, value, ttl_ms, limits, now)
                    .map(|()| true),
                None => {
                    state.remove(namespace, key, now);
                    Ok(true)
                }
            }
        };
        drop(state);
        Box::pin(async move { result })
    }

    fn claim_once<'a>(&'a self, key: &'a str, ttl_ms: u64) -> BoxFuture<'a, Result<bool, KvError>> {
        let now = Instant::now();
        let mut state = self.lock();
        let result = if state.claims.get(key).is_some_and(|expires| *expires > now) {
            Ok(false)
        } else {
            if state.claims.len() >= MAX_CLAIMS {
                state.claims.retain(|_, expires| *expires > now);
            }
            if state.claims.len() >= MAX_CLAIMS {
                Err(KvError::Unavailable(format!(
                    "{MAX_CLAIMS} one-time records are live"
                )))
            } else {
                state
                    .claims
                    .insert(key.to_owned(), now + Duration::from_millis(ttl_ms));
                state.wrote(now);
                Ok(true)
            }
        };
        drop(state);
        Box::pin(async move { result })
    }
}
