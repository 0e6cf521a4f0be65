//! The session store contract, one suite played against every store: the memory store, the
//! Redis store on one real `redis-server`, and the Redis store on a real three-master Redis
//! Cluster (so every script's keys share a slot). Then what only the shared store promises:
//! sealed blobs that cannot be read, moved or rolled back, key rotation, leases that make a
//! racing request fail at once, and a commit that loses a race.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use interstate::ratelimit::{
    AttemptCounter, AuthLimiter, MemoryCounter, Outcome, RateLimits, RedisCounter,
};
use interstate::settings::{RedisConfig, RedisTopology};
use interstate::store::{
    MemoryStore, PinStore, RedisStore, SealKeys, SessionKey, SessionStore, StoreError, StoreLimits,
};
use interstate_protocol::policy::{
    Attribute, AuthOutcome, ClientContext, Dialog, DialogField, FieldKind, Identity, Secret,
};
use interstate_protocol::{ClientRequest, Limits, Phase, Session, Step, decode_request};
use interstate_tests::msg;
use interstate_tests::redis::{KEY_A, KEY_B, RedisCluster, RedisServer, key_file};

mod kv;

const PASSWORD: &str = "Tr0ub4dor&3-plaintext";
const ATTRIBUTE: &str = "employee-E-4242-attribute";
const DIALOG_STATE: &str = "totp-secret-dialog-state-JBSWY3DP";

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn limits() -> StoreLimits {
    StoreLimits {
        max_sessions: 20,
        max_unauthenticated_per_address: 5,
        lifetimes: Limits {
            idle_ms: 60_000,
            unauthenticated_ms: 30_000,
            absolute_ms: 120_000,
        },
        hold_ms: 10_000,
    }
}

fn request(message: &str) -> ClientRequest {
    let xml = interstate_tools::messages::wrap(interstate_protocol::Root::PcoipClient, message);
    decode_request(xml.as_bytes()).unwrap().message
}

/// A new session from `address`, as a real hello makes it.
fn fresh(address: &str, now: u64) -> Session {
    let ClientRequest::Hello(hello) = request(&msg::hello()) else {
        panic!("not a hello");
    };
    let client = ClientContext {
        address: address.into(),
        log_id: "ddff1100-72e7-1039-8825-0000000000aa".into(),
        ..ClientContext::default()
    };
    Session::new(&hello, client, now)
}

fn identity() -> Identity {
    Identity {
        username: "ada".into(),
        domain: "STUDIO".into(),
        attributes: vec![Attribute {
            key: "employee".into(),
            value: ATTRIBUTE.into(),
        }],
    }
}

/// Drives `session` through a password step the mapper answers with `outcome`.
fn log_in(session: &mut Session, outcome: AuthOutcome, now: u64) {
    let step = session.on_request(request(&msg::authenticate("ada", PASSWORD, None)), now);
    let Step::Authenticate(pending) = step else {
        panic!("expected the password step, got {step:?}");
    };
    pending.finish(session, Ok(outcome), now);
}

fn challenge() -> AuthOutcome {
    AuthOutcome::Challenge(Dialog {
        prompt: "Code".into(),
        error_text: String::new(),
        fields: vec![DialogField {
            id: "code".into(),
            label: "Code".into(),
            kind: FieldKind::Text,
        }],
        buttons: Vec::new(),
        state: Secret::new(DIALOG_STATE),
    })
}

/// A store under test, with what only some stores can do.
struct Subject {
    name: &'static str,
    store: Arc<dyn SessionStore>,
    pins: Arc<dyn PinStore>,
    counter: Arc<dyn AttemptCounter>,
    /// A shared store answers a second checkout with `Busy`; the memory store makes it wait.
    shared: bool,
}

fn memory() -> Subject {
    let store = Arc::new(MemoryStore::new(limits()));
    Subject {
        name: "memory",
        store: store.clone(),
        pins: store,
        counter: Arc::new(MemoryCounter::default()),
        shared: false,
    }
}

fn redis_config(topology: RedisTopology, key_file: std::path::PathBuf) -> RedisConfig {
    RedisConfig {
        topology,
        key_prefix: "test:".into(),
        timeout: Duration::from_secs(2),
        ca_file: None,
        key_file,
    }
}

