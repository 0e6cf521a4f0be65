//! The pool's settings: serde types read by the SDK's [`settings::from_json`] (whose errors
//! name the key), then checked for what serde cannot say.

use std::collections::HashSet;
use std::time::Duration;

use interstate_mapper_sdk::settings;
use serde::Deserialize;

/// `hold_minutes` when the settings name none.
pub const DEFAULT_HOLD_MINUTES: u32 = 30;

/// The longest hold: the store's default maximum TTL (30 days).
pub const MAX_HOLD_MINUTES: u32 = 30 * 24 * 60;

/// The most machines a pool may have (the contract's bound on a desktop list, and a bound on
/// the store calls one allocation makes).
pub const MAX_MACHINES: usize = 512;

/// The id of the one "Pool desktop" entry.
pub const POOL_ID: &str = "pool";

/// One user.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The login name, matched exactly.
    pub username: String,
    /// Checked by the host's `verify-password`.
    pub password_hash: String,
    /// A disabled user is refused after a correct password.
    #[serde(default)]
    pub disabled: bool,
}

/// One machine of the pool.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    /// The PCoIP agent's host name or address.
    pub hostname: String,
    /// The agent's port; none for the broker default.
    #[serde(default)]
    pub agent_port: Option<u16>,
}

impl Machine {
    /// The machine's own desktop id, listed to the user who holds it: `machine-` and the host
    /// name in lower case with every character other than a letter, a digit or `-` as `-`.
    pub fn id(&self) -> String {
        let slug: String = self
            .hostname
            .to_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        format!("machine-{slug}")
    }
}

/// The validated settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Who may log in.
    pub users: Vec<User>,
    /// The pool, in the order free machines are handed out.
    pub machines: Vec<Machine>,
    /// How long a machine stays a user's after their last allocation, in minutes.
    #[serde(default = "default_hold_minutes")]
    pub hold_minutes: u32,
    /// How many machines one user may hold at once.
    #[serde(default = "one")]
    pub max_per_user: u32,
    /// The logon domains offered in `hello-resp`.
    #[serde(default)]
    pub domains: Vec<String>,
    /// The domain put in accepted identities.
    #[serde(default)]
    pub logon_domain: String,
}

fn default_hold_minutes() -> u32 {
    DEFAULT_HOLD_MINUTES
}

fn one() -> u32 {
    1
}

impl Settings {
    /// Parses and validates the settings JSON; the error names the offending key.
    ///
    /// # Errors
    /// `"<key path>: <what was expected>"`.
    pub fn parse(json: &str) -> Result<Self, String> {
        let settings: Self = settings::from_json(json)?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), String> {
        let mut names = HashSet::new();
        for (i, user) in self.users.iter().enumerate() {
            if user.username.is_empty() || user.username.len() > 256 || user.username.contains('\n')
            {
                return Err(format!(
                    "users[{i}].username: expected 1 to 256 bytes without a line break"
                ));
            }
            if user.password_hash.is_empty() {
                return Err(format!(
                    "users[{i}].password_hash: expected a non-empty string"
                ));
            }
            if !names.insert(user.username.as_str()) {
                return Err(format!(
                    "users[{i}].username: duplicate user {:?}",
                    user.username
                ));
            }
        }
        if self.machines.is_empty() || self.machines.len() > MAX_MACHINES {
            return Err(format!("machines: expected 1 to {MAX_MACHINES} machines"));
        }
        let mut ids = HashSet::new();
        for (i, machine) in self.machines.iter().enumerate() {
            let valid = !machine.hostname.is_empty()
                && machine.hostname.len() <= 255
                && machine
                    .hostname
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
            if !valid {
                return Err(format!(
                    "machines[{i}].hostname: expected a host name or an IP address"
                ));
            }
            if machine.agent_port == Some(0) {
                return Err(format!(
                    "machines[{i}].agent_port: expected a port number between 1 and 65535"
                ));
            }
            if !ids.insert(machine.id()) {
                return Err(format!(
                    "machines[{i}].hostname: {:?} is already in the pool",
                    machine.hostname
                ));
            }
        }
        if !(1..=MAX_HOLD_MINUTES).contains(&self.hold_minutes) {
            return Err(format!(
                "hold_minutes: expected a whole number between 1 and {MAX_HOLD_MINUTES}"
            ));
        }
        if self.max_per_user < 1 || self.max_per_user as usize > self.machines.len() {
            return Err(format!(
                "max_per_user: expected a whole number between 1 and the number of machines ({})",
                self.machines.len()
            ));
        }
        Ok(())
    }

