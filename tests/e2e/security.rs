//! Issue #13: the levers an outside review found, each attack played against a real broker and
//! shown to fail.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use interstate_tests::broker::simple_settings;
use interstate_tests::{AgentBehaviour, FakeAgent, TestBroker, TestClient, msg};
use interstate_tools::xml::element_text;

/// Item 10: the unauthenticated probe says what the operator configured, never the machine's
/// host name or operating system.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_discloses_neither_host_name_nor_os() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut settings = simple_settings(agent.addr);
    settings["server"]["broker_name"] = serde_json::json!("Acme Desktops");
    let broker = TestBroker::start(settings).await;
    let mut client = TestClient::connect(broker.addr).await;
    let probe = client.send(&msg::probe()).await;
    let text = probe.text();
    assert_eq!(
        element_text(&text, "hostname").as_deref(),
        Some("Acme Desktops"),
        "{text}"
    );
    let system = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let system = system.trim();
    let lower = text.to_ascii_lowercase();
    assert!(
        system.is_empty() || !text.contains(&format!(">{system}<")),
        "the machine's host name is disclosed: {text}"
    );
    assert!(
        !lower.contains(std::env::consts::OS),
        "the OS is disclosed: {text}"
    );
}

/// Item 7: idle sockets from one host (127.0.0.3) fill at most their share of the cap; a client
/// from another address (127.0.0.1) is served at once. Before the fix the 50 idle sockets took
/// all 50 slots until the handshake deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_connection_slot() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut settings = simple_settings(agent.addr);
    settings["server"] = serde_json::json!({
        "max_connections": 50,
        "max_connections_per_address": 10,
        "handshake_timeout_ms": 30_000,
    });
    let broker = TestBroker::start(settings).await;
    let attacker: SocketAddr = "127.0.0.3:0".parse().unwrap();
    let mut idle = Vec::new();
    for _ in 0..60 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(attacker).unwrap();
        if let Ok(stream) = socket.connect(broker.addr).await {
            idle.push(stream);
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let served = tokio::time::timeout(Duration::from_secs(5), async {
        let mut client = TestClient::connect(broker.addr).await;
        client.send(&msg::probe()).await
    })
    .await;
    let probe = served.expect("a client from another address waited behind 60 idle sockets");
    assert!(probe.text().contains("<hello-resp>"), "{}", probe.text());
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(idle);
    broker.stop().await;
}

/// Item 7: the handshake deadline is short by default.
#[test]
fn the_default_handshake_deadline_is_short() {
    let settings = interstate::settings::Settings::defaults();
    assert!(
        settings.server.handshake_timeout <= Duration::from_secs(5),
        "{:?}",
        settings.server.handshake_timeout
    );
}