async fn redis_store(
    topology: RedisTopology,
    keys: &[&str],
    dir: &std::path::Path,
) -> Arc<RedisStore> {
    let config = redis_config(topology, key_file(dir, keys));
    let keys = SealKeys::load(&config.key_file).unwrap();
    RedisStore::connect(&config, keys, limits()).await.unwrap()
}

async fn redis_subject(
    name: &'static str,
    topology: RedisTopology,
    dir: &std::path::Path,
) -> Subject {
    let store = redis_store(topology, &[KEY_A], dir).await;
    Subject {
        name,
        store: store.clone(),
        pins: store.clone(),
        counter: Arc::new(RedisCounter::new(store)),
        shared: true,
    }
}

/// The whole contract, on one store.
async fn contract(s: &Subject) {
    round_trip(s).await;
    unknown_ids(s).await;
    ending(s).await;
    fallback_log_ids(s).await;
    flood_and_full(s).await;
    one_request_at_a_time(s).await;
    dropped_checkout(s).await;
    pins(s).await;
    concurrent_attempts(s).await;
    expiry(s).await;
}

async fn round_trip(s: &Subject) {
    let store = &s.store;
    let now = now_ms();
    let id = store
        .insert(fresh("192.0.2.10", now), None, now)
        .await
        .unwrap();
    assert_eq!(id.len(), 32, "{}", s.name);
    let mut checkout = store.checkout(SessionKey::Id(&id)).await.unwrap().unwrap();
    assert_eq!(checkout.phase(), Phase::Created, "{}", s.name);
    assert_eq!(checkout.client().address, "192.0.2.10", "{}", s.name);
    log_in(&mut checkout, challenge(), now);
    assert!(checkout.holds_password());
    store.commit(checkout, true).await.unwrap();
    let mut checkout = store.checkout(SessionKey::Id(&id)).await.unwrap().unwrap();
    assert_eq!(checkout.phase(), Phase::Created, "{}: challenged", s.name);
    assert!(
        checkout.holds_password(),
        "{}: the password survives the store",
        s.name
    );
    log_in(&mut checkout, AuthOutcome::Accepted(identity()), now + 5);
    store.commit(checkout, true).await.unwrap();
    let checkout = store.checkout(SessionKey::Id(&id)).await.unwrap().unwrap();
    assert_eq!(checkout.phase(), Phase::Authenticated, "{}", s.name);
    assert_eq!(checkout.identity(), Some(&identity()), "{}", s.name);
    assert_eq!(checkout.last_seen(), now + 5, "{}", s.name);
    assert!(checkout.holds_password(), "{}", s.name);
    store.commit(checkout, true).await.unwrap();
    store.remove(&id).await.unwrap();
}

async fn unknown_ids(s: &Subject) {
    for id in [
        "0123456789abcdef0123456789abcdef",
        "",
        "../../etc",
        "{idx}:live",
        "*",
    ] {
        assert!(
            s.store
                .checkout(SessionKey::Id(id))
                .await
                .unwrap()
                .is_none(),
            "{}: {id:?}",
            s.name
        );
    }
}

async fn ending(s: &Subject) {
    let store = &s.store;
    let now = now_ms();
    let before = store.live_sessions().await.unwrap();
    let a = store
        .insert(fresh("192.0.2.11", now), None, now)
        .await
        .unwrap();
    let b = store
        .insert(fresh("192.0.2.11", now), None, now)
        .await
        .unwrap();
    assert_eq!(
        store.live_sessions().await.unwrap(),
        before + 2,
        "{}",
        s.name
    );
    let checkout = store.checkout(SessionKey::Id(&a)).await.unwrap().unwrap();
    store.commit(checkout, false).await.unwrap();
    assert!(
        store.checkout(SessionKey::Id(&a)).await.unwrap().is_none(),
        "{}",
        s.name
    );
    store.remove(&b).await.unwrap();
    assert!(
        store.checkout(SessionKey::Id(&b)).await.unwrap().is_none(),
        "{}",
        s.name
    );
    assert_eq!(store.live_sessions().await.unwrap(), before, "{}", s.name);
}

