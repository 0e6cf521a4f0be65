//! Connections that hold resources without asking for anything: slowloris, idle hordes, more
//! connections than allowed, TLS handshakes that never finish.

use std::time::{Duration, Instant};

use interstate_tests::{TestClient, msg};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::raw::{self, status_line};
use super::{answer_kind, assert_still_serves, broker_with};

/// Slack on every deadline: the box has two cores and runs other builds.
const SLACK: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_slowloris_header_trickle() {
    let header_timeout = Duration::from_millis(1000);
    let (_agent, broker) = broker_with(json!({"header_timeout_ms": 1000})).await;
    let stream = raw::tls(broker.addr).await;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        let head = b"POST /pcoip-broker/xml HTTP/1.1\r\nHost: broker.example.com\r\n\
                     User-Agent: Mozilla/4.0 (compatible; MSIE 6.0)\r\nContent-Type: text/xml\r\n";
        let mut sent = 0;
        for byte in head {
            if writer.write_all(&[*byte]).await.is_err() || writer.flush().await.is_err() {
                break;
            }
            sent += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sent
    });
    let closed = raw::wait_closed(&mut reader, Duration::from_secs(30))
        .await
        .expect("the trickling connection is closed");
    let total = started.elapsed();
    let sent = trickle.await.unwrap();
    println!(
        "hostile: slowloris closed after {} ms ({sent} header bytes trickled; answer {:?})",
        total.as_millis(),
        status_line(&closed.received)
    );
    assert!(
        total >= header_timeout - Duration::from_millis(100),
        "closed before the header deadline: {total:?}"
    );
    assert!(
        total < header_timeout + SLACK,
        "a header trickle held the connection for {total:?}"
    );
    if let Some(status) = status_line(&closed.received) {
        assert!(status.starts_with("HTTP/1.1 408"), "{status}");
    }
    assert_still_serves(&broker).await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_thousands_of_idle_tls_connections() {
    const IDLE: usize = 2_000;
    const AT_ONCE: usize = 64;
    let header_timeout = Duration::from_millis(10_000);
    let (_agent, broker) = broker_with(json!({
        "max_connections": 5_000,
        "max_connections_per_address": 5_000,
        "header_timeout_ms": 10_000,
    }))
    .await;

    let started = Instant::now();
    let mut idle = Vec::with_capacity(IDLE);
    let mut opening = JoinSet::new();
    for _ in 0..IDLE {
        if opening.len() >= AT_ONCE {
            idle.push(opening.join_next().await.unwrap().unwrap());
        }
        let addr = broker.addr;
        opening.spawn(async move {
            let stream = raw::tls(addr).await;
            (stream, Instant::now())
        });
    }
    while let Some(opened) = opening.join_next().await {
        idle.push(opened.unwrap());
    }
    let opened_in = started.elapsed();
    println!(
        "hostile: {IDLE} idle TLS connections open after {} ms",
        opened_in.as_millis()
    );

    // A good client is served while they are all held.
    let flow_started = Instant::now();
    assert_still_serves(&broker).await;
    let flow_took = flow_started.elapsed();
    let last_opened = idle.iter().map(|(_, at)| *at).max().unwrap();
    assert!(
        last_opened.elapsed() < header_timeout,
        "the good flow ran while the idle connections were still held ({flow_took:?})"
    );

    // Each idle connection is closed by the header deadline.
    let mut waiting = JoinSet::new();
    for (mut stream, opened) in idle {
        waiting.spawn(async move {
            let closed = raw::wait_closed(&mut stream, header_timeout + SLACK * 3).await;
            closed.map(|_| opened.elapsed())
        });
    }
    let mut lifetimes = Vec::with_capacity(IDLE);
    while let Some(lifetime) = waiting.join_next().await {
        lifetimes.push(
            lifetime
                .unwrap()
                .expect("an idle connection outlived the header deadline"),
        );
    }
    lifetimes.sort();
    let (shortest, longest) = (lifetimes[0], lifetimes[IDLE - 1]);
    println!(
        "hostile: idle connections closed {}..{} ms after their handshake (header deadline {} ms); \
         the good flow took {} ms meanwhile",
        shortest.as_millis(),
        longest.as_millis(),
        header_timeout.as_millis(),
        flow_took.as_millis()
    );
    assert!(shortest >= header_timeout - Duration::from_millis(200));
    assert!(longest < header_timeout + SLACK * 2, "{longest:?}");
    assert_still_serves(&broker).await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_connections_beyond_the_cap_wait_without_harming_served_ones() {
    let (_agent, broker) = broker_with(json!({
        "max_connections": 3,
        "header_timeout_ms": 30_000,
    }))
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut client = TestClient::connect(broker.addr).await;
        let probe = client.send(&msg::probe()).await;
        assert_eq!(answer_kind(&probe), "hello-resp");
        held.push(client);
    }

    let addr = broker.addr;
    let waited = Instant::now();
    let mut extra = tokio::spawn(async move {
        let mut client = TestClient::connect(addr).await;
        let hello = client.send(&msg::hello()).await;
        (answer_kind(&hello), Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(
        !extra.is_finished(),
        "a fourth connection was served beyond max_connections = 3"
    );

    // The three served connections are unaffected by the one waiting.
    for client in &mut held {
        let auth = client
            .send(&msg::authenticate(
                "kolmogorov",
                interstate_tests::PASSWORD,
                None,
            ))
            .await;
        assert_eq!(answer_kind(&auth), "ERR_MISSING_SESSION");
        let hello = client.send(&msg::hello()).await;
        assert_eq!(answer_kind(&hello), "hello-resp");
    }
    assert!(!extra.is_finished());

    // A slot frees up: the waiting connection is served.
    let freed = Instant::now();
    drop(held.pop());
    let (kind, served) = tokio::time::timeout(Duration::from_secs(20), &mut extra)
        .await
        .expect("the waiting connection was served once a slot freed")
        .unwrap();
    assert_eq!(kind, "hello-resp");
    println!(
        "hostile: connection over the cap waited {} ms in all, served {} ms after a slot freed",
        waited.elapsed().as_millis(),
        served.duration_since(freed).as_millis()
    );
    assert!(served.duration_since(freed) < SLACK);
    drop(held);
    assert_still_serves(&broker).await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tls_handshakes_that_never_finish() {
    let handshake_timeout = Duration::from_millis(1000);
    let (_agent, broker) = broker_with(json!({"handshake_timeout_ms": 1000})).await;
    let hello = raw::client_hello();
    let stalls: [(&str, Vec<u8>); 3] = [
        ("TCP connect, nothing sent", Vec::new()),
        ("half a ClientHello", hello[..hello.len() / 2].to_vec()),
        ("a whole ClientHello, then silence", hello.clone()),
    ];
    let mut stalled = JoinSet::new();
    for (name, bytes) in stalls {
        let addr = broker.addr;
        stalled.spawn(async move {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(&bytes).await.unwrap();
            let closed = raw::wait_closed(&mut tcp, Duration::from_secs(30)).await;
            (name, closed)
        });
    }
    // The broker serves others while the handshakes stall.
    assert_still_serves(&broker).await;
    while let Some(result) = stalled.join_next().await {
        let (name, closed) = result.unwrap();
        let closed = closed.unwrap_or_else(|| panic!("{name}: never closed"));
        let after = closed.after;
        println!(
            "hostile: {name}: closed after {} ms ({} bytes received)",
            after.as_millis(),
            closed.received.len()
        );
        assert!(
            after >= handshake_timeout - Duration::from_millis(100),
            "{name}: closed early ({after:?})"
        );
        assert!(after < handshake_timeout + SLACK, "{name}: held {after:?}");
    }
    assert_still_serves(&broker).await;
    broker.stop().await;
}
