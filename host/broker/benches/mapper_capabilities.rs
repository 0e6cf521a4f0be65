//! The cost of the 0.2 host capabilities inside one mapper call (a fresh wasm instance,
//! `configure`, then `authenticate` of the capabilities test guest): (a) a call that asks the
//! host nothing, (b) one `store.get` and one `store.set`, (c) one `verify-totp` (whose replay
//! record is one `claim_once`). Each on `MemoryKv`, and on the broker's Redis `KeyValue` when a
//! `redis-server` binary is on the PATH (started on a free loopback port, for the bench only).
//!
//! `cargo bench -p interstate --bench mapper_capabilities`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly"
)]
#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented functions"
)]

use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use interstate::settings::{RedisConfig, RedisTopology};
use interstate::store::{RedisKv, RedisStore, SealKeys, StoreLimits};
use interstate_mapper::testing::{build_rust_guest, totp_code};
use interstate_mapper::{MapperRuntime, MapperSettings, MapperSource, MemoryKv, RuntimeConfig};
use interstate_protocol::Limits;
use interstate_protocol::capability::KeyValue;
use interstate_protocol::policy::{AuthOutcome, ClientContext, Mapper, PasswordLogin, Secret};

const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

fn login(username: String, password: &str) -> PasswordLogin {
    PasswordLogin {
        username,
        password: Secret::new(password),
        domain: String::new(),
        client: ClientContext::default(),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The three calls on `kv`, labelled `label`.
fn calls(c: &mut Criterion, tokio: &tokio::runtime::Runtime, label: &str, kv: Arc<dyn KeyValue>) {
    let runtime = MapperRuntime::new(RuntimeConfig {
        cache_dir: None,
        max_concurrent_calls: 16,
        ..RuntimeConfig::default()
    })
    .unwrap()
    .with_key_value(kv);
    let guest = build_rust_guest("interstate-capabilities-mapper").unwrap();
    let mapper = tokio
        .block_on(runtime.load(MapperSource::File(guest), MapperSettings::default()))
        .unwrap();

    let mut group = c.benchmark_group(format!("mapper call ({label})"));
    let nothing = login("plain".to_owned(), "");
    group.bench_function("a: no host call", |b| {
        b.to_async(tokio).iter(|| async {
            let outcome = mapper.authenticate(&nothing).await.unwrap();
            assert!(matches!(outcome, AuthOutcome::Accepted(_)));
            black_box(outcome)
        });
    });
    let getset = login("kv:getset:bench".to_owned(), "value");
    group.bench_function("b: store.get + store.set", |b| {
        b.to_async(tokio).iter(|| async {
            let outcome = mapper.authenticate(&getset).await.unwrap();
            let AuthOutcome::Accepted(identity) = &outcome else {
                panic!("{outcome:?}");
            };
            assert_eq!(identity.attributes[0].value, "ok");
            black_box(outcome)
        });
    });
    group.bench_function("c: verify-totp (right code, replay record)", |b| {
        b.to_async(tokio).iter(|| async {
            // A right code: the first is accepted, the rest replayed; both write the record.
            let code = totp_code(SECRET, now()).unwrap();
            let outcome = mapper
                .authenticate(&login(format!("totp:{SECRET}:{code}"), ""))
                .await
                .unwrap();
            black_box(outcome)
        });
    });
    group.finish();
}

fn memory(c: &mut Criterion) {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    calls(c, &tokio, "MemoryKv", Arc::new(MemoryKv::new()));
}

/// A `redis-server` on a free loopback port, stopped when dropped.
struct RedisProcess(Child);

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis(c: &mut Criterion) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Ok(child) = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        eprintln!("redis-server is not on the PATH: the Redis KeyValue is not measured");
        return;
    };
    let _server = RedisProcess(child);
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("keys");
    std::fs::write(&key_file, format!("{}\n", "ab".repeat(32))).unwrap();
    let mut permissions = std::fs::metadata(&key_file).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o600);
    std::fs::set_permissions(&key_file, permissions).unwrap();
    let config = RedisConfig {
        topology: RedisTopology::Single(format!("redis://127.0.0.1:{port}")),
        key_prefix: "bench:".into(),
        timeout: Duration::from_secs(2),
        ca_file: None,
        key_file: key_file.clone(),
    };
    let limits = StoreLimits {
        max_sessions: 100,
        max_unauthenticated_per_address: 10,
        lifetimes: Limits {
            idle_ms: 60_000,
            unauthenticated_ms: 60_000,
            absolute_ms: 60_000,
        },
        hold_ms: 10_000,
    };
    let store: Arc<RedisStore> = tokio.block_on(async {
        // Give the server a moment to listen.
        for _ in 0..100 {
            let keys = SealKeys::load(&key_file).unwrap();
            if let Ok(store) = RedisStore::connect(&config, keys, limits).await {
                return store;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on port {port} never answered");
    });
    calls(c, &tokio, "Redis", Arc::new(RedisKv::new(store)));
}

criterion_group!(benches, memory, redis);
criterion_main!(benches);
