//! The process-wide runtime: one engine, one linker, the epoch ticker, and `load`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use interstate_protocol::capability::{Directory, KeyValue};

use crate::bindings::{v01, v02};
use crate::cache::CompileCache;
use crate::call::{CallError, Callable, Pre, Reply, Request, Shared};
use crate::config::{MapperSettings, MapperSource, RuntimeConfig};
use crate::convert;
use crate::error::LoadError;
use crate::hashpool::HashPool;
use crate::inspect::{ContractVersion, SUPPORTED_POLICY, Surface};
use crate::mapper::{MapperInfo, WasmMapper};
use crate::memory_kv::MemoryKv;
use crate::state::{CallState, HostServices};

/// How often the engine's epoch advances: the granularity of deadlines and of yielding.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Slots beyond `max_concurrent_calls`, so that a load (which instantiates too) never finds
/// the pool full.
const POOL_HEADROOM: u32 = 4;
/// Per component: Python guests bring a dozen core instances and several memories.
const MEMORIES_PER_COMPONENT: u32 = 16;
const TABLES_PER_COMPONENT: u32 = 32;
const CORE_INSTANCES_PER_COMPONENT: u32 = 64;

/// The wasm engine, linker and compile cache shared by every mapper of the process, and the
/// host capabilities 0.2 mappers reach: the key-value store ([`MemoryKv`] unless
/// [`with_key_value`](Self::with_key_value) says otherwise) and the directory (none unless
/// [`with_directory`](Self::with_directory)).
#[derive(Clone)]
pub struct MapperRuntime {
    shared: Arc<Shared>,
    linker: Arc<Linker<CallState>>,
    cache: Option<CompileCache>,
    kv: Arc<dyn KeyValue>,
    directory: Option<Arc<dyn Directory>>,
}

impl std::fmt::Debug for MapperRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapperRuntime")
            .field("max_calls", &self.shared.max_calls)
            .field("cache", &self.cache)
            .field("directory", &self.directory.is_some())
            .finish_non_exhaustive()
    }
}

