//! The sandboxed wasmtime host for Interstate mapper components.
//!
//! A mapper is a WebAssembly component implementing the `mapper` world of `wit/mapper.wit`.
//! This crate loads it, checks what it exports and imports, compiles it once (with a disk
//! cache), and then runs every call in a fresh, limited instance:
//!
//! ```text
//! MapperRuntime (one per process)
//!  ├ Engine        async, epoch interruption (10 ms ticker), pooling allocator
//!  ├ Linker        interstate:mapper/host@0.1 and host, store, directory @0.2
//!  │               + WASI p2 (async) + wasi:http (allow-listed)
//!  ├ KeyValue      MemoryKv unless the broker gives its Redis one; Directory if configured
//!  └ load(source, settings) ─► WasmMapper (Arc inside, cheap to clone)
//!       compile or read the cache → the contract version from the exports → check imports
//!       → InstancePre of that version
//!       → configure + domains once
//!
//! WasmMapper call (interstate_protocol::policy::Mapper)
//!  permit (semaphore) → fresh Store (memory limiter, deadline, handle/fuel caps)
//!  → instantiate → configure(settings) → the call → convert + bound the answer
//! ```
//!
//! # Layout
//! - [`runtime`]: the engine, linker and epoch ticker; `load`.
//! - `cache`: the on-disk compile cache.
//! - `inspect`: the world version from the exports, the import allow-list.
//! - `bindings`: the two contract versions, `0.1.x` (frozen) and `0.2.x`.
//! - `call`: one call in a fresh store: limits, deadline, error classification; per version.
//! - `state`, `host`, `http`: the store's data, the host imports, the wasi:http allow-list.
//! - `store`, [`MemoryKv`]: 0.2's `store` on the runtime's `KeyValue`, and the in-memory one.
//! - `totp`: 0.2's `verify-totp` (RFC 6238, replay record in the `KeyValue`).
//! - `directory`: 0.2's `directory` on the runtime's `Directory`.
//! - `convert`: bindings ↔ `interstate_protocol::policy` types, with the contract's bounds.
//! - [`password`]: `verify-password` (ILS PBKDF2, PHC argon2id and pbkdf2-sha256).
//! - [`check`](mod@check): the report behind `interstate mapper check`.

mod bindings;
mod cache;
mod call;
pub mod check;
mod config;
mod convert;
mod directory;
mod error;
mod guest_build;
pub mod hashpool;
mod host;
mod http;
mod inspect;
#[cfg(feature = "testing")]
mod kv_contract;
mod mapper;
mod memory_kv;
mod outgoing;
pub mod password;
pub mod runtime;
mod state;
mod store;
mod totp;

pub use crate::check::{CheckLogin, CheckReport, check};
pub use crate::config::{MapperSettings, MapperSource, RuntimeConfig, StoreSettings};
pub use crate::error::LoadError;
pub use crate::hashpool::HashPool;
pub use crate::inspect::SUPPORTED_POLICY;
pub use crate::mapper::{MapperInfo, WasmMapper};
pub use crate::memory_kv::MemoryKv;
pub use crate::runtime::MapperRuntime;

/// The embedded SimpleMapper component (`guest-mappers/simple`, built by `build.rs`).
pub fn simple_mapper_wasm() -> &'static [u8] {
    include_bytes!(concat!(env!("OUT_DIR"), "/simple.wasm"))
}

/// The embedded SimpleWebserviceMapper component (`guest-mappers/webservice`, built by
/// `build.rs`).
pub fn webservice_mapper_wasm() -> &'static [u8] {
    include_bytes!(concat!(env!("OUT_DIR"), "/webservice.wasm"))
}

/// Helpers for tests and benches: building the other Rust guests of `guest-mappers/` (the
/// `testing` feature; the broker never builds a guest at run time).
#[cfg(feature = "testing")]
pub mod testing {
    use std::path::PathBuf;

    pub use crate::guest_build::GuestBuildError;
    use crate::guest_build::GuestBuilder;
    pub use crate::kv_contract::{CONTRACT_LIMITS, key_value_contract};

    /// Builds the Rust guest `package` of `guest-mappers/` (release, wasm32-wasip2) exactly
    /// as `build.rs` builds the SimpleMapper, and returns the path of its component. Safe to
    /// call from concurrent tests: cargo's own lock serialises the builds.
    pub fn build_rust_guest(package: &str) -> Result<PathBuf, GuestBuildError> {
        GuestBuilder {
            cargo: PathBuf::from(env!("INTERSTATE_GUEST_CARGO")),
            guests_dir: PathBuf::from(env!("INTERSTATE_GUESTS_DIR")),
            target_dir: PathBuf::from(env!("INTERSTATE_GUEST_TARGET_DIR")),
        }
        .build(package)
    }

    /// The 6-digit RFC 6238 code of the base32 `secret` at `unix_seconds` (SHA-1, 30 s), as
    /// `verify-totp` expects it; `None` for a secret that is not base32.
    pub fn totp_code(secret: &str, unix_seconds: u64) -> Option<String> {
        crate::totp::code(secret, unix_seconds)
    }

    /// The path of the embedded SimpleMapper component as built by `build.rs`.
    pub fn simple_mapper_path() -> PathBuf {
        PathBuf::from(env!("INTERSTATE_SIMPLE_WASM"))
    }

    /// The path of the embedded SimpleWebserviceMapper component as built by `build.rs`.
    pub fn webservice_mapper_path() -> PathBuf {
        PathBuf::from(env!("INTERSTATE_WEBSERVICE_WASM"))
    }
}
