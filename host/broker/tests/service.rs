//! The request service in-process, without a socket: session expiry on tokio's paused clock (no
//! sleeping), and session lifetimes changed by a reload.

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

fn settings(session: Value) -> Settings {
    let document = json!({
        "mapper": {"plugin": "SimpleMapper", "settings": {
            "username": "kolmogorov",
            "password_hash": "23d405aab7add23c5b7b7bc74e7c7299a0e45ab47e3d8e2e34f6055a04d72cce",
            "resources": [{"name": "Elisabeth Taylor", "hostname": "127.0.0.2"}]}},
        "session": session,
    });
    Settings::parse(&document.to_string(), Path::new("service-test.json")).unwrap()
}

struct Harness {
    broker: Arc<Broker>,
    runtime: MapperRuntime,
}

impl Harness {
    async fn new(session: Value) -> Self {
        let settings = settings(session);
        let runtime = MapperRuntime::new(runtime_config(&settings)).unwrap();
        let store = Arc::new(MemoryStore::new(store_limits(&settings)));
        let generation = build_generation(&runtime, settings).await.unwrap();
        let broker = Arc::new(Broker::new(generation, store, Clock::new()));
        Self { broker, runtime }
    }

    /// Posts `message`; returns the answer's body and the cookie it sets, if any.
    async fn post(&self, message: &str, cookie: Option<&str>) -> (String, Option<String>) {
        let peer: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let mut request = Request::post(BROKER_PATH);
        if let Some(id) = cookie {
            request = request.header("Cookie", format!("JSESSIONID={id}"));
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
    let harness = Harness::new(json!({"idle_timeout_s": 600, "absolute_timeout_s": 3600})).await;
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
        harness.broker.store().is_empty(),
        "the expired session is gone"
    );
}

#[tokio::test(start_paused = true)]
async fn a_busy_session_expires_at_its_absolute_timeout() {
    let harness = Harness::new(json!({"idle_timeout_s": 600, "absolute_timeout_s": 3600})).await;
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
    let harness = Harness::new(json!({"idle_timeout_s": 600})).await;
    let cookie = harness.hello().await;
    let shorter = settings(json!({"idle_timeout_s": 60}));
    harness
        .broker
        .swap(build_generation(&harness.runtime, shorter).await.unwrap());
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
    assert_eq!(store.sweep(clock.now_ms()).await, 0);
    advance(Duration::from_secs(601)).await;
    assert_eq!(store.sweep(clock.now_ms()).await, 3);
    assert!(store.is_empty());
}
