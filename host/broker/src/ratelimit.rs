//! Authentication failure limits, per user name and per client address.
//!
//! Public tools spray passwords at `/pcoip-broker/xml` (reference §8.11). Each attempt is
//! *reserved* before the mapper call, counting against the user name and the client address in
//! one atomic step, and past either limit the attempt is refused with the same answer as a wrong
//! password and costs no mapper call, so a sprayer learns nothing and burns no PBKDF2 time. A
//! login that succeeds clears its user's count and gives the address its reservation back; a
//! mapper failure gives both back. Checking first and counting after the call (what this module
//! did before) let 60 concurrent wrong passwords through a limit of 3 twenty-one times.
//!
//! Keys: a user name is trimmed, lowercased, cut to [`MAX_USER_BYTES`] and hashed (the tables
//! never hold a name, and a long one costs no more); an IPv6 address counts by its /64, the
//! block a single host is given (an IPv4-mapped address counts as its IPv4 address).
//!
//! Two counters implement [`AttemptCounter`]: [`MemoryCounter`] (bounded tables that fail closed
//! when full: a new name or address is refused rather than left uncounted) and the shared one in
//! Redis ([`RedisCounter`]), where one Lua script reserves across every node.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::BoxFuture;
use redis::Script;
use sha2::{Digest, Sha256};

pub use crate::settings::RateLimits;
use crate::store::{RedisStore, StoreError};

/// User names are cut to this many bytes before they are hashed into a key.
pub const MAX_USER_BYTES: usize = 256;

/// Why an attempt is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Too many failures for this user name.
    User,
    /// Too many failures from this address.
    Address,
    /// The table of counts is full of live entries: refused rather than left uncounted.
    TableFull,
}

/// The key of a user name's count: a hash of its canonical form.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserKey([u8; 32]);

impl fmt::Debug for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserKey({})", hex::encode(&self.0[..6]))
    }
}

impl UserKey {
    /// The key of `username`: trimmed, lowercased, cut to [`MAX_USER_BYTES`], hashed.
    pub fn new(username: &str) -> Self {
        let canonical = username.trim().to_lowercase();
        let mut end = canonical.len().min(MAX_USER_BYTES);
        while !canonical.is_char_boundary(end) {
            end -= 1;
        }
        Self(Sha256::digest(&canonical.as_bytes()[..end]).into())
    }

    fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// The key of an address's count: IPv4 as it is, IPv6 by its /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddressKey(IpAddr);

impl AddressKey {
    /// The key of `address`.
    pub fn new(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(_) => Self(address),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(IpAddr::V6(bits.into()))
                }
            },
        }
    }
}

impl fmt::Display for AddressKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// Where attempts are counted.
pub trait AttemptCounter: Send + Sync + fmt::Debug {
    /// Reserves one attempt against `address` and (when the attempt names one) `user`, in one
    /// atomic step: refused, counting nothing, when either is at its limit.
    fn reserve<'a>(
        &'a self,
        user: Option<UserKey>,
        address: AddressKey,
        limits: RateLimits,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Result<(), Limit>, StoreError>>;

    /// Gives a reservation back: `clear_user` forgets the user's count (a login succeeded);
    /// otherwise the user's reservation is given back too.
    fn release<'a>(
        &'a self,
        user: Option<UserKey>,
        address: AddressKey,
        clear_user: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// The limits in force and the counter they apply to.
#[derive(Debug)]
pub struct AuthLimiter {
    limits: Mutex<RateLimits>,
    counter: Arc<dyn AttemptCounter>,
}

impl AuthLimiter {
    /// A limiter with `limits`, counting in memory.
    pub fn new(limits: RateLimits) -> Self {
        Self::with_counter(limits, Arc::new(MemoryCounter::default()))
    }

