//! `settings.json`: interstate_love_song's file, accepted unchanged, plus Interstate's sections.
//!
//! Parsing happens in two steps (ripgrep's low/high split): [`RawSettings`] mirrors the JSON with
//! serde, rejecting unknown keys; [`Settings::from_raw`] then checks values and builds typed
//! pieces. Every error names the file, the key path and what was expected.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ratelimit::RateLimits;

/// A settings error, naming the file and the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The file could not be read.
    #[error("{path}: cannot read the settings file: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The JSON is malformed or does not fit the schema.
    #[error("{path}: {key}: {message}")]
    Invalid {
        /// The file (`<defaults>` or `<inline>` when there is none).
        path: PathBuf,
        /// The key path, such as `session.idle_timeout_s`, or `(line 3, column 5)`.
        key: String,
        /// What was expected.
        message: String,
    },
}

/// The JSON document as written, before validation. Every section is optional.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSettings {
    /// `logging` (ILS).
    pub logging: RawLogging,
    /// `beaker` (ILS). Accepted for compatibility; sessions are never written to files.
    pub beaker: RawBeaker,
    /// `mapper` (ILS, extended).
    pub mapper: RawMapper,
    /// `session`.
    pub session: RawSession,
    /// `agent`.
    pub agent: RawAgent,
    /// `server`.
    pub server: RawServer,
    /// `admin`.
    pub admin: RawAdmin,
    /// `security`.
    pub security: RawSecurity,
}

/// `logging`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLogging {
    /// `INFO` or `DEBUG` in ILS; also `TRACE`, `WARNING`/`WARN`, `ERROR`.
    pub level: String,
    /// `text` (default) or `json`.
    pub format: String,
}

impl Default for RawLogging {
    fn default() -> Self {
        Self {
            level: "INFO".into(),
            format: "text".into(),
        }
    }
}

/// `beaker` (ILS's session library). Kept so that ILS files load; ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBeaker {
    /// ILS: the session store type (`file`).
    #[serde(rename = "type")]
    pub kind: String,
    /// ILS: where file sessions lived.
    pub data_dir: String,
}

impl Default for RawBeaker {
    fn default() -> Self {
        Self {
            kind: "file".into(),
            data_dir: "/tmp".into(),
        }
    }
}

/// `mapper`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMapper {
    /// `SimpleMapper` (embedded) or a path to a `.wasm` component.
    pub plugin: String,
    /// The mapper's own settings, passed to `configure` as JSON.
    pub settings: serde_json::Value,
    /// Per-call limits.
    pub limits: RawMapperLimits,
    /// Hosts (`host` or `host:port`) the mapper may call over HTTP.
    pub allowed_hosts: Vec<String>,
    /// Where compiled components are cached; empty for the default.
    pub cache_dir: Option<String>,
}

impl Default for RawMapper {
    fn default() -> Self {
        Self {
            plugin: "SimpleMapper".into(),
            settings: serde_json::json!({}),
            limits: RawMapperLimits::default(),
            allowed_hosts: Vec::new(),
            cache_dir: None,
        }
    }
}

/// `mapper.limits`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMapperLimits {
    /// Deadline of one mapper call.
    pub timeout_ms: u64,
    /// Linear memory limit of one mapper instance.
    pub memory_mb: u64,
    /// Mapper calls running at once.
    pub max_concurrent_calls: usize,
}

impl Default for RawMapperLimits {
    fn default() -> Self {
        Self {
            timeout_ms: 5_000,
            memory_mb: 64,
            max_concurrent_calls: 256,
        }
    }
}

/// `session`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSession {
    /// `memory` (the only store so far).
    pub store: String,
    /// The store URL (Redis).
    pub url: Option<String>,
    /// A session unused this long ends.
    pub idle_timeout_s: u64,
    /// A session ends this long after its hello, used or not.
    pub absolute_timeout_s: u64,
    /// Most live sessions kept at once.
    pub max_sessions: usize,
}

impl Default for RawSession {
    fn default() -> Self {
        Self {
            store: "memory".into(),
            url: None,
            idle_timeout_s: 600,
            absolute_timeout_s: 3_600,
            max_sessions: 200_000,
        }
    }
}

