//! Bounded load test: 1,000 websocket subscribers on loopback in one channel; measures delivery
//! latency from the `Feed::publish` call to receipt by each subscriber (p50/p99/max).
//!
//! Run: `cargo bench -p interstate-feed --bench fanout` (env `FEED_SUBSCRIBERS`, `FEED_EVENTS`
//! and `FEED_INTERVAL_MS` override the defaults of 1000, 200 and 5 ms). Bounded in count and in time (each phase has a
//! deadline and the whole run aborts after 120 s).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark harness")]
#![allow(missing_docs, reason = "benchmark harness")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use hdrhistogram::Histogram;
use hyper_util::rt::TokioIo;
use interstate_feed::{AuthMode, Event, Feed, FeedConfig, Limits, Mount};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(120), run())
            .await
            .expect("load test exceeded its 120 s bound");
    });
}

async fn run() {
    let subscribers = env_or("FEED_SUBSCRIBERS", 1_000);
    let events = env_or("FEED_EVENTS", 200);
    let interval_ms = env_or("FEED_INTERVAL_MS", 5);
    let mut config = FeedConfig::new("bench", vec![b"bench-secret".to_vec()]);
    config.mounts = vec![Mount::new("/", AuthMode::Strict)];
    config.limits = Limits {
        subscriber_queue: 4_096,
        ..Limits::default()
    };
    let feed = Feed::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::clone(&feed);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let feed = Arc::clone(&served);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let feed = Arc::clone(&feed);
                    async move { Ok::<_, std::convert::Infallible>(feed.handle(request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });

    // Mint through the strict REST API, then bind each socket.
    let started = Instant::now();
    let mut sockets = Vec::with_capacity(subscribers);
    for index in 0..subscribers {
        let body = json!({"username": format!("op{index}"), "channels": ["sessions"]}).to_string();
        let conn_id = connect(addr, &feed, &body).await;
        let url = format!("ws://{addr}/ws?conn_id={conn_id}");
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        sockets.push(socket);
    }
    println!(
        "connected {subscribers} websocket subscribers in {:.2} s",
        started.elapsed().as_secs_f64()
    );

    // Each reader records (event index, receive instant).
    let origin = Instant::now();
    let mut readers = Vec::with_capacity(subscribers);
    for mut socket in sockets {
        readers.push(tokio::spawn(async move {
            let mut received = Vec::with_capacity(events);
            while received.len() < events {
                let Some(Ok(message)) = socket.next().await else {
                    break;
                };
                if let Message::Text(text) = message {
                    let frame: Value = serde_json::from_str(&text).unwrap();
                    for event in frame.as_array().unwrap() {
                        if let Some(n) = event["message"]["n"].as_u64() {
                            received.push((n, origin.elapsed()));
                        }
                    }
                }
            }
            received
        }));
    }

    // Publish at a steady rate; remember when each publish call started.
    let mut published = Vec::with_capacity(events);
    let mut publish_call = Histogram::<u64>::new(3).unwrap();
    let mut ticks = tokio::time::interval(Duration::from_millis(
        u64::try_from(interval_ms).unwrap().max(1),
    ));
    for n in 0..events {
        ticks.tick().await;
        let at = origin.elapsed();
        let event = Event::new(
            "session.created",
            json!({"n": n, "session_id": format!("s{n}")}),
        );
        feed.publish("sessions", event).unwrap();
        publish_call
            .record(u64::try_from((origin.elapsed() - at).as_micros()).unwrap())
            .unwrap();
        published.push(at);
    }

    let mut latency = Histogram::<u64>::new(3).unwrap();
    let mut delivered = 0_usize;
    for reader in readers {
        let received = tokio::time::timeout(Duration::from_secs(60), reader)
            .await
            .expect("a subscriber did not receive every event in time")
            .unwrap();
        delivered += received.len();
        for (n, at) in received {
            let sent = published[usize::try_from(n).unwrap()];
            latency
                .record(u64::try_from(at.saturating_sub(sent).as_micros()).unwrap())
                .unwrap();
        }
    }
    let stats = feed.stats();
    println!(
        "publish interval: {interval_ms} ms ({} events/s)",
        1_000 / interval_ms.max(1)
    );
    println!(
        "published {events} events to {subscribers} subscribers: {delivered} deliveries (expected {}), slow consumers closed: {}",
        events * subscribers,
        stats.slow_consumers
    );
    println!(
        "delivery latency publish->receipt: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latency.value_at_quantile(0.50) as f64 / 1_000.0,
        latency.value_at_quantile(0.99) as f64 / 1_000.0,
        latency.max() as f64 / 1_000.0
    );
    println!(
        "publish call (fan-out to {subscribers} queues): p50 {} us, p99 {} us, max {} us",
        publish_call.value_at_quantile(0.50),
        publish_call.value_at_quantile(0.99),
        publish_call.max()
    );
    assert_eq!(
        delivered,
        events * subscribers,
        "every subscriber got every event"
    );
}

async fn connect(addr: std::net::SocketAddr, feed: &Feed, body: &str) -> String {
    use http_body_util::{BodyExt as _, Full};
    use sha2::Digest as _;
    let value = format!(
        "POST /connect {}",
        hex::encode(sha2::Sha256::digest(body.as_bytes()))
    );
    let token = feed.sign(&value).unwrap();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::post("/connect")
        .header("host", "127.0.0.1")
        .header("x-channelstream-secret", token)
        .body(Full::new(bytes::Bytes::from(body.to_owned())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    value["conn_id"].as_str().unwrap().to_owned()
}
