//! The mappers' key-value store (`interstate_protocol::capability::KeyValue`): one contract
//! suite against `MemoryKv` and the broker's Redis one (one server, and a three-master
//! cluster), and TOTP replay protection across two brokers' independent clients of one Redis.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use interstate::settings::RedisTopology;
use interstate::store::{RedisKv, RedisStore};
use interstate_mapper::testing::{build_rust_guest, key_value_contract};
use interstate_mapper::{MapperRuntime, MapperSettings, MapperSource, MemoryKv, RuntimeConfig};
use interstate_protocol::capability::KeyValue;
use interstate_protocol::policy::{AuthOutcome, ClientContext, Mapper, PasswordLogin, Secret};
use interstate_tests::redis::{KEY_A, RedisCluster, RedisServer};
use interstate_tests::totp::{base32_decode, totp};

use crate::redis_store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_kv_keeps_the_key_value_contract() {
    key_value_contract(&MemoryKv::new(), "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_kv_keeps_the_key_value_contract() {
    let server = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = redis_store(RedisTopology::Single(server.url()), &[KEY_A], dir.path()).await;
    key_value_contract(&RedisKv::new(store), "redis").await;
    // Every key of a namespace shares its hash tag; values and their index expire.
    let keys = server.cli(&["--scan", "--pattern", "test:*"]).unwrap();
    for key in keys.lines().filter(|k| k.contains("{kv:")) {
        assert!(
            key.starts_with("test:{kv:redis-a}:") || key.starts_with("test:{kv:redis-b}:"),
            "{key}"
        );
        let ttl: i64 = server.cli(&["PTTL", key]).unwrap().trim().parse().unwrap();
        assert!(ttl > 0, "{key} expires ({ttl})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_kv_keeps_the_key_value_contract_on_a_cluster() {
    let cluster = RedisCluster::start(3, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let store = redis_store(RedisTopology::Cluster(cluster.urls()), &[KEY_A], dir.path()).await;
    key_value_contract(&RedisKv::new(store), "cluster").await;
}

/// A broker node: its own Redis client, key-value store and mapper runtime.
async fn node(server: &RedisServer, dir: &std::path::Path) -> (Arc<RedisStore>, MapperRuntime) {
    let store = redis_store(RedisTopology::Single(server.url()), &[KEY_A], dir).await;
    let kv: Arc<dyn KeyValue> = Arc::new(RedisKv::new(store.clone()));
    let runtime = MapperRuntime::new(RuntimeConfig {
        cache_dir: None,
        max_concurrent_calls: 4,
        ..RuntimeConfig::default()
    })
    .unwrap()
    .with_key_value(kv);
    (store, runtime)
}

fn totp_login(secret: &str, code: &str) -> PasswordLogin {
    PasswordLogin {
        username: format!("totp:{secret}:{code}"),
        password: Secret::new(""),
        domain: String::new(),
        client: ClientContext::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_totp_code_accepted_on_one_node_is_replayed_on_another() {
    const SECRET: &str = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU";
    let guest =
        build_rust_guest("interstate-capabilities-mapper").unwrap_or_else(|e| panic!("{e}"));
    let server = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (_store_a, runtime_a) = node(&server, dir.path()).await;
    let (_store_b, runtime_b) = node(&server, dir.path()).await;
    let load = |runtime: MapperRuntime| {
        let guest = guest.clone();
        async move {
            runtime
                .load(MapperSource::File(guest), MapperSettings::default())
                .await
                .unwrap()
        }
    };
    let (a, b) = (load(runtime_a).await, load(runtime_b).await);

    // The code from an independent RFC 6238 implementation (the tests' own).
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = totp(&base32_decode(SECRET).unwrap(), i64::try_from(now).unwrap());
    let first = a.authenticate(&totp_login(SECRET, &code)).await.unwrap();
    assert!(matches!(first, AuthOutcome::Accepted(_)), "{first:?}");
    let second = b.authenticate(&totp_login(SECRET, &code)).await.unwrap();
    let AuthOutcome::Rejected(rejection) = &second else {
        panic!("the other node accepted a spent code: {second:?}");
    };
    assert_eq!(rejection.reason, "totp replayed");

    // The record is one key under its own tag, never the secret.
    let keys = server
        .cli(&["--scan", "--pattern", "test:{c:totp:*"])
        .unwrap();
    assert_eq!(keys.lines().count(), 1, "{keys}");
    assert!(!keys.contains(SECRET), "{keys}");
    let ttl: i64 = server
        .cli(&["PTTL", keys.trim()])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!((1..=90_000).contains(&ttl), "{ttl}");

    // Redis down: the code is refused (fail closed), not accepted.
    drop(server);
    let later = b.authenticate(&totp_login(SECRET, &code)).await.unwrap();
    assert!(matches!(later, AuthOutcome::Rejected(_)), "{later:?}");
}