/// The id of the session `key` finds, if any (checked out and put back unchanged).
async fn peek(store: &Arc<dyn SessionStore>, key: SessionKey<'_>) -> Option<String> {
    let checkout = store.checkout(key).await.unwrap()?;
    let id = checkout.id().to_owned();
    store.commit(checkout, true).await.unwrap();
    Some(id)
}

async fn fallback_log_ids(s: &Subject) {
    let store = &s.store;
    let now = now_ms();
    let log = "aabbccdd-0000-1111-2222-333344445555";
    let home: IpAddr = "192.0.2.20".parse().unwrap();
    let thief: IpAddr = "198.51.100.66".parse().unwrap();
    let from = |address: &str| fresh(address, now);
    let first = store
        .insert(from("192.0.2.20"), Some((log, home)), now)
        .await
        .unwrap();
    assert_eq!(
        peek(store, SessionKey::LogId(log, home)).await,
        Some(first.clone()),
        "{}",
        s.name
    );
    assert_eq!(
        peek(store, SessionKey::LogId(log, thief)).await,
        None,
        "{}: another address does not reach the session",
        s.name
    );
    let stolen = store
        .insert(from("198.51.100.66"), Some((log, thief)), now)
        .await
        .unwrap();
    assert_eq!(
        peek(store, SessionKey::LogId(log, home)).await,
        Some(first.clone()),
        "{}: a hello from another address replaces nothing",
        s.name
    );
    assert_eq!(
        peek(store, SessionKey::LogId(log, thief)).await,
        None,
        "{}",
        s.name
    );
    let renewed = store
        .insert(from("192.0.2.20"), Some((log, home)), now)
        .await
        .unwrap();
    assert_eq!(
        peek(store, SessionKey::LogId(log, home)).await,
        Some(renewed.clone()),
        "{}: a new hello from home replaces",
        s.name
    );
    assert_eq!(
        peek(store, SessionKey::Id(&first)).await,
        None,
        "{}: the replaced session ended",
        s.name
    );
    for id in [stolen, renewed] {
        store.remove(&id).await.unwrap();
    }
    assert_eq!(
        peek(store, SessionKey::LogId(log, home)).await,
        None,
        "{}",
        s.name
    );
}

/// Four times the table in hellos, from one address and from many: the logged-in sessions stay,
/// each address keeps at most its cap, and only a table full of logged-in users refuses.
async fn flood_and_full(s: &Subject) {
    let store = &s.store;
    let now = now_ms();
    let start = store.live_sessions().await.unwrap();
    assert_eq!(start, 0, "{}: the suite leaves no session behind", s.name);
    let mut users = Vec::new();
    for i in 0..10 {
        let mut session = fresh(&format!("10.9.0.{i}"), now);
        log_in(&mut session, AuthOutcome::Accepted(identity()), now);
        users.push(store.insert(session, None, now).await.unwrap());
    }
    for i in 0..80u32 {
        let address = if i % 2 == 0 {
            "203.0.113.7".to_owned()
        } else {
            format!("203.0.114.{}", i % 250)
        };
        store
            .insert(fresh(&address, now), None, now + u64::from(i))
            .await
            .unwrap();
    }
    assert!(store.live_sessions().await.unwrap() <= 20, "{}", s.name);
    for id in &users {
        let checkout = store.checkout(SessionKey::Id(id)).await.unwrap();
        let checkout =
            checkout.unwrap_or_else(|| panic!("{}: a logged-in session was evicted", s.name));
        assert_eq!(checkout.phase(), Phase::Authenticated);
        store.commit(checkout, true).await.unwrap();
    }
    let mut more = Vec::new();
    loop {
        let mut session = fresh("10.9.1.1", now);
        log_in(&mut session, AuthOutcome::Accepted(identity()), now);
        match store.insert(session, None, now).await {
            Ok(id) => more.push(id),
            Err(StoreError::Full(20)) => break,
            Err(e) => panic!("{}: {e}", s.name),
        }
        assert!(
            more.len() <= 10,
            "{}: the table grew past its bound",
            s.name
        );
    }
    for id in users.iter().chain(&more) {
        store.remove(id).await.unwrap();
    }
    store.sweep(now + 1_000_000).await.unwrap();
    // What is left are the unauthenticated ones of the flood; end them.
    assert!(store.live_sessions().await.unwrap() <= 10, "{}", s.name);
    clear(s, now).await;
}

