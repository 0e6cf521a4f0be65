//! Assembling a running broker from settings: TLS identity, mapper, agent client, listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use interstate_mapper::{
    LoadError, MapperRuntime, MapperSettings, MapperSource, MemoryKv, RuntimeConfig, StoreSettings,
    WasmMapper,
};
use interstate_protocol::capability::{KeyValue, KvLimits};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use crate::agent::{AgentClient, AgentSetupError};
use crate::audit::Audit;
use crate::clock::Clock;
use crate::events::channel;
use crate::ratelimit::{AttemptCounter, MemoryCounter, RedisCounter};
use crate::server::{self, ConnectionCap};
use crate::service::{Broker, Generation, store_limits};
use crate::settings::AgentVerify;
use crate::settings::{MapperStoreConfig, StoreConfig};
use crate::settings::{PluginSource, Settings};
use crate::store::{MemoryStore, PinStore, RedisKv, RedisStore, SealKeys, SessionStore};
use crate::tls::{Identity, TlsError};

/// Why the broker could not start (or reload).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The certificate or key.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The mapper did not load or refused its settings.
    #[error("mapper {plugin}: {source}")]
    Mapper {
        /// What `mapper.plugin` names.
        plugin: String,
        /// Why.
        source: LoadError,
    },
    /// The agent client settings.
    #[error(transparent)]
    Agent(#[from] AgentSetupError),
    /// The session store could not be opened (or its key file read).
    #[error("session store: {0}")]
    Store(String),
    /// The audit log (`logging.audit_file`) could not be opened.
    #[error("cannot open the audit log {path}: {source}")]
    Audit {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The listener.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The mapper runtime settings shared by every generation.
pub fn runtime_config(settings: &Settings) -> RuntimeConfig {
    RuntimeConfig {
        cache_dir: settings.mapper.cache_dir.clone(),
        max_concurrent_calls: settings.mapper.max_concurrent_calls,
        hash_workers: settings.rate_limits.hash_workers,
    }
}

/// `mapper.store` as the runtime takes it.
pub fn store_settings(store: &MapperStoreConfig) -> StoreSettings {
    StoreSettings {
        namespace: store.namespace.clone(),
        limits: KvLimits {
            max_key_bytes: store.max_key_bytes,
            max_value_bytes: store.max_value_bytes,
            max_keys: store.max_keys,
            max_ttl_ms: store.max_ttl_ms,
        },
    }
}

/// Loads the mapper named by the settings.
pub async fn load_mapper(
    runtime: &MapperRuntime,
    settings: &Settings,
) -> Result<WasmMapper, StartError> {
    let (source, plugin) = match &settings.mapper.plugin {
        PluginSource::Simple => (MapperSource::Simple, "SimpleMapper".to_owned()),
        PluginSource::Webservice => (
            MapperSource::Webservice,
            "SimpleWebserviceMapper".to_owned(),
        ),
        PluginSource::File(path) => (MapperSource::File(path.clone()), path.display().to_string()),
    };
    let mapper_settings = MapperSettings {
        settings_json: settings.mapper.settings_json.clone(),
        timeout: settings.mapper.timeout,
        memory_limit_bytes: settings.mapper.memory_limit_bytes,
        allowed_hosts: settings.mapper.allowed_hosts.clone(),
        deny_private_addresses: settings.mapper.deny_private_addresses,
        store: store_settings(&settings.mapper.store),
    };
    runtime
        .load(source, mapper_settings)
        .await
        .map_err(|source| StartError::Mapper { plugin, source })
}

/// Builds a generation: the mapper, the agent client (keeping agent certificate pins in `pins`,
/// the same store across generations) and the broker's identity in `hello-resp`.
pub async fn build_generation(
    runtime: &MapperRuntime,
    settings: Settings,
    pins: Arc<dyn PinStore>,
) -> Result<Generation, StartError> {
    let mapper = load_mapper(runtime, &settings).await?;
    let info = mapper.info();
    info!(mapper = %info.name, version = %info.world_version, "mapper loaded");
    if settings.agent.verify == AgentVerify::Off {
        tracing::warn!(
            "agent.tls.verify is \"off\": agent certificates are not checked, so whoever answers at a desktop's address (ARP or DNS spoofing) receives the user's password; the default \"tofu\" pins each agent's first certificate"
        );
    }
    let agent = AgentClient::new(&settings.agent, pins)?;
    Ok(Generation::new(settings, Arc::new(mapper), Arc::new(agent)))
}

/// The TLS identity for the settings: the configured files, or a self-signed certificate.
pub fn identity(settings: &Settings) -> Result<Identity, TlsError> {
    match (&settings.server.cert, &settings.server.key) {
        (Some(cert), Some(key)) => Identity::from_files(cert, key),
        _ => generated_identity(settings),
    }
}

/// The self-signed identity: the one kept in `server.generated_cert_dir`, or a new one.
fn generated_identity(settings: &Settings) -> Result<Identity, TlsError> {
    let names = default_names(settings);
    match &settings.server.generated_cert_dir {
        Some(dir) => Identity::persisted(dir, &names),
        None => Identity::self_signed(&names),
    }
}

/// The names a generated certificate covers: loopback and the configured host.
fn default_names(settings: &Settings) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let host = &settings.server.host;
    if !names.contains(host) && host != "0.0.0.0" && host != "::" {
        names.push(host.clone());
    }
    names
}

/// A broker serving in the background.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub local_addr: SocketAddr,
    /// SHA-256 of its certificate.
    pub fingerprint: String,
    /// True when the certificate was generated.
    pub self_signed: bool,
    /// The shared state (sessions, current generation).
    pub broker: Arc<Broker>,
    /// The mapper runtime, for reloads.
    pub runtime: Arc<MapperRuntime>,
    /// The agent certificate pins (the session store), shared by every generation.
    pub pins: Arc<dyn PinStore>,
    /// The shared store, when sessions live in Redis (a reload re-reads its key file).
    redis: Option<Arc<RedisStore>>,
    tls: watch::Sender<Arc<rustls::ServerConfig>>,
    connections: Arc<ConnectionCap>,
    stopped: watch::Receiver<bool>,
    /// The self-signed identity, generated once, for settings without certificate files.
    generated: Arc<Identity>,
    /// The settings the process started with: the restart-only keys keep these values.
    initial: Settings,
}

