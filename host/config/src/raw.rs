//! The serde shapes of `settings.json`, as written, before validation.
//!
//! Every section and key is optional (missing ones take [`defaults`](crate::defaults)), unknown
//! keys are refused, and enum-like values are typed ([`values`](crate::values)), so a misspelt
//! key or value fails here, named with its path.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::defaults as d;
use crate::error::SettingsError;
use crate::values::{BeakerType, LogFormat, LogLevel, RawPlugin, SessionStore, VerifyMode};

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

impl RawSettings {
    /// Parses JSON text into raw settings, naming the key of the first problem.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, SettingsError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let e = e.into_inner();
            SettingsError::Invalid {
                path: origin.to_owned(),
                key: if path.is_empty() || path == "." {
                    format!("(line {}, column {})", e.line(), e.column())
                } else {
                    path
                },
                message: e.to_string(),
            }
        })
    }
}

/// `logging`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLogging {
    /// `INFO` or `DEBUG` in ILS; also `TRACE`, `WARNING`/`WARN`, `ERROR`.
    pub level: LogLevel,
    /// `text` (default) or `json`.
    pub format: LogFormat,
    /// Where the audit records go (JSON lines, appended); standard error when unset.
    pub audit_file: Option<String>,
}

impl Default for RawLogging {
    fn default() -> Self {
        Self {
            level: d::LOG_LEVEL,
            format: d::LOG_FORMAT,
            audit_file: None,
        }
    }
}

/// `beaker` (ILS's session library). Kept so that ILS files load: `ext:redis` with a `url` means
/// the Redis store; every other type means the memory store (sessions are never written to
/// files).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBeaker {
    /// ILS: the session store type (`file`).
    #[serde(rename = "type")]
    pub kind: BeakerType,
    /// ILS: where file sessions lived.
    pub data_dir: String,
    /// ILS: the Redis URL of an `ext:redis` store.
    pub url: Option<String>,
}

impl Default for RawBeaker {
    fn default() -> Self {
        Self {
            kind: d::BEAKER_TYPE,
            data_dir: d::BEAKER_DATA_DIR.to_owned(),
            url: None,
        }
    }
}

/// `mapper`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMapper {
    /// `SimpleMapper` or `SimpleWebserviceMapper` (embedded), or a path to a `.wasm` component.
    pub plugin: RawPlugin,
    /// The mapper's own settings, passed to `configure` as JSON.
    pub settings: serde_json::Value,
    /// Per-call limits.
    pub limits: RawMapperLimits,
    /// The mapper's namespace and bounds in the key-value store.
    pub store: RawMapperStore,
    /// Origins (`host` and `host:port` are https; `http://host:port` for plain HTTP) the
    /// mapper may call over HTTP.
    /// Unset, not `[]`, for the default ([`mapper_allowed_hosts`](d::mapper_allowed_hosts)),
    /// which depends on the plugin and its settings; an explicit list, even an empty one, wins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<String>>,
    /// Refuse HTTP to hosts that resolve to private, loopback or link-local addresses.
    pub deny_private_addresses: bool,
    /// Where compiled components are cached; unset for the default, empty for none.
    pub cache_dir: Option<String>,
}

impl Default for RawMapper {
    fn default() -> Self {
        Self {
            plugin: d::MAPPER_PLUGIN,
            settings: serde_json::Value::Object(serde_json::Map::new()),
            limits: RawMapperLimits::default(),
            store: RawMapperStore::default(),
            allowed_hosts: None,
            deny_private_addresses: d::MAPPER_DENY_PRIVATE_ADDRESSES,
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
            timeout_ms: d::MAPPER_TIMEOUT_MS,
            memory_mb: d::MAPPER_MEMORY_MB,
            max_concurrent_calls: d::MAPPER_MAX_CONCURRENT_CALLS,
        }
    }
}

/// `mapper.store`: the mapper's share of the key-value store (0.2 mappers' `store`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMapperStore {
    /// The namespace; unset for the component's file stem (or `SimpleMapper`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Live keys at most.
    pub max_keys: u64,
    /// Largest value, in bytes.
    pub max_value_bytes: usize,
    /// Longest time to live, in milliseconds.
    pub max_ttl_ms: u64,
}

impl Default for RawMapperStore {
    fn default() -> Self {
        Self {
            namespace: None,
            max_keys: d::MAPPER_STORE_MAX_KEYS,
            max_value_bytes: d::MAPPER_STORE_MAX_VALUE_BYTES,
            max_ttl_ms: d::MAPPER_STORE_MAX_TTL_MS,
        }
    }
}

/// `session`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSession {
    /// `memory` or `redis`.
    pub store: SessionStore,
    /// The Redis store's servers and keys.
    pub redis: RawRedis,
    /// The file of keys that seal what a shared store keeps (required with `redis`).
    pub key_file: Option<String>,
    /// A session unused this long ends.
    pub idle_timeout_s: u64,
    /// A session ends this long after its hello, used or not.
    pub absolute_timeout_s: u64,
    /// Most live sessions kept at once.
    pub max_sessions: usize,
    /// A session nobody has logged in to ends after this long unused.
    pub unauthenticated_timeout_s: u64,
    /// Sessions nobody has logged in to, per client address.
    pub max_unauthenticated_per_address: usize,
}

