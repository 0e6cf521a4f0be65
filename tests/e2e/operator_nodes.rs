//! The operator's view across nodes: brokers in this process sharing one real `redis-server`
//! (`session.store: "redis"`). A session created on node A is listed and ended through node B's
//! admin API (and really ends on A); a subscriber on node B sees the events of a flow that ran
//! on node A, each once, numbered by B; a node started later replays the shared history; and a
//! subscriber on node A sees B's operator action.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use interstate_feed::Timestamp;
use interstate_tests::broker::simple_settings;
use interstate_tests::pcoip::{flow, result_id};
use interstate_tests::redis::{KEY_A, RedisServer, key_file};
use interstate_tests::{AgentBehaviour, FakeAgent, PASSWORD, TestBroker, TestClient, msg};
use serde_json::{Value, json};

use crate::operator::{Admin, TOKEN};

/// Settings of node `node` on the Redis store at `server`, with the admin token.
fn node_settings(
    agent: SocketAddr,
    server: &RedisServer,
    dir: &std::path::Path,
    node: &str,
) -> Value {
    let mut settings = simple_settings(agent);
    settings["session"] = json!({
        "store": "redis",
        "redis": {"url": server.url(), "key_prefix": "ops:"},
        "key_file": key_file(dir, &[KEY_A]).display().to_string()
    });
    settings["admin"] = json!({"token": TOKEN, "node": node});
    settings
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// Every `seq` of `events` (live and catch-up) is unique and increasing.
fn assert_numbered_once(events: &[Value], raw: &str) {
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs.len(), events.len(), "every event has a seq: {raw}");
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seq increases, no event twice: {seqs:?}"
    );
    let mut uuids: Vec<&str> = events.iter().filter_map(|e| e["uuid"].as_str()).collect();
    let count = uuids.len();
    uuids.sort_unstable();
    uuids.dedup();
    assert_eq!(uuids.len(), count, "no event delivered twice: {raw}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_and_the_feed_span_the_nodes_of_one_redis_store() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let server = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a = TestBroker::start(node_settings(agent.addr, &server, dir.path(), "node-a")).await;
    let b = TestBroker::start(node_settings(agent.addr, &server, dir.path(), "node-b")).await;
    // Node A serves no admin listener for now: it publishes all the same.
    let admin_b = Admin::start(&b, Some(TOKEN)).await;
    let mut on_b = admin_b
        .subscribe("watcher", &["sessions", "auth", "allocations", "admin"])
        .await;

    // A whole flow on node A, then a client that logs in on A and stays.
    let started = Instant::now();
    flow(a.addr, "kolmogorov", PASSWORD).await.unwrap();
    let mut staying = TestClient::connect(a.addr).await;
    staying.send(&msg::hello()).await;
    let login = staying
        .send(&msg::authenticate("kolmogorov", PASSWORD, Some("EXAMPLE")))
        .await;
    assert_eq!(result_id(&login), "AUTH_SUCCESSFUL_AND_COMPLETE");
    let staying_ref = interstate::events::session_ref(staying.cookie.as_deref().unwrap());
    let (events, raw) = on_b
        .until(Duration::from_secs(15), |e| {
            e["type"] == "session.authenticated" && e["message"]["session_id"] == *staying_ref
        })
        .await;
    let received = Timestamp::from_micros(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros(),
        )
        .unwrap(),
    );
    for kind in [
        "session.created",
        "session.authenticated",
        "session.allocated",
        "session.ended",
    ] {
        let seen = of_type(&events, kind);
        assert!(!seen.is_empty(), "{kind} from node A on node B: {raw}");
        assert!(seen.iter().all(|e| of_node(e, "node-a")), "{raw}");
    }
    assert!(
        of_type(&events, "session.ended")
            .iter()
            .any(|e| e["message"]["reason"] == "bye"),
        "{raw}"
    );
    assert_numbered_once(&events, &raw);
    let latency_ms = events
        .iter()
        .filter_map(|e| e["timestamp"].as_str().and_then(Timestamp::parse_iso))
        .map(|ts| (received.micros() - ts.micros()) / 1000)
        .min()
        .unwrap_or(-1);
    println!(
        "node A flow to node B subscriber: {} events in {} ms (newest event's age on arrival: {latency_ms} ms)",
        events.len(),
        started.elapsed().as_millis()
    );

    // Node B's admin API lists the session created on node A, and ends it.
    let (status, list) = admin_b.signed("GET", "/admin/api/sessions", b"").await;
    assert_eq!(status, 200, "{list}");
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["node"], "node-b");
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "the staying client's session: {list}");
    assert_eq!(sessions[0]["user"], "kolmogorov");
    assert_eq!(sessions[0]["state"], "authenticated");
    assert_eq!(
        sessions[0]["node"], "node-a",
        "the node that created it: {list}"
    );
    let target = sessions[0]["session_id"].as_str().unwrap().to_owned();
    assert_eq!(target, staying_ref);

    let admin_a = Admin::start(&a, Some(TOKEN)).await;
    let mut on_a = admin_a.subscribe("watcher-a", &["sessions", "admin"]).await;
    let body = json!({"session_id": target}).to_string();
    let (status, answer) = admin_b
        .signed("POST", "/admin/api/sessions/end", body.as_bytes())
        .await;
    assert_eq!(status, 200, "{answer}");
    let after = staying.send(&msg::list()).await;
    assert_ne!(result_id(&after), "LIST_SUCCESSFUL", "{}", after.text());
    assert!(
        after.text().contains("ERR_INVALID_SESSION"),
        "the session ended on node A too: {}",
        after.text()
    );
    // (A bearer token: a signature of the same request within the same second is a replay.)
    let bearer = format!("Bearer {TOKEN}");
    let (status, _, list) = admin_b
        .request(
            "GET",
            "/admin/api/sessions",
            &[("Authorization", &bearer)],
            b"",
        )
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        serde_json::from_str::<Value>(&list).unwrap()["sessions"],
        json!([]),
        "{list}"
    );

    // Node A's subscriber sees node B's action and the end it caused.
    let (events, raw) = on_a
        .until(Duration::from_secs(15), |e| e["type"] == "admin.action")
        .await;
    let action = of_type(&events, "admin.action");
    assert_eq!(action.len(), 1, "{raw}");
    assert!(of_node(action[0], "node-b"), "{raw}");
    assert_eq!(action[0]["message"]["target"], *target);
    assert!(
        of_type(&events, "session.ended")
            .iter()
            .any(|e| e["message"]["reason"] == "killed" && of_node(e, "node-b")),
        "{raw}"
    );
    assert_numbered_once(&events, &raw);
    // And node B's subscriber gets its own node's events exactly once.
    let (events, raw) = on_b
        .until(Duration::from_secs(15), |e| e["type"] == "admin.action")
        .await;
    assert_eq!(of_type(&events, "admin.action").len(), 1, "{raw}");
    assert_numbered_once(&events, &raw);

    // A node started now replays the shared history: catch-up from seq 0 on node C holds the
    // events of A and B.
    let c = TestBroker::start(node_settings(agent.addr, &server, dir.path(), "node-c")).await;
    let admin_c = Admin::start(&c, Some(TOKEN)).await;
    let (events, raw) = catch_up(&admin_c, "late", &["sessions", "admin"], 0).await;
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "session.created" && of_node(e, "node-a")),
        "{raw}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "admin.action" && of_node(e, "node-b")),
        "{raw}"
    );
    assert!(events.iter().all(|e| e["catchup"] == true), "{raw}");
    assert_numbered_once(&events, &raw);
    // Catch-up by seq on node C: from the admin action on, only what followed it.
    let action_seq = events
        .iter()
        .find(|e| e["type"] == "admin.action")
        .and_then(|e| e["seq"].as_u64())
        .unwrap();
    let (later, raw) = catch_up(&admin_c, "later", &["sessions", "admin"], action_seq).await;
    assert!(
        later.iter().all(|e| e["seq"].as_u64() > Some(action_seq)),
        "{raw}"
    );
}

