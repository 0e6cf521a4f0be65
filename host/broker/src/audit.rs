//! The audit log: security events as JSON lines, apart from the diagnostic log.
//!
//! # Where records go, and why not only through `tracing`
//!
//! Every record is also emitted as a `tracing` event with target [`TARGET`]
//! (`interstate::audit`, field `record` holding the JSON line), so an operator can route audit
//! records with a `tracing` filter or layer of their own. The copy of record is the writer:
//! records are written to `logging.audit_file` (appended; created if missing) or, when that is
//! unset, to standard error, one JSON object per line. The broker writes them itself, under
//! [`TARGET`] as their `logger` field, not only through the process's `tracing` subscriber:
//!
//! - that subscriber's level and `INTERSTATE_LOG` filter are the operator's to turn down, and an
//!   audit trail must not disappear with the debug noise;
//! - each write is synchronous (one `write_all` of one whole line under a lock), so a record is
//!   never dropped, never interleaved with another one, and is in the file when the request that
//!   caused it is answered. A record that cannot be written (disk full) is reported on standard
//!   error with the record itself, rather than lost silently;
//! - each broker has its own writer, so tests read exactly their broker's records.
//!
//! The cost of never dropping is one small `write(2)` per record on the request's thread. What
//! keeps that bounded is [aggregation](#aggregation): an address cannot make the broker write at
//! the rate it sends requests.
//!
//! # Vocabulary
//!
//! The `event` field uses the OWASP logging vocabulary (Application Logging Vocabulary Cheat
//! Sheet): `authn_login_success`, `authn_login_fail`, `authn_login_fail_max`,
//! `session_expired`, `sys_config_reload`, `authn_password_change` /
//! `authn_password_change_fail`, and for operators `authn_login_success` / `authn_login_fail`
//! with `"realm": "admin"` plus `admin_session_end` and `admin_agent_pin`. Two events of the
//! broker's own complete the set, for what OWASP's vocabulary has no name for:
//! `authn_disclaimer` (a user accepted or declined the site's disclaimer, `result`) and
//! `desktop_operation` (a user restarted or powered a desktop, with `desktop`, `operation` and
//! `result`).
//! OWASP writes the user into the event (`authn_login_fail:joebob1`); here the user is its own
//! `user` field so that the event names stay a closed set a SIEM can match.
//!
//! ```json
//! {"datetime":"2026-01-02T03:04:05.678901Z","appid":"interstate","logger":"interstate::audit",
//!  "node":"broker-1","event":"authn_login_fail","level":"WARN","user":"kolmogorov",
//!  "source_ip":"192.0.2.7","description":"bad credentials"}
//! ```
//!
//! # Text from the network
//!
//! User names and mapper reasons pass through [`loggable`]: control characters (a `&#10;` in the
//! XML decodes to a real line feed) are escaped and the text is cut at 256 characters, so a user
//! name can neither forge a record in a line-based reader nor make one record large.
//!
//! # Aggregation
//!
//! A locked-out address keeps sending; each refusal would be a record. The first refusal of an
//! address in a window ([`REFUSAL_WINDOW_MS`]) is written at once; the ones after it are
//! counted, and one summary record (`"aggregated": true`, `count`) is written when the window
//! is over (on the address's next refusal, or by the periodic [`Audit::flush`]). At most
//! [`MAX_TRACKED_ADDRESSES`] addresses are tracked; refusals from further addresses share one
//! bucket whose summary has `"source_ip": "*"`. So a flood costs at most one record per address
//! per window plus one summary per window, whatever its rate.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use interstate_feed::Clock as _;
use serde_json::{Map, Value, json};

/// The `logger` field of every record, and the name of the audit stream in the docs.
pub const TARGET: &str = "interstate::audit";

/// How long repeated refusals of one address are summed into one summary record.
pub const REFUSAL_WINDOW_MS: u64 = 60_000;

/// Addresses whose refusals are tracked one by one; the rest share one bucket.
pub const MAX_TRACKED_ADDRESSES: usize = 4_096;

/// Longest text kept from the network in one field, in characters.
const MAX_FIELD_CHARS: usize = 256;