/// `agent`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAgent {
    /// The agent port when the desktop names none.
    pub port: u16,
    /// Deadline of one `launch-session` call.
    pub timeout_ms: u64,
    /// How the agent's certificate is checked.
    pub tls: RawAgentTls,
    /// `license-path` passed to the agent (`port@host` or a URL), when set.
    pub license_path: Option<String>,
}

impl Default for RawAgent {
    fn default() -> Self {
        Self {
            port: 60443,
            timeout_ms: 10_000,
            tls: RawAgentTls::default(),
            license_path: None,
        }
    }
}

/// `agent.tls`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAgentTls {
    /// `off` (agents ship self-signed certificates), `ca` or `pinned`.
    pub verify: String,
    /// PEM file of the CA that signed the agents' certificates (`verify: "ca"`).
    pub ca_file: Option<String>,
    /// SHA-256 fingerprints of accepted agent certificates (`verify: "pinned"`).
    pub fingerprints: Vec<String>,
}

impl Default for RawAgentTls {
    fn default() -> Self {
        Self {
            verify: "off".into(),
            ca_file: None,
            fingerprints: Vec::new(),
        }
    }
}

/// `server`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    /// The address to listen on (ILS `--host`).
    pub host: String,
    /// The port (ILS `-p/--port`).
    pub port: u16,
    /// PEM certificate chain (ILS `--cert`); none for a generated self-signed one.
    pub cert: Option<String>,
    /// PEM private key (ILS `--key`).
    pub key: Option<String>,
    /// Key sessions by `Client-Log-Id` when the client drops the cookie (ILS `--fallback_sessions`).
    pub fallback_sessions: bool,
    /// Most open client connections.
    pub max_connections: usize,
    /// Deadline for a TLS handshake.
    pub handshake_timeout_ms: u64,
    /// Deadline for a request's headers, then again for its body; a kept-alive connection that
    /// sends no new request for this long is closed.
    pub header_timeout_ms: u64,
    /// Largest request body.
    pub body_limit_bytes: usize,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    /// `broker-info/product-name` in `hello-resp`.
    pub broker_name: String,
    /// `broker-info/hostname`; empty for the machine's host name.
    pub hostname: String,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace_ms: u64,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: 60443,
            cert: None,
            key: None,
            fallback_sessions: false,
            max_connections: 10_000,
            handshake_timeout_ms: 10_000,
            header_timeout_ms: 10_000,
            body_limit_bytes: 64 * 1024,
            trusted_proxies: Vec::new(),
            broker_name: "Interstate".into(),
            hostname: String::new(),
            shutdown_grace_ms: 10_000,
        }
    }
}

/// `admin`: the operator listener (metrics, reload). Off unless `listen` is set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAdmin {
    /// `host:port` of the admin listener, such as `127.0.0.1:9443`.
    pub listen: Option<String>,
    /// Bearer token required on the admin listener; required unless it listens on loopback.
    pub token: Option<String>,
}

/// `security`: authentication failure limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSecurity {
    /// Failed logins per user name per window before further attempts are refused.
    pub auth_failures_per_user: u32,
    /// Failed logins per client address per window.
    pub auth_failures_per_address: u32,
    /// The window, in seconds.
    pub auth_window_s: u64,
}

impl Default for RawSecurity {
    fn default() -> Self {
        let limits = RateLimits::default();
        Self {
            auth_failures_per_user: limits.per_user,
            auth_failures_per_address: limits.per_address,
            auth_window_s: limits.window_ms / 1000,
        }
    }
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Problems only.
    Warn,
    /// Failures only.
    Error,
}

impl LogLevel {
    /// The `tracing` filter directive.
    pub fn as_filter(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Where the mapper comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// The embedded Rust SimpleMapper (`"plugin": "SimpleMapper"`).
    Simple,
    /// A component file, resolved against the settings file's folder.
    File(PathBuf),
}

/// The mapper, validated.
#[derive(Debug, Clone)]
pub struct MapperConfig {
    /// The component.
    pub plugin: PluginSource,
    /// The settings passed to `configure`, serialised.
    pub settings_json: String,
    /// Call deadline.
    pub timeout: Duration,
    /// Memory limit in bytes.
    pub memory_limit_bytes: u64,
    /// Mapper calls running at once.
    pub max_concurrent_calls: usize,
    /// HTTP hosts the mapper may call.
    pub allowed_hosts: Vec<String>,
    /// Compiled-component cache; `None` disables it.
    pub cache_dir: Option<PathBuf>,
}

/// Session storage and expiry.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Idle limit.
    pub idle_timeout: Duration,
    /// Absolute limit.
    pub absolute_timeout: Duration,
    /// Most live sessions.
    pub max_sessions: usize,
}

