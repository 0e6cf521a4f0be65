//! Load on the operator feed through the broker (ignored by default; run with
//! `cargo test -p interstate-tests --test e2e operator_load -- --ignored --nocapture`):
//! 1,000 websocket subscribers while PCoIP flows run, event delivery latency from the broker's
//! publish (the event's `timestamp`) to each subscriber's receipt, process CPU with and without
//! subscribers, and a subscriber that never reads.
//!
//! Bounded: 1,000 subscribers, [`FLOWS`] flows per phase, every wait under a deadline. The only
//! timing asserted is a generous upper bound on the p99 (the goal is 50 ms).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use interstate_feed::Timestamp;
use interstate_tests::pcoip::flow;
use interstate_tests::{AgentBehaviour, FakeAgent, PASSWORD, TestBroker};
use serde_json::Value;

use crate::operator::{Admin, TOKEN, operator_settings};

const SUBSCRIBERS: usize = 1_000;
const FLOWS: usize = 100;
const WORKERS: usize = 4;

/// CPU time of this process (user + system), from /proc.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn now_micros() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

/// Runs [`FLOWS`] flows on [`WORKERS`] workers; returns the wall time and the CPU time used.
async fn run_flows(addr: std::net::SocketAddr) -> (Duration, Duration) {
    let cpu = cpu_time();
    let started = Instant::now();
    let claimed = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let claimed = claimed.clone();
        workers.push(tokio::spawn(async move {
            while claimed.fetch_add(1, Ordering::Relaxed) < FLOWS as u64 {
                flow(addr, "kolmogorov", PASSWORD).await.unwrap();
            }
        }));
    }
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(120), worker)
            .await
            .expect("flows finish")
            .unwrap();
    }
    (started.elapsed(), cpu_time() - cpu)
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load measurement; run explicitly"]
async fn a_thousand_subscribers_while_flows_run() {
    let dir = tempfile::tempdir().unwrap();
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut settings = operator_settings(agent.addr, &dir.path().join("audit.jsonl"), false);
    // Concurrent logins of one test user are not failures to limit here.
    settings["security"] =
        serde_json::json!({"auth_failures_per_user": 1000, "auth_failures_per_address": 1000});
    let broker = TestBroker::start(settings).await;
    let admin = Admin::start(&broker, Some(TOKEN)).await;

    // Warm up, then the baseline without subscribers.
    run_flows(broker.addr).await;
    let (wall_0, cpu_0) = run_flows(broker.addr).await;

    // 1,000 subscribers on the sessions channel, each recording latencies.
    let latencies = Arc::new(Mutex::new(Vec::<i64>::with_capacity(
        SUBSCRIBERS * FLOWS * 6,
    )));
    let received = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for i in 0..SUBSCRIBERS {
        let mut subscriber = admin.subscribe(&format!("load-{i}"), &["sessions"]).await;
        let latencies = latencies.clone();
        let received = received.clone();
        readers.push(tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
            let mut mine = Vec::new();
            while let Ok(Some(Ok(frame))) =
                tokio::time::timeout_at(deadline, subscriber.socket_mut().next()).await
            {
                let Ok(text) = frame.to_text() else { continue };
                let now = now_micros();
                let Ok(Value::Array(batch)) = serde_json::from_str::<Value>(text) else {
                    continue;
                };
                for event in batch {
                    if event["catchup"] == true {
                        continue;
                    }
                    if let Some(ts) = event["timestamp"].as_str().and_then(Timestamp::parse_iso) {
                        mine.push(now - ts.micros());
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if mine.len() >= FLOWS * 2 {
                    break;
                }
            }
            latencies.lock().unwrap().extend(mine);
        }));
    }
    // A subscriber that never reads.
    let slow = admin.subscribe("slow", &["sessions"]).await;

    let (wall_1, cpu_1) = run_flows(broker.addr).await;
    for reader in readers {
        tokio::time::timeout(Duration::from_secs(60), reader)
            .await
            .expect("every subscriber got its events")
            .unwrap();
    }
    let mut all = latencies.lock().unwrap().clone();
    all.sort_unstable();
    let (p50, p99, max) = (
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(0),
    );
    let stats = broker.running.broker.events().feed().unwrap().stats();
    println!(
        "operator_load: {SUBSCRIBERS} subscribers, {FLOWS} flows/phase on {WORKERS} workers\n\
         operator_load: events received {} (each flow: created + ended on `sessions`)\n\
         operator_load: delivery latency publish→receipt p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms\n\
         operator_load: without subscribers: {:?} wall, {:?} CPU ({:.1} ms CPU/flow)\n\
         operator_load: with subscribers:    {:?} wall, {:?} CPU ({:.1} ms CPU/flow, subscribers' reading included)\n\
         operator_load: feed frames delivered {}, slow consumers closed {}",
        received.load(Ordering::Relaxed),
        p50 as f64 / 1000.0,
        p99 as f64 / 1000.0,
        max as f64 / 1000.0,
        wall_0,
        cpu_0,
        cpu_0.as_secs_f64() * 1000.0 / FLOWS as f64,
        wall_1,
        cpu_1,
        cpu_1.as_secs_f64() * 1000.0 / FLOWS as f64,
        stats.frames_delivered,
        stats.slow_consumers,
    );
    drop(slow);
    assert!(
        all.len() >= SUBSCRIBERS * FLOWS * 2 * 9 / 10,
        "{} latencies",
        all.len()
    );
    assert!(
        p99 < 1_000_000,
        "p99 {p99} us: delivery within a second at worst"
    );
}