impl MapperRuntime {
    /// Creates the engine (async, epoch interruption, pooling allocator sized for
    /// `max_concurrent_calls`), starts its epoch ticker and builds the linker.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let max_calls = config.max_concurrent_calls.max(1);
        let slots = u32::try_from(max_calls)
            .unwrap_or(u32::MAX / 64)
            .min(u32::MAX / 64)
            + POOL_HEADROOM;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_stacks(slots)
            .total_core_instances(slots * CORE_INSTANCES_PER_COMPONENT / 4)
            .total_memories(slots * MEMORIES_PER_COMPONENT / 2)
            .total_tables(slots * TABLES_PER_COMPONENT / 2)
            .max_memories_per_component(MEMORIES_PER_COMPONENT)
            .max_tables_per_component(TABLES_PER_COMPONENT)
            .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT);
        let mut wasm_config = Config::new();
        wasm_config
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine =
            Engine::new(&wasm_config).map_err(|err| LoadError::Engine(format!("{err:#}")))?;
        spawn_epoch_ticker(&engine);

        let mut linker = Linker::<CallState>::new(&engine);
        link(&mut linker).map_err(|err| LoadError::Engine(format!("{err:#}")))?;

        let cache = match &config.cache_dir {
            Some(dir) => Some(CompileCache::open(dir, &engine).map_err(|err| {
                LoadError::Engine(format!(
                    "cannot create the compile cache directory {}: {err}",
                    dir.display()
                ))
            })?),
            None => None,
        };
        Ok(Self {
            shared: Arc::new(Shared {
                engine,
                calls: Arc::new(Semaphore::new(max_calls)),
                max_calls,
                hashes: HashPool::new(config.hash_workers),
            }),
            linker: Arc::new(linker),
            cache,
            kv: Arc::new(MemoryKv::new()),
            directory: None,
        })
    }

    /// The key-value store behind 0.2's `store` and `verify-totp`'s replay record for the
    /// mappers loaded from now on (the broker's Redis one when the brokers share a Redis).
    #[must_use]
    pub fn with_key_value(mut self, kv: Arc<dyn KeyValue>) -> Self {
        self.kv = kv;
        self
    }

    /// The directory behind 0.2's `directory` for the mappers loaded from now on; without one
    /// every directory call fails `unknown-profile`.
    #[must_use]
    pub fn with_directory(mut self, directory: Option<Arc<dyn Directory>>) -> Self {
        self.directory = directory;
        self
    }

    /// Loads a mapper: reads and checks the component, compiles it (or reads the compile
    /// cache), pre-instantiates it, then runs `configure` and `domains()` once.
    pub async fn load(
        &self,
        source: MapperSource,
        settings: MapperSettings,
    ) -> Result<WasmMapper, LoadError> {
        let started = Instant::now();
        let (name, wasm) = read_source(source).await?;
        check_header(&name, &wasm)?;
        let sha256 = hex::encode(Sha256::digest(&wasm));

        let compile_started = Instant::now();
        let (component, from_cache) = self.compile(&name, &wasm, &sha256).await?;
        let compile_time = compile_started.elapsed();

        let surface = Surface::of(&self.shared.engine, &component);
        let Some((version, world_version)) = surface
            .policy_version()
            .map(|(version, text)| (version, text.to_owned()))
        else {
            return Err(LoadError::Incompatible {
                name,
                exports: surface.exports,
                expected: SUPPORTED_POLICY.to_owned(),
            });
        };
        let forbidden = surface.forbidden_imports();
        if !forbidden.is_empty() {
            return Err(LoadError::ForbiddenImports { name, forbidden });
        }
        let instance_pre =
            self.linker
                .instantiate_pre(&component)
                .map_err(|err| LoadError::Link {
                    name: name.clone(),
                    reason: format!("{err:#}"),
                })?;
        let bad_export = |err: wasmtime::Error| LoadError::BadExport {
            name: name.clone(),
            export: format!("interstate:mapper/policy@{world_version}"),
            reason: format!("{err:#}"),
        };
        let pre = match version {
            ContractVersion::V01 => {
                Pre::V01(v01::MapperPre::new(instance_pre).map_err(bad_export)?)
            }
            ContractVersion::V02 => {
                Pre::V02(v02::MapperPre::new(instance_pre).map_err(bad_export)?)
            }
        };

        let namespace = settings
            .store
            .namespace
            .clone()
            .unwrap_or_else(|| name.clone());
        let callable = Callable {
            shared: Arc::clone(&self.shared),
            pre,
            name: name.as_str().into(),
            services: HostServices {
                kv: Arc::clone(&self.kv),
                namespace: namespace.into(),
                kv_limits: settings.store.limits,
                directory: self.directory.clone(),
            },
            settings_json: settings.settings_json,
            timeout: settings.timeout,
            memory_limit_bytes: settings.memory_limit_bytes,
            allowed_hosts: settings.allowed_hosts.into(),
            deny_private_addresses: settings.deny_private_addresses,
        };
        let domains = match callable.invoke(Request::Domains).await {
            Ok(Reply::Domains(domains)) => {
                convert::domains(domains).map_err(|err| LoadError::Domains(err.to_string()))?
            }
            Ok(other) => {
                return Err(LoadError::Domains(format!(
                    "internal error: unexpected {} reply",
                    other.kind()
                )));
            }
            Err(CallError::Configure(message)) => return Err(LoadError::Configure { message }),
            Err(CallError::Mapper(source)) => {
                return Err(LoadError::Call {
                    stage: "configure/domains",
                    source,
                });
            }
        };
        let info = MapperInfo {
            name,
            world_version,
            sha256,
            size_bytes: wasm.len(),
            exports: surface.exports,
            imports: surface.imports,
            domains,
            compile_time,
            load_time: started.elapsed(),
            from_cache,
        };
        tracing::info!(
            target: "interstate::mapper",
            mapper = %info.name,
            version = %info.world_version,
            sha256 = %info.sha256,
            from_cache = info.from_cache,
            compile_ms = info.compile_time.as_millis(),
            load_ms = info.load_time.as_millis(),
            "mapper loaded"
        );
        Ok(WasmMapper::new(callable, info))
    }

    /// The compiled component, from the cache when possible. Compilation runs on a blocking
    /// thread: it takes seconds for large guests.
    async fn compile(
        &self,
        name: &str,
        wasm: &[u8],
        sha256: &str,
    ) -> Result<(Component, bool), LoadError> {
        let engine = self.shared.engine.clone();
        let cache = self.cache.clone();
        let wasm = wasm.to_vec();
        let sha256 = sha256.to_owned();
        let compiled = tokio::task::spawn_blocking(move || {
            if let Some(component) = cache.as_ref().and_then(|c| c.load(&engine, &sha256)) {
                return Ok((component, true));
            }
            let component = Component::new(&engine, &wasm).map_err(|err| format!("{err:#}"))?;
            if let Some(cache) = &cache {
                cache.store(&sha256, &component);
            }
            Ok((component, false))
        })
        .await;
        match compiled {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(reason)) => Err(LoadError::Compile {
                name: name.to_owned(),
                reason,
            }),
            Err(join) => Err(LoadError::Compile {
                name: name.to_owned(),
                reason: format!("the compiler thread failed: {join}"),
            }),
        }
    }
}