/// How the agent's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentVerify {
    /// Any certificate (agents ship self-signed ones). The channel is still encrypted.
    Off,
    /// Certificates signed by this CA, for the agent's host name.
    Ca(PathBuf),
    /// Certificates whose SHA-256 is one of these (32 bytes each).
    Pinned(Vec<[u8; 32]>),
}

/// The agent call.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Default port.
    pub port: u16,
    /// Call deadline.
    pub timeout: Duration,
    /// Certificate check.
    pub verify: AgentVerify,
    /// `license-path` for `launch-session`.
    pub license_path: Option<String>,
}

/// The client listener.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Listen host (name or address).
    pub host: String,
    /// Listen port.
    pub port: u16,
    /// Certificate chain file.
    pub cert: Option<PathBuf>,
    /// Key file.
    pub key: Option<PathBuf>,
    /// `Client-Log-Id` fallback sessions.
    pub fallback_sessions: bool,
    /// Connection cap.
    pub max_connections: usize,
    /// TLS handshake deadline.
    pub handshake_timeout: Duration,
    /// Header read deadline.
    pub header_timeout: Duration,
    /// Body limit.
    pub body_limit_bytes: usize,
    /// Trusted proxies.
    pub trusted_proxies: Vec<IpAddr>,
    /// `hello-resp` product name.
    pub broker_name: String,
    /// `hello-resp` host name.
    pub hostname: String,
    /// Shutdown drain deadline.
    pub shutdown_grace: Duration,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where they came from (for messages and relative paths).
    pub origin: PathBuf,
    /// Log level.
    pub log_level: LogLevel,
    /// Log lines as JSON.
    pub log_json: bool,
    /// The mapper.
    pub mapper: MapperConfig,
    /// Sessions.
    pub session: SessionConfig,
    /// The agent call.
    pub agent: AgentConfig,
    /// The client listener.
    pub server: ServerConfig,
    /// The admin listener address.
    pub admin_listen: Option<std::net::SocketAddr>,
    /// The admin bearer token.
    pub admin_token: Option<String>,
    /// Authentication failure limits.
    pub rate_limits: RateLimits,
}

impl Settings {
    /// Reads and validates a settings file.
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Validates settings text; `origin` names the file in errors and anchors relative paths.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, SettingsError> {
        let raw = RawSettings::parse(text, origin)?;
        Self::from_raw(raw, origin)
    }

    /// The defaults (what `interstate settings` prints).
    pub fn defaults() -> Self {
        // The defaults are valid by construction; a failure here is a bug caught by the tests.
        Self::from_raw(RawSettings::default(), Path::new("<defaults>"))
            .unwrap_or_else(|e| panic!("built-in defaults are invalid: {e}"))
    }

