//! Hostile mappers behind the real broker: every misbehaviour costs only the request that hit it
//! a clean protocol failure, while 50 good flows run concurrently against the same broker.
//!
//! The hostile guest (`guest-mappers/hostile`) runs in `by-user` mode, where the user name picks
//! the behaviour, so one broker serves the good user and every hostile one at once. A looping
//! `configure` reads nothing about the user, so it is a reload of its own.
//!
//! Each case also measures the time to the failure and the good flows' latency against a
//! baseline run of the same load without the hostile request. The figures are printed for the
//! record and never asserted: only the deadline bound and correctness are.
//!
//! The cases run one at a time (a shared lock) so that the figures are not each other's noise.
//! The broker's log lines are captured on the test's own runtime threads, to check that each
//! failure was classified as what it was (an oversized answer as invalid output, and so on).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use interstate::app::StartError;
use interstate::settings::Settings;
use interstate_mapper::LoadError;
use interstate_protocol::policy::MapperError;
use interstate_tests::pcoip::{flow, result_id};
use interstate_tests::{AgentBehaviour, FakeAgent, TestBroker, TestClient, msg};
use interstate_tools::wire::WireResponse;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The brokers' mapper deadline (`mapper.limits.timeout_ms`): short, so the suite stays fast.
const DEADLINE: Duration = Duration::from_millis(1000);
/// How far past the mapper deadline a hostile request may be answered: the slack the issue
/// ("Sandbox and resilience", item 1) requires.
const SLACK: Duration = Duration::from_millis(250);
/// Good flows running while each hostile request is made.
const GOOD_FLOWS: usize = 50;
/// Linear memory per instance: enough for the guest to build its million desktops, so that the
/// host refuses them as an oversized answer rather than the guest running out of memory first.
const MEMORY_MB: u64 = 512;
/// What the broker answers for any failed mapper call: a result id every PCoIP client knows.
const SYS_FAILED: &str = "ERR_BROKER_SYS_FAILED";
/// An answer carrying a mapper's oversized output would be megabytes; a refusal is a few
/// hundred bytes.
const REFUSAL_MAX_BYTES: usize = 4096;

/// One hostile behaviour, picked by the user name.
#[derive(Debug)]
struct Case {
    /// The user name, which is also the hostile guest's mode.
    user: &'static str,
    /// The hostile request is the listing after a successful login (else it is the login).
    on_listing: bool,
    /// The broker's log line for the failure contains one of these (the `MapperError`).
    logged: &'static [&'static str],
    /// The mapper's answer was oversized: it must not reach the client.
    oversized: bool,
}

const CASES: [Case; 9] = [
    Case {
        user: "loop-authenticate",
        on_listing: false,
        logged: &["mapper call timed out after 1000 ms"],
        oversized: false,
    },
    Case {
        user: "trap",
        on_listing: false,
        logged: &["mapper trapped"],
        oversized: false,
    },
    Case {
        user: "panic",
        on_listing: false,
        logged: &["mapper trapped"],
        oversized: false,
    },
    Case {
        user: "stack-overflow",
        on_listing: false,
        logged: &["mapper trapped: stack overflow"],
        oversized: false,
    },
    Case {
        user: "grow-memory",
        on_listing: false,
        logged: &["mapper ran out of memory (limit 512 MiB)"],
        oversized: false,
    },
    Case {
        user: "huge-string",
        on_listing: false,
        logged: &["mapper answer refused: the mapper moved more than 4 MiB"],
        oversized: true,
    },
    Case {
        user: "million-desktops",
        on_listing: true,
        logged: &["mapper answer refused: the mapper moved more than 4 MiB"],
        oversized: true,
    },
    Case {
        user: "slow-http",
        on_listing: false,
        // The host's HTTP client gives up at the deadline (the guest reports the timeout), or
        // the call itself is cut: both are the deadline holding.
        logged: &["mapper call timed out after 1000 ms", "Timeout"],
        oversized: false,
    },
    Case {
        user: "forbidden-http",
        on_listing: false,
        logged: &["HttpRequestDenied"],
        oversized: false,
    },
];

