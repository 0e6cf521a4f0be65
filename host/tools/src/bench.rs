//! `interstate bench URL`: many simulated PCoIP clients against one broker, with latency
//! percentiles per step, errors by kind, and the server's CPU and memory from `/proc`.
//!
//! ```text
//! -c N client tasks ─ each loops: take a ticket (< --flows) and check the clock (< --duration)
//!   flow:     [connect] probe → hello → authenticate → list → allocate → bye
//!   hello:    one real hello on a kept-alive connection (the cookie replaces the session)
//!   probe:    one QueryBrokerClient hello
//!   sessions: one hello without the cookie: every request leaves an idle session behind
//! ```
//! Both bounds always apply, so every run ends. Targets must be loopback unless `allow_remote`:
//! this is a load generator.
//!
//! # Layout
//! - [`worker`]: one client's loop.
//! - [`stats`]: HDR histograms per step and error counts.
//! - [`usage`]: server CPU and RSS from `/proc`.
//! - [`report`]: the figures of a run, for people and as JSON.
//!
//! The fake agent benchmark setups call is [`crate::agent`] (`FakeAgent::start_fast`).

pub mod report;
pub mod stats;
pub mod usage;
pub mod worker;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use interstate_protocol::Root;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::conversation::Conversation;
use crate::target::{Target, TargetError};
use crate::wire::{ClientError, Verify, tls_config};
pub use report::{BenchReport, ServerUsage};
use stats::Stats;
use worker::{FlowSettings, Shared};

/// The salt interstate_love_song's SimpleMapper hashes every password with.
const ILS_SALT: &[u8] = b"IGNORED";
/// Its PBKDF2-HMAC-SHA256 rounds.
const ILS_ROUNDS: u32 = 100_000;

/// The order steps are reported in.
const STEP_ORDER: [&str; 8] = [
    "flow",
    "connect",
    "probe",
    "hello",
    "authenticate",
    "get-resource-list",
    "allocate-resource",
    "bye",
];

/// What each client loops over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Whole flows: probe, hello, authenticate, list, allocate, bye.
    Flow,
    /// One real hello per iteration on a kept-alive connection.
    Hello,
    /// One `QueryBrokerClient` hello per iteration.
    Probe,
    /// One hello per iteration without sending the cookie back: each leaves an idle session.
    Sessions,
}

impl Mode {
    /// The mode's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Flow => "flow",
            Mode::Hello => "hello",
            Mode::Probe => "probe",
            Mode::Sessions => "sessions",
        }
    }
}

/// A benchmark run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The broker.
    pub target: Target,
    /// How its certificate is checked.
    pub verify: Verify,
    /// What each client loops over.
    pub mode: Mode,
    /// Simulated clients.
    pub concurrency: usize,
    /// No flow starts after this long.
    pub duration: Duration,
    /// No more than this many flows start.
    pub max_flows: u64,
    /// A new TLS connection for every flow (what a client launch does).
    pub new_connection_per_flow: bool,
    /// The user (flow mode).
    pub username: String,
    /// The password (flow mode).
    pub password: Zeroizing<String>,
    /// The domain sent with the password.
    pub domain: String,
    /// The resource to allocate, by id or name; the first listed otherwise.
    pub resource: Option<String>,
    /// The root element of requests.
    pub root: Root,
    /// Do not send the cookie back (the broker must track sessions by `Client-Log-Id`).
    pub fallback_sessions: bool,
    /// Allow a target that is not a loopback address.
    pub allow_remote: bool,
    /// The deadline of each request.
    pub timeout: Duration,
    /// Show a progress bar on standard error (hidden anyway when it is not a terminal).
    pub progress: bool,
    /// Server processes whose CPU time and memory are reported (every gunicorn worker too).
    pub server_pids: Vec<u32>,
    /// A name for the broker in the report, such as `interstate` or `ils`.
    pub label: Option<String>,
}

impl BenchOptions {
    /// Defaults: hello mode, 8 clients, 10 s, 100,000 flows, insecure TLS, 10 s per request.
    pub fn new(target: Target) -> Self {
        Self {
            target,
            verify: Verify::Insecure,
            mode: Mode::Hello,
            concurrency: 8,
            duration: Duration::from_secs(10),
            max_flows: 100_000,
            new_connection_per_flow: false,
            username: String::new(),
            password: Zeroizing::new(String::new()),
            domain: String::new(),
            resource: None,
            root: Root::PcoipClient,
            fallback_sessions: false,
            allow_remote: false,
            timeout: Duration::from_secs(10),
            progress: false,
            server_pids: Vec::new(),
            label: None,
        }
    }

    /// Sets the login of flow mode.
    pub fn with_login(mut self, username: &str, password: &str, domain: &str) -> Self {
        self.username = username.to_owned();
        self.password = Zeroizing::new(password.to_owned());
        self.domain = domain.to_owned();
        self
    }
}

