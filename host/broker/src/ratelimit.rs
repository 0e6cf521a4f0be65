//! Authentication failure limits, per user name and per client address.
//!
//! Public tools spray passwords at `/pcoip-broker/xml` (reference §8.11). Past either limit, an
//! attempt is refused with the same answer as a wrong password and costs no mapper call, so a
//! sprayer learns nothing and burns no PBKDF2 time. A login that succeeds clears its user's
//! failures.
//!
//! **Reservations.** Checking the count before the mapper call and counting after it (what this
//! module did first) let 60 concurrent wrong passwords through a limit of 3 twenty-one times. Now
//! an attempt *reserves* a slot before the call, in one atomic step with the check: a key's
//! failures plus its attempts in flight never exceed its limit. An attempt that would exceed it
//! only because of attempts in flight waits (briefly) for them to settle instead of being
//! refused, so eight people logging in to one account at once all get in, while sixty wrong
//! passwords at once reach the mapper at most `limit` times. When an attempt settles, its
//! reservation is dropped and, for a wrong password, a failure is counted; a reservation whose
//! holder died (a node that crashed mid-call) lapses after [`PENDING_MS`].
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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::Script;
use sha2::{Digest, Sha256};

pub use crate::settings::RateLimits;
use crate::store::{RedisStore, StoreError};

/// User names are cut to this many bytes before they are hashed into a key.
pub const MAX_USER_BYTES: usize = 256;

/// A reservation not settled within this long lapses (its holder died mid-call).
pub const PENDING_MS: u64 = 120_000;

/// How long an attempt waits for attempts in flight to settle before it is refused.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

/// Why an attempt is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Too many failures for this user name.
    User,
    /// Too many failures from this address.
    Address,
    /// The table of counts is full of live entries: refused rather than left uncounted.
    TableFull,
    /// Attempts in flight kept the slot for longer than [`MAX_WAIT`].
    Crowded,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A wrong password or code: one failure for the address and the user.
    Failed,
    /// The user is in: the user's failures are cleared.
    Succeeded,
    /// Neither (a challenge follows, or the mapper broke): nothing is counted.
    Undecided,
}

/// What a counter says to a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Reserved: the attempt may go to the mapper.
    Reserved,
    /// Refused: at the limit.
    Refused(Limit),
    /// Attempts in flight hold the remaining slots: try again shortly.
    Wait,
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

/// One attempt's keys and reservation token.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The user's key, when the attempt names a user.
    pub user: Option<UserKey>,
    /// The address's key.
    pub address: AddressKey,
    /// The reservation's token (unique per attempt).
    pub token: String,
}

/// Where attempts are counted.
pub trait AttemptCounter: Send + Sync + fmt::Debug {
    /// Reserves a slot for `attempt`, atomically with the check against `limits`.
    fn reserve<'a>(
        &'a self,
        attempt: &'a Attempt,
        limits: RateLimits,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Verdict, StoreError>>;

    /// Settles a reserved attempt: its reservation goes, and `outcome` is counted.
    fn settle<'a>(
        &'a self,
        attempt: &'a Attempt,
        outcome: Outcome,
        limits: RateLimits,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// The limits in force and the counter they apply to.
#[derive(Debug)]
pub struct AuthLimiter {
    limits: Mutex<RateLimits>,
    counter: Arc<dyn AttemptCounter>,
}

/// A reserved attempt. Settle it with its outcome; one dropped unsettled (the client went away
/// mid-call) is settled as [`Outcome::Undecided`] in the background.
#[derive(Debug)]
pub struct Ticket {
    attempt: Attempt,
    counter: Arc<dyn AttemptCounter>,
    limits: RateLimits,
    settled: bool,
}

impl Ticket {
    /// Settles the attempt.
    pub async fn settle(mut self, outcome: Outcome) -> Result<(), StoreError> {
        self.settled = true;
        self.counter
            .settle(&self.attempt, outcome, self.limits, unix_now_ms())
            .await
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (counter, attempt, limits) = (self.counter.clone(), self.attempt.clone(), self.limits);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = counter
                    .settle(&attempt, Outcome::Undecided, limits, unix_now_ms())
                    .await;
            });
        }
    }
}

fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn new_token() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    format!(
        "{}-{:x}",
        hex::encode(bytes),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
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

    /// Reserves an attempt for `username` (`None`: a dialog answer) from `address`, waiting up
    /// to [`MAX_WAIT`] while attempts in flight hold the remaining slots.
    pub async fn reserve(
        &self,
        username: Option<&str>,
        address: IpAddr,
    ) -> Result<Result<Ticket, Limit>, StoreError> {
        let attempt = Attempt {
            user: username.map(UserKey::new),
            address: AddressKey::new(address),
            token: new_token(),
        };
        let limits = self.limits();
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        let mut pause = Duration::from_millis(5);
        loop {
            match self
                .counter
                .reserve(&attempt, limits, unix_now_ms())
                .await?
            {
                Verdict::Reserved => {
                    return Ok(Ok(Ticket {
                        attempt,
                        counter: self.counter.clone(),
                        limits,
                        settled: false,
                    }));
                }
                Verdict::Refused(limit) => return Ok(Err(limit)),
                Verdict::Wait if tokio::time::Instant::now() + pause > deadline => {
                    return Ok(Err(Limit::Crowded));
                }
                Verdict::Wait => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Count {
    failures: u32,
    window_start: u64,
    /// Reservations in flight: token and when it lapses.
    pending: Vec<(String, u64)>,
}

impl Count {
    fn failures_now(&self, now_ms: u64, window_ms: u64) -> u32 {
        if now_ms.saturating_sub(self.window_start) < window_ms {
            self.failures
        } else {
            0
        }
    }

    fn trim(&mut self, now_ms: u64) {
        self.pending.retain(|(_, lapse)| *lapse > now_ms);
    }

    fn live(&self, now_ms: u64, window_ms: u64) -> bool {
        self.failures_now(now_ms, window_ms) > 0 || self.pending.iter().any(|(_, l)| *l > now_ms)
    }

    /// Refused, wait, or room, against `limit`.
    fn judge(&mut self, now_ms: u64, window_ms: u64, limit: u32, which: Limit) -> Verdict {
        self.trim(now_ms);
        let failures = self.failures_now(now_ms, window_ms);
        if failures >= limit {
            Verdict::Refused(which)
        } else if u64::from(failures) + self.pending.len() as u64 >= u64::from(limit) {
            Verdict::Wait
        } else {
            Verdict::Reserved
        }
    }

    fn fail(&mut self, now_ms: u64, window_ms: u64) {
        if now_ms.saturating_sub(self.window_start) >= window_ms {
            self.failures = 0;
            self.window_start = now_ms;
        }
        self.failures = self.failures.saturating_add(1);
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

/// Makes room for `key` in `table`: stale entries go first; a table still full of live ones
/// refuses a new key (false).
fn room<K: std::hash::Hash + Eq>(
    table: &mut HashMap<K, Count>,
    key: &K,
    limits: &RateLimits,
    now_ms: u64,
) -> bool {
    if table.contains_key(key) || table.len() < limits.max_entries {
        return true;
    }
    table.retain(|_, c| c.live(now_ms, limits.window_ms));
    table.len() < limits.max_entries
}

impl MemoryCounter {
    fn reserve_now(&self, attempt: &Attempt, limits: &RateLimits, now_ms: u64) -> Verdict {
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        let tables = &mut *tables;
        if !room(&mut tables.addresses, &attempt.address, limits, now_ms) {
            return Verdict::Refused(Limit::TableFull);
        }
        if let Some(user) = &attempt.user
            && !room(&mut tables.users, user, limits, now_ms)
        {
            return Verdict::Refused(Limit::TableFull);
        }
        let window = limits.window_ms;
        let address = tables.addresses.entry(attempt.address).or_default();
        let at_address = address.judge(now_ms, window, limits.per_address, Limit::Address);
        if let Verdict::Refused(_) = at_address {
            return at_address;
        }
        let at_user = match &attempt.user {
            Some(user) => tables.users.entry(*user).or_default().judge(
                now_ms,
                window,
                limits.per_user,
                Limit::User,
            ),
            None => Verdict::Reserved,
        };
        if let Verdict::Refused(_) = at_user {
            return at_user;
        }
        if at_address == Verdict::Wait || at_user == Verdict::Wait {
            return Verdict::Wait;
        }
        let lapse = now_ms.saturating_add(PENDING_MS);
        if let Some(count) = tables.addresses.get_mut(&attempt.address) {
            count.pending.push((attempt.token.clone(), lapse));
        }
        if let Some(user) = &attempt.user
            && let Some(count) = tables.users.get_mut(user)
        {
            count.pending.push((attempt.token.clone(), lapse));
        }
        Verdict::Reserved
    }

    fn settle_now(&self, attempt: &Attempt, outcome: Outcome, limits: &RateLimits, now_ms: u64) {
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        let tables = &mut *tables;
        if let Some(count) = tables.addresses.get_mut(&attempt.address) {
            count.pending.retain(|(t, _)| *t != attempt.token);
            if outcome == Outcome::Failed {
                count.fail(now_ms, limits.window_ms);
            }
        }
        if let Some(user) = &attempt.user
            && let Some(count) = tables.users.get_mut(user)
        {
            count.pending.retain(|(t, _)| *t != attempt.token);
            match outcome {
                Outcome::Failed => count.fail(now_ms, limits.window_ms),
                Outcome::Succeeded => {
                    count.failures = 0;
                }
                Outcome::Undecided => {}
            }
        }
    }
}

impl AttemptCounter for MemoryCounter {
    fn reserve<'a>(
        &'a self,
        attempt: &'a Attempt,
        limits: RateLimits,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Verdict, StoreError>> {
        let verdict = self.reserve_now(attempt, &limits, now_ms);
        Box::pin(std::future::ready(Ok(verdict)))
    }

    fn settle<'a>(
        &'a self,
        attempt: &'a Attempt,
        outcome: Outcome,
        limits: RateLimits,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.settle_now(attempt, outcome, &limits, now_ms);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Reserves in Redis. `KEYS`: the address's failures and reservations, then (optionally) the
/// user's. `ARGV`: per-address limit, per-user limit, now, token, the reservation's lapse,
/// the reservations' key expiry. Returns 0 (reserved), 1 (address at its limit), 2 (user at
/// its limit) or 3 (wait: attempts in flight hold the slots).
const RESERVE: &str = r"
local now = tonumber(ARGV[3])
local function judge(f, p, limit)
  redis.call('ZREMRANGEBYSCORE', p, '-inf', now)
  local failures = tonumber(redis.call('GET', f) or '0')
  if failures >= limit then return 'refused' end
  if failures + redis.call('ZCARD', p) >= limit then return 'wait' end
  return 'ok'
end
local a = judge(KEYS[1], KEYS[2], tonumber(ARGV[1]))
if a == 'refused' then return 1 end
local u = 'ok'
if KEYS[3] then u = judge(KEYS[3], KEYS[4], tonumber(ARGV[2])) end
if u == 'refused' then return 2 end
if a == 'wait' or u == 'wait' then return 3 end
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
if KEYS[3] then
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[4])
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
end
return 0
";

/// Settles in Redis: the reservation goes; `ARGV[2]` is `failed` (one failure each, the key
/// expiring one window after its first), `succeeded` (the user's failures cleared) or
/// `undecided`.
const SETTLE: &str = r"
redis.call('ZREM', KEYS[2], ARGV[1])
if KEYS[3] then redis.call('ZREM', KEYS[4], ARGV[1]) end
if ARGV[2] == 'failed' then
  if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
  if KEYS[3] and redis.call('INCR', KEYS[3]) == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[3]) end
elseif ARGV[2] == 'succeeded' and KEYS[3] then
  redis.call('DEL', KEYS[3])
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
    settle: Script,
}

impl RedisCounter {
    /// Counts in `store`.
    pub fn new(store: Arc<RedisStore>) -> Self {
        Self {
            store,
            reserve: Script::new(RESERVE),
            settle: Script::new(SETTLE),
        }
    }

    fn keys(&self, attempt: &Attempt) -> Vec<String> {
        let prefix = self.store.prefix();
        let mut keys = vec![
            format!("{prefix}{{rl}}:a:{}", attempt.address),
            format!("{prefix}{{rl}}:a:{}:p", attempt.address),
        ];
        if let Some(user) = &attempt.user {
            keys.push(format!("{prefix}{{rl}}:u:{}", user.hex()));
            keys.push(format!("{prefix}{{rl}}:u:{}:p", user.hex()));
        }
        keys
    }
}

impl AttemptCounter for RedisCounter {
    fn reserve<'a>(
        &'a self,
        attempt: &'a Attempt,
        limits: RateLimits,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Verdict, StoreError>> {
        Box::pin(async move {
            let mut call = self.reserve.prepare_invoke();
            for key in self.keys(attempt) {
                call.key(key);
            }
            call.arg(limits.per_address)
                .arg(limits.per_user)
                .arg(now_ms)
                .arg(&attempt.token)
                .arg(now_ms.saturating_add(PENDING_MS))
                .arg(PENDING_MS.max(limits.window_ms));
            let verdict: i64 = self.store.invoke(&call).await?;
            Ok(match verdict {
                0 => Verdict::Reserved,
                1 => Verdict::Refused(Limit::Address),
                2 => Verdict::Refused(Limit::User),
                _ => Verdict::Wait,
            })
        })
    }

    fn settle<'a>(
        &'a self,
        attempt: &'a Attempt,
        outcome: Outcome,
        limits: RateLimits,
        _now_ms: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut call = self.settle.prepare_invoke();
            for key in self.keys(attempt) {
                call.key(key);
            }
            call.arg(&attempt.token)
                .arg(match outcome {
                    Outcome::Failed => "failed",
                    Outcome::Succeeded => "succeeded",
                    Outcome::Undecided => "undecided",
                })
                .arg(limits.window_ms.max(1));
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

    fn attempt(user: &str, addr: IpAddr) -> Attempt {
        Attempt {
            user: Some(UserKey::new(user)),
            address: AddressKey::new(addr),
            token: new_token(),
        }
    }

    /// Reserves and settles at once with `outcome`; the verdict.
    fn try_once(
        c: &MemoryCounter,
        user: &str,
        addr: IpAddr,
        now: u64,
        outcome: Outcome,
    ) -> Verdict {
        try_with(c, user, addr, now, outcome, &limits())
    }

    fn try_with(
        c: &MemoryCounter,
        user: &str,
        addr: IpAddr,
        now: u64,
        outcome: Outcome,
        limits: &RateLimits,
    ) -> Verdict {
        let a = attempt(user, addr);
        let verdict = c.reserve_now(&a, limits, now);
        if verdict == Verdict::Reserved {
            c.settle_now(&a, outcome, limits, now);
        }
        verdict
    }

    #[test]
    fn user_limit_holds_across_addresses_and_resets_after_the_window() {
        let c = MemoryCounter::default();
        for i in 0..3u8 {
            let v = try_once(&c, "Alice", IpAddr::from([10, 0, 0, i]), 0, Outcome::Failed);
            assert_eq!(v, Verdict::Reserved);
        }
        let addr = IpAddr::from([10, 0, 0, 9]);
        assert_eq!(
            try_once(&c, " alice ", addr, 10, Outcome::Failed),
            Verdict::Refused(Limit::User)
        );
        assert_eq!(
            try_once(&c, "bob", addr, 10, Outcome::Failed),
            Verdict::Reserved
        );
        assert_eq!(
            try_once(&c, "alice", addr, 1_000, Outcome::Failed),
            Verdict::Reserved
        );
    }

    #[test]
    fn attempts_in_flight_wait_instead_of_overrunning_the_limit() {
        let c = MemoryCounter::default();
        let addr = IpAddr::from([10, 3, 0, 1]);
        let held: Vec<Attempt> = (0..3).map(|_| attempt("dave", addr)).collect();
        for a in &held {
            assert_eq!(c.reserve_now(a, &limits(), 0), Verdict::Reserved);
        }
        let fourth = attempt("dave", addr);
        assert_eq!(c.reserve_now(&fourth, &limits(), 0), Verdict::Wait);
        // Two succeed (the user's failures are cleared), one fails: room again.
        c.settle_now(&held[0], Outcome::Succeeded, &limits(), 0);
        c.settle_now(&held[1], Outcome::Succeeded, &limits(), 0);
        c.settle_now(&held[2], Outcome::Failed, &limits(), 0);
        assert_eq!(c.reserve_now(&fourth, &limits(), 0), Verdict::Reserved);
        // A reservation whose holder never settles lapses.
        let stuck = attempt("erin", addr);
        let mut one = limits();
        one.per_user = 1;
        assert_eq!(c.reserve_now(&stuck, &one, 0), Verdict::Reserved);
        assert_eq!(
            c.reserve_now(&attempt("erin", addr), &one, 10),
            Verdict::Wait
        );
        assert_eq!(
            c.reserve_now(&attempt("erin", addr), &one, PENDING_MS + 1),
            Verdict::Reserved
        );
    }

    #[test]
    fn address_limit_catches_spraying_over_many_users_and_a_v6_block() {
        let c = MemoryCounter::default();
        for i in 0..5u16 {
            let addr: IpAddr = format!("2001:db8:1:2::{i:x}")
                .parse()
                .unwrap_or(IpAddr::from([0; 4]));
            let v = try_once(&c, &format!("user{i}"), addr, 0, Outcome::Failed);
            assert_eq!(v, Verdict::Reserved);
        }
        let same_block: IpAddr = "2001:db8:1:2:ffff::1"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(
            try_once(&c, "someone-new", same_block, 1, Outcome::Failed),
            Verdict::Refused(Limit::Address)
        );
        let other_block: IpAddr = "2001:db8:1:3::1".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(
            try_once(&c, "someone-new", other_block, 1, Outcome::Failed),
            Verdict::Reserved
        );
    }

    #[test]
    fn success_clears_the_user_but_not_the_address() {
        let c = MemoryCounter::default();
        let addr = IpAddr::from([10, 1, 1, 1]);
        for _ in 0..3 {
            assert_eq!(
                try_once(&c, "carol", addr, 0, Outcome::Failed),
                Verdict::Reserved
            );
        }
        assert_eq!(
            try_once(&c, "carol", addr, 0, Outcome::Failed),
            Verdict::Refused(Limit::User)
        );
        let a = attempt("carol", IpAddr::from([10, 1, 1, 9]));
        c.settle_now(&a, Outcome::Succeeded, &limits(), 0);
        assert_eq!(
            try_once(&c, "carol", addr, 0, Outcome::Failed),
            Verdict::Reserved
        );
        assert_eq!(
            try_once(&c, "dave", addr, 0, Outcome::Failed),
            Verdict::Reserved
        );
        assert_eq!(
            try_once(&c, "erin", addr, 0, Outcome::Failed),
            Verdict::Refused(Limit::Address)
        );
    }

    #[test]
    fn a_full_table_refuses_new_keys_until_entries_go_stale() {
        let c = MemoryCounter::default();
        let small = RateLimits {
            max_entries: 4,
            ..limits()
        };
        for i in 0..4u8 {
            let v = try_with(
                &c,
                &format!("u{i}"),
                IpAddr::from([10, 2, 0, i]),
                0,
                Outcome::Failed,
                &small,
            );
            assert_eq!(v, Verdict::Reserved);
        }
        assert_eq!(
            try_with(
                &c,
                "new-name",
                IpAddr::from([10, 2, 0, 0]),
                1,
                Outcome::Failed,
                &small
            ),
            Verdict::Refused(Limit::TableFull)
        );
        assert_eq!(
            try_with(
                &c,
                "u0",
                IpAddr::from([10, 9, 9, 9]),
                1,
                Outcome::Failed,
                &small
            ),
            Verdict::Refused(Limit::TableFull)
        );
        assert_eq!(
            try_with(
                &c,
                "new-name",
                IpAddr::from([10, 9, 9, 9]),
                1_000,
                Outcome::Failed,
                &small
            ),
            Verdict::Reserved
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