    /// Validates raw settings.
    pub fn from_raw(raw: RawSettings, origin: &Path) -> Result<Self, SettingsError> {
        let bad = |key: &str, message: String| SettingsError::Invalid {
            path: origin.to_owned(),
            key: key.to_owned(),
            message,
        };
        let base = origin
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let resolve = |p: &str| -> PathBuf {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };

        let log_level = match raw.logging.level.to_ascii_uppercase().as_str() {
            "TRACE" => LogLevel::Trace,
            "DEBUG" => LogLevel::Debug,
            "INFO" => LogLevel::Info,
            "WARN" | "WARNING" => LogLevel::Warn,
            "ERROR" | "CRITICAL" => LogLevel::Error,
            other => {
                return Err(bad(
                    "logging.level",
                    format!("expected one of INFO, DEBUG, TRACE, WARNING, ERROR, got {other:?}"),
                ));
            }
        };
        let log_json = match raw.logging.format.as_str() {
            "text" => false,
            "json" => true,
            other => {
                return Err(bad(
                    "logging.format",
                    format!("expected \"text\" or \"json\", got {other:?}"),
                ));
            }
        };

        let plugin = match raw.mapper.plugin.as_str() {
            "" => {
                return Err(bad(
                    "mapper.plugin",
                    "expected \"SimpleMapper\" or a path to a .wasm file".into(),
                ));
            }
            "SimpleMapper" => PluginSource::Simple,
            path if path.ends_with(".wasm") => PluginSource::File(resolve(path)),
            other => {
                return Err(bad(
                    "mapper.plugin",
                    format!(
                        "expected \"SimpleMapper\" or a path to a .wasm file, got {other:?} \
                         (ILS Python plugins must be rewritten as wasm mappers, see README \"Writing a mapper\")"
                    ),
                ));
            }
        };
        if !raw.mapper.settings.is_object() {
            return Err(bad("mapper.settings", "expected a JSON object".into()));
        }
        let limits = &raw.mapper.limits;
        if !(10..=600_000).contains(&limits.timeout_ms) {
            return Err(bad(
                "mapper.limits.timeout_ms",
                "expected 10 to 600000 milliseconds".into(),
            ));
        }
        if !(1..=4096).contains(&limits.memory_mb) {
            return Err(bad(
                "mapper.limits.memory_mb",
                "expected 1 to 4096 MiB".into(),
            ));
        }
        if !(1..=10_000).contains(&limits.max_concurrent_calls) {
            return Err(bad(
                "mapper.limits.max_concurrent_calls",
                "expected 1 to 10000".into(),
            ));
        }
        for (i, host) in raw.mapper.allowed_hosts.iter().enumerate() {
            if host.is_empty() || host.contains('/') || host.contains(char::is_whitespace) {
                return Err(bad(
                    &format!("mapper.allowed_hosts[{i}]"),
                    format!(
                        "expected a host or host:port such as \"auth.example.com:443\", got {host:?}"
                    ),
                ));
            }
        }
        let mapper = MapperConfig {
            plugin,
            settings_json: raw.mapper.settings.to_string(),
            timeout: Duration::from_millis(limits.timeout_ms),
            memory_limit_bytes: limits.memory_mb * 1024 * 1024,
            max_concurrent_calls: limits.max_concurrent_calls,
            allowed_hosts: raw.mapper.allowed_hosts.clone(),
            cache_dir: match raw.mapper.cache_dir.as_deref() {
                Some("") => None,
                Some(dir) => Some(resolve(dir)),
                None => default_cache_dir(),
            },
        };

        match raw.session.store.as_str() {
            "memory" => {}
            "redis" => {
                return Err(bad(
                    "session.store",
                    "the redis store is not available in this build yet; use \"memory\"".into(),
                ));
            }
            other => {
                return Err(bad(
                    "session.store",
                    format!("expected \"memory\", got {other:?}"),
                ));
            }
        }
        if raw.session.idle_timeout_s == 0 || raw.session.idle_timeout_s > 86_400 {
            return Err(bad(
                "session.idle_timeout_s",
                "expected 1 to 86400 seconds".into(),
            ));
        }
        if raw.session.absolute_timeout_s < raw.session.idle_timeout_s
            || raw.session.absolute_timeout_s > 7 * 86_400
        {
            return Err(bad(
                "session.absolute_timeout_s",
                "expected at least session.idle_timeout_s and at most 604800 seconds".into(),
            ));
        }
        if raw.session.max_sessions == 0 {
            return Err(bad("session.max_sessions", "expected at least 1".into()));
        }
        let session = SessionConfig {
            idle_timeout: Duration::from_secs(raw.session.idle_timeout_s),
            absolute_timeout: Duration::from_secs(raw.session.absolute_timeout_s),
            max_sessions: raw.session.max_sessions,
        };

        if raw.agent.port == 0 {
            return Err(bad("agent.port", "expected a port from 1 to 65535".into()));
        }
        if !(100..=120_000).contains(&raw.agent.timeout_ms) {
            return Err(bad(
                "agent.timeout_ms",
                "expected 100 to 120000 milliseconds".into(),
            ));
        }
        let verify = match raw.agent.tls.verify.as_str() {
            "off" => AgentVerify::Off,
            "ca" => match raw.agent.tls.ca_file.as_deref() {
                Some(file) if !file.is_empty() => AgentVerify::Ca(resolve(file)),
                _ => {
                    return Err(bad(
                        "agent.tls.ca_file",
                        "expected a PEM file when agent.tls.verify is \"ca\"".into(),
                    ));
                }
            },
            "pinned" => {
                if raw.agent.tls.fingerprints.is_empty() {
                    return Err(bad(
                        "agent.tls.fingerprints",
                        "expected at least one SHA-256 fingerprint when agent.tls.verify is \"pinned\"".into(),
                    ));
                }
                let mut pins = Vec::new();
                for (i, text) in raw.agent.tls.fingerprints.iter().enumerate() {
                    let pin = parse_fingerprint(text).ok_or_else(|| {
                        bad(
                            &format!("agent.tls.fingerprints[{i}]"),
                            format!("expected 64 hex digits (colons allowed), got {text:?}"),
                        )
                    })?;
                    pins.push(pin);
                }
                AgentVerify::Pinned(pins)
            }
            other => {
                return Err(bad(
                    "agent.tls.verify",
                    format!("expected \"off\", \"ca\" or \"pinned\", got {other:?}"),
                ));
            }
        };
        let agent = AgentConfig {
            port: raw.agent.port,
            timeout: Duration::from_millis(raw.agent.timeout_ms),
            verify,
            license_path: raw.agent.license_path.clone().filter(|s| !s.is_empty()),
        };

        let s = &raw.server;
        if s.host.is_empty() {
            return Err(bad("server.host", "expected a host name or address".into()));
        }
        if s.cert.is_some() != s.key.is_some() {
            return Err(bad(
                "server.cert",
                "expected both server.cert and server.key, or neither".into(),
            ));
        }
        if s.max_connections == 0 {
            return Err(bad("server.max_connections", "expected at least 1".into()));
        }
        for (key, value) in [
            ("server.handshake_timeout_ms", s.handshake_timeout_ms),
            ("server.header_timeout_ms", s.header_timeout_ms),
            ("server.shutdown_grace_ms", s.shutdown_grace_ms),
        ] {
            if !(1..=3_600_000).contains(&value) {
                return Err(bad(key, "expected 1 to 3600000 milliseconds".into()));
            }
        }
        if !(1024..=16 * 1024 * 1024).contains(&s.body_limit_bytes) {
            return Err(bad(
                "server.body_limit_bytes",
                "expected 1024 to 16777216 bytes".into(),
            ));
        }
        let mut trusted_proxies = Vec::new();
        for (i, text) in s.trusted_proxies.iter().enumerate() {
            let ip = text.parse::<IpAddr>().map_err(|_| {
                bad(
                    &format!("server.trusted_proxies[{i}]"),
                    format!("expected an IP address, got {text:?}"),
                )
            })?;
            trusted_proxies.push(ip);
        }
        let server = ServerConfig {
            host: s.host.clone(),
            port: s.port,
            cert: s.cert.as_deref().map(resolve),
            key: s.key.as_deref().map(resolve),
            fallback_sessions: s.fallback_sessions,
            max_connections: s.max_connections,
            handshake_timeout: Duration::from_millis(s.handshake_timeout_ms),
            header_timeout: Duration::from_millis(s.header_timeout_ms),
            body_limit_bytes: s.body_limit_bytes,
            trusted_proxies,
            broker_name: s.broker_name.clone(),
            hostname: s.hostname.clone(),
            shutdown_grace: Duration::from_millis(s.shutdown_grace_ms),
        };

        let sec = &raw.security;
        if sec.auth_failures_per_user == 0 {
            return Err(bad(
                "security.auth_failures_per_user",
                "expected at least 1".into(),
            ));
        }
        if sec.auth_failures_per_address == 0 {
            return Err(bad(
                "security.auth_failures_per_address",
                "expected at least 1".into(),
            ));
        }
        if !(1..=86_400).contains(&sec.auth_window_s) {
            return Err(bad(
                "security.auth_window_s",
                "expected 1 to 86400 seconds".into(),
            ));
        }
        let rate_limits = RateLimits {
            per_user: sec.auth_failures_per_user,
            per_address: sec.auth_failures_per_address,
            window_ms: sec.auth_window_s * 1000,
            ..RateLimits::default()
        };

        let admin_listen = match raw.admin.listen.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(text) => Some(text.parse::<std::net::SocketAddr>().map_err(|_| {
                bad(
                    "admin.listen",
                    format!(
                        "expected an address and port such as \"127.0.0.1:9443\", got {text:?}"
                    ),
                )
            })?),
        };
        let admin_token = raw.admin.token.clone().filter(|t| !t.is_empty());
        if admin_listen.is_some_and(|a| !a.ip().is_loopback()) && admin_token.is_none() {
            return Err(bad(
                "admin.token",
                "expected a token when admin.listen is not a loopback address".into(),
            ));
        }