/// Ends every session by flooding it out of a fresh table: used between scenarios.
async fn clear(s: &Subject, now: u64) {
    let _ = s.store.sweep(now + 10_000_000).await;
    if s.store.live_sessions().await.unwrap() == 0 {
        return;
    }
    panic!(
        "{}: sessions are left: {}",
        s.name,
        s.store.live_sessions().await.unwrap()
    );
}

async fn one_request_at_a_time(s: &Subject) {
    let store = &s.store;
    let now = now_ms();
    let id = store
        .insert(fresh("192.0.2.30", now), None, now)
        .await
        .unwrap();
    let first = store.checkout(SessionKey::Id(&id)).await.unwrap().unwrap();
    let second = tokio::time::timeout(
        Duration::from_millis(300),
        store.checkout(SessionKey::Id(&id)),
    )
    .await;
    if s.shared {
        assert!(
            matches!(second, Ok(Err(StoreError::Busy))),
            "{}: a second checkout is refused at once",
            s.name
        );
    } else {
        assert!(second.is_err(), "{}: a second checkout waits", s.name);
    }
    store.commit(first, true).await.unwrap();
    let again = store.checkout(SessionKey::Id(&id)).await.unwrap().unwrap();
    store.commit(again, false).await.unwrap();
}

async fn dropped_checkout(s: &Subject) {
    let store = &s.store;
    let now = now_ms();
    let id = store
        .insert(fresh("192.0.2.31", now), None, now)
        .await
        .unwrap();
    let mut held = store.checkout(SessionKey::Id(&id)).await.unwrap().unwrap();
    log_in(&mut held, AuthOutcome::Accepted(identity()), now);
    drop(held);
    // The lease goes back in the background; the session is as the last commit left it.
    let mut tries = 0;
    let checkout = loop {
        match store.checkout(SessionKey::Id(&id)).await {
            Ok(Some(checkout)) => break checkout,
            Err(StoreError::Busy) if tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("{}: {other:?}", s.name),
        }
    };
    if s.shared {
        assert_eq!(
            checkout.phase(),
            Phase::Created,
            "{}: nothing was kept",
            s.name
        );
    }
    store.commit(checkout, false).await.unwrap();
}

async fn pins(s: &Subject) {
    let pins = &s.pins;
    let agent = "ws7.studio.example:60443";
    assert_eq!(pins.pin(agent).await.unwrap(), None);
    assert_eq!(pins.pin_if_absent(agent, [1; 32]).await.unwrap(), None);
    assert_eq!(
        pins.pin_if_absent(agent, [2; 32]).await.unwrap(),
        Some([1; 32])
    );
    assert_eq!(
        pins.set_pin(agent, Some([3; 32])).await.unwrap(),
        Some([1; 32])
    );
    assert_eq!(pins.pin(agent).await.unwrap(), Some([3; 32]));
    assert_eq!(pins.set_pin(agent, None).await.unwrap(), Some([3; 32]));
    assert_eq!(pins.pin(agent).await.unwrap(), None);
}

/// 60 concurrent wrong passwords for one user with a limit of 3: exactly 3 reserved (the rest
/// wait for those in flight, then are refused). 40 wrong passwords from addresses of one IPv6
/// /64 with a per-address limit of 30: exactly 30. Eight concurrent right passwords for one
/// user with a limit of 3: all eight get through (they wait their turn, and a success clears).
async fn concurrent_attempts(s: &Subject) {
    let limiter = Arc::new(AuthLimiter::with_counter(
        RateLimits {
            per_user: 3,
            per_address: 30,
            window_ms: 60_000,
            ..RateLimits::default()
        },
        s.counter.clone(),
    ));
    let run = |user: String, addr: IpAddr, outcome: Outcome| {
        let limiter = limiter.clone();
        tokio::spawn(async move {
            match limiter.reserve(Some(&user), addr).await.unwrap() {
                Ok(ticket) => {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    ticket.settle(outcome).await.unwrap();
                    true
                }
                Err(_) => false,
            }
        })
    };
    let tasks: Vec<_> = (0..60u8)
        .map(|i| {
            run(
                "Victim".into(),
                IpAddr::from([10, 50, 0, i]),
                Outcome::Failed,
            )
        })
        .collect();
    let reserved = count_true(tasks).await;
    assert_eq!(reserved, 3, "{}: per-user limit under concurrency", s.name);
    let tasks: Vec<_> = (0..40u16)
        .map(|i| {
            let addr: IpAddr = format!("2001:db8:77:1:{i:x}::9").parse().unwrap();
            run(format!("user{i}"), addr, Outcome::Failed)
        })
        .collect();
    let reserved = count_true(tasks).await;
    assert_eq!(reserved, 30, "{}: one /64 is one address", s.name);
    let tasks: Vec<_> = (0..8u8)
        .map(|i| {
            run(
                "Studio-Render".into(),
                IpAddr::from([10, 60, 0, i]),
                Outcome::Succeeded,
            )
        })
        .collect();
    let reserved = count_true(tasks).await;
    assert_eq!(
        reserved, 8,
        "{}: concurrent good logins all get through",
        s.name
    );
}