// ---- the cases ------------------------------------------------------------------------------

#[test]
fn each_hostile_request_fails_alone_beside_fifty_good_flows() {
    let _one_at_a_time = serial();
    let wasm = hostile_guest();
    let logs = Logs::default();
    let _main_thread = logs.subscriber().set_default();
    logs.runtime().block_on(async {
        let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
        let slow = SlowServer::start(DEADLINE * 3).await;
        let forbidden = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let forbidden_url = format!("http://{}/forbidden", forbidden.local_addr().unwrap());
        let mut settings = broker_settings(agent.addr, &wasm, "by-user");
        settings["mapper"]["settings"]["urls"] = json!({
            "slow-http": format!("http://{}/slow", slow.addr),
            "forbidden-http": forbidden_url,
        });
        // Only the slow server's port: the forbidden listener shares its address.
        settings["mapper"]["allowed_hosts"] = json!([format!("http://{}", slow.addr)]);
        let broker = TestBroker::start(settings).await;

        let mut rows = Vec::new();
        for (index, case) in CASES.iter().enumerate() {
            let log_id = format!("00000000-0000-4000-8000-{:012x}", index + 1);
            rows.push(run_case(&broker, case, &log_id, &logs).await);
        }

        assert_eq!(
            slow.requests.load(Ordering::Relaxed),
            1,
            "slow-http reached the slow server (allowed), and was cut there"
        );
        let connected = tokio::time::timeout(Duration::from_millis(50), forbidden.accept()).await;
        assert!(
            connected.is_err(),
            "the host connected to a host that is not allowed"
        );
        print_table(&rows);
        broker.stop().await;
    });
}

#[test]
fn a_reload_to_a_looping_configure_is_refused_while_the_old_mapper_serves() {
    let _one_at_a_time = serial();
    let wasm = hostile_guest();
    let logs = Logs::default();
    let _main_thread = logs.subscriber().set_default();
    logs.runtime().block_on(async {
        let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
        let broker = TestBroker::start(broker_settings(agent.addr, &wasm, "by-user")).await;
        let addr = broker.addr;
        let baseline = GoodLoad::start(addr).finish().await;
        assert_all_good(&baseline, "baseline");

        let looping = parse(broker_settings(agent.addr, &wasm, "loop-configure"));
        let load = GoodLoad::start(addr);
        let done_at_send = load.done();
        let started = Instant::now();
        let refused = broker.running.reload(looping).await;
        let to_failure = started.elapsed();
        let done_at_answer = load.done();
        let under_attack = load.finish().await;

        let err = refused.expect_err("a mapper whose configure loops must not be swapped in");
        assert!(
            matches!(
                &err,
                StartError::Mapper {
                    source: LoadError::Call {
                        source: MapperError::Timeout(1000),
                        ..
                    },
                    ..
                }
            ),
            "refused as a configure timeout: {err}"
        );
        assert_within(to_failure, "the reload's refusal");
        assert!(
            done_at_send < GOOD_FLOWS,
            "the reload was made while good flows were in flight"
        );
        assert_all_good(&under_attack, "flows during the reload");
        assert!(
            broker
                .running
                .broker
                .current()
                .settings
                .mapper
                .settings_json
                .contains("by-user"),
            "the old mapper is still current"
        );
        flow(addr, "good", "pw")
            .await
            .expect("a fresh flow succeeds on the old mapper after the refused reload");

        print_table(&[Row {
            case: "reload loop-configure",
            answer: "reload refused".to_owned(),
            reason: err.to_string(),
            to_failure,
            done_at_send,
            done_at_answer,
            baseline: Latency::of(&baseline),
            under_attack: Latency::of(&under_attack),
        }]);
        broker.stop().await;
    });
}

