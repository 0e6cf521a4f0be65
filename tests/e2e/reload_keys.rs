//! Reload is honest: each key either takes effect on reload (each test changes it, reloads, and
//! observes the new behaviour on the same running broker) or the reload names it as needing a
//! restart.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use interstate::settings::Settings;
use interstate_tests::broker::{parse_settings as parse, simple_settings};
use interstate_tests::pcoip::result_id;
use interstate_tests::{AgentBehaviour, FakeAgent, PASSWORD, TestBroker, TestClient, msg};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The broker's settings with `section` replaced by `values`.
fn with(agent: &FakeAgent, section: &str, values: Value) -> Settings {
    let mut settings = simple_settings(agent.addr);
    settings[section] = values;
    parse(&settings)
}

/// How long until the peer closes a connection on which nothing more is sent (at most 10 s).
async fn time_to_close(stream: &mut (impl AsyncReadExt + Unpin)) -> Duration {
    let started = Instant::now();
    let mut buffer = [0_u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(n) = stream.read(&mut buffer).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    started.elapsed()
}

async fn wrong_password(broker: &TestBroker, user: &str) -> String {
    let mut client = TestClient::connect(broker.addr).await;
    client.send(&msg::hello()).await;
    let auth = client
        .send(&msg::authenticate(
            user,
            "not the password",
            Some("EXAMPLE"),
        ))
        .await;
    result_id(&auth)
}

#[tokio::test]
async fn security_limits_take_effect_on_reload() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(simple_settings(agent.addr)).await;
    let stats = broker.running.broker.stats();

    // The case: after a reload to one failure per user, three wrong passwords reach
    // the mapper once.
    let report = broker
        .running
        .reload(with(
            &agent,
            "security",
            json!({"auth_failures_per_user": 1}),
        ))
        .await
        .unwrap();
    assert!(report.restart_required.is_empty(), "{report:?}");
    let before = stats.mapper_logins.load(Ordering::Relaxed);
    for _ in 0..3 {
        assert_eq!(
            wrong_password(&broker, "kolmogorov").await,
            "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD"
        );
    }
    assert_eq!(stats.mapper_logins.load(Ordering::Relaxed) - before, 1);

    // Per address: two failures from this address, whatever the user names.
    broker
        .running
        .reload(with(
            &agent,
            "security",
            json!({"auth_failures_per_user": 100, "auth_failures_per_address": 2}),
        ))
        .await
        .unwrap();
    let before = stats.mapper_logins.load(Ordering::Relaxed);
    for user in ["u1", "u2", "u3", "u4"] {
        wrong_password(&broker, user).await;
    }
    // The address has one failure counted (the refused attempts cost no mapper call and count
    // nothing), so one more reaches the mapper and then the new limit of two holds.
    assert_eq!(stats.mapper_logins.load(Ordering::Relaxed) - before, 1);

    // A window of one second: the counts so far stop mattering once it has passed.
    broker
        .running
        .reload(with(
            &agent,
            "security",
            json!({"auth_failures_per_user": 100, "auth_failures_per_address": 2, "auth_window_s": 1}),
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = stats.mapper_logins.load(Ordering::Relaxed);
    wrong_password(&broker, "u5").await;
    assert_eq!(stats.mapper_logins.load(Ordering::Relaxed) - before, 1);
    broker.stop().await;
}

#[tokio::test]
async fn session_limit_takes_effect_on_reload() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(simple_settings(agent.addr)).await;
    broker
        .running
        .reload(with(&agent, "session", json!({"max_sessions": 1})))
        .await
        .unwrap();
    // One session, logged in: a new hello finds no room (a logged-in session is never evicted
    // to make room; an unauthenticated one would give way).
    let mut first = TestClient::connect(broker.addr).await;
    let desktop = first.log_in("kolmogorov", PASSWORD).await;
    let mut second = TestClient::connect(broker.addr).await;
    assert_eq!(
        result_id(&second.send(&msg::hello()).await),
        "ERR_BROKER_SYS_FAILED"
    );
    // The first client's session is untouched.
    let allocated = first.send(&msg::allocate(&desktop)).await;
    assert_eq!(result_id(&allocated), "ALLOC_SUCCESSFUL");
    broker.stop().await;
}

#[tokio::test]
async fn server_deadlines_and_body_limit_take_effect_on_reload() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(simple_settings(agent.addr)).await;
    broker
        .running
        .reload(with(
            &agent,
            "server",
            json!({"handshake_timeout_ms": 300, "header_timeout_ms": 300, "body_limit_bytes": 1024}),
        ))
        .await
        .unwrap();

    // A connection that never starts its TLS handshake (default deadline: 10 s).
    let mut tcp = TcpStream::connect(broker.addr).await.unwrap();
    let waited = time_to_close(&mut tcp).await;
    assert!(
        waited < Duration::from_secs(3),
        "handshake deadline: {waited:?}"
    );

    // Headers that never end (default deadline: 10 s).
    let mut client = TestClient::connect(broker.addr).await;
    let conn = client.connection();
    conn.send_raw(b"POST /pcoip-broker/xml HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let closed = conn.read_response(Duration::from_secs(10)).await;
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(3),
        "header deadline: {waited:?} {closed:?}"
    );

    // A body over the new limit (default 64 KiB).
    let mut client = TestClient::connect(broker.addr).await;
    let padding = " ".repeat(2000);
    let big = client.send(&format!("<hello/>{padding}")).await;
    assert_eq!(result_id(&big), "ERR_INVALID_MSG_FORMAT", "{}", big.text());
    assert!(
        big.text().contains("larger than 1024 bytes"),
        "{}",
        big.text()
    );
    broker.stop().await;
}

