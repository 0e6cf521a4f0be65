//! What an exchange tells the operator: feed events ([`crate::events`]), metrics
//! ([`crate::metrics`]) and audit records ([`crate::audit`]), in one place, so that the
//! exchange itself stays about the protocol.
//!
//! Everything here is handed outcomes, names and counts, never a password, a dialog answer, a
//! connect tag or a raw session id (sessions go out as [`session_ref`]).

use std::time::{Duration, Instant};

use interstate_protocol::policy::{AuthOutcome, MapperError, RejectionKind};
use interstate_protocol::{Phase, Session};
use serde_json::{Value, json};

use super::exchange::Exchange;
use crate::events::{channel, session_ref};
use crate::ratelimit::Limit;
use crate::store::Checkout;

/// Why a session ended, as events and metrics name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EndReason {
    /// The client said `bye`.
    Bye,
    /// It outlived its idle or absolute limit.
    Timeout,
    /// An operator ended it.
    Killed,
}

impl EndReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Bye => "bye",
            Self::Timeout => "timeout",
            Self::Killed => "killed",
        }
    }
}

/// What is reported about a session that ends, taken before the store lets go of it.
#[derive(Debug)]
pub(crate) struct Ended {
    session_ref: String,
    user: Option<String>,
    created_at: u64,
    allocated: bool,
}

impl Ended {
    /// The session a request holds.
    pub(crate) fn of(checkout: &Checkout) -> Self {
        Self::from_session(checkout.id(), checkout)
    }

    /// The session `id`.
    pub(crate) fn from_session(id: &str, session: &Session) -> Self {
        Self {
            session_ref: session_ref(id),
            user: session.identity().map(|i| i.username.clone()),
            created_at: session.created_at(),
            allocated: session.phase() == Phase::Allocated,
        }
    }

    /// Reports the end through `broker`: a `session.ended` event, the metric, and for an
    /// expiry the audit record.
    pub(crate) fn report(self, broker: &super::Broker, reason: EndReason, now_ms: u64) {
        let user = self.user.as_deref();
        broker.metrics().session_ended(reason.as_str());
        if reason == EndReason::Timeout {
            broker.audit().session_expired(&self.session_ref, user);
        }
        broker.events().emit(
            &[channel::SESSIONS],
            "session.ended",
            user,
            json!({
                "session_id": self.session_ref,
                "reason": reason.as_str(),
                "duration_s": now_ms.saturating_sub(self.created_at) / 1000,
                "allocated": self.allocated,
            }),
        );
    }
}