/// Runs one case: a baseline load, then the same load with the hostile request beside it.
async fn run_case(broker: &TestBroker, case: &Case, log_id: &str, logs: &Logs) -> Row {
    let addr = broker.addr;
    let baseline = GoodLoad::start(addr).finish().await;
    assert_all_good(&baseline, &format!("{}: baseline", case.user));

    let load = GoodLoad::start(addr);
    let hostile = hostile_request(addr, case, log_id, &load).await;
    let done_at_answer = load.done();
    let under_attack = load.finish().await;

    let what = case.user;
    // `TestClient::send` already checked the wire rules; spelled out here because they are the
    // point: a PCoIP client treats anything but a chunked 200 as a transport failure.
    assert_eq!(hostile.answer.status, 200, "{what}");
    assert!(hostile.answer.chunked, "{what}");
    assert_eq!(
        result_id(&hostile.answer),
        SYS_FAILED,
        "{what}: {}",
        hostile.answer.text()
    );
    assert!(
        hostile.answer.text().contains("<error-resp>"),
        "{what}: {}",
        hostile.answer.text()
    );
    assert_within(hostile.to_failure, what);
    assert!(
        hostile.done_at_send < GOOD_FLOWS,
        "{what}: the hostile request was made while good flows were in flight"
    );
    if case.oversized {
        assert!(
            hostile.answer.body.len() <= REFUSAL_MAX_BYTES,
            "{what}: the oversized answer reached the client ({} bytes)",
            hostile.answer.body.len()
        );
        let text = hostile.answer.text();
        assert!(
            !text.contains("xxxxxxxx") && !text.contains("<resource-id>"),
            "{what}: mapper output in the answer: {text}"
        );
    }
    let call = if case.on_listing {
        "list-desktops"
    } else {
        "authenticate"
    };
    let line = logs.failure_for(log_id).unwrap_or_else(|| {
        panic!(
            "{what}: no `mapper call failed` line for log id {log_id}; captured:\n{}",
            logs.text()
        )
    });
    assert!(line.contains(&format!("call=\"{call}\"")), "{what}: {line}");
    assert!(
        case.logged.iter().any(|expected| line.contains(expected)),
        "{what}: expected one of {:?} in the broker's log line: {line}",
        case.logged
    );
    if !case.on_listing {
        // The failure cost only that request: the same session logs in as the good user.
        let mut client = hostile.client;
        let retry = client.send(&msg::authenticate("good", "pw", None)).await;
        assert_eq!(
            result_id(&retry),
            "AUTH_SUCCESSFUL_AND_COMPLETE",
            "{what}: the session after the failure: {}",
            retry.text()
        );
    }
    assert_all_good(&under_attack, &format!("{what}: flows beside it"));
    flow(addr, "good", "pw")
        .await
        .unwrap_or_else(|e| panic!("{what}: the broker no longer serves a fresh flow: {e}"));

    Row {
        case: case.user,
        answer: result_id(&hostile.answer),
        reason: line
            .split_once("error=")
            .map_or_else(String::new, |(_, error)| error.to_owned()),
        to_failure: hostile.to_failure,
        done_at_send: hostile.done_at_send,
        done_at_answer,
        baseline: Latency::of(&baseline),
        under_attack: Latency::of(&under_attack),
    }
}

/// The hostile request's answer and how long it took.
struct Hostile {
    /// The client, whose session saw the failure.
    client: TestClient,
    answer: WireResponse,
    to_failure: Duration,
    /// Good flows already finished when the hostile request was sent.
    done_at_send: usize,
}

/// Logs in as the hostile user (and lists, for the listing cases), timing the hostile request.
async fn hostile_request(addr: SocketAddr, case: &Case, log_id: &str, load: &GoodLoad) -> Hostile {
    let mut client = TestClient::connect(addr).await;
    client.log_id = Some(log_id.to_owned());
    let hello = client.send(&msg::hello()).await;
    assert!(hello.text().contains("<hello-resp>"), "{}", hello.text());
    let login = msg::authenticate(case.user, "pw", None);
    if case.on_listing {
        let auth = client.send(&login).await;
        assert_eq!(
            result_id(&auth),
            "AUTH_SUCCESSFUL_AND_COMPLETE",
            "{}: {}",
            case.user,
            auth.text()
        );
    }
    let request = if case.on_listing { msg::list() } else { login };
    let done_at_send = load.done();
    let started = Instant::now();
    let answer = client.send(&request).await;
    Hostile {
        client,
        answer,
        to_failure: started.elapsed(),
        done_at_send,
    }
}