        Ok(Self {
            origin: origin.to_owned(),
            log_level,
            log_json,
            mapper,
            session,
            agent,
            server,
            admin_listen,
            admin_token,
            rate_limits,
        })
    }
}

impl RawSettings {
    /// Parses JSON text into raw settings, naming the key of the first problem.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, SettingsError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let mut path = String::new();
        let result: Result<Self, _> = serde_path_to_error::deserialize(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        });
        result.map_err(|e| SettingsError::Invalid {
            path: origin.to_owned(),
            key: if path.is_empty() || path == "." {
                format!("(line {}, column {})", e.line(), e.column())
            } else {
                path
            },
            message: e.to_string(),
        })
    }
}

/// `$XDG_CACHE_HOME/interstate/components`, else `~/.cache/interstate/components`.
fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("interstate").join("components"))
}

/// Parses a SHA-256 fingerprint written as hex, with or without colons.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hex_only: String = text.chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(hex_only).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, SettingsError> {
        Settings::parse(text, Path::new("/etc/interstate/settings.json"))
    }

    #[test]
    fn ils_settings_load_unchanged() {
        let text = r#"{
            "logging": {"level": "DEBUG"},
            "beaker": {"type": "file", "data_dir": "/tmp"},
            "mapper": {"plugin": "SimpleMapper", "settings": {
                "username": "kolmogorov", "password_hash": "abc",
                "resources": [{"name": "James Dean", "hostname": "localhost"}],
                "domains": [""]}}
        }"#;
        let s = parse(text).unwrap();
        assert_eq!(s.log_level, LogLevel::Debug);
        assert_eq!(s.mapper.plugin, PluginSource::Simple);
        assert!(s.mapper.settings_json.contains("kolmogorov"));
        assert_eq!(s.server.port, 60443);
        assert_eq!(s.agent.verify, AgentVerify::Off);
    }

    #[test]
    fn unknown_key_is_named_with_its_path() {
        let err = parse(r#"{"session": {"idle_timeout": 5}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/etc/interstate/settings.json: session"),
            "{err}"
        );
        assert!(err.contains("idle_timeout"), "{err}");
    }

    #[test]
    fn bad_values_name_file_key_and_expectation() {
        let err = parse(r#"{"agent": {"tls": {"verify": "pinned", "fingerprints": ["zz"]}}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("agent.tls.fingerprints[0]") && err.contains("64 hex digits"),
            "{err}"
        );
        let err = parse(r#"{"session": {"idle_timeout_s": "ten"}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("session.idle_timeout_s"), "{err}");
        let err = parse(r#"{"mapper": {"plugin": "SimpleWebserviceMapper"}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mapper.plugin") && err.contains(".wasm"),
            "{err}"
        );
        let err = parse("{\n  \"logging\": \n}").unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn relative_plugin_paths_resolve_against_the_settings_file() {
        let s = parse(r#"{"mapper": {"plugin": "mappers/site.wasm"}}"#).unwrap();
        assert_eq!(
            s.mapper.plugin,
            PluginSource::File("/etc/interstate/mappers/site.wasm".into())
        );
    }

    #[test]
    fn fingerprints_accept_colons() {
        let hex = "AB:".repeat(31) + "AB";
        assert_eq!(parse_fingerprint(&hex), Some([0xab; 32]));
        assert_eq!(parse_fingerprint("abc"), None);
    }

    #[test]
    fn the_example_file_parses() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../settings.example.json"
        ));
        let s = Settings::load(path).unwrap();
        assert_eq!(s.mapper.plugin, PluginSource::Simple);
        assert!(s.mapper.settings_json.contains("kolmogorov"));
    }

    #[test]
    fn defaults_are_valid_and_print() {
        let s = Settings::defaults();
        assert_eq!(s.server.port, 60443);
        assert_eq!(s.server.body_limit_bytes, 65536);
        let printed = serde_json::to_string_pretty(&RawSettings::default()).unwrap();
        parse(&printed).unwrap();
    }
}
