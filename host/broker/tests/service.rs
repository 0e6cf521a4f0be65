//! The request service in-process, without a socket: session expiry on tokio's paused clock (no
//! sleeping), session lifetimes changed by a reload, a flood of hellos against a full session
//! table, and fallback sessions that another address cannot take.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use interstate::app::{build_generation, runtime_config};
use interstate::clock::Clock;
use interstate::service::{BROKER_PATH, Broker, handle, store_limits};
use interstate::settings::Settings;
use interstate::store::MemoryStore;
use interstate_mapper::MapperRuntime;
use serde_json::{Value, json};
use tokio::time::advance;

const HELLO: &str = "<hello><client-info><product-name>Test</product-name></client-info>\
                     <caps><cap>CAP_DIALOG_AUTHENTICATION</cap></caps></hello>";
const LIST: &str = "<get-resource-list><resource-types><resource-type>DESKTOP</resource-type>\
                    </resource-types></get-resource-list>";
const LOGIN: &str = "<authenticate method=\"password\"><username>kolmogorov</username>\
                     <password>goodluck&lt;&amp;&gt;</password><domain></domain></authenticate>";
const LOG_ID: &str = "ddff1100-72e7-1039-8825-0123456789ab";

fn peer(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], 50000))
}

fn settings(session: Value) -> Settings {
    settings_with(session, json!({}))
}

fn settings_with(session: Value, server: Value) -> Settings {
    let document = json!({
        "mapper": {"plugin": "SimpleMapper", "settings": {
            "username": "kolmogorov",
            "password_hash": "23d405aab7add23c5b7b7bc74e7c7299a0e45ab47e3d8e2e34f6055a04d72cce",
            "resources": [{"name": "Elisabeth Taylor", "hostname": "127.0.0.2"}]}},
        "session": session,
        "server": server,
    });
    Settings::parse(&document.to_string(), Path::new("service-test.json")).unwrap()
}

struct Harness {
    broker: Arc<Broker>,
    runtime: MapperRuntime,
    store: Arc<MemoryStore>,
}

impl Harness {
    async fn live_sessions(&self) -> usize {
        self.broker
            .store()
            .live_sessions()
            .await
            .expect("the memory store answers")
    }

    async fn new(session: Value) -> Self {
        Self::with(settings(session)).await
    }

    async fn with(settings: Settings) -> Self {
        let runtime = MapperRuntime::new(runtime_config(&settings)).unwrap();
        let store = Arc::new(MemoryStore::new(store_limits(&settings)));
        let generation = build_generation(&runtime, settings, store.clone())
            .await
            .unwrap();
        let broker = Arc::new(Broker::new(generation, store.clone(), Clock::new()));
        Self {
            broker,
            runtime,
            store,
        }
    }

    /// Posts `message`; returns the answer's body and the cookie it sets, if any.
    async fn post(&self, message: &str, cookie: Option<&str>) -> (String, Option<String>) {
        self.post_from(peer(1), message, cookie, None).await
    }