    /// How long a hold lasts.
    pub fn hold(&self) -> Duration {
        Duration::from_secs(u64::from(self.hold_minutes) * 60)
    }

    /// The user named `username`, if any.
    pub fn user(&self, username: &str) -> Option<&User> {
        self.users.iter().find(|user| user.username == username)
    }

    /// The machine with `hostname`, if it is in the pool.
    pub fn machine(&self, hostname: &str) -> Option<&Machine> {
        self.machines.iter().find(|m| m.hostname == hostname)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    const EXAMPLE: &str = include_str!("../pool.settings.json");

    fn error(json: &str) -> String {
        Settings::parse(json).unwrap_err()
    }

    #[test]
    fn the_example_parses_with_its_defaults() {
        let s = Settings::parse(EXAMPLE).unwrap();
        assert_eq!(s.users.len(), 3);
        assert_eq!(s.machines.len(), 2);
        assert_eq!(s.machines[1].agent_port, Some(60443));
        assert_eq!(s.hold(), Duration::from_secs(30 * 60));
        assert_eq!(s.max_per_user, 1);
        let minimal =
            Settings::parse(r#"{"users": [], "machines": [{"hostname": "10.0.0.7"}]}"#).unwrap();
        assert_eq!(minimal.hold_minutes, DEFAULT_HOLD_MINUTES);
        assert_eq!(minimal.max_per_user, 1);
        assert_eq!(minimal.machines[0].id(), "machine-10-0-0-7");
    }

    #[test]
    fn errors_name_the_key() {
        let machines = r#""machines": [{"hostname": "a"}, {"hostname": "b"}]"#;
        for (json, expected) in [
            ("{}".to_owned(), "settings: missing field `users`"),
            (
                r#"{"users": [], "machines": []}"#.to_owned(),
                "machines: expected 1 to 512 machines",
            ),
            (
                format!(r#"{{"users": [], {machines}, "colour": 1}}"#),
                "colour: unknown field `colour`",
            ),
            (
                r#"{"users": [], "machines": [{"hostname": "a b"}]}"#.to_owned(),
                "machines[0].hostname: expected a host name or an IP address",
            ),
            (
                r#"{"users": [], "machines": [{"hostname": "a", "agent_port": 70000}]}"#.to_owned(),
                "machines[0].agent_port: invalid value: integer `70000`",
            ),
            (
                r#"{"users": [], "machines": [{"hostname": "A.b"}, {"hostname": "a-b"}]}"#
                    .to_owned(),
                "machines[1].hostname: \"a-b\" is already in the pool",
            ),
            (
                format!(r#"{{"users": [], {machines}, "hold_minutes": 0}}"#),
                "hold_minutes: expected a whole number between 1 and 43200",
            ),
            (
                format!(r#"{{"users": [], {machines}, "max_per_user": 3}}"#),
                "max_per_user: expected a whole number between 1 and the number of machines (2)",
            ),
            (
                format!(
                    r#"{{"users": [{{"username": "u", "password_hash": "h"}}, {{"username": "u", "password_hash": "h"}}], {machines}}}"#
                ),
                "users[1].username: duplicate user \"u\"",
            ),
            (
                format!(r#"{{"users": [{{"username": "u", "password_hash": ""}}], {machines}}}"#),
                "users[0].password_hash: expected a non-empty string",
            ),
        ] {
            let got = error(&json);
            assert!(
                got.starts_with(expected),
                "{json}: got {got:?}, want {expected:?}"
            );
        }
    }
}
