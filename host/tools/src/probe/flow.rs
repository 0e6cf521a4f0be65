//! The probe's steps, in order: connect, probe, hello, authenticate, list, allocate, bye. The
//! first failed check stops the flow (a `bye` still ends the session).

use std::sync::Arc;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::checks::{self, Check, CookieRule};
use super::{ProbeOptions, ProbeReport, StepReport};
use crate::conversation::Conversation;
use crate::messages::{self, TOOL_CLIENT};
use crate::wire::{ClientError, WireResponse};
use crate::xml;

/// One run of the flow, writing into its report.
pub(crate) struct Flow<'a> {
    pub(crate) options: &'a ProbeOptions,
    pub(crate) report: &'a mut ProbeReport,
    pub(crate) conversation: &'a mut Conversation,
}

impl Flow<'_> {
    pub(crate) async fn play(mut self, client_2407: Arc<rustls::ClientConfig>) {
        if !self.connect(client_2407).await {
            return;
        }
        let probe = self
            .exchange(
                "probe",
                &messages::probe_hello(&TOOL_CLIENT),
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
                &messages::hello(&TOOL_CLIENT),
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

        let auth = messages::authenticate(
            &self.options.username,
            &self.options.password,
            Some(&domain),
        );
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
                &messages::list(),
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
                    &messages::allocate(&id, &TOOL_CLIENT),
                    "allocate-resource-resp",
                    Some("ALLOC_SUCCESSFUL"),
                    CookieRule::Optional,
                )
                .await
            else {
                return self.bye().await;
            };
            let tag = xml::element_text(&alloc.text(), "connect-tag").unwrap_or_default();
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

    async fn connect(&mut self, client_2407: Arc<rustls::ClientConfig>) -> bool {
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
        step.message = xml::message_element(&text);
        step.result_id = xml::element_text(&text, "result-id").map(|t| t.trim().to_owned());
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
            &messages::bye(),
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