// ---- the good load --------------------------------------------------------------------------

/// `GOOD_FLOWS` whole client flows (hello, login, list, allocate, bye) as user `good`, all at
/// once, each on its own connection.
struct GoodLoad {
    done: Arc<AtomicUsize>,
    flows: Vec<JoinHandle<Result<Duration, String>>>,
}

impl GoodLoad {
    fn start(addr: SocketAddr) -> Self {
        let done = Arc::new(AtomicUsize::new(0));
        let flows = (0..GOOD_FLOWS)
            .map(|_| {
                let done = Arc::clone(&done);
                tokio::spawn(async move {
                    let started = Instant::now();
                    let outcome = flow(addr, "good", "pw").await;
                    done.fetch_add(1, Ordering::Relaxed);
                    outcome.map(|_tag| started.elapsed())
                })
            })
            .collect();
        Self { done, flows }
    }

    /// How many flows have finished so far.
    fn done(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }

    /// Waits for every flow; each is its latency or what went wrong.
    async fn finish(self) -> Vec<Result<Duration, String>> {
        let mut outcomes = Vec::with_capacity(self.flows.len());
        for flow in self.flows {
            outcomes.push(
                flow.await
                    .unwrap_or_else(|e| Err(format!("flow task: {e}"))),
            );
        }
        outcomes
    }
}

fn assert_all_good(outcomes: &[Result<Duration, String>], what: &str) {
    let failures: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{what}: {} of {} good flows failed, first: {:?}",
        failures.len(),
        outcomes.len(),
        failures.first()
    );
    assert_eq!(outcomes.len(), GOOD_FLOWS);
}

fn assert_within(elapsed: Duration, what: &str) {
    assert!(
        elapsed <= DEADLINE + SLACK,
        "{what}: answered after {elapsed:?}, more than the {DEADLINE:?} deadline + {SLACK:?}"
    );
}

// ---- figures --------------------------------------------------------------------------------

/// Nearest-rank percentiles of the good flows' latencies.
#[derive(Debug, Clone, Copy)]
struct Latency {
    p50: Duration,
    p99: Duration,
}

impl Latency {
    fn of(outcomes: &[Result<Duration, String>]) -> Self {
        let mut sorted: Vec<Duration> = outcomes.iter().filter_map(|o| o.clone().ok()).collect();
        sorted.sort_unstable();
        let rank = |p: f64| {
            let n = sorted.len();
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "a rank within a list of 50"
            )]
            let index = ((p * n as f64).ceil() as usize).clamp(1, n.max(1)) - 1;
            sorted.get(index).copied().unwrap_or_default()
        };
        Self {
            p50: rank(0.50),
            p99: rank(0.99),
        }
    }
}

/// One line of the printed table.
struct Row {
    case: &'static str,
    answer: String,
    /// The broker's reason, as it logged it.
    reason: String,
    to_failure: Duration,
    done_at_send: usize,
    done_at_answer: usize,
    baseline: Latency,
    under_attack: Latency,
}

fn print_table(rows: &[Row]) {
    let ms = |d: Duration| d.as_millis();
    println!(
        "\nhostile mapper: {GOOD_FLOWS} good flows per case, mapper deadline {} ms, bound {} ms",
        ms(DEADLINE),
        ms(DEADLINE + SLACK)
    );
    println!(
        "{:<22} {:<24} {:>10} {:>14} {:>18} {:>18} {:>9}",
        "case",
        "answer",
        "to failure",
        "flows done",
        "baseline p50/p99",
        "beside p50/p99",
        "p99 ratio"
    );
    for row in rows {
        #[allow(
            clippy::cast_precision_loss,
            reason = "a ratio of two latencies for display"
        )]
        let ratio =
            row.under_attack.p99.as_micros() as f64 / row.baseline.p99.as_micros().max(1) as f64;
        println!(
            "{:<22} {:<24} {:>7} ms {:>14} {:>18} {:>18} {:>8.2}x",
            row.case,
            row.answer,
            ms(row.to_failure),
            format!("{}->{}/{GOOD_FLOWS}", row.done_at_send, row.done_at_answer),
            format!("{} / {} ms", ms(row.baseline.p50), ms(row.baseline.p99)),
            format!(
                "{} / {} ms",
                ms(row.under_attack.p50),
                ms(row.under_attack.p99)
            ),
            ratio
        );
    }
    for row in rows {
        println!("  {}: {}", row.case, row.reason);
    }
}