impl Running {
    /// The TLS configuration in use (the admin listener's beyond loopback); follows reloads.
    pub fn tls_config(&self) -> server::TlsConfig {
        self.tls.subscribe()
    }

    /// The bus that carries the operator feed's events between the nodes sharing the Redis
    /// store (not started yet), or `None` with the memory store (the feed stays local).
    pub fn feed_bus(&self) -> Option<Arc<crate::feedbus::RedisBus>> {
        let store = self.redis.as_ref()?;
        let StoreConfig::Redis(config) = &self.initial.session.store else {
            return None;
        };
        Some(crate::feedbus::RedisBus::new(store.clone(), config.clone()))
    }

    /// Waits until the server has drained after its shutdown future resolved.
    pub async fn stopped(&self) {
        let mut stopped = self.stopped.clone();
        let _ = stopped.wait_for(|done| *done).await;
    }

    /// Reloads settings, mapper and certificate, swapping them in atomically. Requests in flight
    /// finish on the old generation; sessions are kept. Every key takes effect, except the ones
    /// the report names: they need a restart, and their old values stay in force until then. On
    /// error the old generation keeps serving.
    pub async fn reload(&self, settings: Settings) -> Result<ReloadReport, StartError> {
        let restart_required = self.initial.restart_required(&settings);
        if !restart_required.is_empty() {
            tracing::warn!(
                keys = %restart_required.join(", "),
                "these settings take effect only after a restart"
            );
        }
        // Without configured files the generated certificate is kept: clients that pinned it on
        // first use would otherwise see it change.
        let tls = match (&settings.server.cert, &settings.server.key) {
            (Some(_), Some(_)) => {
                let identity = identity(&settings)?;
                if let Some(leaf) = identity.chain.first() {
                    self.broker.metrics().set_certificate(leaf);
                }
                identity.server_config()?
            }
            _ => self.generated.server_config()?,
        };
        let max_connections = settings.server.max_connections;
        // A new key file (a rotation) is read now; a new store address waits for a restart.
        let keys = match (&self.redis, &settings.session.store) {
            (Some(_), StoreConfig::Redis(config)) => Some(
                SealKeys::load(&config.key_file).map_err(|e| StartError::Store(e.to_string()))?,
            ),
            _ => None,
        };
        let generation = build_generation(&self.runtime, settings, self.pins.clone()).await?;
        if let (Some(redis), Some(keys)) = (&self.redis, keys) {
            info!(keys = ?keys.key_ids(), "session keys reloaded");
            redis.set_keys(keys);
        }
        self.broker.swap(generation);
        self.connections.resize(max_connections);
        let _ = self.tls.send(tls);
        info!("configuration reloaded");
        Ok(ReloadReport { restart_required })
    }
}

/// What a reload applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Keys whose new values take effect only after a restart (their old values stay in force).
    pub restart_required: Vec<&'static str>,
}

/// Produces fresh settings for a reload (re-reads the file and re-applies command-line flags).
pub type SettingsSource = dyn Fn() -> Result<Settings, String> + Send + Sync;

