//! Brokers sharing one real `redis-server` (`session.store: "redis"`), in this process: a flow
//! that changes node at every request, two nodes racing on one session, failure limits that
//! hold across nodes under concurrency, and what Redis holds after a whole flow.
//! (Separate broker processes, a Redis Cluster failover and a Redis outage are played by the
//! CLI's tests, `host/cli/tests/nodes.rs`.)

use std::sync::atomic::Ordering;
use std::time::Duration;

use interstate_tests::broker::simple_settings;
use interstate_tests::pcoip::result_id;
use interstate_tests::redis::{KEY_A, RedisServer, key_file};
use interstate_tests::{AgentBehaviour, FakeAgent, PASSWORD, TestBroker, TestClient, msg};
use interstate_tools::xml::element_text;
use serde_json::{Value, json};

/// `simple_settings` with the Redis store at `server`.
fn on_redis(agent: std::net::SocketAddr, server: &RedisServer, dir: &std::path::Path) -> Value {
    let mut settings = simple_settings(agent);
    settings["session"] = json!({
        "store": "redis",
        "redis": {"url": server.url(), "key_prefix": "e2e:"},
        "key_file": key_file(dir, &[KEY_A]).display().to_string()
    });
    settings
}

async fn nodes(settings: &Value, n: usize) -> Vec<TestBroker> {
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(TestBroker::start(settings.clone()).await);
    }
    nodes
}

/// Moves `client` to `node`, keeping its cookie (a load balancer that does not stick).
async fn hop(client: &TestClient, node: &TestBroker) -> TestClient {
    let mut next = TestClient::connect(node.addr).await;
    next.cookie.clone_from(&client.cookie);
    next.log_id.clone_from(&client.log_id);
    next
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_hops_nodes_and_leaves_no_secret_in_redis() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let server = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let nodes = nodes(&on_redis(agent.addr, &server, dir.path()), 3).await;
    let mut client = TestClient::connect(nodes[0].addr).await;
    let hello = client.send(&msg::hello()).await;
    assert!(hello.text().contains("<hello-resp>"), "{}", hello.text());
    let mut client = hop(&client, &nodes[1]).await;
    let auth = client
        .send(&msg::authenticate("kolmogorov", PASSWORD, Some("EXAMPLE")))
        .await;
    assert_eq!(
        result_id(&auth),
        "AUTH_SUCCESSFUL_AND_COMPLETE",
        "{}",
        auth.text()
    );
    // Between authenticate and allocate the password waits, sealed, under its own key.
    let pending = server.raw_dump();
    assert!(
        pending.iter().any(|(k, _)| k.ends_with(":pw")),
        "{pending:?}"
    );
    let mut client = hop(&client, &nodes[2]).await;
    let list = client.send(&msg::list()).await;
    assert_eq!(result_id(&list), "LIST_SUCCESSFUL", "{}", list.text());
    let id = element_text(&list.text(), "resource-id").unwrap();
    let mut client = hop(&client, &nodes[0]).await;
    let alloc = client.send(&msg::allocate(&id)).await;
    assert_eq!(result_id(&alloc), "ALLOC_SUCCESSFUL", "{}", alloc.text());
    assert_eq!(
        agent.last().unwrap().password.expose(),
        PASSWORD,
        "the agent got the password typed on another node"
    );
    // The agent has it: the password's key is gone; nothing in Redis reads as a secret.
    let after = server.raw_dump();
    assert!(!after.iter().any(|(k, _)| k.ends_with(":pw")), "{after:?}");
    for (key, value) in pending.iter().chain(&after) {
        for secret in [PASSWORD, "kolmogorov", "Elisabeth Taylor"] {
            assert!(
                !value.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{key} holds {secret:?} in clear"
            );
        }
    }
    let mut client = hop(&client, &nodes[1]).await;
    let bye = client.send(&msg::bye()).await;
    assert!(bye.text().contains("<bye-resp"), "{}", bye.text());
    let mut client = hop(&client, &nodes[2]).await;
    let gone = client.send(&msg::list()).await;
    assert_eq!(result_id(&gone), "ERR_INVALID_SESSION", "{}", gone.text());
    for node in nodes {
        node.stop().await;
    }
}

