//! The pool's decisions, given the host's services through [`Host`], so that the same code runs
//! in the component (wired to the WIT imports by `lib.rs`) and under `cargo test`.
//!
//! # Holds in the store
//! - `machine:<hostname>` = the user holding it, with a TTL of the hold time. It is the truth:
//!   a machine is free when the key is absent (never set, or expired). It is only ever written
//!   with `compare-and-swap`, so two brokers can never hand one machine to two users.
//! - `user:<username>` = the host names the user holds, one a line, the most recent first (with
//!   the default `max_per_user` of 1, just the host name), with the same TTL. It saves a scan
//!   of the pool; each entry is checked against its `machine:` key before it is trusted.
//!
//! A hold runs from the user's last allocation: the broker learns nothing once the client has
//! connected (no disconnect, no logout), so a machine is free again `hold_minutes` after it
//! was last handed out, whether or not the session is still open.

use std::time::Duration;

use interstate_mapper_sdk::host::Level;
use interstate_mapper_sdk::types::{
    Allocation, AuthOutcome, Desktop, DesktopState, Identity, Launch, RefusalKind, Rejection,
    RejectionKind, SessionKind,
};

use crate::settings::{Machine, POOL_ID, Settings};

/// The name of the pool's entry in the desktop list.
pub const POOL_NAME: &str = "Pool desktop";

/// A well-formed ILS hash of a throw-away password, checked for unknown users so that a login
/// with an unknown name costs the same host time as one with a wrong password.
const DECOY_HASH: &str = "9f70564e7357585cee52b79fa889026721f9eef260bca0ac64a5a549039e919b";

/// The services the broker offers the policy.
pub trait Host {
    /// One line in the broker's log. Never pass a password.
    fn log(&self, level: Level, message: &str);
    /// The host's constant-time password check.
    fn verify_password(&self, password: &str, hash: &str) -> bool;
    /// The text under `key` in the mapper's store.
    ///
    /// # Errors
    /// The store failed (the message is for the log).
    fn store_get(&self, key: &str) -> Result<Option<String>, String>;
    /// Sets `key` to `value` for `ttl`.
    ///
    /// # Errors
    /// The store failed.
    fn store_set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), String>;
    /// Atomically replaces `expected` (`None`: only if absent) under `key` by `new`, for `ttl`.
    /// True when swapped.
    ///
    /// # Errors
    /// The store failed.
    fn store_cas(
        &self,
        key: &str,
        expected: Option<&str>,
        new: &str,
        ttl: Duration,
    ) -> Result<bool, String>;
}

/// The store key of a machine's hold.
pub fn machine_key(hostname: &str) -> String {
    format!("machine:{hostname}")
}

/// The store key of the machines a user holds.
pub fn user_key(username: &str) -> String {
    format!("user:{username}")
}

/// The pool policy over validated settings.
#[derive(Debug, Clone)]
pub struct PoolPolicy {
    settings: Settings,
}

impl PoolPolicy {
    /// A policy over `settings`.
    pub fn new(settings: Settings) -> Self {
        Self { settings }
    }

    /// The logon domains to offer.
    pub fn domains(&self) -> Vec<String> {
        self.settings.domains.clone()
    }

    /// Checks a password login.
    pub fn authenticate(&self, host: &dyn Host, username: &str, password: &str) -> AuthOutcome {
        let outcome = match self.settings.user(username) {
            None => {
                host.verify_password(password, DECOY_HASH);
                reject(RejectionKind::BadCredentials, "unknown user")
            }
            Some(user) if !host.verify_password(password, &user.password_hash) => {
                reject(RejectionKind::BadCredentials, "wrong password")
            }
            Some(user) if user.disabled => reject(RejectionKind::AccessDenied, "account disabled"),
            Some(user) => AuthOutcome::Accepted(Identity {
                username: user.username.clone(),
                domain: self.settings.logon_domain.clone(),
                attributes: Vec::new(),
            }),
        };
        let verdict = match &outcome {
            AuthOutcome::Rejected(rejection) => format!("rejected ({})", rejection.reason),
            _ => "accepted".to_owned(),
        };
        host.log(Level::Info, &format!("user {username:?}: {verdict}"));
        outcome
    }

    /// "Pool desktop", then the machines the user holds. None for a user who may not log in
    /// (any more); a store failure is logged and lists the pool entry alone.
    pub fn list_desktops(&self, host: &dyn Host, user: &Identity) -> Vec<Desktop> {
        if self.allowed(&user.username).is_err() {
            host.log(
                Level::Info,
                &format!("user {:?}: not allowed, no desktops", user.username),
            );
            return Vec::new();
        }
        let held = self.held(host, &user.username).unwrap_or_else(|err| {
            host.log(
                Level::Warn,
                &format!("user {:?}: held machines not read: {err}", user.username),
            );
            Vec::new()
        });
        let mut desktops = vec![Desktop {
            id: POOL_ID.to_owned(),
            name: POOL_NAME.to_owned(),
            // Empty: the allocation names the machine.
            hostname: String::new(),
            agent_port: None,
            session_kind: SessionKind::Vdi,
            state: DesktopState::Unknown,
            operations: Vec::new(),
        }];
        desktops.extend(held.iter().map(|machine| Desktop {
            id: machine.id(),
            name: format!("Your pool machine ({})", machine.hostname),
            hostname: machine.hostname.clone(),
            agent_port: machine.agent_port,
            session_kind: SessionKind::Vdi,
            state: DesktopState::Unknown,
            operations: Vec::new(),
        }));
        host.log(
            Level::Info,
            &format!(
                "user {:?}: the pool and {} held machine(s)",
                user.username,
                held.len()
            ),
        );
        desktops
    }

