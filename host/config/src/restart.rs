//! What a reload cannot apply: the keys the process reads once, at start.
//!
//! A reload builds a new generation from every other key. These ones shape the process itself
//! (its listeners, its log subscriber, its mapper runtime, whose instance pool is sized for
//! `max_concurrent_calls` and whose password-hash pool for `security.hash_workers`), so a new
//! value waits for a restart. The admin token is checked against the admin address when the
//! process starts, so it goes with `admin.listen`.

use crate::settings::Settings;

/// The dotted keys that take effect only after a restart.
pub const RESTART_ONLY: &[&str] = &[
    "server.host",
    "server.port",
    "logging.level",
    "logging.format",
    "admin.listen",
    "admin.token",
    "admin.node",
    "admin.tls",
    "logging.audit_file",
    "mapper.cache_dir",
    "mapper.limits.max_concurrent_calls",
    "server.generated_cert_dir",
    "security.hash_workers",
    "session.store",
    "directory",
];

/// Whether two settings differ in one key.
type Differs = fn(&Settings, &Settings) -> bool;

/// How to tell, for each key of [`RESTART_ONLY`] (same order), whether two settings differ.
const DIFFERS: [(&str, Differs); 15] = [
    ("server.host", |a, b| a.server.host != b.server.host),
    ("server.port", |a, b| a.server.port != b.server.port),
    ("logging.level", |a, b| a.log_level != b.log_level),
    ("logging.format", |a, b| a.log_json != b.log_json),
    ("admin.listen", |a, b| a.admin_listen != b.admin_listen),
    ("admin.token", |a, b| a.admin_token != b.admin_token),
    ("admin.node", |a, b| a.node != b.node),
    ("admin.tls", |a, b| a.admin_tls != b.admin_tls),
    ("logging.audit_file", |a, b| a.audit_file != b.audit_file),
    ("mapper.cache_dir", |a, b| {
        a.mapper.cache_dir != b.mapper.cache_dir
    }),
    ("mapper.limits.max_concurrent_calls", |a, b| {
        a.mapper.max_concurrent_calls != b.mapper.max_concurrent_calls
    }),
    ("server.generated_cert_dir", |a, b| {
        a.server.generated_cert_dir != b.server.generated_cert_dir
    }),
    ("security.hash_workers", |a, b| {
        a.rate_limits.hash_workers != b.rate_limits.hash_workers
    }),
    ("session.store", |a, b| {
        // The connection is made once; a new key file is read on reload (key rotation).
        let servers = |s: &Settings| match &s.session.store {
            crate::sections::StoreConfig::Memory => None,
            crate::sections::StoreConfig::Redis(r) => Some((
                r.topology.clone(),
                r.key_prefix.clone(),
                r.timeout,
                r.ca_file.clone(),
            )),
        };
        servers(a) != servers(b)
    }),
    // The profiles' connections, pools and service passwords are set up once, at start.
    ("directory", |a, b| a.directory != b.directory),
];

impl Settings {
    /// The keys of [`RESTART_ONLY`] whose values differ between `self` (the running settings)
    /// and `new` (a reload's): what the reload leaves as it is until a restart.
    pub fn restart_required(&self, new: &Settings) -> Vec<&'static str> {
        DIFFERS
            .iter()
            .filter(|(_, differs)| differs(self, new))
            .map(|(key, _)| *key)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn changed(json: &str) -> Vec<&'static str> {
        let new = Settings::parse(json, Path::new("<defaults>")).unwrap();
        Settings::defaults().restart_required(&new)
    }

    #[test]
    fn every_restart_only_key_is_compared() {
        let keys: Vec<&str> = DIFFERS.iter().map(|(key, _)| *key).collect();
        assert_eq!(keys, RESTART_ONLY);
    }

    #[test]
    fn audit_file_and_node() {
        assert_eq!(
            changed(
                r#"{"logging": {"audit_file": "/var/log/interstate-audit.jsonl"}, "admin": {"node": "b2"}}"#
            ),
            ["admin.node", "logging.audit_file"]
        );
    }

    #[test]
    fn the_same_settings_need_no_restart() {
        assert!(changed("{}").is_empty());
    }

    #[test]
    fn generation_keys_need_no_restart() {
        let json = r#"{"session": {"idle_timeout_s": 60}, "server": {"broker_name": "B",
            "max_connections": 3}, "mapper": {"limits": {"timeout_ms": 100},
            "deny_private_addresses": true}, "agent": {"allowed_hosts": ["10.0.0.0/8"]},
            "admin": {"listen": null}}"#;
        assert!(changed(json).is_empty());
    }

    #[test]
    fn server_host() {
        assert_eq!(
            changed(r#"{"server": {"host": "127.0.0.1"}}"#),
            ["server.host"]
        );
    }

    #[test]
    fn server_port() {
        assert_eq!(changed(r#"{"server": {"port": 8443}}"#), ["server.port"]);
    }

    #[test]
    fn logging_level() {
        assert_eq!(
            changed(r#"{"logging": {"level": "DEBUG"}}"#),
            ["logging.level"]
        );
        assert!(changed(r#"{"logging": {"level": "info"}}"#).is_empty());
    }

    #[test]
    fn logging_format() {
        assert_eq!(
            changed(r#"{"logging": {"format": "json"}}"#),
            ["logging.format"]
        );
    }

    #[test]
    fn admin_listen() {
        assert_eq!(
            changed(r#"{"admin": {"listen": "127.0.0.1:9443"}}"#),
            ["admin.listen"]
        );
    }

    #[test]
    fn admin_token() {
        assert_eq!(
            changed(r#"{"admin": {"listen": "127.0.0.1:9443", "token": "t"}}"#),
            ["admin.listen", "admin.token"]
        );
    }

    #[test]
    fn mapper_max_concurrent_calls() {
        assert_eq!(
            changed(r#"{"mapper": {"limits": {"max_concurrent_calls": 8}}}"#),
            ["mapper.limits.max_concurrent_calls"]
        );
    }

    #[test]
    fn security_hash_workers() {
        assert_eq!(
            changed(r#"{"security": {"hash_workers": 3}}"#),
            ["security.hash_workers"]
        );
    }

    #[test]
    fn mapper_cache_dir() {
        assert_eq!(
            changed(r#"{"mapper": {"cache_dir": "/var/cache/x"}}"#),
            ["mapper.cache_dir"]
        );
        let default_is_set = Settings::defaults().mapper.cache_dir.is_some();
        assert_eq!(
            changed(r#"{"mapper": {"cache_dir": ""}}"#).len(),
            usize::from(default_is_set),
            "an empty cache_dir turns the cache off"
        );
    }

    #[test]
    fn server_generated_cert_dir() {
        assert_eq!(
            changed(r#"{"server": {"generated_cert_dir": "/var/lib/x"}}"#),
            ["server.generated_cert_dir"]
        );
    }

    #[test]
    fn several_keys_in_order() {
        let json = r#"{"mapper": {"cache_dir": "/c"}, "server": {"port": 1, "host": "::"}}"#;
        assert_eq!(
            changed(json),
            ["server.host", "server.port", "mapper.cache_dir"]
        );
    }
}
