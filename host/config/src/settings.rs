//! [`Settings`]: the whole validated file, and how it is read.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::defaults as d;
use crate::error::SettingsError;
use crate::raw::RawSettings;
use crate::sections::{
    AdminAccess, AgentConfig, MapperConfig, RateLimits, ServerConfig, SessionConfig,
};
use crate::values::{LogFormat, LogLevel};

/// Validated settings.
///
/// Most of it is per generation: a reload applies it. The keys in
/// [`RESTART_ONLY`](crate::RESTART_ONLY) are per process, and
/// [`Settings::restart_required`] says which of them a new file changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Where they came from (for messages and relative paths).
    pub origin: PathBuf,
    /// Log level (restart only).
    pub log_level: LogLevel,
    /// Log lines as JSON (`logging.format`, restart only).
    pub log_json: bool,
    /// The mapper.
    pub mapper: MapperConfig,
    /// Sessions.
    pub session: SessionConfig,
    /// The agent call.
    pub agent: AgentConfig,
    /// The client listener.
    pub server: ServerConfig,
    /// The admin listener address (restart only).
    pub admin_listen: Option<SocketAddr>,
    /// The admin bearer token.
    pub admin_token: Option<String>,
    /// Open admin connections at most (`admin.max_connections`).
    pub admin_max_connections: usize,
    /// TLS on a loopback admin listener too (`admin.tls`, restart only); always on beyond it.
    pub admin_tls: bool,
    /// This node's name in feed events and session lists (`admin.node`, restart only).
    pub node: String,
    /// The admin listener's channelstream-compatible access rules (allowlist, HTTPS, CORS,
    /// sign-in).
    pub admin_access: AdminAccess,
    /// Where audit records go (`logging.audit_file`, restart only); standard error when unset.
    pub audit_file: Option<PathBuf>,
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

    /// Validates raw settings; `origin` names the file in errors and anchors relative paths.
    pub fn from_raw(raw: RawSettings, origin: &Path) -> Result<Self, SettingsError> {
        crate::validate::settings(raw, origin)
    }

    /// The defaults, with `<defaults>` as their origin: equal to parsing `{}`.
    pub fn defaults() -> Self {
        Self {
            origin: PathBuf::from("<defaults>"),
            log_level: d::LOG_LEVEL,
            log_json: d::LOG_FORMAT == LogFormat::Json,
            mapper: MapperConfig::default(),
            session: SessionConfig::default(),
            agent: AgentConfig::default(),
            server: ServerConfig::default(),
            admin_listen: None,
            admin_token: None,
            admin_max_connections: d::ADMIN_MAX_CONNECTIONS,
            admin_tls: false,
            node: d::node_name(),
            admin_access: AdminAccess::default(),
            audit_file: None,
            rate_limits: RateLimits::default(),
        }
    }
}
