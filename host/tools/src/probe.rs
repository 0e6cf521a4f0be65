//! `interstate probe URL`: plays a whole PCoIP client flow against any broker and checks, at every
//! step, what real clients depend on.
//!
//! ```text
//! connect (TLS; again with the 24.07 client's AES-256-GCM-only suites)
//!  └ probe (QueryBrokerClient hello: hello-resp, no session)
//!     └ hello (Set-Cookie: JSESSIONID=<32 hex>; Path=/; Secure; HttpOnly)
//!        └ authenticate (password) → get-resource-list → allocate-resource (non-empty
//!          connect-tag) → bye
//! ```
//! Every answer must be `HTTP/1.1 200`, chunked, under the request's root element. The first
//! failed check stops the flow (a `bye` still ends the session) and becomes the probe's verdict.
//!
//! # Layout
//! - [`checks`]: the wire and protocol checks.
//! - [`tls`]: certificate pins and the 24.07 client's cipher list.
//! - `flow`: the steps, in order.
//!
//! The client pieces it plays with ([`crate::conversation`], [`crate::messages`],
//! [`crate::xml`], [`crate::target`]) are shared with the bench.

pub mod checks;
mod flow;
pub mod tls;

use std::fmt::Write as _;
use std::time::Duration;

use interstate_protocol::Root;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::conversation::Conversation;
use crate::target::Target;
use crate::wire::{ClientError, Verify, tls_config};
use crate::xml::ListedResource;
use checks::Check;
use flow::Flow;

/// What to probe, and how.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The broker.
    pub target: Target,
    /// How its certificate is checked.
    pub verify: Verify,
    /// The user to log in as.
    pub username: String,
    /// The user's password (wiped on drop, never printed).
    pub password: Zeroizing<String>,
    /// The domain; `None` takes the first one the broker offers (or an empty one).
    pub domain: Option<String>,
    /// Do not send the cookie back: rely on the broker tracking sessions by `Client-Log-Id`.
    pub fallback_sessions: bool,
    /// The root element of requests.
    pub root: Root,
    /// The resource to allocate, by id or name; `None` takes the first listed.
    pub resource: Option<String>,
    /// Whether to allocate at all (allocation starts a desktop session on the agent).
    pub allocate: bool,
    /// The deadline of each request.
    pub timeout: Duration,
}

impl ProbeOptions {
    /// Options with the defaults: `pcoip-client` root, cookies, allocation, 20 s per request.
    pub fn new(target: Target, verify: Verify, username: &str, password: &str) -> Self {
        Self {
            target,
            verify,
            username: username.to_owned(),
            password: Zeroizing::new(password.to_owned()),
            domain: None,
            fallback_sessions: false,
            root: Root::PcoipClient,
            resource: None,
            allocate: true,
            timeout: Duration::from_secs(20),
        }
    }
}

/// The probe could not start (its own configuration, not the broker, is at fault).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The TLS client configuration (a CA file, most likely).
    #[error(transparent)]
    Tls(#[from] ClientError),
}

/// One step of the flow.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// `connect`, `probe`, `hello`, `authenticate`, `get-resource-list`, `allocate-resource`, `bye`.
    pub step: &'static str,
    /// Wall time of the step in milliseconds.
    pub elapsed_ms: f64,
    /// The answer's message element (`hello-resp`, ...).
    pub message: Option<String>,
    /// The answer's `result-id`, when it has one.
    pub result_id: Option<String>,
    /// The checks made on the answer.
    pub checks: Vec<Check>,
}

impl StepReport {
    pub(crate) fn new(step: &'static str) -> Self {
        Self {
            step,
            elapsed_ms: 0.0,
            message: None,
            result_id: None,
            checks: Vec::new(),
        }
    }

    /// The first failed check.
    pub fn failure(&self) -> Option<&Check> {
        self.checks.iter().find(|c| !c.passed)
    }
}

/// Everything the probe saw.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// The URL probed.
    pub url: String,
    /// SHA-256 of the broker's certificate, as `interstate serve` prints it (and `--pin` takes).
    pub certificate_sha256: Option<String>,
    /// The domains the broker offered.
    pub domains: Vec<String>,
    /// The resources it listed.
    pub resources: Vec<ListedResource>,
    /// Each step, in order.
    pub steps: Vec<StepReport>,
    /// True when every check passed.
    pub passed: bool,
    /// The first failure: `step: check: detail`.
    pub failure: Option<String>,
}

impl ProbeReport {
    /// Every check of every step, with its step.
    pub fn checks(&self) -> impl Iterator<Item = (&'static str, &Check)> {
        self.steps
            .iter()
            .flat_map(|s| s.checks.iter().map(move |c| (s.step, c)))
    }

    /// The report for people: one line per step, failed checks spelled out.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "probing {}", self.url);
        if let Some(fp) = &self.certificate_sha256 {
            let _ = writeln!(out, "  certificate SHA-256 {fp}");
        }
        for step in &self.steps {
            let answer = step
                .result_id
                .as_deref()
                .or(step.message.as_deref())
                .unwrap_or("-");
            let passed: Vec<&str> = step
                .checks
                .iter()
                .filter(|c| c.passed)
                .map(|c| c.name)
                .collect();
            let mark = if step.failure().is_some() {
                "FAIL"
            } else {
                "ok  "
            };
            let _ = writeln!(
                out,
                "  {mark} {:<18} {:>9.1} ms  {:<30} {}",
                step.step,
                step.elapsed_ms,
                answer,
                passed.join(", ")
            );
            for check in step.checks.iter().filter(|c| !c.passed) {
                let _ = writeln!(out, "         x {}: {}", check.name, check.detail);
            }
        }
        match &self.failure {
            None => {
                let count = self.checks().count();
                let _ = writeln!(out, "PASS: all {count} checks passed");
            }
            Some(reason) => {
                let _ = writeln!(out, "FAIL: {reason}");
            }
        }
        out
    }
}

/// Plays the whole flow against `options.target` and reports every step and check. Broker
/// failures are in the report; only a probe configuration problem is an error.
pub async fn run(options: &ProbeOptions) -> Result<ProbeReport, ProbeError> {
    let tls = tls_config(&options.verify)?;
    let client_2407 = tls::client_2407_config(&options.verify)?;
    let mut report = ProbeReport {
        url: options.target.url(),
        certificate_sha256: None,
        domains: Vec::new(),
        resources: Vec::new(),
        steps: Vec::new(),
        passed: false,
        failure: None,
    };
    let mut conversation = Conversation::new(&options.target, tls, options.root, options.timeout);
    conversation.send_cookie = !options.fallback_sessions;

    let flow = Flow {
        options,
        report: &mut report,
        conversation: &mut conversation,
    };
    flow.play(client_2407).await;

    report.failure = report.steps.iter().find_map(|s| {
        s.failure()
            .map(|c| format!("{}: {}: {}", s.step, c.name, c.detail))
    });
    report.passed = report.failure.is_none();
    Ok(report)
}
