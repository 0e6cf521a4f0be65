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
//! - [`target`]: the broker URL.
//! - [`messages`]: the client's messages.
//! - [`conversation`]: one simulated client (connection, cookie, log id); shared with the bench.
//! - [`checks`]: the wire and protocol checks.
//! - [`xml`]: reading roots and resource lists from any broker's XML.
//! - [`tls`]: certificate pins and the 24.07 client's cipher list.
//! - [`cli`]: the `interstate probe` command line.

pub mod checks;
pub mod cli;
pub mod conversation;
pub mod messages;
pub mod target;
pub mod tls;
pub mod xml;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use interstate_protocol::Root;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::client::{ClientError, Verify, WireResponse, element_text, tls_config};
use checks::{Check, CookieRule};
use conversation::Conversation;
use target::Target;
use xml::ListedResource;

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
    fn new(step: &'static str) -> Self {
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

struct Flow<'a> {
    options: &'a ProbeOptions,
    report: &'a mut ProbeReport,
    conversation: &'a mut Conversation,
}

impl Flow<'_> {
    async fn play(mut self, client_2407: std::sync::Arc<rustls::ClientConfig>) {
        if !self.connect(client_2407).await {
            return;
        }
        let probe = self
            .exchange(
                "probe",
                messages::probe_hello(),
                "hello-resp",
                None,
                CookieRule::Forbidden,
            )
            .await;
        // A session the probe wrongly created is not the one the hello starts.
        self.conversation.cookie = None;
        let Some(_) = probe else { return };

        let Some(hello) = self
            .exchange(
                "hello",
                messages::hello(),
                "hello-resp",
                None,
                CookieRule::Required,
            )
            .await
        else {
            return self.bye().await;
        };
        self.report.domains = xml::texts(&hello.text(), "domain");
        let domain = match &self.options.domain {
            Some(domain) => domain.clone(),
            None => self.report.domains.first().cloned().unwrap_or_default(),
        };

        let auth = messages::authenticate(&self.options.username, &self.options.password, &domain);
        let auth = Zeroizing::new(auth);
        if self
            .exchange(
                "authenticate",
                &auth,
                "authenticate-resp",
                Some("AUTH_SUCCESSFUL_AND_COMPLETE"),
                CookieRule::Optional,
            )
            .await
            .is_none()
        {
            return self.bye().await;
        }

        let Some(list) = self
            .exchange(
                "get-resource-list",
                messages::list(),
                "get-resource-list-resp",
                Some("LIST_SUCCESSFUL"),
                CookieRule::Optional,
            )
            .await
        else {
            return self.bye().await;
        };
        self.report.resources = xml::resources(&list.text());
        let chosen = self.choose_resource();

        if self.options.allocate {
            let Some(id) = chosen else {
                return self.bye().await;
            };
            let Some(alloc) = self
                .exchange(
                    "allocate-resource",
                    &messages::allocate(&id),
                    "allocate-resource-resp",
                    Some("ALLOC_SUCCESSFUL"),
                    CookieRule::Optional,
                )
                .await
            else {
                return self.bye().await;
            };
            let tag = element_text(&alloc.text(), "connect-tag").unwrap_or_default();
            let check = if tag.trim().is_empty() {
                Check::fail(
                    "connect-tag",
                    "the connect-tag is missing or empty; clients cannot start the session",
                )
            } else {
                Check::pass("connect-tag", format!("{} characters", tag.trim().len()))
            };
            if let Some(step) = self.report.steps.last_mut() {
                step.checks.push(check);
            }
            if self.failed() {
                return self.bye().await;
            }
        }
        self.bye().await;
    }

    fn failed(&self) -> bool {
        self.report.steps.iter().any(|s| s.failure().is_some())
    }

    /// Picks the resource to allocate and records a check on the list step.
    fn choose_resource(&mut self) -> Option<String> {
        let listed = &self.report.resources;
        let (check, chosen) = match &self.options.resource {
            _ if listed.is_empty() => (
                Check::fail("resources", "the broker listed no resource for this user"),
                None,
            ),
            None => {
                let first = &listed[0];
                (
                    Check::pass(
                        "resources",
                        format!(
                            "{} listed; using {:?} (id {:?})",
                            listed.len(),
                            first.name,
                            first.id
                        ),
                    ),
                    Some(first.id.clone()),
                )
            }
            Some(wanted) => match listed
                .iter()
                .find(|r| &r.id == wanted)
                .or_else(|| listed.iter().find(|r| &r.name == wanted))
            {
                Some(r) => (
                    Check::pass("resources", format!("using {:?} (id {:?})", r.name, r.id)),
                    Some(r.id.clone()),
                ),
                None => (
                    Check::fail(
                        "resources",
                        format!(
                            "no listed resource has the id or name {wanted:?}; listed: {}",
                            listed
                                .iter()
                                .map(|r| format!("{:?} ({})", r.name, r.id))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                    None,
                ),
            },
        };
        if let Some(step) = self.report.steps.last_mut() {
            step.checks.push(check);
        }
        chosen
    }

    async fn connect(&mut self, client_2407: std::sync::Arc<rustls::ClientConfig>) -> bool {
        let mut step = StepReport::new("connect");
        let started = Instant::now();
        let connected = self.conversation.connect().await.map(|_| ());
        step.elapsed_ms = ms(started.elapsed());
        match connected {
            Ok(()) => {
                step.checks
                    .push(Check::pass("tls", "TLS handshake completed"));
            }
            Err(e) => {
                step.checks.push(Check::fail("tls", connect_failure(&e)));
                self.report.steps.push(step);
                return false;
            }
        }
        let mut strict = Conversation::new(
            &self.options.target,
            client_2407,
            self.options.root,
            self.options.timeout,
        );
        step.checks.push(match strict.connect().await {
            Ok(_) => Check::pass(
                "tls-aes256-gcm-only",
                "a handshake offering only AES-256-GCM-SHA384 suites (the 24.07 client) works",
            ),
            Err(e) => Check::fail(
                "tls-aes256-gcm-only",
                format!("the 24.07 client offers only AES-256-GCM-SHA384 suites, and that handshake failed: {e}"),
            ),
        });
        self.report.steps.push(step);
        !self.failed()
    }

    /// Sends one message and checks its answer; `None` when a check failed.
    async fn exchange(
        &mut self,
        name: &'static str,
        message: &str,
        expected_message: &str,
        expected_result: Option<&str>,
        cookie: CookieRule,
    ) -> Option<WireResponse> {
        let mut step = StepReport::new(name);
        let started = Instant::now();
        let answer = self.conversation.send(message).await;
        step.elapsed_ms = ms(started.elapsed());
        let response = match answer {
            Ok(response) => response,
            Err(e) => {
                step.checks
                    .push(Check::fail("answer", format!("no usable answer: {e}")));
                self.report.steps.push(step);
                return None;
            }
        };
        if self.report.certificate_sha256.is_none() {
            self.report.certificate_sha256 = response.peer_fingerprint.map(|fp| {
                fp.iter()
                    .map(|b| format!("{b:02X}"))
                    .collect::<Vec<_>>()
                    .join(":")
            });
        }
        let text = response.text();
        step.message = xml::message_element(&text).map(str::to_owned);
        step.result_id = element_text(&text, "result-id").map(|t| t.trim().to_owned());
        step.checks.push(checks::http_ok(&response));
        step.checks.push(checks::chunked(&response));
        step.checks.push(checks::root(&response, self.options.root));
        step.checks
            .push(checks::message(&response, expected_message));
        if let Some(expected) = expected_result {
            step.checks.push(checks::result_id(&response, expected));
        }
        if let Some(check) = checks::cookie(&response, cookie) {
            step.checks.push(check);
        }
        let ok = step.failure().is_none();
        self.report.steps.push(step);
        ok.then_some(response)
    }

    /// Ends the session; a failure here is reported but the flow is over anyway.
    async fn bye(&mut self) {
        if self.conversation.cookie.is_none() && !self.options.fallback_sessions {
            return;
        }
        self.exchange(
            "bye",
            messages::bye(),
            "bye-resp",
            None,
            CookieRule::Optional,
        )
        .await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Explains a failed connection, with the fix for certificate problems.
fn connect_failure(e: &ClientError) -> String {
    let text = e.to_string();
    if matches!(e, ClientError::Tls { .. })
        && (text.contains("certificate")
            || text.contains("UnknownIssuer")
            || text.contains("pinned"))
    {
        format!(
            "{text}: the broker's certificate was refused; pass --ca FILE, --pin SHA256 or (for self-signed test brokers) --insecure"
        )
    } else {
        text
    }
}