/// How many of `tasks` answered true.
async fn count_true(tasks: Vec<tokio::task::JoinHandle<bool>>) -> usize {
    let mut count = 0;
    for task in tasks {
        count += usize::from(task.await.unwrap());
    }
    count
}

/// A session past its lifetime is gone after a sweep (memory) or by itself (Redis TTL).
async fn expiry(s: &Subject) {
    let store = &s.store;
    let short = StoreLimits {
        lifetimes: Limits {
            idle_ms: 400,
            unauthenticated_ms: 400,
            absolute_ms: 400,
        },
        ..limits()
    };
    store.set_limits(short);
    let now = now_ms();
    let id = store
        .insert(fresh("192.0.2.40", now), None, now)
        .await
        .unwrap();
    assert!(
        store
            .checkout(SessionKey::Id(&id))
            .await
            .unwrap()
            .is_some_and(|c| {
                drop(c);
                true
            })
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    store.sweep(now_ms()).await.unwrap();
    let mut gone = false;
    for _ in 0..50 {
        match store.checkout(SessionKey::Id(&id)).await {
            Ok(None) => {
                gone = true;
                break;
            }
            Err(StoreError::Busy) | Ok(Some(_)) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                store.sweep(now_ms()).await.unwrap();
            }
            Err(e) => panic!("{}: {e}", s.name),
        }
    }
    assert!(gone, "{}: an expired session is gone", s.name);
    assert_eq!(store.live_sessions().await.unwrap(), 0, "{}", s.name);
    store.set_limits(limits());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_keeps_the_contract() {
    contract(&memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_keeps_the_contract() {
    let server = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let subject = redis_subject("redis", RedisTopology::Single(server.url()), dir.path()).await;
    contract(&subject).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_keeps_the_contract_on_a_cluster() {
    let cluster = RedisCluster::start(3, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let subject = redis_subject(
        "redis cluster",
        RedisTopology::Cluster(cluster.urls()),
        dir.path(),
    )
    .await;
    contract(&subject).await;
}

/// Someone who can read Redis finds no password, identity attribute, user name or dialog state;
/// the password has its own key with its own expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_redis_holds_is_sealed() {
    let server = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = redis_store(RedisTopology::Single(server.url()), &[KEY_A], dir.path()).await;
    let now = now_ms();
    let challenged = store
        .insert(fresh("192.0.2.50", now), None, now)
        .await
        .unwrap();
    let mut checkout = store
        .checkout(SessionKey::Id(&challenged))
        .await
        .unwrap()
        .unwrap();
    log_in(&mut checkout, challenge(), now);
    store.commit(checkout, true).await.unwrap();
    let authenticated = store
        .insert(fresh("192.0.2.51", now), None, now)
        .await
        .unwrap();
    let mut checkout = store
        .checkout(SessionKey::Id(&authenticated))
        .await
        .unwrap()
        .unwrap();
    log_in(&mut checkout, AuthOutcome::Accepted(identity()), now);
    store.commit(checkout, true).await.unwrap();
    let dump = server.raw_dump();
    assert!(
        dump.iter().any(|(k, _)| k.ends_with(":pw")),
        "the password has its own key"
    );
    for (key, value) in &dump {
        for secret in [PASSWORD, ATTRIBUTE, DIALOG_STATE, "\"ada\"", "STUDIO"] {
            assert!(
                !value.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{key} holds {secret:?} in clear"
            );
        }
    }
    let pw_key = format!("test:{{s:{authenticated}}}:pw");
    let pttl: i64 = server
        .cli(&["PTTL", &pw_key])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        pttl > 0 && pttl <= 60_000,
        "the password expires on its own: {pttl}"
    );
}

/// A blob copied to another session, or an older blob written back, does not open: the session
/// ends instead of running on forged state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_blobs_cannot_be_moved_or_rolled_back() {
    let server = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = redis_store(RedisTopology::Single(server.url()), &[KEY_A], dir.path()).await;
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let now = now_ms();
    let victim = store
        .insert(fresh("192.0.2.60", now), None, now)
        .await
        .unwrap();
    let mut attacker_session = fresh("192.0.2.61", now);
    log_in(
        &mut attacker_session,
        AuthOutcome::Accepted(identity()),
        now,
    );
    let attacker = store.insert(attacker_session, None, now).await.unwrap();
    // Move: the attacker's (authenticated) blob into the victim's key, version and all.
    let (v, blob): (u64, Vec<u8>) = redis::cmd("HMGET")
        .arg(format!("test:{{s:{attacker}}}"))
        .arg("v")
        .arg("blob")
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(format!("test:{{s:{victim}}}"))
        .arg("v")
        .arg(v)
        .arg("blob")
        .arg(&blob)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        store
            .checkout(SessionKey::Id(&victim))
            .await
            .unwrap()
            .is_none()
    );
    // Roll back: the attacker's session moves on; its first blob is written back.
    let mut checkout = store
        .checkout(SessionKey::Id(&attacker))
        .await
        .unwrap()
        .unwrap();
    checkout.on_request(request(&msg::hello()), now + 1);
    store.commit(checkout, true).await.unwrap();
    let _: () = redis::cmd("HSET")
        .arg(format!("test:{{s:{attacker}}}"))
        .arg("blob")
        .arg(&blob)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        store
            .checkout(SessionKey::Id(&attacker))
            .await
            .unwrap()
            .is_none()
    );
}