/// Reloads a running broker from its settings source, one reload at a time.
#[derive(Clone)]
pub struct Reloader {
    source: Arc<SettingsSource>,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

impl Reloader {
    /// A reloader reading settings from `source`.
    pub fn new(source: Arc<SettingsSource>) -> Self {
        Self {
            source,
            lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Reads the settings again and swaps them in. On error the old configuration keeps serving
    /// and the reason is returned (and logged).
    pub async fn reload(&self, running: &Running) -> Result<ReloadReport, String> {
        self.reload_by(running, "operator").await
    }

    /// [`Reloader::reload`], on behalf of `actor` (as the audit log and the feed name it: `SIGHUP`,
    /// `token 127.0.0.1`, …).
    pub async fn reload_by(&self, running: &Running, actor: &str) -> Result<ReloadReport, String> {
        let _one_at_a_time = self.lock.lock().await;
        let result = match (self.source)() {
            Ok(settings) => running.reload(settings).await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        let broker = &running.broker;
        let reloads = &broker.metrics().reloads;
        match &result {
            Ok(report) => {
                broker
                    .stats()
                    .reloads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                reloads
                    .get_or_create(&crate::metrics::Outcome { outcome: "applied" })
                    .inc();
                broker.audit().config_reload(actor, Ok(()));
                let plugin = format!("{:?}", broker.current().settings.mapper.plugin);
                broker.events().emit(
                    &[channel::SYSTEM],
                    "broker.config_reloaded",
                    None,
                    serde_json::json!({"actor": actor, "restart_required": report.restart_required}),
                );
                broker.events().emit(
                    &[channel::MAPPERS, channel::SYSTEM],
                    "mapper.reloaded",
                    None,
                    serde_json::json!({"plugin": crate::audit::loggable(&plugin)}),
                );
            }
            Err(reason) => {
                tracing::error!(%reason, "reload refused; the previous configuration keeps serving");
                reloads
                    .get_or_create(&crate::metrics::Outcome { outcome: "refused" })
                    .inc();
                broker.audit().config_reload(actor, Err(reason));
                let mapper_failed = reason.starts_with("mapper ");
                broker.events().emit(
                    &[channel::SYSTEM],
                    "broker.config_refused",
                    None,
                    serde_json::json!({"actor": actor, "reason": crate::audit::loggable(reason)}),
                );
                if mapper_failed {
                    broker.events().emit(
                        &[channel::MAPPERS, channel::SYSTEM],
                        "mapper.failed",
                        None,
                        serde_json::json!({"error": crate::audit::loggable(reason)}),
                    );
                }
            }
        }
        result
    }
}

/// Starts serving on `listener` with `settings` until `shutdown` resolves.
pub async fn start(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    let identity = identity(&settings)?;
    let tls_config = identity.server_config()?;
    let generated = if identity.self_signed {
        Arc::new(identity.clone_identity())
    } else {
        Arc::new(generated_identity(&settings)?)
    };

    let initial = settings.clone();
    let audit = Arc::new(
        Audit::open(&settings.node, settings.audit_file.as_deref()).map_err(|source| {
            StartError::Audit {
                path: settings
                    .audit_file
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                source,
            }
        })?,
    );
    let opened = open_store(&settings).await?;
    // The mappers' key-value store lives where the sessions do, so that every node sharing
    // the Redis store shares the mappers' values and TOTP replay records.
    let runtime = Arc::new(
        MapperRuntime::new(runtime_config(&settings))
            .map_err(|source| StartError::Mapper {
                plugin: "(runtime)".into(),
                source,
            })?
            .with_key_value(opened.kv.clone()),
    );
    let connections = Arc::new(ConnectionCap::new(settings.server.max_connections));
    let pins = opened.pins.clone();
    let generation = build_generation(&runtime, settings, pins.clone()).await?;
    let broker = Arc::new(
        Broker::with_counter(generation, opened.sessions, opened.counter, Clock::new())
            .with_audit(audit),
    );
    if let Some(leaf) = identity.chain.first() {
        broker.metrics().set_certificate(leaf);
    }
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: "listener".into(),
        source,
    })?;
    let (tls, tls_rx) = watch::channel(tls_config);

    let sweeper = {
        let broker = Arc::downgrade(&broker);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
            loop {
                tick.tick().await;
                let Some(broker) = broker.upgrade() else {
                    break;
                };
                match broker.store().sweep(broker.clock().now_ms()).await {
                    Ok(0) => {}
                    Ok(swept) => {
                        tracing::debug!(swept, "expired sessions dropped");
                        broker
                            .metrics()
                            .sessions_ended
                            .get_or_create(&crate::metrics::EndReason { reason: "timeout" })
                            .inc_by(swept as u64);
                        broker.events().emit(
                            &[channel::SESSIONS, channel::SYSTEM],
                            "sessions.expired",
                            None,
                            serde_json::json!({"count": swept}),
                        );
                    }
                    Err(e) => {
                        broker.metrics().store_error(&e);
                        tracing::warn!(error = %e, "session sweep failed");
                    }
                }
            }
        })
    };
    let reporter = tokio::spawn(report_periodically(Arc::downgrade(&broker)));
    let (done, stopped) = watch::channel(false);
    {
        let broker = broker.clone();
        let connections = connections.clone();
        tokio::spawn(async move {
            server::run(listener, tls_rx, broker, connections, shutdown).await;
            sweeper.abort();
            reporter.abort();
            let _ = done.send(true);
        });
    }
    let running = Running {
        local_addr,
        fingerprint: identity.fingerprint,
        self_signed: identity.self_signed,
        broker,
        runtime,
        pins,
        redis: opened.redis,
        tls,
        connections,
        stopped,
        generated,
        initial,
    };
    // On a shared store every node publishes its events, admin listener or not, so that the
    // subscribers of any node see them all (the admin listener serves this same feed).
    if running.redis.is_some() {
        let (feed, bus) =
            crate::admin::feed_and_bus(&running, running.initial.admin_token.as_deref());
        running.broker.events().attach(feed);
        // The shared history is in the feed before anyone can subscribe (bounded: a Redis that
        // does not answer delays the start by at most this, and the history follows later).
        if let Some(bus) = bus
            && !bus.replayed(std::time::Duration::from_secs(3)).await
        {
            tracing::warn!(
                "the feed history was not replayed within 3 s; it follows as it is read"
            );
        }
    }
    Ok(running)
}