impl Default for RawSession {
    fn default() -> Self {
        Self {
            store: d::SESSION_STORE,
            redis: RawRedis::default(),
            key_file: None,
            idle_timeout_s: d::SESSION_IDLE_TIMEOUT_S,
            absolute_timeout_s: d::SESSION_ABSOLUTE_TIMEOUT_S,
            max_sessions: d::SESSION_MAX_SESSIONS,
            unauthenticated_timeout_s: d::SESSION_UNAUTHENTICATED_TIMEOUT_S,
            max_unauthenticated_per_address: d::SESSION_MAX_UNAUTHENTICATED_PER_ADDRESS,
        }
    }
}

/// `session.redis`: one of `url`, `cluster` or `sentinel`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRedis {
    /// One server (or a proxy): `redis://` or `rediss://` (TLS).
    pub url: Option<String>,
    /// Seed nodes of a Redis Cluster.
    pub cluster: Vec<String>,
    /// Sentinels and the name of the master they watch.
    pub sentinel: Option<RawSentinel>,
    /// Prefix of every key the broker writes.
    pub key_prefix: Option<String>,
    /// Deadline of one store call, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// PEM file of the CA that signs the servers' certificates (`rediss://`).
    pub ca_file: Option<String>,
}

/// `session.redis.sentinel`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSentinel {
    /// The sentinels: `redis://host:port`.
    pub urls: Vec<String>,
    /// The master's name (`sentinel monitor NAME ...`).
    pub master_name: String,
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
    /// Where launches may go: address blocks (`10.20.0.0/16`) and names (`ws.example.com`,
    /// or `.render.example.com` for every name under it). Unset: anywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<String>>,
}

impl Default for RawAgent {
    fn default() -> Self {
        Self {
            port: d::AGENT_PORT,
            timeout_ms: d::AGENT_TIMEOUT_MS,
            tls: RawAgentTls::default(),
            license_path: None,
            allowed_hosts: None,
        }
    }
}

/// `agent.tls`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAgentTls {
    /// `tofu` (the default: the first certificate is pinned), `off`, `ca` or `pinned`.
    pub verify: VerifyMode,
    /// PEM file of the CA that signed the agents' certificates (`verify: "ca"`).
    pub ca_file: Option<String>,
    /// SHA-256 fingerprints of accepted agent certificates (`verify: "pinned"`).
    pub fingerprints: Vec<String>,
}

impl Default for RawAgentTls {
    fn default() -> Self {
        Self {
            verify: d::AGENT_TLS_VERIFY,
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
    /// Where a generated certificate and key are kept across restarts (no `cert`/`key`); unset
    /// for the default, empty for a new certificate at every start.
    pub generated_cert_dir: Option<String>,
    /// Key sessions by `Client-Log-Id` when the client drops the cookie (ILS `--fallback_sessions`).
    pub fallback_sessions: bool,
    /// Most open client connections.
    pub max_connections: usize,
    /// Most open client connections from one address (trusted proxies exempt).
    pub max_connections_per_address: usize,
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
    /// `broker-info/hostname`; empty for `broker_name` (the machine's name is never told).
    pub hostname: String,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace_ms: u64,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            host: d::SERVER_HOST.to_owned(),
            port: d::SERVER_PORT,
            cert: None,
            key: None,
            generated_cert_dir: None,
            fallback_sessions: d::SERVER_FALLBACK_SESSIONS,
            max_connections: d::SERVER_MAX_CONNECTIONS,
            max_connections_per_address: d::SERVER_MAX_CONNECTIONS_PER_ADDRESS,
            handshake_timeout_ms: d::SERVER_HANDSHAKE_TIMEOUT_MS,
            header_timeout_ms: d::SERVER_HEADER_TIMEOUT_MS,
            body_limit_bytes: d::SERVER_BODY_LIMIT_BYTES,
            trusted_proxies: Vec::new(),
            broker_name: d::SERVER_BROKER_NAME.to_owned(),
            hostname: d::SERVER_HOSTNAME.to_owned(),
            shutdown_grace_ms: d::SERVER_SHUTDOWN_GRACE_MS,
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
    /// Without one, a loopback listener serves only reads (health, metrics).
    pub token: Option<String>,
    /// Open admin connections at most (feed subscribers included).
    pub max_connections: Option<usize>,
    /// TLS (the broker's certificate) on a loopback listener too; always on beyond loopback.
    pub tls: bool,
    /// This node's name in feed events and session lists; the machine's host name when unset.
    pub node: Option<String>,
    /// Addresses allowed to make signed API calls (channelstream's `allow_posting_from`), as
    /// address blocks (`"10.0.0.0/8"`, a bare address is one address); empty: any address.
    pub allow_posting_from: Vec<String>,
    /// Refuse requests that did not arrive over HTTPS with 406 (channelstream's
    /// `enforce_https`).
    pub enforce_https: bool,
    /// Origins (`https://app.example:8443`) allowed to call across origins (CORS); none by
    /// default.
    pub allow_cors: Vec<String>,
    /// The user name of channelstream's admin sign-in (`/admin/sign_in`); `admin` when unset.
    pub user: Option<String>,
    /// The admin password as a hash (`interstate hash-password`), never the password itself;
    /// the sign-in is off without it.
    pub password_hash: Option<String>,
    /// The key that signs the sign-in cookie (`auth_tkt`); required with `password_hash`.
    pub cookie_secret: Option<String>,
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
    /// Password hashes computed at once; 0: one per core.
    pub hash_workers: usize,
}

impl Default for RawSecurity {
    fn default() -> Self {
        Self {
            auth_failures_per_user: d::AUTH_FAILURES_PER_USER,
            auth_failures_per_address: d::AUTH_FAILURES_PER_ADDRESS,
            auth_window_s: d::AUTH_WINDOW_S,
            hash_workers: d::HASH_WORKERS,
        }
    }
}