    /// The user's held machine (the hold refreshed), or a free one claimed, or a refusal.
    pub fn allocate(&self, host: &dyn Host, user: &Identity, desktop_id: &str) -> Allocation {
        let username = user.username.as_str();
        let allocation = match self.try_allocate(host, username, desktop_id) {
            Ok(allocation) => allocation,
            Err(err) => Allocation::Refused((
                RefusalKind::Unavailable,
                format!("the pool's store failed: {err}"),
            )),
        };
        let verdict = match &allocation {
            Allocation::Launch(launch) => format!("launch on {}", launch.hostname),
            Allocation::Refused((_, reason)) => format!("refused ({reason})"),
            Allocation::TryAgain(reason) => format!("try again ({reason})"),
            Allocation::Direct(_) => "direct".to_owned(),
        };
        host.log(
            Level::Info,
            &format!("user {username:?}: allocate {desktop_id:?}: {verdict}"),
        );
        allocation
    }

    fn try_allocate(
        &self,
        host: &dyn Host,
        username: &str,
        desktop_id: &str,
    ) -> Result<Allocation, String> {
        if self.allowed(username).is_err() {
            return Ok(unknown_desktop(desktop_id));
        }
        let held = self.held(host, username)?;
        if let Some(machine) = held.iter().find(|m| m.id() == desktop_id) {
            return if self.refresh(host, username, machine, &held)? {
                Ok(launch(machine))
            } else {
                Ok(Allocation::Refused((
                    RefusalKind::Unavailable,
                    format!(
                        "the hold on {} lapsed and the machine was taken",
                        machine.hostname
                    ),
                )))
            };
        }
        if desktop_id != POOL_ID {
            return Ok(unknown_desktop(desktop_id));
        }
        let limit = self.settings.max_per_user as usize;
        // At the limit, the pool entry is the machine used last.
        if held.len() >= limit
            && let Some(machine) = held.first()
            && self.refresh(host, username, machine, &held)?
        {
            return Ok(launch(machine));
        }
        for machine in &self.settings.machines {
            if held.iter().any(|h| h.hostname == machine.hostname) {
                continue;
            }
            let claimed = host.store_cas(
                &machine_key(&machine.hostname),
                None,
                username,
                self.settings.hold(),
            )?;
            if claimed {
                self.remember(host, username, machine, &held);
                return Ok(launch(machine));
            }
        }
        Ok(Allocation::Refused((
            RefusalKind::Unavailable,
            format!(
                "the pool is full: all {} machines are in use",
                self.settings.machines.len()
            ),
        )))
    }

    /// Extends the user's hold on `machine`; false when it lapsed and another user took it.
    fn refresh(
        &self,
        host: &dyn Host,
        username: &str,
        machine: &Machine,
        held: &[&Machine],
    ) -> Result<bool, String> {
        let key = machine_key(&machine.hostname);
        let hold = self.settings.hold();
        let kept = host.store_cas(&key, Some(username), username, hold)?
            // It expired between the read and now: claim it again if it is still free.
            || host.store_cas(&key, None, username, hold)?;
        if kept {
            self.remember(host, username, machine, held);
        }
        Ok(kept)
    }

    /// Writes `user:<name>` with `machine` first. A failure is logged, not fatal: the machine
    /// is held all the same, and a later login finds it again once the store is back (or gets
    /// another when the hold has lapsed).
    fn remember(&self, host: &dyn Host, username: &str, machine: &Machine, held: &[&Machine]) {
        let limit = self.settings.max_per_user as usize;
        let mut names: Vec<&str> = vec![machine.hostname.as_str()];
        names.extend(
            held.iter()
                .map(|m| m.hostname.as_str())
                .filter(|name| *name != machine.hostname),
        );
        names.truncate(limit);
        if let Err(err) =
            host.store_set(&user_key(username), &names.join("\n"), self.settings.hold())
        {
            host.log(
                Level::Warn,
                &format!("user {username:?}: held machines not recorded: {err}"),
            );
        }
    }

    /// The machines `username` holds now, the most recent first.
    fn held(&self, host: &dyn Host, username: &str) -> Result<Vec<&Machine>, String> {
        let Some(recorded) = host.store_get(&user_key(username))? else {
            return Ok(Vec::new());
        };
        let mut held = Vec::new();
        for hostname in recorded.lines() {
            let Some(machine) = self.settings.machine(hostname) else {
                continue;
            };
            let holder = host.store_get(&machine_key(hostname))?;
            if holder.as_deref() == Some(username) && !held.contains(&machine) {
                held.push(machine);
            }
        }
        Ok(held)
    }

    fn allowed(&self, username: &str) -> Result<(), String> {
        match self.settings.user(username) {
            Some(user) if !user.disabled => Ok(()),
            _ => Err(format!("user {username:?} is not allowed to use the pool")),
        }
    }
}

fn reject(kind: RejectionKind, reason: &str) -> AuthOutcome {
    AuthOutcome::Rejected(Rejection {
        kind,
        reason: reason.to_owned(),
    })
}

fn launch(machine: &Machine) -> Allocation {
    Allocation::Launch(Launch {
        hostname: machine.hostname.clone(),
        agent_port: machine.agent_port,
        username: None,
        domain: None,
    })
}

fn unknown_desktop(desktop_id: &str) -> Allocation {
    Allocation::Refused((
        RefusalKind::UnknownDesktop,
        format!("{desktop_id:?} is not one of the user's desktops"),
    ))
}

#[cfg(test)]
mod tests;