#[tokio::test]
async fn the_connection_cap_takes_effect_on_reload() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(simple_settings(agent.addr)).await;
    broker
        .running
        .reload(with(&agent, "server", json!({"max_connections": 2})))
        .await
        .unwrap();
    // The cap shrinks as permits come free; give the shrinking task its turn.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut held = vec![
        TestClient::connect(broker.addr).await,
        TestClient::connect(broker.addr).await,
    ];
    for client in &mut held {
        client.send(&msg::probe()).await;
    }
    // A third connection waits in the backlog: its handshake does not complete.
    let third = tokio::spawn(TestClient::connect(broker.addr));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!third.is_finished(), "a third connection was served");
    // One closes: the third is served.
    held.pop();
    let mut third = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert!(
        third
            .send(&msg::probe())
            .await
            .text()
            .contains("<hello-resp>")
    );

    // A larger cap admits more at once.
    broker
        .running
        .reload(with(&agent, "server", json!({"max_connections": 10})))
        .await
        .unwrap();
    let mut more = Vec::new();
    for _ in 0..5 {
        let mut client =
            tokio::time::timeout(Duration::from_secs(5), TestClient::connect(broker.addr))
                .await
                .expect("admitted under the larger cap");
        client.send(&msg::probe()).await;
        more.push(client);
    }
    broker.stop().await;
}

#[tokio::test]
async fn the_shutdown_grace_takes_effect_on_reload() {
    let agent = FakeAgent::start(AgentBehaviour::Hang).await;
    let broker = TestBroker::start(simple_settings(agent.addr)).await;
    let mut settings = simple_settings(agent.addr);
    settings["server"] = json!({"shutdown_grace_ms": 200});
    settings["agent"]["timeout_ms"] = json!(60_000);
    broker.running.reload(parse(&settings)).await.unwrap();

    // An allocation that waits on a hanging agent for up to a minute.
    let mut client = TestClient::connect(broker.addr).await;
    let desktop = client.log_in("kolmogorov", PASSWORD).await;
    let in_flight = tokio::spawn(async move {
        let _ = client.send(&msg::allocate(&desktop)).await;
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    broker.stop().await;
    let waited = started.elapsed();
    in_flight.abort();
    assert!(
        waited < Duration::from_secs(3),
        "shutdown waited {waited:?} (grace 200 ms; default 10 s)"
    );
}

#[tokio::test]
async fn keys_read_at_start_are_named_by_the_reload() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(simple_settings(agent.addr)).await;
    let mut settings = simple_settings(agent.addr);
    settings["server"] = json!({"port": 1, "host": "127.0.0.9"});
    settings["logging"] = json!({"level": "DEBUG", "format": "json"});
    settings["admin"] = json!({"listen": "127.0.0.1:1", "token": "t"});
    settings["mapper"]["limits"] = json!({"max_concurrent_calls": 3});
    let mut parsed = parse(&settings);
    parsed.mapper.cache_dir = Some(std::env::temp_dir().join("interstate-elsewhere"));
    let report = broker.running.reload(parsed).await.unwrap();
    assert_eq!(
        report.restart_required,
        [
            "server.host",
            "server.port",
            "logging.level",
            "logging.format",
            "admin.listen",
            "admin.token",
            "mapper.cache_dir",
            "mapper.limits.max_concurrent_calls",
        ]
    );
    // The rest of the reload applied, and the broker keeps serving where it was.
    let mut client = TestClient::connect(broker.addr).await;
    client.log_in("kolmogorov", PASSWORD).await;
    let unchanged = broker.running.reload(parse(&settings)).await.unwrap();
    // Compared with what the process started with, not with the last reload.
    assert_eq!(unchanged.restart_required.len(), 7, "cache_dir is back");
    broker.stop().await;
}

/// The keys a configuration generation is built from: the mapper's settings, the agent client,
/// and what the service reads per request.
#[tokio::test]
async fn generation_keys_take_effect_on_reload() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let other_agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(simple_settings(agent.addr)).await;

    let mut settings = simple_settings(agent.addr);
    settings["mapper"]["settings"]["domains"] = json!(["RELOADED"]);
    settings["server"] = json!({"broker_name": "Reloaded", "fallback_sessions": true});
    settings["agent"]["port"] = json!(other_agent.addr.port());
    broker.running.reload(parse(&settings)).await.unwrap();

    // mapper.settings and server.broker_name: what hello-resp says.
    let mut client = TestClient::connect(broker.addr).await;
    let hello = client.send(&msg::probe()).await.text();
    assert!(hello.contains("<domain>RELOADED</domain>"), "{hello}");
    assert!(
        hello.contains("<product-name>Reloaded</product-name>"),
        "{hello}"
    );

    // server.fallback_sessions: a client that drops the cookie is found by its log id.
    client.send_cookie = false;
    let desktop = client.log_in("kolmogorov", PASSWORD).await;

    // agent.port: the launch goes to the other agent.
    let allocated = client.send(&msg::allocate(&desktop)).await;
    assert_eq!(
        result_id(&allocated),
        "ALLOC_SUCCESSFUL",
        "{}",
        allocated.text()
    );
    assert!(
        other_agent.last().is_some(),
        "the reloaded agent port was not used"
    );
    assert!(agent.last().is_none(), "the old agent port was used");
    broker.stop().await;
}