/// A name or reason from the network or a mapper, as a log field: control characters escaped
/// and cut to 256 characters, so it cannot forge a log line or flood the log.
pub fn loggable(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_FIELD_CHARS)
        .flat_map(char::escape_default)
        .collect();
    if text.chars().count() > MAX_FIELD_CHARS {
        out.push('…');
    }
    out
}

/// Refusals of one address in the current window.
#[derive(Debug, Clone, Copy)]
struct Window {
    started_ms: u64,
    /// Refusals after the first one (which was written when it happened).
    suppressed: u64,
}

/// Where the refusal counts are kept.
#[derive(Debug, Default)]
struct Refusals {
    by_address: HashMap<IpAddr, Window>,
    /// Addresses beyond [`MAX_TRACKED_ADDRESSES`].
    overflow: Option<Window>,
}

/// The audit log writer of one broker.
pub struct Audit {
    node: String,
    sink: Mutex<Box<dyn Write + Send>>,
    refusals: Mutex<Refusals>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Audit {
    /// Records go to `file` (appended, created if missing), or to standard error.
    ///
    /// # Errors
    ///
    /// The file cannot be opened for appending.
    pub fn open(node: &str, file: Option<&Path>) -> std::io::Result<Self> {
        let sink: Box<dyn Write + Send> = match file {
            Some(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
            None => Box::new(std::io::stderr()),
        };
        Ok(Self::to_writer(node, sink))
    }

    /// Records go to `sink` (tests, or an embedding application's own stream).
    pub fn to_writer(node: &str, sink: Box<dyn Write + Send>) -> Self {
        Self {
            node: node.to_owned(),
            sink: Mutex::new(sink),
            refusals: Mutex::new(Refusals::default()),
        }
    }

    /// A user logged in (password, or a dialog completed).
    pub fn login_success(&self, user: &str, source: IpAddr) {
        self.write(
            "authn_login_success",
            "INFO",
            json!({"user": loggable(user), "source_ip": source.to_string(),
                   "description": "login succeeded"}),
        );
    }

    /// A login was refused by the mapper (`reason` is the mapper's, or the kind of refusal).
    pub fn login_fail(&self, user: &str, source: IpAddr, reason: &str) {
        self.write(
            "authn_login_fail",
            "WARN",
            json!({"user": loggable(user), "source_ip": source.to_string(),
                   "description": loggable(reason)}),
        );
    }

    /// A login was refused by the failure limits, without asking the mapper. Aggregated per
    /// address (see the module docs).
    pub fn login_fail_max(&self, user: Option<&str>, source: IpAddr, limit: &str, now_ms: u64) {
        let source = canonical(source);
        let (first, summary) = {
            let mut refusals = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
            let tracked = refusals.by_address.len();
            if let Some(window) = refusals.by_address.get_mut(&source) {
                match count(window, now_ms) {
                    None => (false, None),
                    Some(ended) => (true, Some((Some(source), ended))),
                }
            } else if tracked < MAX_TRACKED_ADDRESSES {
                refusals.by_address.insert(
                    source,
                    Window {
                        started_ms: now_ms,
                        suppressed: 0,
                    },
                );
                (true, None)
            } else {
                // The overflow bucket writes summaries only.
                let window = refusals.overflow.get_or_insert(Window {
                    started_ms: now_ms,
                    suppressed: 0,
                });
                let ended = count(window, now_ms);
                if ended.is_some() {
                    window.suppressed = 1;
                }
                (false, ended.map(|ended| (None, ended)))
            }
        };
        if let Some((address, ended)) = summary {
            self.summary(address, ended);
        }
        if first {
            let mut fields = json!({"source_ip": source.to_string(), "limit": limit,
                "description": "login refused: too many failures"});
            if let Some(user) = user {
                fields["user"] = Value::String(loggable(user));
            }
            self.write("authn_login_fail_max", "WARN", fields);
        }
    }

    /// Writes the summaries of every window that is over at `now_ms`, and forgets those
    /// addresses. The broker calls this periodically.
    pub fn flush(&self, now_ms: u64) {
        let ended: Vec<(Option<IpAddr>, Window)> = {
            let mut refusals = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
            let over = |w: &Window| now_ms.saturating_sub(w.started_ms) >= REFUSAL_WINDOW_MS;
            let mut ended: Vec<(Option<IpAddr>, Window)> = refusals
                .by_address
                .iter()
                .filter(|(_, w)| over(w))
                .map(|(address, w)| (Some(*address), *w))
                .collect();
            for (address, _) in &ended {
                if let Some(address) = address {
                    refusals.by_address.remove(address);
                }
            }
            if refusals.overflow.as_ref().is_some_and(over)
                && let Some(w) = refusals.overflow.take()
            {
                ended.push((None, w));
            }
            ended
        };
        for (address, window) in ended {
            self.summary(address, window);
        }
    }

    /// A password change: `Ok` when the mapper changed it, else the kind of refusal (or
    /// "mapper error"). Never the passwords.
    pub fn password_change(&self, user: &str, source: IpAddr, result: Result<(), &str>) {
        let (event, level, description) = match result {
            Ok(()) => (
                "authn_password_change",
                "INFO",
                "password changed".to_owned(),
            ),
            Err(reason) => ("authn_password_change_fail", "WARN", loggable(reason)),
        };
        self.write(
            event,
            level,
            json!({"user": loggable(user), "source_ip": source.to_string(),
                   "description": description}),
        );
    }

    /// A user accepted or declined the disclaimer.
    pub fn disclaimer(&self, user: &str, source: IpAddr, accepted: bool) {
        let result = if accepted { "accepted" } else { "declined" };
        self.write(
            "authn_disclaimer",
            "INFO",
            json!({"user": loggable(user), "source_ip": source.to_string(), "result": result,
                   "description": format!("disclaimer {result}")}),
        );
    }

    /// A user asked for `operation` on `desktop`; `result` is the reply's result id.
    pub fn desktop_operation(
        &self,
        user: &str,
        source: IpAddr,
        desktop: &str,
        operation: &str,
        result: &str,
    ) {
        self.write(
            "desktop_operation",
            "INFO",
            json!({"user": loggable(user), "source_ip": source.to_string(),
                   "desktop": loggable(desktop), "operation": operation, "result": result,
                   "description": format!("{operation}: {result}")}),
        );
    }

    /// A session ran out (idle or absolute lifetime) and was ended.
    pub fn session_expired(&self, session: &str, user: Option<&str>) {
        let mut fields = json!({"session": session, "description": "session expired"});
        if let Some(user) = user {
            fields["user"] = Value::String(loggable(user));
        }
        self.write("session_expired", "INFO", fields);
    }

    /// A configuration reload was applied (`Ok`) or refused (`Err` with the reason).
    pub fn config_reload(&self, actor: &str, result: Result<(), &str>) {
        let fields = match result {
            Ok(()) => json!({"actor": actor, "result": "applied",
                             "description": "configuration reloaded"}),
            Err(reason) => json!({"actor": actor, "result": "refused",
                                  "description": loggable(reason)}),
        };
        self.write(
            "sys_config_reload",
            if result.is_ok() { "WARN" } else { "ERROR" },
            fields,
        );
    }

    /// An operator signed in to the admin listener, or failed to.
    pub fn admin_login(&self, source: IpAddr, success: bool) {
        let (event, level, description) = if success {
            ("authn_login_success", "INFO", "operator signed in")
        } else {
            ("authn_login_fail", "WARN", "operator token refused")
        };
        self.write(
            event,
            level,
            json!({"realm": "admin", "source_ip": source.to_string(),
                   "description": description}),
        );
    }

    /// An operator did something (`event` such as `admin_session_end`) to `target`.
    pub fn admin_action(&self, event: &str, actor: &str, target: &str, result: &str) {
        self.write(
            event,
            "WARN",
            json!({"realm": "admin", "actor": loggable(actor), "target": loggable(target),
                   "result": result}),
        );
    }

    fn summary(&self, address: Option<IpAddr>, window: Window) {
        if window.suppressed == 0 {
            return;
        }
        self.write(
            "authn_login_fail_max",
            "WARN",
            json!({
                "source_ip": address.map_or_else(|| "*".to_owned(), |a| a.to_string()),
                "aggregated": true,
                "count": window.suppressed,
                "window_s": REFUSAL_WINDOW_MS / 1000,
                "description": "further logins refused by the failure limits",
            }),
        );
    }

    /// Writes one record: one line, one `write_all`, under the lock.
    fn write(&self, event: &str, level: &str, fields: Value) {
        let mut record = Map::new();
        record.insert(
            "datetime".into(),
            Value::String(format!("{}Z", interstate_feed::SystemClock.now())),
        );
        record.insert("appid".into(), Value::from("interstate"));
        record.insert("logger".into(), Value::from(TARGET));
        record.insert("node".into(), Value::from(self.node.as_str()));
        record.insert("event".into(), Value::from(event));
        record.insert("level".into(), Value::from(level));
        if let Value::Object(fields) = fields {
            record.extend(fields);
        }
        let mut line = Value::Object(record).to_string();
        // The same record also goes out as a `tracing` event under [`TARGET`], so an operator
        // can route it with the rest of the process's logs; the writer below stays the record
        // of truth (never filtered, never dropped).
        match level {
            "ERROR" => tracing::error!(target: "interstate::audit", event, record = %line),
            "WARN" => tracing::warn!(target: "interstate::audit", event, record = %line),
            _ => tracing::info!(target: "interstate::audit", event, record = %line),
        }
        line.push('\n');
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = sink.write_all(line.as_bytes()).and_then(|()| sink.flush()) {
            // Not dropped silently: standard error gets the record and the reason.
            eprint!("interstate: audit record not written ({e}): {line}");
        }
    }
}

/// Counts a refusal in `window`; when the window was over, restarts it and returns the ended
/// one (whose summary is due, and whose refusal now is the first of the new window).
fn count(window: &mut Window, now_ms: u64) -> Option<Window> {
    if now_ms.saturating_sub(window.started_ms) >= REFUSAL_WINDOW_MS {
        let ended = *window;
        *window = Window {
            started_ms: now_ms,
            suppressed: 0,
        };
        Some(ended)
    } else {
        window.suppressed += 1;
        None
    }
}

/// IPv4-mapped IPv6 addresses count as their IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    address.to_canonical()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn records(&self) -> Vec<Value> {
            let bytes = self
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            String::from_utf8(bytes)
                .expect("utf-8")
                .lines()
                .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
                .collect()
        }
    }

    fn audit() -> (Audit, Shared) {
        let shared = Shared::default();
        (Audit::to_writer("n1", Box::new(shared.clone())), shared)
    }

    #[test]
    fn a_user_name_cannot_forge_a_record() {
        let (audit, out) = audit();
        let forged = "eve\n{\"event\":\"authn_login_success\",\"user\":\"admin\"}";
        audit.login_fail(forged, "192.0.2.1".parse().expect("ip"), "bad credentials");
        let records = out.records();
        assert_eq!(records.len(), 1, "one line, one record");
        let user = records[0]["user"].as_str().expect("user");
        assert!(!user.contains('\n'), "{user}");
        assert!(user.starts_with("eve\\n"), "{user}");
        assert_eq!(records[0]["event"], "authn_login_fail");
        assert_eq!(records[0]["node"], "n1");
        assert_eq!(records[0]["logger"], TARGET);
    }

    #[test]
    fn long_names_are_cut() {
        let (audit, out) = audit();
        audit.login_success(&"x".repeat(100_000), "192.0.2.1".parse().expect("ip"));
        let user = out.records()[0]["user"].as_str().expect("user").to_owned();
        assert_eq!(user.chars().count(), MAX_FIELD_CHARS + 1);
    }

    #[test]
    fn a_locked_out_address_writes_one_record_and_a_summary_per_window() {
        let (audit, out) = audit();
        let eve: IpAddr = "192.0.2.66".parse().expect("ip");
        let long = "u".repeat(10_000);
        for i in 0..100_000u64 {
            audit.login_fail_max(Some(&long), eve, "PerAddress", 1_000 + i / 100);
        }
        let records = out.records();
        assert_eq!(records.len(), 1, "the first refusal only, so far");
        assert_eq!(records[0]["event"], "authn_login_fail_max");
        let bytes = out.0.lock().expect("lock").len();
        assert!(bytes < 2_000, "{bytes} bytes for 100000 refusals");

        audit.flush(1_000 + REFUSAL_WINDOW_MS);
        let records = out.records();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1]["aggregated"], true);
        assert_eq!(records[1]["count"], 99_999);
        assert_eq!(records[1]["source_ip"], "192.0.2.66");

        // The next window starts afresh with a record of its own.
        audit.login_fail_max(None, eve, "PerAddress", 1_000 + 2 * REFUSAL_WINDOW_MS);
        assert_eq!(out.records().len(), 3);
    }

    #[test]
    fn a_window_ending_on_the_next_refusal_writes_its_summary() {
        let (audit, out) = audit();
        let eve: IpAddr = "2001:db8::1".parse().expect("ip");
        for _ in 0..5 {
            audit.login_fail_max(None, eve, "PerAddress", 10);
        }
        audit.login_fail_max(None, eve, "PerAddress", 10 + REFUSAL_WINDOW_MS);
        let records = out.records();
        assert_eq!(records.len(), 3, "{records:?}");
        assert_eq!(records[1]["count"], 4);
        assert!(records[2].get("aggregated").is_none());
    }

    #[test]
    fn many_addresses_share_one_overflow_summary() {
        let (audit, out) = audit();
        let total = MAX_TRACKED_ADDRESSES as u32 + 1_000;
        for i in 0..total {
            let address = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            audit.login_fail_max(None, address, "PerAddress", 5);
        }
        assert_eq!(out.records().len(), MAX_TRACKED_ADDRESSES);
        audit.flush(5 + REFUSAL_WINDOW_MS);
        let records = out.records();
        let last = records.last().expect("summary");
        assert_eq!(last["source_ip"], "*");
        assert_eq!(last["count"], 1_000);
    }

    #[test]
    fn reloads_and_admin_actions_use_the_vocabulary() {
        let (audit, out) = audit();
        audit.config_reload("admin 127.0.0.1", Ok(()));
        audit.config_reload("SIGHUP", Err("mapper: bad\nhash"));
        audit.admin_action("admin_session_end", "127.0.0.1", "abc123", "ended");
        audit.session_expired("abc123", Some("kolmogorov"));
        let events: Vec<String> = out
            .records()
            .iter()
            .map(|r| r["event"].as_str().expect("event").to_owned())
            .collect();
        assert_eq!(
            events,
            [
                "sys_config_reload",
                "sys_config_reload",
                "admin_session_end",
                "session_expired"
            ]
        );
        assert_eq!(out.records()[1]["description"], "mapper: bad\\nhash");
    }

    #[test]
    fn password_changes_disclaimers_and_operations_are_recorded() {
        let (audit, out) = audit();
        let source: IpAddr = "192.0.2.8".parse().expect("ip");
        audit.password_change("dave", source, Ok(()));
        audit.password_change("dave\nroot", source, Err("weak password"));
        audit.disclaimer("alice", source, false);
        audit.desktop_operation("bob", source, "ws-7", "CMD_OS_RESTART", "OP_SUCCESSFUL");
        let records = out.records();
        let events: Vec<&str> = records
            .iter()
            .map(|r| r["event"].as_str().expect("event"))
            .collect();
        assert_eq!(
            events,
            [
                "authn_password_change",
                "authn_password_change_fail",
                "authn_disclaimer",
                "desktop_operation"
            ]
        );
        assert_eq!(records[1]["user"], "dave\\nroot");
        assert_eq!(records[1]["level"], "WARN");
        assert_eq!(records[2]["result"], "declined");
        assert_eq!(records[3]["operation"], "CMD_OS_RESTART");
        assert_eq!(records[3]["result"], "OP_SUCCESSFUL");
    }

    #[test]
    fn records_also_go_out_as_tracing_events_under_the_audit_target() {
        let (audit, out) = audit();
        let traced = Shared::default();
        let writer = traced.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("interstate::audit=info"))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            audit.login_success("kolmogorov", "192.0.2.1".parse().expect("ip"));
        });
        assert_eq!(out.records().len(), 1, "the writer keeps its record");
        let bytes = traced
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let text = String::from_utf8(bytes).expect("utf-8");
        assert!(text.contains("interstate::audit"), "{text}");
        assert!(text.contains("authn_login_success"), "{text}");
        assert!(text.contains("kolmogorov"), "{text}");
    }
}