fn of_node(event: &Value, node: &str) -> bool {
    event["node"] == node
}

/// The catch-up a new connection on `channels` gets from `since` (frames until a quiet 500 ms).
async fn catch_up(
    admin: &Admin,
    user: &str,
    channels: &[&str],
    since: u64,
) -> (Vec<Value>, String) {
    let body = json!({"username": user, "channels": channels}).to_string();
    let (status, answer) = admin.signed("POST", "/feed/connect", body.as_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    let conn_id = serde_json::from_str::<Value>(&answer).unwrap()["conn_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let io = admin.connect().await;
    let url = format!(
        "ws://{}/feed/ws?conn_id={conn_id}&since={since}",
        admin.addr
    );
    let (mut socket, _) = tokio_tungstenite::client_async(url, io).await.unwrap();
    let mut events = Vec::new();
    let mut raw = String::new();
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout(Duration::from_millis(500), socket.next()).await
    {
        let Ok(text) = frame.to_text() else { continue };
        raw.push_str(text);
        raw.push('\n');
        if let Ok(Value::Array(batch)) = serde_json::from_str::<Value>(text) {
            events.extend(batch);
        }
    }
    (events, raw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_bus_reconnects_after_a_redis_restart() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut server = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a = TestBroker::start(node_settings(agent.addr, &server, dir.path(), "node-a")).await;
    let b = TestBroker::start(node_settings(agent.addr, &server, dir.path(), "node-b")).await;
    let admin_b = Admin::start(&b, Some(TOKEN)).await;
    let mut on_b = admin_b.subscribe("watcher", &["sessions"]).await;

    // Redis goes away and comes back on the same port (its data with it or not).
    server.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.restart().await;

    // The store's connection and the bus's reader both come back: a flow on node A reaches
    // node B's subscriber within the reader's backoff.
    let started = Instant::now();
    let mut tag = Err(String::new());
    for _ in 0..20 {
        tag = flow(a.addr, "kolmogorov", PASSWORD).await;
        if tag.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tag.unwrap();
    let (events, raw) = on_b
        .until(Duration::from_secs(20), |e| {
            e["type"] == "session.ended" && of_node(e, "node-a")
        })
        .await;
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "session.ended" && of_node(e, "node-a")),
        "{raw}"
    );
    assert_numbered_once(&events, &raw);
    println!(
        "after a redis restart: node A's flow reached node B in {} ms",
        started.elapsed().as_millis()
    );
}