/// The agent client's keys, the broker's host name, and the mapper's memory limit after a reload.
#[tokio::test]
async fn agent_keys_host_name_and_mapper_limits_take_effect_on_reload() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(simple_settings(agent.addr)).await;

    let mut settings = simple_settings(agent.addr);
    settings["agent"]["license_path"] = json!("27000@licenses.example.com");
    settings["agent"]["timeout_ms"] = json!(300);
    settings["server"] = json!({"hostname": "broker-7.example.com"});
    broker.running.reload(parse(&settings)).await.unwrap();

    // server.hostname: what hello-resp says.
    let mut client = TestClient::connect(broker.addr).await;
    let hello = client.send(&msg::probe()).await.text();
    assert!(
        hello.contains("<hostname>broker-7.example.com</hostname>"),
        "{hello}"
    );

    // agent.license_path: sent in launch-session.
    let desktop = client.log_in("kolmogorov", PASSWORD).await;
    let allocated = client.send(&msg::allocate(&desktop)).await;
    assert_eq!(result_id(&allocated), "ALLOC_SUCCESSFUL");
    assert_eq!(
        agent
            .last()
            .and_then(|launch| launch.license_path)
            .as_deref(),
        Some("27000@licenses.example.com")
    );

    // agent.timeout_ms: a hanging agent is given up on after 0.3 s (the old deadline was 2 s).
    agent.set(AgentBehaviour::Hang);
    let mut client = TestClient::connect(broker.addr).await;
    let desktop = client.log_in("kolmogorov", PASSWORD).await;
    let started = Instant::now();
    let refused = client.send(&msg::allocate(&desktop)).await;
    let waited = started.elapsed();
    assert_eq!(result_id(&refused), "ALLOC_FAILED_TO_ALLOCATE_AGENT");
    assert!(
        refused.text().contains("within 0.3 s"),
        "{}",
        refused.text()
    );
    assert!(waited < Duration::from_millis(1500), "{waited:?}");

    // mapper.limits.memory_mb: the new mapper is loaded under the new limit (1 MiB is too
    // little for it), so the reload is refused and the old configuration keeps serving.
    let mut tiny = simple_settings(agent.addr);
    tiny["mapper"]["limits"] = json!({"memory_mb": 1});
    let refused = broker.running.reload(parse(&tiny)).await;
    assert!(refused.is_err(), "a 1 MiB mapper loaded");
    agent.set(AgentBehaviour::Succeed);
    let mut client = TestClient::connect(broker.addr).await;
    client.log_in("kolmogorov", PASSWORD).await;
    broker.stop().await;
}
