//! A feed subscriber that stops reading, through the broker's admin listener: its bounded queue
//! fills, the feed closes it as a slow consumer, and neither the broker's PCoIP clients nor
//! another subscriber wait for it.
//!
//! Bounded: at most [`MAX_CALLS`] × [`PER_CALL`] events, at most [`MAX_FLOWS`] flows, every wait
//! under a deadline; loopback only.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use interstate_tests::pcoip::flow;
use interstate_tests::{AgentBehaviour, FakeAgent, PASSWORD, TestBroker};
use serde_json::{Value, json};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

use crate::operator::{Admin, TOKEN, operator_settings};

/// Events per `POST /feed/message` call (under the body limit with [`PAD`]).
const PER_CALL: usize = 200;
/// Most publishing calls.
const MAX_CALLS: usize = 40;
/// Padding per event, so the slow subscriber's socket fills quickly.
const PAD: usize = 800;
/// Most flows run while publishing.
const MAX_FLOWS: usize = 50;
/// The generous bound on one PCoIP flow while the feed is loaded.
const FLOW_BOUND: Duration = Duration::from_secs(5);

/// A subscriber whose socket has a small receive buffer and which is not read.
async fn stalled_subscriber(
    admin: &Admin,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let body = json!({"username": "stalled", "channels": ["load"]}).to_string();
    let (status, answer) = admin.signed("POST", "/feed/connect", body.as_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    let conn_id = serde_json::from_str::<Value>(&answer).unwrap()["conn_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(admin.addr).await.unwrap();
    let url = format!("ws://{}/feed/ws?conn_id={conn_id}", admin.addr);
    tokio_tungstenite::client_async(url, stream)
        .await
        .unwrap()
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_stops_reading_is_closed_and_nobody_else_waits() {
    let dir = tempfile::tempdir().unwrap();
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut settings = operator_settings(agent.addr, &dir.path().join("audit.jsonl"), false);
    settings["security"] =
        json!({"auth_failures_per_user": 1000, "auth_failures_per_address": 1000});
    let broker = TestBroker::start(settings).await;
    let admin = Admin::start(&broker, Some(TOKEN)).await;

    let mut fast = admin.subscribe("fast", &["load"]).await;
    // The admin listener has attached the feed by now.
    let feed = broker.running.broker.events().feed().unwrap().clone();
    let mut stalled = stalled_subscriber(&admin).await;

    // The fast subscriber reads every event of `load` until the last one, checking the order.
    let reader = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut next = 0_u64;
        let mut last_seq = 0_u64;
        while let Ok(Some(Ok(frame))) =
            tokio::time::timeout_at(deadline, fast.socket_mut().next()).await
        {
            let Ok(text) = frame.to_text() else { continue };
            let Ok(Value::Array(batch)) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            for event in batch {
                let Some(n) = event["message"]["n"].as_u64() else {
                    continue;
                };
                assert_eq!(n, next, "the fast subscriber gets every event in order");
                let seq = event["seq"].as_u64().unwrap();
                assert!(seq > last_seq, "seq {seq} after {last_seq}");
                last_seq = seq;
                next += 1;
                if event["message"]["last"] == true {
                    return next;
                }
            }
        }
        next
    });

    // PCoIP flows keep running meanwhile; each must answer within the bound.
    let stop = Arc::new(AtomicBool::new(false));
    let flows = {
        let stop = stop.clone();
        let addr = broker.addr;
        tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            let mut done = 0;
            while done < MAX_FLOWS && !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                tokio::time::timeout(FLOW_BOUND, flow(addr, "kolmogorov", PASSWORD))
                    .await
                    .expect("a PCoIP flow answers while the feed is loaded")
                    .unwrap();
                slowest = slowest.max(started.elapsed());
                done += 1;
            }
            (done, slowest)
        })
    };

    // Publish through the admin listener until the stalled subscriber is closed, then once more.
    let pad = "x".repeat(PAD);
    let mut published = 0_u64;
    let mut closed_seen = false;
    for call in 0..MAX_CALLS {
        let last = call + 1 == MAX_CALLS || closed_seen;
        let messages: Vec<Value> = (0..PER_CALL)
            .map(|i| {
                let n = published + i as u64;
                let mut message = json!({"n": n, "pad": pad});
                if last && i + 1 == PER_CALL {
                    message["last"] = Value::Bool(true);
                }
                json!({"channel": "load", "user": "publisher", "message": message})
            })
            .collect();
        let body = serde_json::to_vec(&messages).unwrap();
        let (status, answer) = admin.signed("POST", "/feed/message", &body).await;
        assert_eq!(status, 200, "{answer}");
        published += PER_CALL as u64;
        if last {
            break;
        }
        closed_seen = feed.stats().slow_consumers > 0;
    }
    let closed = feed.stats().slow_consumers;
    assert_eq!(
        closed, 1,
        "the stalled subscriber was closed as a slow consumer"
    );

    let received = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the fast subscriber finishes")
        .unwrap();
    assert_eq!(received, published, "the fast subscriber got every event");
    stop.store(true, Ordering::Relaxed);
    let (flows_done, slowest) = tokio::time::timeout(Duration::from_secs(60), flows)
        .await
        .expect("flows finish")
        .unwrap();
    assert!(flows_done > 0, "flows ran while the feed was loaded");

    // The stalled subscriber now reads what its buffers held; its connection ends within a
    // bound, with the feed's close reason when the close frame got out.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut reason = None;
    let mut frames = 0_usize;
    let ended = loop {
        match tokio::time::timeout_at(deadline, stalled.next()).await {
            Err(_) => break false,
            Ok(None | Some(Err(_))) => break true,
            Ok(Some(Ok(Message::Close(frame)))) => {
                reason = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                break true;
            }
            Ok(Some(Ok(_))) => frames += 1,
        }
    };
    assert!(ended, "the server ended the stalled connection");
    if let Some((code, text)) = &reason {
        assert_eq!((*code, text.as_str()), (1008, "slow consumer"));
    }
    assert!(
        (frames as u64) < published,
        "the stalled subscriber did not get everything ({frames} frames)"
    );
    println!(
        "operator_slow: {published} events published; stalled subscriber closed after {frames} \
         frames (close frame: {reason:?}); {flows_done} flows, slowest {slowest:?}"
    );
}