/// A key file that lists a new key first keeps opening what the old key sealed and seals with
/// the new one; a node without the key cannot open the blob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_without_a_flag_day() {
    let server = RedisServer::start().await;
    let (old_dir, new_dir, gone_dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let topology = RedisTopology::Single(server.url());
    let old = redis_store(topology.clone(), &[KEY_A], old_dir.path()).await;
    let rotated = redis_store(topology.clone(), &[KEY_B, KEY_A], new_dir.path()).await;
    let now = now_ms();
    let id = old
        .insert(fresh("192.0.2.70", now), None, now)
        .await
        .unwrap();
    let checkout = rotated
        .checkout(SessionKey::Id(&id))
        .await
        .unwrap()
        .unwrap();
    rotated.commit(checkout, true).await.unwrap();
    let checkout = rotated
        .checkout(SessionKey::Id(&id))
        .await
        .unwrap()
        .unwrap();
    rotated.commit(checkout, true).await.unwrap();
    let only_b = redis_store(topology, &[KEY_B], gone_dir.path()).await;
    let checkout = only_b.checkout(SessionKey::Id(&id)).await.unwrap().unwrap();
    only_b.commit(checkout, true).await.unwrap();
    // The old node no longer opens what the new key sealed: the session ends there.
    assert!(old.checkout(SessionKey::Id(&id)).await.unwrap().is_none());
    // A reload of the old node's key file makes it a rotated node.
    old.set_keys(
        SealKeys::parse(&format!("{KEY_B}\n{KEY_A}\n"), std::path::Path::new("k")).unwrap(),
    );
    let id = only_b
        .insert(fresh("192.0.2.71", now), None, now)
        .await
        .unwrap();
    let checkout = old.checkout(SessionKey::Id(&id)).await.unwrap().unwrap();
    old.commit(checkout, false).await.unwrap();
}

