//! Trust on first use, the default `agent.tls.verify`: the first certificate an agent presents
//! is pinned; a spoofer at the same address with another certificate never sees
//! `launch-session` (so never the password), the allocation fails cleanly and the refusal is
//! counted; the operator's word on the admin listener lets a re-keyed agent in.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use interstate::app::Reloader;
use interstate::store::pin_key;
use interstate_tests::broker::simple_settings;
use interstate_tests::pcoip::flow;
use interstate_tests::{AgentBehaviour, FakeAgent, PASSWORD, TestBroker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends one admin request, returns the status line and body.
async fn admin(addr: std::net::SocketAddr, method: &str, target: &str, token: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofing_agent_with_another_certificate_never_sees_the_password() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let agent_addr = agent.addr;
    // No `agent.tls` at all: the default is trust on first use.
    let broker = TestBroker::start(simple_settings(agent_addr)).await;
    let stats = &broker.running.broker.stats();

    // (a) The first allocation pins the agent's certificate and succeeds.
    flow(broker.addr, "kolmogorov", PASSWORD)
        .await
        .expect("the first certificate is trusted");
    assert_eq!(agent.received.lock().unwrap().len(), 1);
    let key = pin_key(&agent_addr.ip().to_string(), agent_addr.port());
    let first_pin = broker
        .running
        .pins
        .pin(&key)
        .await
        .expect("the memory store answers")
        .expect("pinned");
    // The same agent again: same certificate, accepted.
    flow(broker.addr, "kolmogorov", PASSWORD)
        .await
        .expect("the pinned certificate is accepted");
    assert_eq!(agent.received.lock().unwrap().len(), 2);

    // (b) The same address now answered by a spoofer with its own certificate.
    drop(agent);
    let spoofer = FakeAgent::start_at(agent_addr, AgentBehaviour::Succeed).await;
    let err = flow(broker.addr, "kolmogorov", PASSWORD)
        .await
        .expect_err("a different certificate is refused");
    assert!(err.contains("ALLOC_FAILED_TO_ALLOCATE_AGENT"), "{err}");
    assert!(
        spoofer.received.lock().unwrap().is_empty(),
        "the spoofer never received launch-session, so never the password"
    );
    assert_eq!(stats.agent_certificate_refused.load(Ordering::Relaxed), 1);
    assert_eq!(
        broker
            .running
            .pins
            .pin(&key)
            .await
            .expect("the memory store answers"),
        Some(first_pin),
        "a refused certificate does not replace the pin"
    );
    let metrics = interstate::admin::metrics(&broker.running).await;
    assert!(
        metrics.contains("interstate_agent_certificate_refused_total 1"),
        "{metrics}"
    );

    // (c) The operator forgets the pin on the admin listener; the new certificate is pinned
    // on the next launch, which goes through.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = listener.local_addr().unwrap();
    let reloader = Reloader::new(Arc::new(|| Err("not in this test".to_owned())));
    let admin_task = tokio::spawn(interstate::admin::run(
        listener,
        broker.running.clone(),
        reloader,
        Some("secret".to_owned()),
        std::future::pending(),
    ));
    let target = format!("/agents/forget?agent={agent_addr}");
    let refused = admin(admin_addr, "POST", &target, "wrong").await;
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(
        broker
            .running
            .pins
            .pin(&key)
            .await
            .expect("the memory store answers")
            .is_some()
    );
    let answer = admin(
        admin_addr,
        "GET",
        &format!("/agents/pin?agent={agent_addr}"),
        "secret",
    )
    .await;
    assert!(answer.contains(&hex::encode(first_pin)), "{answer}");
    let answer = admin(admin_addr, "POST", &target, "secret").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("forgot the pin"), "{answer}");
    flow(broker.addr, "kolmogorov", PASSWORD)
        .await
        .expect("after the operator forgot the pin, the new certificate is pinned");
    assert_eq!(spoofer.received.lock().unwrap().len(), 1);
    let second_pin = broker
        .running
        .pins
        .pin(&key)
        .await
        .expect("the memory store answers")
        .expect("pinned again");
    assert_ne!(first_pin, second_pin);

    // `trust` pins a given fingerprint: the first certificate again, so the current agent
    // (the second certificate) is refused, and nothing reaches it.
    let answer = admin(
        admin_addr,
        "POST",
        &format!(
            "/agents/trust?agent={}&fingerprint={}",
            agent_addr,
            hex::encode(first_pin)
        ),
        "secret",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let err = flow(broker.addr, "kolmogorov", PASSWORD).await.unwrap_err();
    assert!(err.contains("ALLOC_FAILED_TO_ALLOCATE_AGENT"), "{err}");
    assert_eq!(spoofer.received.lock().unwrap().len(), 1);
    assert_eq!(stats.agent_certificate_refused.load(Ordering::Relaxed), 2);

    let bad = admin(admin_addr, "POST", "/agents/forget?agent=", "secret").await;
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    admin_task.abort();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_survive_a_reload() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let agent_addr = agent.addr;
    let broker = TestBroker::start(simple_settings(agent_addr)).await;
    flow(broker.addr, "kolmogorov", PASSWORD).await.unwrap();
    broker
        .running
        .reload(interstate_tests::broker::parse_settings(&simple_settings(
            agent_addr,
        )))
        .await
        .unwrap();
    drop(agent);
    let spoofer = FakeAgent::start_at(agent_addr, AgentBehaviour::Succeed).await;
    let err = flow(broker.addr, "kolmogorov", PASSWORD).await.unwrap_err();
    assert!(err.contains("ALLOC_FAILED_TO_ALLOCATE_AGENT"), "{err}");
    assert!(spoofer.received.lock().unwrap().is_empty());
    broker.stop().await;
}