/// Two nodes get requests of the same session at once: the first holds it (its agent is
/// slow), the second is answered a clean protocol error at once, and the mapper and agent are
/// called once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_on_one_session_one_wins() {
    let agent = FakeAgent::start(AgentBehaviour::Hang).await;
    let server = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = on_redis(agent.addr, &server, dir.path());
    settings["agent"]["timeout_ms"] = json!(2_000);
    let nodes = nodes(&settings, 2).await;
    let mut client = TestClient::connect(nodes[0].addr).await;
    let id = client.log_in("kolmogorov", PASSWORD).await;
    let mut other = hop(&client, &nodes[1]).await;
    let slow = tokio::spawn(async move { client.send(&msg::allocate(&id)).await });
    // Wait until the first allocation is at the agent (it holds the session then).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while agent.received.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent was never called"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = tokio::time::Instant::now();
    let raced = other.send(&msg::allocate("anything")).await;
    assert_eq!(
        result_id(&raced),
        "ERR_BROKER_SYS_FAILED",
        "{}",
        raced.text()
    );
    assert!(raced.text().contains("in progress"), "{}", raced.text());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused at once, not after the first request"
    );
    let first = slow.await.unwrap();
    assert!(
        result_id(&first).starts_with("ALLOC_FAILED"),
        "{}",
        first.text()
    );
    assert_eq!(agent.received.lock().unwrap().len(), 1, "one agent call");
    // The winner committed; the session goes on from either node.
    let list = other.send(&msg::list()).await;
    assert_eq!(result_id(&list), "LIST_SUCCESSFUL", "{}", list.text());
    for node in nodes {
        node.stop().await;
    }
}

/// Sends 60 concurrent hello + wrong password for one user, spread over `nodes`; every answer
/// must be a wrong password's. Returns (mapper calls, rate-limited) summed over the nodes.
async fn sixty_wrong_passwords(nodes: &[TestBroker]) -> (u64, u64) {
    let mut tasks = Vec::new();
    for i in 0..60 {
        let addr = nodes[i % nodes.len()].addr;
        tasks.push(tokio::spawn(async move {
            let mut client = TestClient::connect(addr).await;
            client.send(&msg::hello()).await;
            let auth = client
                .send(&msg::authenticate("kolmogorov", "wrong", Some("EXAMPLE")))
                .await;
            result_id(&auth)
        }));
    }
    for task in tasks {
        assert_eq!(
            task.await.unwrap(),
            "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD"
        );
    }
    let sum = |count: fn(&interstate::service::Stats) -> u64| {
        nodes.iter().map(|n| count(n.running.broker.stats())).sum()
    };
    (
        sum(|s| s.mapper_logins.load(Ordering::Relaxed)),
        sum(|s| s.rate_limited.load(Ordering::Relaxed)),
    )
}

fn three_failures_per_user(mut settings: Value) -> Value {
    settings["security"] = json!({"auth_failures_per_user": 3, "auth_failures_per_address": 1000, "auth_window_s": 300});
    settings
}

/// 60 concurrent wrong passwords for one user, spread over three nodes, with a per-user limit
/// of 3: the mapper sees exactly 3 (checked-then-counted limits let 21 through on one node).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_limits_hold_across_nodes_under_concurrency() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let server = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let settings = three_failures_per_user(on_redis(agent.addr, &server, dir.path()));
    let nodes = nodes(&settings, 3).await;
    assert_eq!(sixty_wrong_passwords(&nodes).await, (3, 57));
    for node in nodes {
        node.stop().await;
    }
}

/// The same on one node with the memory store: the reservation is atomic there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_limits_hold_under_concurrency_in_memory() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(three_failures_per_user(simple_settings(agent.addr))).await;
    let nodes = [broker];
    assert_eq!(sixty_wrong_passwords(&nodes).await, (3, 57));
    let [broker] = nodes;
    broker.stop().await;
}