/// The run could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The target is not loopback.
    #[error(
        "{0} is not a loopback address: benchmarks load a broker hard, so they talk only to 127.0.0.0/8 or ::1 unless --allow-remote is given"
    )]
    Remote(String),
    /// The target does not resolve.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The TLS client configuration.
    #[error(transparent)]
    Tls(#[from] ClientError),
    /// Contradictory or missing options.
    #[error("{0}")]
    Options(String),
    /// A server process could not be read.
    #[error("server process: {0}")]
    Process(String),
}

/// Runs the benchmark.
pub async fn run(options: &BenchOptions) -> Result<BenchReport, BenchError> {
    if !options.allow_remote && !options.target.is_loopback()? {
        return Err(BenchError::Remote(options.target.host.clone()));
    }
    if options.concurrency == 0 {
        return Err(BenchError::Options(
            "--concurrency must be at least 1".into(),
        ));
    }
    if options.mode == Mode::Flow && options.username.is_empty() {
        return Err(BenchError::Options(
            "--mode flow needs --user (and a password)".into(),
        ));
    }
    let tls = tls_config(&options.verify)?;
    let pbkdf2_ms = if options.mode == Mode::Flow {
        Some(measure_pbkdf2().await)
    } else {
        None
    };
    let before = usage::sample(&options.server_pids).map_err(BenchError::Process)?;

    let started = Instant::now();
    let shared = Arc::new(Shared {
        tickets: AtomicU64::new(0),
        max_flows: options.max_flows,
        deadline: started + options.duration,
        done: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    let flow = Arc::new(FlowSettings {
        mode: options.mode,
        new_connection_per_flow: options.new_connection_per_flow,
        username: options.username.clone(),
        password: options.password.clone(),
        domain: options.domain.clone(),
        resource: options.resource.clone(),
    });
    let tasks: Vec<_> = (0..options.concurrency)
        .map(|_| {
            let mut conversation =
                Conversation::new(&options.target, tls.clone(), options.root, options.timeout);
            conversation.send_cookie = !options.fallback_sessions;
            tokio::spawn(worker::run(conversation, shared.clone(), flow.clone()))
        })
        .collect();

    let bar = progress_bar(options);
    let progress = {
        let bar = bar.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                let done = shared.done.load(Ordering::Relaxed);
                let failed = shared.failed.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                bar.set_position(done + failed);
                bar.set_message(format!("{:.0}/s, {failed} errors", done as f64 / secs));
            }
        })
    };

    let mut total = Stats::default();
    for task in tasks {
        match task.await {
            Ok(stats) => total.merge(stats),
            Err(e) => total.error("client task", &format!("panicked: {e}")),
        }
    }
    progress.abort();
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let after = usage::sample(&options.server_pids).map_err(BenchError::Process)?;

    let flows_ok = shared.done.load(Ordering::Relaxed);
    let flows_failed = shared.failed.load(Ordering::Relaxed);
    let per_s = |n: u64| {
        if elapsed > 0.0 {
            n as f64 / elapsed
        } else {
            0.0
        }
    };
    let server = (!options.server_pids.is_empty()).then(|| {
        let cpu_s = (after.cpu_s - before.cpu_s).max(0.0);
        ServerUsage {
            pids: options.server_pids.clone(),
            cpu_s,
            cpu_s_per_1000_flows: if flows_ok > 0 {
                cpu_s * 1000.0 / flows_ok as f64
            } else {
                0.0
            },
            rss_before_mib: before.rss_kib as f64 / 1024.0,
            rss_after_mib: after.rss_kib as f64 / 1024.0,
        }
    });
    Ok(BenchReport {
        label: options.label.clone(),
        url: options.target.url(),
        mode: options.mode,
        concurrency: options.concurrency,
        new_connection_per_flow: options.new_connection_per_flow,
        elapsed_s: elapsed,
        flows_ok,
        flows_failed,
        flows_per_s: per_s(flows_ok),
        requests: total.requests,
        requests_per_s: per_s(total.requests),
        steps: total.summary(&STEP_ORDER),
        errors: total.errors.clone(),
        server,
        pbkdf2_ms,
    })
}

fn progress_bar(options: &BenchOptions) -> ProgressBar {
    let target = if options.progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(options.max_flows), target);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The best of a few ILS password hashes, in milliseconds.
async fn measure_pbkdf2() -> f64 {
    tokio::task::spawn_blocking(|| {
        (0..5)
            .map(|_| {
                let started = Instant::now();
                let mut key = [0_u8; 32];
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                    std::hint::black_box(b"benchmark"),
                    ILS_SALT,
                    ILS_ROUNDS,
                    &mut key,
                );
                std::hint::black_box(key);
                started.elapsed().as_secs_f64() * 1000.0
            })
            .fold(f64::INFINITY, f64::min)
    })
    .await
    .unwrap_or(f64::NAN)
}
