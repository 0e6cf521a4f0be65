//! Authentication failure limits, per user name and per client address.
//!
//! Public tools spray passwords at `/pcoip-broker/xml` (reference §8.11). Each failed login counts
//! against the user name and the client address for a window; past either limit, further
//! attempts are refused with the same answer as a wrong password and cost no mapper call, so a
//! sprayer learns nothing and burns no PBKDF2 time. A successful login clears its user's count.
//! Memory is bounded: each table holds at most `max_entries`, and stale entries are dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

pub use crate::settings::RateLimits;

#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    window_start: u64,
}

#[derive(Debug, Default)]
struct Tables {
    users: HashMap<String, Count>,
    addresses: HashMap<IpAddr, Count>,
}

/// Counts authentication failures.
#[derive(Debug)]
pub struct AuthLimiter {
    limits: Mutex<RateLimits>,
    tables: Mutex<Tables>,
}

/// Why an attempt is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Too many failures for this user name.
    User,
    /// Too many failures from this address.
    Address,
}

fn user_key(username: &str) -> String {
    username.trim().to_lowercase()
}

impl AuthLimiter {
    /// A limiter with `limits`.
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits: Mutex::new(limits),
            tables: Mutex::new(Tables::default()),
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

    fn current(limits: &RateLimits, count: Option<&Count>, now_ms: u64) -> u32 {
        match count {
            Some(c) if now_ms.saturating_sub(c.window_start) < limits.window_ms => c.failures,
            _ => 0,
        }
    }

    /// Whether an attempt for `username` from `address` may go to the mapper now.
    pub fn check(&self, username: &str, address: IpAddr, now_ms: u64) -> Result<(), Limit> {
        let limits = self.limits();
        let tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        if Self::current(&limits, tables.addresses.get(&address), now_ms) >= limits.per_address {
            return Err(Limit::Address);
        }
        let user = tables.users.get(&user_key(username));
        if Self::current(&limits, user, now_ms) >= limits.per_user {
            return Err(Limit::User);
        }
        Ok(())
    }

    /// Whether an attempt from `address` with no user name (a dialog answer) may go on.
    pub fn check_address(&self, address: IpAddr, now_ms: u64) -> Result<(), Limit> {
        let limits = self.limits();
        let tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        if Self::current(&limits, tables.addresses.get(&address), now_ms) >= limits.per_address {
            return Err(Limit::Address);
        }
        Ok(())
    }

    /// Counts a failed attempt. `username` is `None` when the failure has no user name (a wrong
    /// one-time code); it then counts against the address only.
    pub fn failed(&self, username: Option<&str>, address: IpAddr, now_ms: u64) {
        let limits = self.limits();
        let window = limits.window_ms;
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        let bump = |count: &mut Count| {
            if now_ms.saturating_sub(count.window_start) >= window {
                *count = Count {
                    failures: 0,
                    window_start: now_ms,
                };
            }
            count.failures = count.failures.saturating_add(1);
        };
        let fresh = Count {
            failures: 0,
            window_start: now_ms,
        };
        if tables.addresses.len() >= limits.max_entries && !tables.addresses.contains_key(&address)
        {
            tables
                .addresses
                .retain(|_, c| now_ms.saturating_sub(c.window_start) < window);
        }
        if tables.addresses.len() < limits.max_entries || tables.addresses.contains_key(&address) {
            bump(tables.addresses.entry(address).or_insert(fresh));
        }
        if let Some(username) = username {
            let key = user_key(username);
            if tables.users.len() >= limits.max_entries && !tables.users.contains_key(&key) {
                tables
                    .users
                    .retain(|_, c| now_ms.saturating_sub(c.window_start) < window);
            }
            if tables.users.len() < limits.max_entries || tables.users.contains_key(&key) {
                bump(tables.users.entry(key).or_insert(fresh));
            }
        }
    }

    /// Clears a user's failures after a successful login.
    pub fn succeeded(&self, username: &str) {
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        tables.users.remove(&user_key(username));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> AuthLimiter {
        AuthLimiter::new(RateLimits {
            per_user: 3,
            per_address: 5,
            window_ms: 1_000,
            max_entries: 4,
            ..RateLimits::default()
        })
    }

    #[test]
    fn user_limit_holds_across_addresses_and_resets_after_the_window() {
        let l = limiter();
        for i in 0..3u8 {
            l.failed(Some("Alice"), IpAddr::from([10, 0, 0, i]), 0);
        }
        assert_eq!(
            l.check("alice", IpAddr::from([10, 0, 0, 9]), 10),
            Err(Limit::User)
        );
        assert_eq!(l.check("bob", IpAddr::from([10, 0, 0, 9]), 10), Ok(()));
        assert_eq!(l.check("alice", IpAddr::from([10, 0, 0, 9]), 1_000), Ok(()));
    }

    #[test]
    fn address_limit_catches_spraying_over_many_users() {
        let l = limiter();
        let sprayer = IpAddr::from([192, 0, 2, 1]);
        for i in 0..5 {
            l.failed(Some(&format!("user{i}")), sprayer, 0);
        }
        assert_eq!(l.check("someone-new", sprayer, 1), Err(Limit::Address));
    }

    #[test]
    fn success_clears_the_user_and_tables_stay_bounded() {
        let l = limiter();
        let addr = IpAddr::from([10, 1, 1, 1]);
        l.failed(Some("carol"), addr, 0);
        l.failed(Some("carol"), addr, 0);
        l.succeeded("CAROL");
        l.failed(Some("carol"), addr, 0);
        assert_eq!(l.check("carol", addr, 0), Ok(()));
        for i in 0..100 {
            l.failed(Some(&format!("u{i}")), IpAddr::from([10, 2, 0, i as u8]), 0);
        }
        let tables = l.tables.lock().unwrap();
        assert!(tables.users.len() <= 4 && tables.addresses.len() <= 4);
    }
}