    /// Posts `message` from `peer`, with a `Client-Log-Id` when given.
    async fn post_from(
        &self,
        peer: SocketAddr,
        message: &str,
        cookie: Option<&str>,
        log_id: Option<&str>,
    ) -> (String, Option<String>) {
        let mut request = Request::post(BROKER_PATH);
        if let Some(id) = cookie {
            request = request.header("Cookie", format!("JSESSIONID={id}"));
        }
        if let Some(log_id) = log_id {
            request = request.header("Client-Log-Id", log_id);
        }
        let body = format!("<pcoip-client version=\"2.1\">{message}</pcoip-client>");
        let request = request.body(Full::new(Bytes::from(body))).unwrap();
        let response = handle(self.broker.clone(), peer, request).await.unwrap();
        let set = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("JSESSIONID="))
            .and_then(|v| v.split(';').next())
            .map(str::to_owned);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (String::from_utf8(body.to_vec()).unwrap(), set)
    }

    async fn hello(&self) -> String {
        let (body, cookie) = self.post(HELLO, None).await;
        assert!(body.contains("<hello-resp>"), "{body}");
        cookie.expect("a session cookie")
    }

    /// The result id of a listing in the session (`LIST_FAILED_NO_USER` while it lives, since
    /// nobody logged in; `ERR_INVALID_SESSION` once it has expired).
    async fn list(&self, cookie: &str) -> &'static str {
        let (body, _) = self.post(LIST, Some(cookie)).await;
        if body.contains("LIST_FAILED_NO_USER") {
            "LIST_FAILED_NO_USER"
        } else if body.contains("ERR_INVALID_SESSION") {
            "ERR_INVALID_SESSION"
        } else {
            panic!("unexpected answer: {body}")
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_idle_session_expires_at_its_idle_timeout() {
    let harness = Harness::new(json!({"idle_timeout_s": 600, "unauthenticated_timeout_s": 600, "absolute_timeout_s": 3600})).await;
    let cookie = harness.hello().await;
    advance(Duration::from_secs(599)).await;
    assert_eq!(harness.list(&cookie).await, "LIST_FAILED_NO_USER");
    advance(Duration::from_secs(599)).await;
    assert_eq!(
        harness.list(&cookie).await,
        "LIST_FAILED_NO_USER",
        "each request restarts the idle timeout"
    );
    advance(Duration::from_secs(600)).await;
    assert_eq!(harness.list(&cookie).await, "ERR_INVALID_SESSION");
    assert!(
        harness.live_sessions().await == 0,
        "the expired session is gone"
    );
}

#[tokio::test(start_paused = true)]
async fn a_busy_session_expires_at_its_absolute_timeout() {
    let harness = Harness::new(json!({"idle_timeout_s": 600, "unauthenticated_timeout_s": 600, "absolute_timeout_s": 3600})).await;
    let cookie = harness.hello().await;
    for _ in 0..7 {
        advance(Duration::from_secs(500)).await;
        assert_eq!(harness.list(&cookie).await, "LIST_FAILED_NO_USER");
    }
    advance(Duration::from_secs(100)).await;
    assert_eq!(harness.list(&cookie).await, "ERR_INVALID_SESSION");
}

#[tokio::test(start_paused = true)]
async fn session_timeouts_changed_by_a_reload_apply_to_live_sessions() {
    let harness =
        Harness::new(json!({"idle_timeout_s": 600, "unauthenticated_timeout_s": 600})).await;
    let cookie = harness.hello().await;
    let shorter = settings(json!({"idle_timeout_s": 60}));
    harness.broker.swap(
        build_generation(&harness.runtime, shorter, harness.store.clone())
            .await
            .unwrap(),
    );
    advance(Duration::from_secs(59)).await;
    assert_eq!(harness.list(&cookie).await, "LIST_FAILED_NO_USER");
    advance(Duration::from_secs(61)).await;
    assert_eq!(harness.list(&cookie).await, "ERR_INVALID_SESSION");
}

#[tokio::test(start_paused = true)]
async fn the_sweep_drops_expired_sessions_it_finds_idle() {
    let harness = Harness::new(json!({"idle_timeout_s": 600})).await;
    for _ in 0..3 {
        harness.hello().await;
    }
    let store = harness.broker.store();
    let clock = harness.broker.clock();
    assert_eq!(store.sweep(clock.now_ms()).await.expect("memory"), 0);
    advance(Duration::from_secs(601)).await;
    assert_eq!(store.sweep(clock.now_ms()).await.expect("memory"), 3);
    assert_eq!(store.live_sessions().await.expect("memory"), 0);
}

#[tokio::test(start_paused = true)]
async fn nobody_logged_in_means_a_short_life() {
    let harness = Harness::new(json!({})).await;
    let anonymous = harness.hello().await;
    let logged_in = harness.hello().await;
    let (body, _) = harness.post(LOGIN, Some(&logged_in)).await;
    assert!(body.contains("AUTH_SUCCESSFUL_AND_COMPLETE"), "{body}");
    advance(Duration::from_secs(119)).await;
    assert_eq!(harness.list(&anonymous).await, "LIST_FAILED_NO_USER");
    advance(Duration::from_secs(120)).await;
    assert_eq!(harness.list(&anonymous).await, "ERR_INVALID_SESSION");
    let (body, _) = harness.post(LIST, Some(&logged_in)).await;
    assert!(body.contains("LIST_SUCCESSFUL"), "{body}");
}

/// 4x the table in cookie-less hellos from a hundred addresses, then a full flow from another
/// address and the next request of a session that logged in before the flood: both succeed.
#[tokio::test]
async fn a_flood_of_hellos_cannot_fill_the_session_table() {
    const TABLE: usize = 5_000;
    let harness = Harness::new(json!({"max_sessions": TABLE})).await;
    let (_, before) = harness.post_from(peer(1), HELLO, None, None).await;
    let before = before.expect("a session");
    let (body, _) = harness.post_from(peer(1), LOGIN, Some(&before), None).await;
    assert!(body.contains("AUTH_SUCCESSFUL_AND_COMPLETE"), "{body}");

    let started = std::time::Instant::now();
    for i in 0..4 * TABLE {
        let flooder = peer(100 + u8::try_from(i % 100).unwrap());
        let (body, _) = harness.post_from(flooder, HELLO, None, None).await;
        assert!(body.contains("<hello-resp>"), "{body}");
    }
    println!(
        "flood: {} cookie-less hellos in {:?}; {} sessions live",
        4 * TABLE,
        started.elapsed(),
        harness.live_sessions().await
    );
    assert!(harness.live_sessions().await <= TABLE);

    let (body, _) = harness.post_from(peer(1), LIST, Some(&before), None).await;
    assert!(
        body.contains("LIST_SUCCESSFUL"),
        "logged in before the flood: {body}"
    );
    let (body, cookie) = harness.post_from(peer(2), HELLO, None, None).await;
    assert!(body.contains("<hello-resp>"), "a new user's hello: {body}");
    let cookie = cookie.expect("a session");
    let (body, _) = harness.post_from(peer(2), LOGIN, Some(&cookie), None).await;
    assert!(body.contains("AUTH_SUCCESSFUL_AND_COMPLETE"), "{body}");
    let (body, _) = harness.post_from(peer(2), LIST, Some(&cookie), None).await;
    assert!(body.contains("LIST_SUCCESSFUL"), "{body}");
}

#[tokio::test]
async fn one_address_holds_a_bounded_number_of_unauthenticated_sessions() {
    let harness = Harness::new(json!({"max_unauthenticated_per_address": 10})).await;
    let mut cookies = Vec::new();
    for _ in 0..25 {
        let (_, cookie) = harness.post_from(peer(66), HELLO, None, None).await;
        cookies.push(cookie.expect("a session"));
    }
    assert_eq!(harness.live_sessions().await, 10);
    // The newest ten live; the oldest gave way.
    assert_eq!(harness.list(&cookies[24]).await, "LIST_FAILED_NO_USER");
    assert_eq!(harness.list(&cookies[0]).await, "ERR_INVALID_SESSION");
    // Another address is not affected.
    let (body, _) = harness.post_from(peer(2), HELLO, None, None).await;
    assert!(body.contains("<hello-resp>"), "{body}");
}

/// With fallback sessions, a hello that carries another client's `Client-Log-Id` from another
/// address neither replaces that client's session nor reaches it.
#[tokio::test]
async fn a_fallback_session_cannot_be_taken_from_another_address() {
    let harness = Harness::with(settings_with(json!({}), json!({"fallback_sessions": true}))).await;
    let victim = peer(1);
    let thief = peer(9);
    let (body, _) = harness.post_from(victim, HELLO, None, Some(LOG_ID)).await;
    assert!(body.contains("<hello-resp>"), "{body}");
    let (body, _) = harness.post_from(victim, LOGIN, None, Some(LOG_ID)).await;
    assert!(body.contains("AUTH_SUCCESSFUL_AND_COMPLETE"), "{body}");

    let (body, _) = harness.post_from(thief, HELLO, None, Some(LOG_ID)).await;
    assert!(
        body.contains("<hello-resp>"),
        "the thief gets a session of its own: {body}"
    );
    let (body, _) = harness.post_from(thief, LIST, None, Some(LOG_ID)).await;
    assert!(
        body.contains("ERR_MISSING_SESSION"),
        "the thief reached a session: {body}"
    );

    let (body, _) = harness.post_from(victim, LIST, None, Some(LOG_ID)).await;
    assert!(
        body.contains("LIST_SUCCESSFUL"),
        "the victim lost its session: {body}"
    );
}
