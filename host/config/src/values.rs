//! The enum-like values of `settings.json`, spelled as ILS and the README spell them.
//!
//! Each type deserializes from a JSON string only (`try_from = "String"`), so a misspelt value
//! fails while the file is parsed, with its key and the accepted spellings, and serializes back
//! to its canonical spelling (what `interstate settings` prints).

use serde::{Deserialize, Serialize};

/// Log verbosity (`logging.level`). ILS writes `INFO` or `DEBUG`; any case is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Problems only (`WARNING` or `WARN`).
    Warn,
    /// Failures only (`ERROR`, or Python's `CRITICAL`).
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

impl TryFrom<String> for LogLevel {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.to_ascii_uppercase().as_str() {
            "TRACE" => Ok(Self::Trace),
            "DEBUG" => Ok(Self::Debug),
            "INFO" => Ok(Self::Info),
            "WARN" | "WARNING" => Ok(Self::Warn),
            "ERROR" | "CRITICAL" => Ok(Self::Error),
            other => Err(format!(
                "expected one of INFO, DEBUG, TRACE, WARNING, ERROR, got {other:?}"
            )),
        }
    }
}

impl From<LogLevel> for &'static str {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARNING",
            LogLevel::Error => "ERROR",
        }
    }
}

/// How log lines are written (`logging.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum LogFormat {
    /// Human-readable lines (`text`).
    Text,
    /// One JSON object per line (`json`).
    Json,
}

impl TryFrom<String> for LogFormat {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("expected \"text\" or \"json\", got {other:?}")),
        }
    }
}

impl From<LogFormat> for &'static str {
    fn from(format: LogFormat) -> Self {
        match format {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// ILS's Beaker session back end (`beaker.type`): accepted so ILS files load, then ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum BeakerType {
    /// `file` (ILS's default).
    File,
    /// `dbm`.
    Dbm,
    /// `memory`.
    Memory,
    /// `cookie`.
    Cookie,
    /// `ext:NAME`, a Beaker extension such as `ext:redis`; holds `NAME`.
    Ext(String),
}

impl TryFrom<String> for BeakerType {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "file" => Ok(Self::File),
            "dbm" => Ok(Self::Dbm),
            "memory" => Ok(Self::Memory),
            "cookie" => Ok(Self::Cookie),
            other => match other.strip_prefix("ext:") {
                Some(name) if !name.is_empty() => Ok(Self::Ext(name.to_owned())),
                _ => Err(format!(
                    "expected a Beaker session type (\"file\", \"dbm\", \"memory\", \"cookie\" \
                     or \"ext:NAME\"), got {other:?}"
                )),
            },
        }
    }
}

impl From<BeakerType> for String {
    fn from(kind: BeakerType) -> Self {
        match kind {
            BeakerType::File => "file".to_owned(),
            BeakerType::Dbm => "dbm".to_owned(),
            BeakerType::Memory => "memory".to_owned(),
            BeakerType::Cookie => "cookie".to_owned(),
            BeakerType::Ext(name) => format!("ext:{name}"),
        }
    }
}

/// Where live sessions are kept (`session.store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum SessionStore {
    /// In this process (`memory`).
    Memory,
    /// Redis or Valkey (`redis`), shared by every node of the broker.
    Redis,
}

impl TryFrom<String> for SessionStore {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "memory" => Ok(Self::Memory),
            "redis" => Ok(Self::Redis),
            other => Err(format!("expected \"memory\" or \"redis\", got {other:?}")),
        }
    }
}

impl From<SessionStore> for &'static str {
    fn from(store: SessionStore) -> Self {
        match store {
            SessionStore::Memory => "memory",
            SessionStore::Redis => "redis",
        }
    }
}

/// How an agent's certificate is checked (`agent.tls.verify`), before its companion keys are
/// read; the validated form is [`AgentVerify`](crate::AgentVerify).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum VerifyMode {
    /// `tofu`: trust on first use; the first certificate an agent presents is pinned.
    Tofu,
    /// `off`: any certificate, every time; still encrypted, but whoever answers at a desktop's
    /// address gets the password.
    Off,
    /// `ca`: signed by `agent.tls.ca_file`.
    Ca,
    /// `pinned`: one of `agent.tls.fingerprints`.
    Pinned,
}

impl TryFrom<String> for VerifyMode {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "tofu" => Ok(Self::Tofu),
            "off" => Ok(Self::Off),
            "ca" => Ok(Self::Ca),
            "pinned" => Ok(Self::Pinned),
            other => Err(format!(
                "expected \"tofu\", \"off\", \"ca\" or \"pinned\", got {other:?}"
            )),
        }
    }
}

impl From<VerifyMode> for &'static str {
    fn from(mode: VerifyMode) -> Self {
        match mode {
            VerifyMode::Tofu => "tofu",
            VerifyMode::Off => "off",
            VerifyMode::Ca => "ca",
            VerifyMode::Pinned => "pinned",
        }
    }
}

/// `mapper.plugin` as written; the validated form is [`PluginSource`](crate::PluginSource),
/// whose path is resolved against the settings file's folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RawPlugin {
    /// `SimpleMapper`: the embedded Rust SimpleMapper.
    SimpleMapper,
    /// `SimpleWebserviceMapper`: the embedded Rust SimpleWebserviceMapper
    /// (`guest-mappers/webservice`), ILS's plugin of that name.
    SimpleWebserviceMapper,
    /// `DirectoryMapper`: the embedded Rust DirectoryMapper (`guest-mappers/directory`), logins
    /// against a `directory.profiles` entry.
    DirectoryMapper,
    /// A path ending in `.wasm`, as written.
    Wasm(String),
}

/// What `mapper.plugin` accepts, for its error messages.
const PLUGIN_EXPECTED: &str = "expected \"SimpleMapper\", \"SimpleWebserviceMapper\", \"DirectoryMapper\" or a path to a .wasm file";

impl TryFrom<String> for RawPlugin {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "" => Err(PLUGIN_EXPECTED.to_owned()),
            "SimpleMapper" => Ok(Self::SimpleMapper),
            "SimpleWebserviceMapper" => Ok(Self::SimpleWebserviceMapper),
            "DirectoryMapper" => Ok(Self::DirectoryMapper),
            path if path.ends_with(".wasm") => Ok(Self::Wasm(text)),
            other => Err(format!(
                "{PLUGIN_EXPECTED}, got {other:?} \
                 (other ILS Python plugins must be rewritten as wasm mappers, see README \"Writing a mapper\")"
            )),
        }
    }
}

impl From<RawPlugin> for String {
    fn from(plugin: RawPlugin) -> Self {
        match plugin {
            RawPlugin::SimpleMapper => "SimpleMapper".to_owned(),
            RawPlugin::SimpleWebserviceMapper => "SimpleWebserviceMapper".to_owned(),
            RawPlugin::DirectoryMapper => "DirectoryMapper".to_owned(),
            RawPlugin::Wasm(path) => path,
        }
    }
}
