//! Load on the operator feed through the broker (ignored by default; run with
//! `cargo test -p interstate-tests --test e2e operator_load -- --ignored --nocapture`):
//! 1,000 websocket subscribers while PCoIP flows run, event delivery latency from the broker's
//! publish (the event's `timestamp`) to each subscriber's receipt, the broker's CPU with and
//! without subscribers, and a subscriber that never reads.
//!
//! The measurement is kept fair to the broker: the PCoIP clients and the websocket subscribers
//! run on runtimes of their own threads (named [`FLOW_THREAD`] and [`CLIENT_THREAD`]), whose CPU
//! is read per thread from /proc and reported apart from the broker's; subscribers do minimal
//! work per frame (they find the top-level `timestamp` without parsing the JSON).
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

use crate::operator::{Admin, TOKEN, operator_settings};

const SUBSCRIBERS: usize = 1_000;
const FLOWS: usize = 100;
const WORKERS: usize = 4;
/// What the frame ending a reader's measurement contains.
const DONE: &str = "\"load_done\":true";
/// Name of the threads running the websocket subscribers.
const CLIENT_THREAD: &str = "feed-client";
/// Name of the threads running the PCoIP clients.
const FLOW_THREAD: &str = "pcoip-client";

/// CPU time (user + system) of a /proc `stat` line.
fn stat_cpu(stat: &str) -> Option<(String, Duration)> {
    let (head, tail) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = tail.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((name, Duration::from_millis(ticks * 10)))
}

/// CPU time of this process and of its threads named [`CLIENT_THREAD`] and [`FLOW_THREAD`].
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    process: Duration,
    subscribers: Duration,
    flows: Duration,
}

impl Cpu {
    fn now() -> Self {
        let process = stat_cpu(&std::fs::read_to_string("/proc/self/stat").unwrap())
            .unwrap()
            .1;
        let mut cpu = Self {
            process,
            ..Self::default()
        };
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            match stat_cpu(&stat) {
                Some((name, used)) if name == CLIENT_THREAD => cpu.subscribers += used,
                Some((name, used)) if name == FLOW_THREAD => cpu.flows += used,
                _ => {}
            }
        }
        cpu
    }

    /// The broker's share: everything but the client threads.
    fn broker(self) -> Duration {
        self.process.saturating_sub(self.subscribers + self.flows)
    }

    fn since(self, earlier: Self) -> Self {
        Self {
            process: self.process.saturating_sub(earlier.process),
            subscribers: self.subscribers.saturating_sub(earlier.subscribers),
            flows: self.flows.saturating_sub(earlier.flows),
        }
    }
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

/// A runtime on one thread called `name`, for clients kept apart from the broker.
fn client_runtime(name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .unwrap()
}

/// The publish time of a one-event live frame, found without parsing the JSON: the last
/// `"timestamp":"` (the top-level key follows `message` whether keys are sorted or inserted).
fn live_timestamp(text: &str) -> Option<Timestamp> {
    const KEY: &str = "\"timestamp\":\"";
    if text.contains("\"catchup\":true") {
        return None;
    }
    let at = text.rfind(KEY)? + KEY.len();
    let rest = &text[at..];
    Timestamp::parse_iso(&rest[..rest.find('"')?])
}

/// Flows started per second, from `OPERATOR_LOAD_FLOWS_PER_SEC`; 0 (the default) runs them
/// back to back on every worker, which saturates the cores and so measures backlog.
fn flow_rate() -> f64 {
    std::env::var("OPERATOR_LOAD_FLOWS_PER_SEC")
        .ok()
        .and_then(|rate| rate.parse::<f64>().ok())
        .filter(|rate| rate.is_finite() && *rate >= 0.0)
        .unwrap_or(0.0)
}