/// A request whose lease ran out (its node stalled) loses to the request that took the session
/// after it: its commit is refused, and what the winner wrote stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_lost_the_race_is_refused() {
    let server = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = redis_store(RedisTopology::Single(server.url()), &[KEY_A], dir.path()).await;
    store.set_limits(StoreLimits {
        hold_ms: 200,
        ..limits()
    });
    let now = now_ms();
    let id = store
        .insert(fresh("192.0.2.80", now), None, now)
        .await
        .unwrap();
    let mut slow = store.checkout(SessionKey::Id(&id)).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut fast = store.checkout(SessionKey::Id(&id)).await.unwrap().unwrap();
    log_in(&mut fast, AuthOutcome::Accepted(identity()), now);
    store.commit(fast, true).await.unwrap();
    log_in(&mut slow, challenge(), now);
    assert!(matches!(
        store.commit(slow, true).await,
        Err(StoreError::Conflict)
    ));
    let kept = store.checkout(SessionKey::Id(&id)).await.unwrap().unwrap();
    assert_eq!(kept.phase(), Phase::Authenticated);
}

/// A broker must not start on a store it cannot reach, and says where it looked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_is_a_start_error() {
    let dir = tempfile::tempdir().unwrap();
    let port = interstate_tests::redis::free_port();
    let config = redis_config(
        RedisTopology::Single(format!("redis://:hunter2@127.0.0.1:{port}")),
        key_file(dir.path(), &[KEY_A]),
    );
    let keys = SealKeys::load(&config.key_file).unwrap();
    let err = RedisStore::connect(&config, keys, limits())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

/// The master that a sentinel names: the whole contract, then a failover to the replica that
/// the sentinel promotes, after which the store serves again by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_follows_a_sentinel_failover() {
    let mut master = RedisServer::start().await;
    let replica = RedisServer::start().await;
    replica
        .cli(&["REPLICAOF", "127.0.0.1", &master.port().to_string()])
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !replica
        .cli(&["INFO", "replication"])
        .unwrap_or_default()
        .contains("master_link_status:up")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the replica did not sync"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sentinel = interstate_tests::redis::start_sentinel(&master, "studio").await;
    let dir = tempfile::tempdir().unwrap();
    let topology = RedisTopology::Sentinel {
        urls: vec![sentinel.url()],
        master_name: "studio".into(),
    };
    let subject = redis_subject("redis sentinel", topology, dir.path()).await;
    contract(&subject).await;

    let now = now_ms();
    let before = subject
        .store
        .insert(fresh("192.0.2.90", now), None, now)
        .await
        .unwrap();
    master.stop();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut errors = 0;
    let after = loop {
        let now = now_ms();
        match subject
            .store
            .insert(fresh("192.0.2.91", now), None, now)
            .await
        {
            Ok(id) => break id,
            Err(StoreError::Unavailable(_)) => errors += 1,
            Err(e) => panic!("{e}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no new master after the failover"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("sentinel failover: {errors} calls refused while no master served");
    assert!(
        replica
            .cli(&["INFO", "replication"])
            .unwrap()
            .contains("role:master")
    );
    for id in [&before, &after] {
        let checkout = subject.store.checkout(SessionKey::Id(id)).await.unwrap();
        assert!(checkout.is_some(), "the replica had the session");
    }
}

/// `rediss://`: the store talks TLS (rustls) to a server whose certificate a private CA
/// signed (`session.redis.ca_file`), and refuses one it cannot verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_speaks_tls() {
    let (server, ca_file) = interstate_tests::redis::start_tls().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = redis_config(
        RedisTopology::Single(server.url()),
        key_file(dir.path(), &[KEY_A]),
    );
    assert!(config.topology == RedisTopology::Single(server.url()));
    let keys = || SealKeys::load(&config.key_file).unwrap();
    let refused = RedisStore::connect(&config, keys(), limits()).await;
    assert!(
        refused.is_err(),
        "a certificate no trusted CA signed is refused"
    );
    config.ca_file = Some(ca_file);
    let store = RedisStore::connect(&config, keys(), limits())
        .await
        .unwrap();
    let now = now_ms();
    let id = store
        .insert(fresh("192.0.2.95", now), None, now)
        .await
        .unwrap();
    let checkout = store.checkout(SessionKey::Id(&id)).await.unwrap().unwrap();
    store.commit(checkout, false).await.unwrap();
}