/// How often `broker.stats` is published and the audit log's refusal windows are closed.
pub const STATS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Every [`STATS_INTERVAL`]: the `broker.stats` event (live only) and the audit log's summaries
/// of refusal windows that are over.
async fn report_periodically(broker: std::sync::Weak<Broker>) {
    let mut tick = tokio::time::interval(STATS_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(broker) = broker.upgrade() else {
            break;
        };
        broker.audit().flush(broker.clock().now_ms());
        let Some(feed) = broker.events().feed() else {
            continue;
        };
        let live = broker.store().live_sessions().await.ok();
        let stats = broker.stats();
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        let feed_connections = feed.stats().connections;
        broker.events().emit_live(
            &[channel::SYSTEM],
            "broker.stats",
            serde_json::json!({
                "active_sessions": live,
                "sessions_created": load(&stats.sessions_created),
                "allocations": load(&stats.allocations),
                "rate_limited": load(&stats.rate_limited),
                "feed_connections": feed_connections,
            }),
        );
    }
}

/// The stores a broker keeps its state in.
struct OpenedStore {
    sessions: Arc<dyn SessionStore>,
    pins: Arc<dyn PinStore>,
    counter: Arc<dyn AttemptCounter>,
    /// The mappers' key-value store (0.2 `store`, `verify-totp`'s replay record).
    kv: Arc<dyn KeyValue>,
    redis: Option<Arc<RedisStore>>,
}

/// Opens the store `session.store` names: memory, or Redis (whose key file is read and whose
/// servers must answer now).
async fn open_store(settings: &Settings) -> Result<OpenedStore, StartError> {
    match &settings.session.store {
        StoreConfig::Memory => {
            let store = Arc::new(MemoryStore::new(store_limits(settings)));
            Ok(OpenedStore {
                sessions: store.clone(),
                pins: store,
                counter: Arc::new(MemoryCounter::default()),
                kv: Arc::new(MemoryKv::new()),
                redis: None,
            })
        }
        StoreConfig::Redis(config) => {
            let keys =
                SealKeys::load(&config.key_file).map_err(|e| StartError::Store(e.to_string()))?;
            let store = RedisStore::connect(config, keys, store_limits(settings))
                .await
                .map_err(|e| StartError::Store(e.to_string()))?;
            store.set_node(&settings.node);
            info!(servers = %store.describe(), prefix = %store.prefix(), "sessions live in redis");
            Ok(OpenedStore {
                sessions: store.clone(),
                pins: store.clone(),
                counter: Arc::new(RedisCounter::new(store.clone())),
                kv: Arc::new(RedisKv::new(store.clone())),
                redis: Some(store),
            })
        }
    }
}

/// Binds the listener named by the settings.
pub async fn bind(settings: &Settings) -> Result<TcpListener, StartError> {
    let addr = format!("{}:{}", settings.server.host, settings.server.port);
    let addr = if settings.server.host.contains(':') && !settings.server.host.starts_with('[') {
        format!("[{}]:{}", settings.server.host, settings.server.port)
    } else {
        addr
    };
    TcpListener::bind(&addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}