/// Runs [`FLOWS`] flows on [`WORKERS`] workers of `clients` (paced at `rate` per second unless
/// 0); returns the wall time.
async fn run_flows(
    clients: &tokio::runtime::Handle,
    addr: std::net::SocketAddr,
    rate: f64,
) -> Duration {
    let started = tokio::time::Instant::now();
    let claimed = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let claimed = claimed.clone();
        workers.push(clients.spawn(async move {
            loop {
                let index = claimed.fetch_add(1, Ordering::Relaxed);
                if index >= FLOWS as u64 {
                    break;
                }
                if rate > 0.0 {
                    tokio::time::sleep_until(
                        started + Duration::from_secs_f64(index as f64 / rate),
                    )
                    .await;
                }
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
    started.elapsed()
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
    let admin = Arc::new(Admin::start(&broker, Some(TOKEN)).await);
    let flows = client_runtime(FLOW_THREAD);
    let subscribers = client_runtime(CLIENT_THREAD);

    // Warm up, then the baseline without subscribers.
    let rate = flow_rate();
    run_flows(flows.handle(), broker.addr, rate).await;
    let cpu = Cpu::now();
    let wall_0 = run_flows(flows.handle(), broker.addr, rate).await;
    let cpu_0 = Cpu::now().since(cpu);

    // 1,000 subscribers on the sessions channel, on their own thread, each recording latencies.
    let latencies = Arc::new(Mutex::new(Vec::<i64>::with_capacity(
        SUBSCRIBERS * FLOWS * 6,
    )));
    let received = Arc::new(AtomicU64::new(0));
    let connected = {
        let admin = admin.clone();
        let latencies = latencies.clone();
        let received = received.clone();
        subscribers.spawn(async move {
            let mut readers = Vec::new();
            for i in 0..SUBSCRIBERS {
                let mut subscriber = admin.subscribe(&format!("load-{i}"), &["sessions"]).await;
                let latencies = latencies.clone();
                let received = received.clone();
                readers.push(tokio::spawn(async move {
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
                    let mut mine = Vec::with_capacity(FLOWS * 6);
                    while let Ok(Some(Ok(frame))) =
                        tokio::time::timeout_at(deadline, subscriber.socket_mut().next()).await
                    {
                        let Ok(text) = frame.to_text() else { continue };
                        if text.contains(DONE) {
                            break;
                        }
                        if let Some(ts) = live_timestamp(text) {
                            mine.push(now_micros() - ts.micros());
                            received.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    latencies.lock().unwrap().extend(mine);
                }));
            }
            readers
        })
    };
    let readers = tokio::time::timeout(Duration::from_secs(120), connected)
        .await
        .expect("subscribers connect")
        .unwrap();
    // A subscriber that never reads.
    let slow = admin.subscribe("slow", &["sessions"]).await;

    // CPU until the last subscriber has its last event, so delivery lagging behind the flows
    // is counted too.
    let cpu = Cpu::now();
    let phase = Instant::now();
    let wall_1 = run_flows(flows.handle(), broker.addr, rate).await;
    // Readers stop at this marker, published after the last flow's events.
    let done = serde_json::json!([
        {"channel": "sessions", "user": "load", "message": {"load_done": true}}
    ])
    .to_string();
    let (status, answer) = admin.signed("POST", "/feed/message", done.as_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    for reader in readers {
        tokio::time::timeout(Duration::from_secs(60), reader)
            .await
            .expect("every subscriber got its events")
            .unwrap();
    }
    let delivered = phase.elapsed();
    let cpu_1 = Cpu::now().since(cpu);
    let mut all = latencies.lock().unwrap().clone();
    all.sort_unstable();
    let (p50, p99, max) = (
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(0),
    );
    let stats = broker.running.broker.events().feed().unwrap().stats();
    let per_flow = |cpu: Duration| cpu.as_secs_f64() * 1000.0 / FLOWS as f64;
    println!(
        "operator_load: {SUBSCRIBERS} subscribers, {FLOWS} flows/phase on {WORKERS} workers, {}\n\
         operator_load: events received {} (every `sessions` event of the flows)\n\
         operator_load: delivery latency publish→receipt p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms\n\
         operator_load: without subscribers: {:?} wall; broker CPU {:?} ({:.2} ms/flow), PCoIP clients {:?}\n\
         operator_load: with subscribers:    {:?} wall, last event at {:?}; broker CPU {:?} ({:.2} ms/flow), PCoIP clients {:?}, websocket clients {:?}\n\
         operator_load: feed frames delivered {}, slow consumers closed {}",
        if rate > 0.0 {
            format!("{rate} flows/s")
        } else {
            "back to back".to_owned()
        },
        received.load(Ordering::Relaxed),
        p50 as f64 / 1000.0,
        p99 as f64 / 1000.0,
        max as f64 / 1000.0,
        wall_0,
        cpu_0.broker(),
        per_flow(cpu_0.broker()),
        cpu_0.flows,
        wall_1,
        delivered,
        cpu_1.broker(),
        per_flow(cpu_1.broker()),
        cpu_1.flows,
        cpu_1.subscribers,
        stats.frames_delivered,
        stats.slow_consumers,
    );
    drop(slow);
    subscribers.shutdown_background();
    flows.shutdown_background();
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