/// Adds both contract versions' imports (0.1 `host`; 0.2 `host`, `store` and `directory`),
/// WASI p2 (async) and wasi:http to the linker.
fn link(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    v01::Mapper::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)?;
    v02::Mapper::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)?;
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    Ok(())
}

/// Advances the epoch every tick until the engine is dropped. The thread holds only a weak
/// handle, so it never keeps the engine alive.
#[allow(
    clippy::disallowed_methods,
    reason = "the ticker is its own OS thread, never a tokio worker, so sleeping is its job"
)]
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("interstate-epoch".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        });
    if let Err(err) = spawned {
        tracing::error!(
            target: "interstate::mapper",
            "could not start the epoch ticker; mapper deadlines rely on the call timeout alone: {err}"
        );
    }
}

async fn read_source(source: MapperSource) -> Result<(String, Vec<u8>), LoadError> {
    match source {
        MapperSource::Simple => Ok((
            "SimpleMapper".to_owned(),
            crate::simple_mapper_wasm().to_vec(),
        )),
        MapperSource::Webservice => Ok((
            "SimpleWebserviceMapper".to_owned(),
            crate::webservice_mapper_wasm().to_vec(),
        )),
        MapperSource::Bytes { name, wasm } => Ok((name, wasm)),
        MapperSource::File(path) => {
            let wasm =
                tokio::fs::read(&path)
                    .await
                    .map_err(|source| LoadError::FileUnreadable {
                        path: path.clone(),
                        source,
                    })?;
            Ok((file_name(&path), wasm))
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Tells a component from a core module or from something that is not wasm at all, so the
/// operator gets a useful message instead of a parser error.
fn check_header(name: &str, wasm: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8; 4] = b"\0asm";
    let refuse = |reason: String| LoadError::NotAComponent {
        name: name.to_owned(),
        reason,
    };
    if wasm.len() < 8 || &wasm[..4] != MAGIC {
        return Err(refuse(format!(
            "it does not start with the WebAssembly magic bytes ({} bytes long)",
            wasm.len()
        )));
    }
    // Bytes 4..8: a core module has version 1 and layer 0; a component has layer 1.
    match (&wasm[4..6], &wasm[6..8]) {
        (_, [1, 0]) => Ok(()),
        ([1, 0], [0, 0]) => Err(refuse(
            "it is a core WebAssembly module; turn it into a component (cargo build --target wasm32-wasip2, componentize-py, jco componentize, or wasm-tools component new)".to_owned(),
        )),
        (version, layer) => Err(refuse(format!(
            "unknown WebAssembly version {version:?} / layer {layer:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::check_header;

    #[test]
    fn header_check_names_what_it_found() {
        let err = check_header("x", b"hello world").unwrap_err().to_string();
        assert!(err.contains("magic"), "{err}");
        let err = check_header("x", b"\0asm\x01\0\0\0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("core WebAssembly module"), "{err}");
        assert!(check_header("x", b"\0asm\x0d\0\x01\0").is_ok());
    }
}
