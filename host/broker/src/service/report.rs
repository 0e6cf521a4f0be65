//! What an exchange tells the operator: feed events ([`crate::events`]), metrics
//! ([`crate::metrics`]) and audit records ([`crate::audit`]), in one place, so that the
//! exchange itself stays about the protocol.
//!
//! Everything here is handed outcomes, names and counts, never a password, a dialog answer, a
//! connect tag or a raw session id (sessions go out as [`session_ref`]).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use interstate_protocol::policy::{
    AuthOutcome, MapperError, Operation, OperationOutcome, PasswordChangeOutcome,
    PasswordRejectionKind, RejectionKind,
};
use interstate_protocol::reply::operation_token;
use interstate_protocol::{Phase, Session};
use serde_json::{Value, json};

use super::exchange::Exchange;
use crate::audit::loggable;
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

    /// A login was refused by the failure limits: counted, and told to metrics, audit and feed.
    pub(super) fn report_rate_limited(&self, session: &str, user: Option<&str>, which: Limit) {
        self.broker
            .stats
            .rate_limited
            .fetch_add(1, Ordering::Relaxed);
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
                let reason = mapper_failure(e);
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

/// An operation the mapper answered, as [`Exchange::report_operation`] tells it.
#[derive(Clone, Copy, Debug)]
pub(super) struct OperationDone<'a> {
    /// Who asked.
    pub(super) user: &'a str,
    /// The desktop id.
    pub(super) desktop: &'a str,
    /// What was asked.
    pub(super) operation: Operation,
    /// The mapper's answer.
    pub(super) outcome: &'a Result<OperationOutcome, MapperError>,
    /// The reply's result id.
    pub(super) result: &'a str,
    /// How long the mapper took.
    pub(super) elapsed: Duration,
}

/// The closed-vocabulary name of a password change outcome, for metrics and events.
fn password_change_outcome(
    outcome: &Result<PasswordChangeOutcome, MapperError>,
) -> (&'static str, &'static str) {
    match outcome {
        Ok(PasswordChangeOutcome::Changed(_)) => ("changed", "changed"),
        Ok(PasswordChangeOutcome::Rejected(r)) => (
            "rejected",
            match r.kind {
                PasswordRejectionKind::WrongPassword => "invalid_credentials",
                PasswordRejectionKind::WeakPassword => "weak_password",
                PasswordRejectionKind::TooManyAttempts => "too_many_attempts",
                PasswordRejectionKind::DirectoryError => "directory_error",
            },
        ),
        Ok(PasswordChangeOutcome::Unsupported) => ("unsupported", "unsupported"),
        Err(e) => ("error", mapper_failure(e)),
    }
}

/// `plugin_timeout` or `plugin_error`, as `session.auth_failed` names a mapper failure.
fn mapper_failure(e: &MapperError) -> &'static str {
    if matches!(e, MapperError::Timeout(_)) {
        "plugin_timeout"
    } else {
        "plugin_error"
    }
}

impl Exchange<'_> {
    /// The user answered a disclaimer.
    pub(super) fn report_disclaimer(&self, session: &str, user: &str, accepted: bool) {
        self.broker
            .audit()
            .disclaimer(user, self.client_ip, accepted);
        self.broker.events().emit(
            &[channel::SESSIONS, channel::AUTH],
            "session.disclaimer",
            Some(user),
            json!({"session_id": session, "accepted": accepted}),
        );
    }

    /// The mapper answered a password change (never a password here: the outcome holds none).
    /// A change that goes on into a login reports that login too.
    pub(super) fn report_password_change(
        &self,
        session: &str,
        user: &str,
        outcome: &Result<PasswordChangeOutcome, MapperError>,
        elapsed: Duration,
    ) {
        let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let (metric, reason) = password_change_outcome(outcome);
        self.broker.metrics().password_change(metric);
        let channels = [channel::SESSIONS, channel::AUTH];
        if let Ok(PasswordChangeOutcome::Changed(login)) = outcome {
            self.broker
                .audit()
                .password_change(user, self.client_ip, Ok(()));
            self.broker.events().emit(
                &channels,
                "session.password_changed",
                Some(user),
                json!({"session_id": session, "duration_ms": duration_ms}),
            );
            self.report_login(session, user, &Ok(login.clone()), elapsed);
            return;
        }
        let detail = match outcome {
            Ok(PasswordChangeOutcome::Rejected(r)) => {
                format!("{reason}: {}", loggable(&r.reason))
            }
            Err(_) => "mapper error".to_owned(),
            Ok(_) => reason.to_owned(),
        };
        self.broker
            .audit()
            .password_change(user, self.client_ip, Err(&detail));
        self.broker.events().emit(
            &channels,
            "session.password_change_failed",
            Some(user),
            json!({"session_id": session, "reason": reason, "duration_ms": duration_ms}),
        );
    }

    /// A password change refused by the failure limits, without asking the mapper.
    pub(super) fn report_password_change_limited(&self, session: &str, user: &str, which: Limit) {
        self.broker.metrics().password_change("rate_limited");
        self.report_rate_limited(session, Some(user), which);
    }

    /// The mapper answered an operation.
    pub(super) fn report_operation(&self, session: &str, done: &OperationDone<'_>) {
        let OperationDone {
            user,
            desktop,
            operation,
            outcome,
            result,
            elapsed,
        } = *done;
        let kind = match outcome {
            Ok(OperationOutcome::Done(_)) => "done",
            Ok(OperationOutcome::TryAgain(_)) => "try_again",
            Ok(OperationOutcome::Refused(_)) => "refused",
            Ok(OperationOutcome::Unsupported) => "unsupported",
            Err(_) => "error",
        };
        if let Ok(
            OperationOutcome::Done(text)
            | OperationOutcome::TryAgain(text)
            | OperationOutcome::Refused(text),
        ) = outcome
        {
            tracing::info!(user = %loggable(user), desktop = %loggable(desktop), outcome = kind, detail = %loggable(text), "operation answered");
        }
        let token = operation_token(operation);
        self.broker.metrics().operation(kind);
        self.broker
            .audit()
            .desktop_operation(user, self.client_ip, desktop, token, result);
        self.broker.events().emit(
            &[channel::SESSIONS, channel::ALLOCATIONS],
            "session.operation",
            Some(user),
            json!({
                "session_id": session,
                "resource_id": loggable(desktop),
                "operation": token,
                "result": result,
                "outcome": kind,
                "duration_ms": u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            }),
        );
    }
}
