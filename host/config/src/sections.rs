//! The validated sections the broker uses: durations instead of numbers of milliseconds,
//! resolved paths, parsed addresses. Each `Default` is built from [`defaults`](crate::defaults)
//! and equals what validating the raw defaults gives (a test checks it).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::defaults as d;
use crate::fence::{AgentFence, Cidr};

/// Bytes in a MiB, for `mapper.limits.memory_mb`.
pub(crate) const MIB: u64 = 1024 * 1024;

/// Where the mapper comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// The embedded Rust SimpleMapper (`"plugin": "SimpleMapper"`).
    Simple,
    /// The embedded Rust SimpleWebserviceMapper (`"plugin": "SimpleWebserviceMapper"`).
    Webservice,
    /// A component file, resolved against the settings file's folder.
    File(PathBuf),
}

/// The mapper, validated.
#[derive(Debug, Clone, PartialEq)]
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
    /// HTTP hosts the mapper may call: `mapper.allowed_hosts` when the file has it, else
    /// [`defaults::mapper_allowed_hosts`](crate::defaults::mapper_allowed_hosts).
    pub allowed_hosts: Vec<String>,
    /// `mapper.deny_private_addresses`: refuse HTTP to hosts that resolve to private,
    /// loopback or link-local addresses.
    pub deny_private_addresses: bool,
    /// Compiled-component cache; `None` disables it.
    pub cache_dir: Option<PathBuf>,
    /// `mapper.store`: the mapper's namespace and bounds in the key-value store.
    pub store: MapperStoreConfig,
}

/// The mapper's share of the key-value store, validated (`mapper.store`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapperStoreConfig {
    /// The namespace; `None` for the mapper's name (the component's file stem, or
    /// `SimpleMapper`).
    pub namespace: Option<String>,
    /// Live keys at most.
    pub max_keys: u64,
    /// Largest value, in bytes.
    pub max_value_bytes: usize,
    /// Longest key, in bytes (the contract's 256).
    pub max_key_bytes: usize,
    /// Longest time to live, in milliseconds.
    pub max_ttl_ms: u64,
}

impl Default for MapperStoreConfig {
    fn default() -> Self {
        Self {
            namespace: None,
            max_keys: d::MAPPER_STORE_MAX_KEYS,
            max_value_bytes: d::MAPPER_STORE_MAX_VALUE_BYTES,
            max_key_bytes: d::MAPPER_STORE_MAX_KEY_BYTES,
            max_ttl_ms: d::MAPPER_STORE_MAX_TTL_MS,
        }
    }
}

impl Default for MapperConfig {
    fn default() -> Self {
        Self {
            plugin: PluginSource::Simple,
            settings_json: d::MAPPER_SETTINGS_JSON.to_owned(),
            timeout: Duration::from_millis(d::MAPPER_TIMEOUT_MS),
            memory_limit_bytes: d::MAPPER_MEMORY_MB * MIB,
            max_concurrent_calls: d::MAPPER_MAX_CONCURRENT_CALLS,
            allowed_hosts: Vec::new(),
            deny_private_addresses: d::MAPPER_DENY_PRIVATE_ADDRESSES,
            cache_dir: d::mapper_cache_dir(),
            store: MapperStoreConfig::default(),
        }
    }
}

/// Session storage and expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Idle limit.
    pub idle_timeout: Duration,
    /// Absolute limit.
    pub absolute_timeout: Duration,
    /// Most live sessions.
    pub max_sessions: usize,
    /// Idle limit of a session nobody has logged in to.
    pub unauthenticated_timeout: Duration,
    /// Sessions nobody has logged in to, per client address.
    pub max_unauthenticated_per_address: usize,
    /// Where sessions live (restart only).
    pub store: StoreConfig,
}

/// Where sessions, failure counts and agent pins live (`session.store`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreConfig {
    /// In this process: nothing to install, one node.
    #[default]
    Memory,
    /// In Redis (or Valkey), shared by every node.
    Redis(RedisConfig),
}

/// `session.redis` and `session.key_file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// Which servers.
    pub topology: RedisTopology,
    /// Prefix of every key written.
    pub key_prefix: String,
    /// Deadline of one store call.
    pub timeout: Duration,
    /// The CA of the servers' certificates (`rediss://`), instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The sealing keys' file: the first key seals, every key opens (rotation). Re-read on
    /// reload.
    pub key_file: PathBuf,
}

/// The Redis servers the store talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTopology {
    /// One server (`redis://` or `rediss://`).
    Single(String),
    /// A Redis Cluster, by its seed nodes.
    Cluster(Vec<String>),
    /// The master that sentinels name.
    Sentinel {
        /// The sentinels.
        urls: Vec<String>,
        /// The master's name.
        master_name: String,
    },
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(d::SESSION_IDLE_TIMEOUT_S),
            absolute_timeout: Duration::from_secs(d::SESSION_ABSOLUTE_TIMEOUT_S),
            max_sessions: d::SESSION_MAX_SESSIONS,
            unauthenticated_timeout: Duration::from_secs(d::SESSION_UNAUTHENTICATED_TIMEOUT_S),
            max_unauthenticated_per_address: d::SESSION_MAX_UNAUTHENTICATED_PER_ADDRESS,
            store: StoreConfig::Memory,
        }
    }
}