impl Exchange<'_> {
    /// The `session.created` payload, taken before the session goes into the store; `None`
    /// when no feed listens (a hello then builds no event).
    pub(super) fn created_message(&self, session: &Session) -> Option<Value> {
        self.broker.events().feed()?;
        let client = session.client();
        Some(json!({
            "client": {
                "hostname": crate::audit::loggable(&client.hostname),
                "product_name": crate::audit::loggable(&client.product_name),
                "product_version": crate::audit::loggable(&client.product_version),
                "platform": crate::audit::loggable(&client.platform),
                "ip": self.client_ip.to_string(),
            },
        }))
    }

    /// A session was created.
    pub(super) fn report_created(&self, id: &str, message: Option<Value>) {
        self.broker.metrics().sessions_created.inc();
        let Some(mut message) = message else { return };
        message["session_id"] = Value::String(session_ref(id));
        self.broker
            .events()
            .emit(&[channel::SESSIONS], "session.created", None, message);
    }

    /// A mapper call ended: logged if it failed, counted and timed either way.
    pub(super) fn mapper_done<T>(
        &self,
        export: &'static str,
        result: &Result<T, MapperError>,
        started: Instant,
    ) {
        let elapsed = started.elapsed();
        self.broker
            .metrics()
            .mapper_call(export, result.is_ok(), elapsed);
        if let Err(e) = result {
            tracing::warn!(call = export, error = %e, "mapper call failed");
        }
    }

    /// A login was refused by the failure limits.
    pub(super) fn report_rate_limited(&self, session: &str, user: Option<&str>, which: Limit) {
        let limit = format!("{which:?}");
        self.broker.metrics().login("rate_limited");
        self.broker
            .audit()
            .login_fail_max(user, self.client_ip, &limit, self.now);
        self.broker.events().emit(
            &[channel::SESSIONS, channel::AUTH],
            "session.rate_limited",
            user,
            json!({"session_id": session, "reason": "locked_out", "limit": limit}),
        );
    }

    /// The mapper decided a login (a password or a dialog step).
    pub(super) fn report_login(
        &self,
        session: &str,
        user: &str,
        outcome: &Result<AuthOutcome, MapperError>,
        elapsed: Duration,
    ) {
        let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let events = self.broker.events();
        let channels = [channel::SESSIONS, channel::AUTH];
        let failed = |reason: &str| {
            events.emit(
                &channels,
                "session.auth_failed",
                Some(user),
                json!({"session_id": session, "reason": reason, "duration_ms": duration_ms}),
            );
        };
        match outcome {
            Ok(AuthOutcome::Accepted(identity)) => {
                self.broker.metrics().login("success");
                self.broker
                    .audit()
                    .login_success(&identity.username, self.client_ip);
                events.emit(
                    &channels,
                    "session.authenticated",
                    Some(&identity.username),
                    json!({
                        "session_id": session,
                        "domain": crate::audit::loggable(&identity.domain),
                        "duration_ms": duration_ms,
                    }),
                );
            }
            Ok(AuthOutcome::Challenge(_) | AuthOutcome::Disclaimer(_)) => {
                self.broker.metrics().login("challenge");
                events.emit(
                    &channels,
                    "session.challenged",
                    Some(user),
                    json!({"session_id": session, "duration_ms": duration_ms}),
                );
            }
            Ok(AuthOutcome::Rejected(rejection)) => {
                self.broker.metrics().login("rejected");
                let reason = match rejection.kind {
                    RejectionKind::BadCredentials => "invalid_credentials",
                    _ => "refused",
                };
                self.broker
                    .audit()
                    .login_fail(user, self.client_ip, &rejection.reason);
                failed(reason);
            }
            Err(e) => {
                self.broker.metrics().login("error");
                let reason = if e.to_string().contains("timed out") {
                    "plugin_timeout"
                } else {
                    "plugin_error"
                };
                self.broker
                    .audit()
                    .login_fail(user, self.client_ip, "mapper error");
                failed(reason);
            }
        }
    }

    /// `get-resource-list` was answered with `count` desktops (`None`: the mapper failed).
    pub(super) fn report_listed(&self, session: &str, user: &str, count: Option<usize>) {
        self.broker.events().emit(
            &[channel::SESSIONS],
            "session.resources_listed",
            Some(user),
            json!({"session_id": session, "count": count, "ok": count.is_some()}),
        );
    }

    /// An allocation ended: `agent` is the agent's host and latency when it was called.
    pub(super) fn report_allocation(
        &self,
        session: &str,
        user: &str,
        desktop: &str,
        allocated: bool,
        agent: Option<(&str, Duration, Result<(), String>)>,
    ) {
        let metrics = self.broker.metrics();
        let events = self.broker.events();
        let desktop = crate::audit::loggable(desktop);
        if let Some((host, latency, result)) = &agent {
            let outcome = if result.is_ok() { "ok" } else { "error" };
            metrics
                .agent_latency
                .get_or_create(&crate::metrics::Outcome { outcome })
                .observe(latency.as_secs_f64());
            if let Err(error) = result {
                events.emit(
                    &[channel::ALLOCATIONS, channel::SYSTEM],
                    "agent.error",
                    Some(user),
                    json!({
                        "session_id": session,
                        "agent_host": host,
                        "error": crate::audit::loggable(error),
                        "latency_ms": u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
                    }),
                );
            }
        }
        let channels = [channel::SESSIONS, channel::ALLOCATIONS];
        if allocated {
            metrics.allocation("success");
            let (host, latency) = agent
                .as_ref()
                .map(|(host, latency, _)| (*host, latency.as_millis()))
                .unwrap_or_default();
            events.emit(
                &channels,
                "session.allocated",
                Some(user),
                json!({"session_id": session, "resource_id": desktop, "agent_host": host,
                       "protocol": "PCOIP", "agent_latency_ms": u64::try_from(latency).unwrap_or(u64::MAX)}),
            );
        } else {
            let reason = match &agent {
                Some((_, _, Err(_))) => "agent_failed",
                Some((_, _, Ok(()))) => "agent_refused",
                None => "refused",
            };
            metrics.allocation(if agent.is_some() {
                "agent_failed"
            } else {
                "refused"
            });
            events.emit(
                &channels,
                "session.allocation_failed",
                Some(user),
                json!({"session_id": session, "resource_id": desktop, "reason": reason}),
            );
        }
    }
}