// ---- fixtures -------------------------------------------------------------------------------

/// One case at a time in this file, whatever the test harness's thread count.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The hostile guest, built from source (cargo is the cache). A missing wasm32-wasip2 target
/// fails here with cargo's message.
fn hostile_guest() -> PathBuf {
    interstate_mapper::testing::build_rust_guest("interstate-hostile-mapper")
        .unwrap_or_else(|err| panic!("building the hostile guest failed:\n{err}"))
}

/// A broker running the hostile guest in `mode`, its good desktop on the fake agent.
fn broker_settings(agent: SocketAddr, wasm: &Path, mode: &str) -> Value {
    json!({
        "mapper": {
            "plugin": wasm.display().to_string(),
            "settings": {"mode": mode, "agent": agent.ip().to_string()},
            "limits": {
                "timeout_ms": u64::try_from(DEADLINE.as_millis()).unwrap(),
                "memory_mb": MEMORY_MB
            }
        },
        "agent": {"port": agent.port(), "timeout_ms": 2000}
    })
}

/// Settings for `Running::reload`, with the tests' shared compile cache.
fn parse(mut settings: Value) -> Settings {
    settings["mapper"]["cache_dir"] = Value::String(
        interstate_tests::component_cache_dir()
            .display()
            .to_string(),
    );
    interstate_tests::broker::with_test_dirs(&mut settings);
    Settings::parse(&settings.to_string(), Path::new("hostile.json")).unwrap()
}

/// A loopback HTTP server that reads a request and answers only after `delay`.
struct SlowServer {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl SlowServer {
    async fn start(delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let mut buf = [0_u8; 4096];
                    if socket.read(&mut buf).await.unwrap_or(0) > 0 {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(delay).await;
                    // The caller is usually gone by now.
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await;
                });
            }
        });
        Self {
            addr,
            requests,
            task,
        }
    }
}

impl Drop for SlowServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The broker's warnings, captured through a subscriber installed on this test's own threads
/// (the process-wide one belongs to whichever test started first).
#[derive(Debug, Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

/// Appends to a [`Logs`].
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Warnings and errors, with the spans they happened in (the request span, which carries
    /// the Client-Log-Id, is an INFO span).
    fn subscriber(&self) -> impl SubscriberInitExt + Clone + Send + Sync + 'static {
        let buffer = Arc::clone(&self.0);
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(move || LogWriter(Arc::clone(&buffer)))
            .with_ansi(false)
            .with_filter(filter_fn(|meta| {
                meta.is_span() || LevelFilter::WARN >= *meta.level()
            }));
        Arc::new(tracing_subscriber::registry().with(layer))
    }

    /// A two-worker runtime whose threads all log into this capture.
    fn runtime(&self) -> tokio::runtime::Runtime {
        let subscriber = self.subscriber();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                // The default stays for the thread's whole life.
                std::mem::forget(subscriber.clone().set_default());
            })
            .build()
            .unwrap()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }

    /// The broker's `mapper call failed` line for the request with Client-Log-Id `log_id`.
    fn failure_for(&self, log_id: &str) -> Option<String> {
        self.text()
            .lines()
            .find(|line| {
                line.contains(&format!("client_log_id={log_id}"))
                    && line.contains("mapper call failed")
            })
            .map(str::to_owned)
    }
}