    /// A limiter with `limits`, counting in `counter`.
    pub fn with_counter(limits: RateLimits, counter: Arc<dyn AttemptCounter>) -> Self {
        Self {
            limits: Mutex::new(limits),
            counter,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> RateLimits {
        *self.limits.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies new limits (a reload); the counts so far are kept and judged by them.
    pub fn set_limits(&self, limits: RateLimits) {
        *self.limits.lock().unwrap_or_else(PoisonError::into_inner) = limits;
    }

    /// Reserves an attempt for `username` (`None`: a dialog answer) from `address`.
    pub async fn reserve(
        &self,
        username: Option<&str>,
        address: IpAddr,
        now_ms: u64,
    ) -> Result<Result<(), Limit>, StoreError> {
        self.counter
            .reserve(
                username.map(UserKey::new),
                AddressKey::new(address),
                self.limits(),
                now_ms,
            )
            .await
    }

    /// The attempt succeeded: the user's count is cleared and the address gets its
    /// reservation back.
    pub async fn succeeded(
        &self,
        username: Option<&str>,
        address: IpAddr,
    ) -> Result<(), StoreError> {
        self.counter
            .release(username.map(UserKey::new), AddressKey::new(address), true)
            .await
    }

    /// The attempt neither failed nor succeeded (the mapper broke): both reservations are
    /// given back.
    pub async fn undecided(
        &self,
        username: Option<&str>,
        address: IpAddr,
    ) -> Result<(), StoreError> {
        self.counter
            .release(username.map(UserKey::new), AddressKey::new(address), false)
            .await
    }
}

#[derive(Debug, Clone, Copy)]
struct Count {
    attempts: u32,
    window_start: u64,
}

impl Count {
    fn live(&self, now_ms: u64, window_ms: u64) -> bool {
        now_ms.saturating_sub(self.window_start) < window_ms
    }
}

#[derive(Debug, Default)]
struct Tables {
    users: HashMap<UserKey, Count>,
    addresses: HashMap<AddressKey, Count>,
}

/// Counts in this process, in two tables of at most `max_entries` each.
#[derive(Debug, Default)]
pub struct MemoryCounter {
    tables: Mutex<Tables>,
}

/// The live count of `key` in `table`, making room for it: stale entries go first; a table
/// still full of live ones refuses a new key (`None`).
fn slot<K: std::hash::Hash + Eq + Copy>(
    table: &mut HashMap<K, Count>,
    key: K,
    limits: &RateLimits,
    now_ms: u64,
) -> Option<u32> {
    match table.get(&key) {
        Some(c) if c.live(now_ms, limits.window_ms) => return Some(c.attempts),
        Some(_) => return Some(0),
        None => {}
    }
    if table.len() >= limits.max_entries {
        table.retain(|_, c| c.live(now_ms, limits.window_ms));
        if table.len() >= limits.max_entries {
            return None;
        }
    }
    Some(0)
}

fn bump<K: std::hash::Hash + Eq>(
    table: &mut HashMap<K, Count>,
    key: K,
    window_ms: u64,
    now_ms: u64,
) {
    let count = table.entry(key).or_insert(Count {
        attempts: 0,
        window_start: now_ms,
    });
    if !count.live(now_ms, window_ms) {
        *count = Count {
            attempts: 0,
            window_start: now_ms,
        };
    }
    count.attempts = count.attempts.saturating_add(1);
}

impl MemoryCounter {
    fn reserve_now(
        &self,
        user: Option<UserKey>,
        address: AddressKey,
        limits: &RateLimits,
        now_ms: u64,
    ) -> Result<(), Limit> {
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        let at_address =
            slot(&mut tables.addresses, address, limits, now_ms).ok_or(Limit::TableFull)?;
        if at_address >= limits.per_address {
            return Err(Limit::Address);
        }
        if let Some(user) = user {
            let at_user = slot(&mut tables.users, user, limits, now_ms).ok_or(Limit::TableFull)?;
            if at_user >= limits.per_user {
                return Err(Limit::User);
            }
            bump(&mut tables.users, user, limits.window_ms, now_ms);
        }
        bump(&mut tables.addresses, address, limits.window_ms, now_ms);
        Ok(())
    }

    fn release_now(&self, user: Option<UserKey>, address: AddressKey, clear_user: bool) {
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = tables.addresses.get_mut(&address) {
            count.attempts = count.attempts.saturating_sub(1);
        }
        if let Some(user) = user {
            if clear_user {
                tables.users.remove(&user);
            } else if let Some(count) = tables.users.get_mut(&user) {
                count.attempts = count.attempts.saturating_sub(1);
            }
        }
    }
}

impl AttemptCounter for MemoryCounter {
    fn reserve<'a>(
        &'a self,
        user: Option<UserKey>,
        address: AddressKey,
        limits: RateLimits,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Result<(), Limit>, StoreError>> {
        let result = self.reserve_now(user, address, &limits, now_ms);
        Box::pin(std::future::ready(Ok(result)))
    }

    fn release<'a>(
        &'a self,
        user: Option<UserKey>,
        address: AddressKey,
        clear_user: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.release_now(user, address, clear_user);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Reserves in Redis: `KEYS[1]` the address's count, `KEYS[2]` the user's (optional). Returns 0
/// (reserved), 1 (address at its limit) or 2 (user at its limit). A count's key expires one
/// window after its first attempt, as the memory counter's window does.
const RESERVE: &str = r"
local a = tonumber(redis.call('GET', KEYS[1]) or '0')
if a >= tonumber(ARGV[1]) then return 1 end
if KEYS[2] and tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[2]) then return 2 end
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
if KEYS[2] and redis.call('INCR', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return 0
";

/// Gives a reservation back: `ARGV[1]` is `clear` to forget the user's count.
const RELEASE: &str = r"
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
if KEYS[2] then
  if ARGV[1] == 'clear' then redis.call('DEL', KEYS[2])
  elseif tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
end
return 0
";

/// Counts in the Redis store, shared by every node. The keys share the hash tag `{rl}` so one
/// script reserves against both on a cluster; they expire by themselves, so Redis's memory
/// bounds the table (a sprayer's keys live one window).
#[derive(Debug)]
pub struct RedisCounter {
    store: Arc<RedisStore>,
    reserve: Script,
    release: Script,
}

impl RedisCounter {
    /// Counts in `store`.
    pub fn new(store: Arc<RedisStore>) -> Self {
        Self {
            store,
            reserve: Script::new(RESERVE),
            release: Script::new(RELEASE),
        }
    }

    fn keys(&self, user: Option<UserKey>, address: AddressKey) -> (String, Option<String>) {
        let prefix = self.store.prefix();
        (
            format!("{prefix}{{rl}}:a:{address}"),
            user.map(|u| format!("{prefix}{{rl}}:u:{}", u.hex())),
        )
    }
}

impl AttemptCounter for RedisCounter {
    fn reserve<'a>(
        &'a self,
        user: Option<UserKey>,
        address: AddressKey,
        limits: RateLimits,
        _now_ms: u64,
    ) -> BoxFuture<'a, Result<Result<(), Limit>, StoreError>> {
        Box::pin(async move {
            let (address_key, user_key) = self.keys(user, address);
            let mut call = self.reserve.prepare_invoke();
            call.key(&address_key);
            if let Some(user_key) = &user_key {
                call.key(user_key);
            }
            call.arg(limits.per_address)
                .arg(limits.per_user)
                .arg(limits.window_ms.max(1));
            let verdict: i64 = self.store.invoke(&call).await?;
            Ok(match verdict {
                0 => Ok(()),
                1 => Err(Limit::Address),
                _ => Err(Limit::User),
            })
        })
    }

    fn release<'a>(
        &'a self,
        user: Option<UserKey>,
        address: AddressKey,
        clear_user: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let (address_key, user_key) = self.keys(user, address);
            let mut call = self.release.prepare_invoke();
            call.key(&address_key);
            if let Some(user_key) = &user_key {
                call.key(user_key);
            }
            call.arg(if clear_user { "clear" } else { "give-back" });
            self.store.invoke::<i64>(&call).await.map(drop)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RateLimits {
        RateLimits {
            per_user: 3,
            per_address: 5,
            window_ms: 1_000,
            max_entries: 64,
            ..RateLimits::default()
        }
    }

    fn reserve(c: &MemoryCounter, user: &str, addr: IpAddr, now: u64) -> Result<(), Limit> {
        c.reserve_now(
            Some(UserKey::new(user)),
            AddressKey::new(addr),
            &limits(),
            now,
        )
    }

    fn reserve_in_small_tables(
        c: &MemoryCounter,
        user: &str,
        addr: IpAddr,
        now: u64,
    ) -> Result<(), Limit> {
        let small = RateLimits {
            max_entries: 4,
            ..limits()
        };
        c.reserve_now(Some(UserKey::new(user)), AddressKey::new(addr), &small, now)
    }

    #[test]
    fn user_limit_holds_across_addresses_and_resets_after_the_window() {
        let c = MemoryCounter::default();
        for i in 0..3u8 {
            assert_eq!(reserve(&c, "Alice", IpAddr::from([10, 0, 0, i]), 0), Ok(()));
        }
        assert_eq!(
            reserve(&c, " alice ", IpAddr::from([10, 0, 0, 9]), 10),
            Err(Limit::User)
        );
        assert_eq!(reserve(&c, "bob", IpAddr::from([10, 0, 0, 9]), 10), Ok(()));
        assert_eq!(
            reserve(&c, "alice", IpAddr::from([10, 0, 0, 8]), 1_000),
            Ok(())
        );
    }

    #[test]
    fn address_limit_catches_spraying_over_many_users_and_a_v6_block() {
        let c = MemoryCounter::default();
        for i in 0..5u16 {
            let addr: IpAddr = format!("2001:db8:1:2::{i:x}")
                .parse()
                .unwrap_or(IpAddr::from([0; 4]));
            assert_eq!(reserve(&c, &format!("user{i}"), addr, 0), Ok(()));
        }
        let same_block: IpAddr = "2001:db8:1:2:ffff::1"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(
            reserve(&c, "someone-new", same_block, 1),
            Err(Limit::Address)
        );
        let other_block: IpAddr = "2001:db8:1:3::1".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(reserve(&c, "someone-new", other_block, 1), Ok(()));
    }

    #[test]
    fn success_clears_the_user_and_gives_the_address_back() {
        let c = MemoryCounter::default();
        let addr = IpAddr::from([10, 1, 1, 1]);
        for _ in 0..2 {
            assert_eq!(reserve(&c, "carol", addr, 0), Ok(()));
        }
        assert_eq!(reserve(&c, "carol", addr, 0), Ok(()));
        assert_eq!(reserve(&c, "carol", addr, 0), Err(Limit::User));
        c.release_now(Some(UserKey::new("CAROL")), AddressKey::new(addr), true);
        // The user starts again; the address got one reservation back (three used, one back),
        // so it has three left of its five.
        for _ in 0..3 {
            assert_eq!(reserve(&c, "carol", addr, 0), Ok(()));
        }
        assert_eq!(reserve(&c, "dave", addr, 0), Err(Limit::Address));
        assert_eq!(
            reserve(&c, "carol", IpAddr::from([10, 1, 1, 3]), 0),
            Err(Limit::User)
        );
    }

    #[test]
    fn a_full_table_refuses_new_keys_until_entries_go_stale() {
        let c = MemoryCounter::default();
        for i in 0..4u8 {
            assert_eq!(
                reserve_in_small_tables(&c, &format!("u{i}"), IpAddr::from([10, 2, 0, i]), 0),
                Ok(())
            );
        }
        assert_eq!(
            reserve_in_small_tables(&c, "new-name", IpAddr::from([10, 2, 0, 0]), 1),
            Err(Limit::TableFull)
        );
        assert_eq!(
            reserve_in_small_tables(&c, "u0", IpAddr::from([10, 9, 9, 9]), 1),
            Err(Limit::TableFull)
        );
        assert_eq!(
            reserve_in_small_tables(&c, "new-name", IpAddr::from([10, 9, 9, 9]), 1_000),
            Ok(())
        );
        let tables = c.tables.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(tables.users.len() <= 4 && tables.addresses.len() <= 4);
    }

    #[test]
    fn long_names_are_cut_before_they_are_hashed() {
        let long = "x".repeat(10_000);
        assert_eq!(
            UserKey::new(&long),
            UserKey::new(&"X".repeat(MAX_USER_BYTES))
        );
        assert_ne!(UserKey::new("a"), UserKey::new("b"));
    }
}
