//! What the broker hands the runtime: the runtime's knobs, a mapper's source and its settings.
//! Their default numbers are the settings' own, from `interstate_config::defaults`.

use std::path::PathBuf;
use std::time::Duration;

use interstate_config::defaults;
use interstate_protocol::capability::KvLimits;

/// The process-wide knobs of a [`MapperRuntime`](crate::MapperRuntime).
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are cached (`<sha256>-<engine>.cwasm`). `None`: no disk
    /// cache, every start compiles again (seconds for JS or Python guests).
    pub cache_dir: Option<PathBuf>,
    /// How many mapper calls may run at once; more wait briefly, then fail as unavailable.
    /// It also sizes the pooling allocator.
    pub max_concurrent_calls: usize,
    /// Password hashes computed at once (`security.hash_workers`); 0 means one per core.
    pub hash_workers: usize,
}

impl Default for RuntimeConfig {
    /// No disk cache (a library writes nowhere unless asked; the broker passes
    /// `mapper.cache_dir`), and `mapper.limits.max_concurrent_calls`' default.
    fn default() -> Self {
        Self {
            cache_dir: None,
            max_concurrent_calls: defaults::MAPPER_MAX_CONCURRENT_CALLS,
            hash_workers: defaults::HASH_WORKERS,
        }
    }
}

/// Where a mapper component comes from.
#[derive(Debug, Clone)]
pub enum MapperSource {
    /// The embedded SimpleMapper (`"plugin": "SimpleMapper"`).
    Simple,
    /// The embedded SimpleWebserviceMapper (`"plugin": "SimpleWebserviceMapper"`).
    Webservice,
    /// A `.wasm` component file.
    File(PathBuf),
    /// A component already in memory; `name` labels it in logs and reports.
    Bytes {
        /// The name used in logs.
        name: String,
        /// The component.
        wasm: Vec<u8>,
    },
}

/// The operator's settings for one mapper.
#[derive(Debug, Clone)]
pub struct MapperSettings {
    /// The `mapper.settings` object, as JSON, handed to `configure` before every call.
    pub settings_json: String,
    /// The deadline of each call (configure included).
    pub timeout: Duration,
    /// The most the linear memories of one instance may hold together.
    pub memory_limit_bytes: u64,
    /// Hosts the mapper may reach with wasi:http, each one origin: `host` (https on 443),
    /// `host:port` (https on that port), or `scheme://host[:port]`. Empty: no outgoing HTTP.
    pub allowed_hosts: Vec<String>,
    /// Refuse an allowed host whose name resolves to (or that is) a private, loopback,
    /// link-local or otherwise non-public address; checked on the address connected to.
    pub deny_private_addresses: bool,
    /// The mapper's namespace and bounds in the key-value store (0.2 `store`).
    pub store: StoreSettings,
}

/// `mapper.store`: where and how much a mapper may keep in the key-value store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSettings {
    /// The namespace; `None` means the mapper's name (the component's file stem, or
    /// `SimpleMapper`).
    pub namespace: Option<String>,
    /// Key and value sizes, live keys and the longest TTL.
    pub limits: KvLimits,
}

impl Default for MapperSettings {
    fn default() -> Self {
        Self {
            settings_json: defaults::MAPPER_SETTINGS_JSON.to_owned(),
            timeout: Duration::from_millis(defaults::MAPPER_TIMEOUT_MS),
            memory_limit_bytes: defaults::MAPPER_MEMORY_MB << 20,
            allowed_hosts: Vec::new(),
            deny_private_addresses: defaults::MAPPER_DENY_PRIVATE_ADDRESSES,
            store: StoreSettings::default(),
        }
    }
}
