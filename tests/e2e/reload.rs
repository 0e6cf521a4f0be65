//! Hot reload: settings, mapper and certificate swap atomically under load; sessions survive; a
//! bad configuration is refused and the old one keeps serving.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use interstate::settings::Settings;
use interstate_tests::broker::simple_settings;
use interstate_tests::pcoip::{flow, result_id};
use interstate_tests::{AgentBehaviour, FakeAgent, PASSWORD, TestBroker, TestClient, msg};
use interstate_tools::xml::element_text;
use serde_json::Value;

fn parse(settings: &Value) -> Settings {
    let mut settings = settings.clone();
    settings["mapper"]["cache_dir"] = Value::String(
        interstate_tests::component_cache_dir()
            .display()
            .to_string(),
    );
    interstate_tests::broker::with_test_dirs(&mut settings);
    Settings::parse(&settings.to_string(), Path::new("reload.json")).unwrap()
}

fn variant(agent: std::net::SocketAddr, name: &str, from_file: bool) -> Value {
    let mut settings = simple_settings(agent);
    settings["server"] = serde_json::json!({"broker_name": name});
    if from_file {
        let wasm = interstate_mapper::testing::simple_mapper_path();
        settings["mapper"]["plugin"] = Value::String(wasm.display().to_string());
    }
    settings
}

async fn broker_name(addr: std::net::SocketAddr) -> String {
    let mut client = TestClient::connect(addr).await;
    let hello = client.send(&msg::probe()).await;
    element_text(&hello.text(), "product-name").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_during_two_hundred_flows() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(variant(agent.addr, "Even", false)).await;
    let addr = broker.addr;

    // A session from before the reloads must still work after them.
    let mut early = TestClient::connect(addr).await;
    early.send(&msg::hello()).await;

    const FLOWS: usize = 200;
    let claimed = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let claimed = claimed.clone();
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while claimed.fetch_add(1, Ordering::Relaxed) < FLOWS {
                if let Err(e) = flow(addr, "kolmogorov", PASSWORD).await {
                    failures.push(e);
                }
            }
            failures
        }));
    }
    let running = broker.running.clone();
    let reloads = tokio::spawn(async move {
        for i in 0..20 {
            let settings = variant(
                agent.addr,
                if i % 2 == 0 { "Odd" } else { "Even" },
                i % 2 == 0,
            );
            running.reload(parse(&settings)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut failures = Vec::new();
    for worker in workers {
        failures.extend(worker.await.unwrap());
    }
    reloads.await.unwrap();
    assert!(
        failures.is_empty(),
        "{} failed flows, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert!(agent.received.lock().unwrap().len() >= FLOWS);
    assert_eq!(
        broker_name(addr).await,
        "Even",
        "the last reload is in force"
    );

    let auth = early
        .send(&msg::authenticate("kolmogorov", PASSWORD, None))
        .await;
    assert_eq!(
        result_id(&auth),
        "AUTH_SUCCESSFUL_AND_COMPLETE",
        "sessions survive reloads"
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_is_refused_and_the_old_one_serves() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(variant(agent.addr, "Good", false)).await;
    let mut bad = variant(agent.addr, "Bad", false);
    bad["mapper"]["settings"]["password_hash"] = Value::from(42);
    let err = broker
        .running
        .reload(parse(&bad))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("password_hash"), "the mapper's reason: {err}");
    let mut missing = variant(agent.addr, "Bad", false);
    missing["mapper"]["plugin"] = Value::String("/nonexistent/mapper.wasm".into());
    let err = broker
        .running
        .reload(parse(&missing))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/mapper.wasm"), "{err}");
    assert_eq!(broker_name(broker.addr).await, "Good");
    flow(broker.addr, "kolmogorov", PASSWORD).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_reload_for_new_connections_only() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(variant(agent.addr, "Cert", false)).await;
    let mut before = TestClient::connect(broker.addr).await;
    let first = before.send(&msg::probe()).await.peer_fingerprint.unwrap();

    // A reload without certificate files keeps the generated certificate.
    broker
        .running
        .reload(parse(&variant(agent.addr, "Cert", false)))
        .await
        .unwrap();
    let mut same = TestClient::connect(broker.addr).await;
    assert_eq!(
        same.send(&msg::probe()).await.peer_fingerprint.unwrap(),
        first
    );

    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.path().join("c.pem"), certified.cert.pem()).unwrap();
    std::fs::write(
        dir.path().join("k.pem"),
        certified.signing_key.serialize_pem(),
    )
    .unwrap();
    let mut with_files = variant(agent.addr, "Cert", false);
    with_files["server"]["cert"] = Value::String(dir.path().join("c.pem").display().to_string());
    with_files["server"]["key"] = Value::String(dir.path().join("k.pem").display().to_string());
    broker.running.reload(parse(&with_files)).await.unwrap();

    let mut after = TestClient::connect(broker.addr).await;
    let second = after.send(&msg::probe()).await.peer_fingerprint.unwrap();
    let expected: [u8; 32] =
        <sha2::Sha256 as sha2::Digest>::digest(certified.cert.der().as_ref()).into();
    assert_eq!(second, expected, "new connections get the new certificate");
    // The connection made before keeps working on its own TLS session.
    assert!(
        before
            .send(&msg::probe())
            .await
            .text()
            .contains("<hello-resp>")
    );
    broker.stop().await;
}
