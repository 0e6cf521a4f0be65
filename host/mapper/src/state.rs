//! The data of one call's `Store`: WASI, wasi:http, the memory limiter and the log budget.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use interstate_protocol::capability::{Directory, KeyValue, KvLimits};

use crate::hashpool::HashPool;
use crate::http::HttpPolicy;

/// The host capabilities a 0.2 mapper's calls reach: its namespace of the key-value store and
/// the directory. Cheap to clone (one per call).
#[derive(Clone)]
pub(crate) struct HostServices {
    /// The key-value store (`store`, and `verify-totp`'s replay record).
    pub(crate) kv: Arc<dyn KeyValue>,
    /// The mapper's namespace in it.
    pub(crate) namespace: Arc<str>,
    /// The mapper's bounds in it.
    pub(crate) kv_limits: KvLimits,
    /// The directory profiles, when the operator configured any.
    pub(crate) directory: Option<Arc<dyn Directory>>,
}

impl std::fmt::Debug for HostServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostServices")
            .field("namespace", &self.namespace)
            .field("kv_limits", &self.kv_limits)
            .field("directory", &self.directory.is_some())
            .finish_non_exhaustive()
    }
}

/// Core instances, tables and memories one store may create. Python components hold a dozen
/// core instances and several memories; anything far beyond is not a mapper.
const MAX_INSTANCES: usize = 256;
const MAX_TABLES: usize = 256;
const MAX_MEMORIES: usize = 32;
/// Elements one table may grow to.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Refuses linear-memory growth that would take the instance's memories together past the
/// limit, and remembers that it did, so that the trap that usually follows (an allocator abort)
/// is reported as out-of-memory.
///
/// The limit is the total of every linear memory of the component (it may have up to
/// `MAX_MEMORIES`): a per-memory limit would let one component take 32 times the limit.
/// wasmtime reports each memory's creation as a growth from 0, so the total counts them all.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit: usize,
    /// Bytes of linear memory the store's memories hold together.
    total: usize,
    refused: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(limit_bytes: u64) -> Self {
        Self {
            limit: usize::try_from(limit_bytes).unwrap_or(usize::MAX),
            total: 0,
            refused: false,
        }
    }

    /// Whether a growth was refused during this call.
    pub(crate) fn refused(&self) -> bool {
        self.refused
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.total.saturating_sub(current).saturating_add(desired);
        let allowed = total <= self.limit;
        if allowed {
            self.total = total;
        } else {
            self.refused = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// Everything a call's store holds. Nothing survives the call.
pub(crate) struct CallState {
    /// The mapper's name, for log lines.
    pub(crate) mapper: Arc<str>,
    /// When this call must end.
    pub(crate) deadline: Instant,
    /// The process's password-hash pool.
    pub(crate) hashes: HashPool,
    /// Lines logged so far in this call.
    pub(crate) log_lines: u32,
    pub(crate) limiter: MemoryLimiter,
    /// The store, the directory and their bounds.
    pub(crate) services: HostServices,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: HttpPolicy,
    table: ResourceTable,
}

impl std::fmt::Debug for CallState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallState")
            .field("mapper", &self.mapper)
            .field("deadline", &self.deadline)
            .field("log_lines", &self.log_lines)
            .field("limiter", &self.limiter)
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}

impl CallState {
    /// A store state with no filesystem, environment, arguments, sockets or stdio (stdout and
    /// stderr are discarded), and HTTP only to `allowed_hosts`.
    pub(crate) fn new(
        mapper: Arc<str>,
        deadline: Instant,
        hashes: HashPool,
        memory_limit_bytes: u64,
        allowed_hosts: Arc<[String]>,
        deny_private_addresses: bool,
        services: HostServices,
    ) -> Self {
        let wasi = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            hooks: HttpPolicy::new(
                mapper.clone(),
                allowed_hosts,
                deny_private_addresses,
                deadline,
            ),
            mapper,
            deadline,
            hashes,
            log_lines: 0,
            limiter: MemoryLimiter::new(memory_limit_bytes),
            services,
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    /// Issue #13 item 4: the limit is the total of every memory, not a limit per memory.
    #[test]
    fn the_memory_limit_is_the_total_of_every_memory() {
        let mut limiter = MemoryLimiter::new(64 << 20);
        assert!(limiter.memory_growing(0, 40 * MIB, None).unwrap());
        assert!(
            !limiter.memory_growing(0, 40 * MIB, None).unwrap(),
            "a second 40 MiB memory takes the total past 64 MiB"
        );
        assert!(limiter.refused());
        assert!(limiter.memory_growing(0, 20 * MIB, None).unwrap());
        assert!(limiter.memory_growing(40 * MIB, 44 * MIB, None).unwrap());
        assert!(!limiter.memory_growing(44 * MIB, 45 * MIB, None).unwrap());
    }
}