/// How the agent's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentVerify {
    /// Trust on first use: any certificate the first time an agent (`host:port`) is called,
    /// then only that one (the pins live in the session store).
    Tofu,
    /// Any certificate, every time (agents ship self-signed ones). The channel is still
    /// encrypted, but whoever answers at a desktop's address receives the password.
    Off,
    /// Certificates signed by this CA, for the agent's host name.
    Ca(PathBuf),
    /// Certificates whose SHA-256 is one of these (32 bytes each).
    Pinned(Vec<[u8; 32]>),
}

/// The agent call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// Default port.
    pub port: u16,
    /// Call deadline.
    pub timeout: Duration,
    /// Certificate check.
    pub verify: AgentVerify,
    /// `license-path` for `launch-session`.
    pub license_path: Option<String>,
    /// `agent.allowed_hosts`: where launches may go; `None`, anywhere.
    pub allowed_hosts: Option<AgentFence>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            port: d::AGENT_PORT,
            timeout: Duration::from_millis(d::AGENT_TIMEOUT_MS),
            verify: AgentVerify::Tofu,
            license_path: None,
            allowed_hosts: None,
        }
    }
}

/// The client listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Listen host (name or address).
    pub host: String,
    /// Listen port.
    pub port: u16,
    /// Certificate chain file.
    pub cert: Option<PathBuf>,
    /// Key file.
    pub key: Option<PathBuf>,
    /// Where the generated certificate persists; `None` for a new one at every start.
    pub generated_cert_dir: Option<PathBuf>,
    /// `Client-Log-Id` fallback sessions.
    pub fallback_sessions: bool,
    /// Connection cap.
    pub max_connections: usize,
    /// Connection cap per client address (trusted proxies exempt).
    pub max_connections_per_address: usize,
    /// TLS handshake deadline.
    pub handshake_timeout: Duration,
    /// The deadline of a request's headers, then again of its body (`server.header_timeout_ms`).
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

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: d::SERVER_HOST.to_owned(),
            port: d::SERVER_PORT,
            cert: None,
            key: None,
            generated_cert_dir: d::generated_cert_dir(),
            fallback_sessions: d::SERVER_FALLBACK_SESSIONS,
            max_connections: d::SERVER_MAX_CONNECTIONS,
            max_connections_per_address: d::SERVER_MAX_CONNECTIONS_PER_ADDRESS,
            handshake_timeout: Duration::from_millis(d::SERVER_HANDSHAKE_TIMEOUT_MS),
            header_timeout: Duration::from_millis(d::SERVER_HEADER_TIMEOUT_MS),
            body_limit_bytes: d::SERVER_BODY_LIMIT_BYTES,
            trusted_proxies: Vec::new(),
            broker_name: d::SERVER_BROKER_NAME.to_owned(),
            hostname: d::SERVER_HOSTNAME.to_owned(),
            shutdown_grace: Duration::from_millis(d::SERVER_SHUTDOWN_GRACE_MS),
        }
    }
}

/// Authentication failure limits, from `security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Failures per user name per window.
    pub per_user: u32,
    /// Failures per client address per window.
    pub per_address: u32,
    /// The window, in milliseconds.
    pub window_ms: u64,
    /// Most entries kept per table.
    pub max_entries: usize,
    /// `security.hash_workers`: password hashes computed at once; 0 means one per core
    /// (restart only: it sizes the process's hash pool).
    pub hash_workers: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_user: d::AUTH_FAILURES_PER_USER,
            per_address: d::AUTH_FAILURES_PER_ADDRESS,
            window_ms: d::AUTH_WINDOW_S * 1000,
            max_entries: d::AUTH_MAX_ENTRIES,
            hash_workers: d::HASH_WORKERS,
        }
    }
}

/// The admin listener's channelstream-compatible access rules (`admin.allow_posting_from`,
/// `admin.enforce_https`, `admin.allow_cors`, `admin.user`, `admin.password_hash`,
/// `admin.cookie_secret`). The listener reads them on every request, so a reload applies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAccess {
    /// Address blocks allowed to make signed API calls; empty: any address.
    pub allow_posting_from: Vec<Cidr>,
    /// Requests that did not arrive over HTTPS get 406.
    pub enforce_https: bool,
    /// Origins allowed across origins (`scheme://host:port`, lower case, port explicit).
    pub allow_cors: Vec<String>,
    /// The admin sign-in's user name.
    pub user: String,
    /// The admin password's hash; `None`: no sign-in.
    pub password_hash: Option<String>,
    /// The sign-in cookie's HMAC key (set whenever `password_hash` is).
    pub cookie_secret: Option<String>,
}

impl Default for AdminAccess {
    fn default() -> Self {
        Self {
            allow_posting_from: Vec::new(),
            enforce_https: false,
            allow_cors: Vec::new(),
            user: d::ADMIN_USER.to_owned(),
            password_hash: None,
            cookie_secret: None,
        }
    }
}
