//! One protocol exchange: decode the request, find or make its session, drive the session's
//! state machine through the mapper and the agent, and answer.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use http::Response;
use interstate_protocol::policy::{
    AuthOutcome, ClientContext, MapperError, PasswordLogin, Rejection, RejectionKind,
};
use interstate_protocol::session::unsupported;
use interstate_protocol::{
    AgentFailure, AllocStep, AuthResult, Authenticate, BrokerReply, ClientRequest, ErrorId, Hello,
    Root, Session, Step, decode_request,
};
use tracing::{debug, error, info, warn};

use super::report::{EndReason, Ended};
use super::response::{error_reply, xml_body_response, xml_error, xml_response};
use super::{Broker, Generation};
use crate::audit::loggable;
use crate::body::ChunkedBody;
use crate::events::session_ref;
use crate::ratelimit::{Limit, Outcome};
use crate::store::{Checkout, SessionKey, StoreError};

/// One protocol exchange: the request's context. `now` is read once, when the request arrived.
pub(super) struct Exchange<'a> {
    pub(super) broker: &'a Broker,
    pub(super) generation: &'a Generation,
    pub(super) client_ip: IpAddr,
    pub(super) log_id: &'a str,
    pub(super) cookie: Option<String>,
    pub(super) now: u64,
}

impl Exchange<'_> {
    pub(super) async fn run(self, body: &[u8]) -> Response<ChunkedBody> {
        let started = Instant::now();
        let request = match decode_request(body) {
            Ok(request) => request,
            Err(e) => {
                info!(result = e.result_id.as_str(), detail = %e.detail, "malformed request");
                let root = e.root.unwrap_or(Root::PcoipClient);
                return xml_error(
                    root,
                    e.result_id,
                    "The broker could not read the request",
                    Some(&e.detail),
                    false,
                );
            }
        };
        let root = request.root;
        let kind = request.message.name().to_owned();
        let (reply, cookie) = match request.message {
            ClientRequest::Hello(hello) if hello.is_probe() => (None, None),
            ClientRequest::Hello(hello) => self.hello(&hello).await,
            // Answered alike with or without a session: the client library understands
            // ERR_UNSUPPORTED_REQUEST wherever it sends something the broker does not do
            // (reference §11.1), and a missing session would tell it something else.
            ClientRequest::Unsupported { name } => (Some(unsupported(&name)), None),
            message => {
                let (reply, cookie) = self.in_session(message).await;
                (Some(reply), cookie)
            }
        };
        let elapsed_us = started.elapsed().as_micros() as u64;
        match reply {
            // The generation's hello-resp, encoded once.
            None => {
                info!(message = %kind, result = "hello-resp", elapsed_us, "handled");
                xml_body_response(self.generation.hello_body(root), cookie.as_deref(), false)
            }
            Some(reply) => {
                info!(message = %kind, result = reply.result_id().unwrap_or(reply.name()), elapsed_us, "handled");
                xml_response(root, &reply, cookie.as_deref(), false)
            }
        }
    }

    /// A real hello: a new session (replacing the one the cookie names). `None` answers with
    /// the generation's `hello-resp`.
    async fn hello(&self, hello: &Hello) -> (Option<BrokerReply>, Option<String>) {
        let info = &hello.client_info;
        let client = ClientContext {
            address: self.client_ip.to_string(),
            log_id: self.log_id.to_owned(),
            hostname: info.hostname.clone(),
            product_name: info.product_name.clone(),
            product_version: info.product_version.clone(),
            platform: info.platform.clone(),
            locale: info.locale.clone(),
        };
        let store = self.broker.store();
        if let Some(old) = &self.cookie
            && let Err(e) = store.remove(old).await
        {
            warn!(error = %e, "the replaced session could not be removed; it expires by itself");
        }
        let fallback = self
            .generation
            .settings
            .server
            .fallback_sessions
            .then_some((self.log_id, self.client_ip));
        let session = Session::new(hello, client, self.now);
        let created = self.created_message(&session);
        match store.insert(session, fallback, self.now).await {
            Ok(id) => {
                self.broker
                    .stats
                    .sessions_created
                    .fetch_add(1, Ordering::Relaxed);
                self.report_created(&id, created);
                (None, Some(id))
            }
            Err(e @ StoreError::Full(_)) => {
                self.broker.metrics().store_error(&e);
                warn!(full = %e, "refusing a new session");
                (
                    Some(error_reply(
                        ErrorId::BrokerSysFailed,
                        "The broker is busy; try again in a minute",
                        None,
                    )),
                    None,
                )
            }
            Err(e) => (Some(self.store_failed(&e)), None),
        }
    }

    /// Finds the request's session: the cookie first, then (with fallback sessions) the log id.
    async fn find_session(&self) -> Result<Checkout, Box<BrokerReply>> {
        let store = self.broker.store();
        let failed = |e: StoreError| Box::new(self.store_failed(&e));
        if let Some(id) = &self.cookie
            && let Some(checkout) = store.checkout(SessionKey::Id(id)).await.map_err(failed)?
        {
            return Ok(checkout);
        }
        if self.generation.settings.server.fallback_sessions
            && let Some(checkout) = store
                .checkout(SessionKey::LogId(self.log_id, self.client_ip))
                .await
                .map_err(failed)?
        {
            return Ok(checkout);
        }
        Err(Box::new(if self.cookie.is_some() {
            expired()
        } else {
            error_reply(
                ErrorId::MissingSession,
                "No broker session; start again from the beginning",
                None,
            )
        }))
    }

    async fn in_session(&self, message: ClientRequest) -> (BrokerReply, Option<String>) {
        let mut session = match self.find_session().await {
            Ok(found) => found,
            Err(reply) => return (*reply, None),
        };
        let store = self.broker.store();
        if session.is_expired(self.now, &store.limits().lifetimes) {
            let ended = Ended::of(&session);
            if let Err(e) = store.commit(session, false).await {
                debug!(error = %e, "an expired session could not be ended; it expires by itself");
            }
            ended.report(self.broker, EndReason::Timeout, self.now);
            return (expired(), None);
        }
        let now = self.now;
        let session_ref = session_ref(session.id());
        let bye = matches!(message, ClientRequest::Bye);
        let declining = matches!(
            message,
            ClientRequest::Authenticate(Authenticate::Disclaimer { accepted: false })
        )
        .then(|| session.typed_username().map(str::to_owned))
        .flatten();
        let capabilities = self.generation.mapper.capabilities();
        let reply = match session.on_request_with(message, capabilities, now) {
            Step::Reply(reply) => reply,
            Step::End(reply) => {
                let ended = Ended::of(&session);
                if let Err(e) = store.commit(session, false).await {
                    return (self.store_failed(&e), None);
                }
                // Reported once the store no longer holds it: a list made after the event
                // never shows it.
                if bye {
                    ended.report(self.broker, EndReason::Bye, now);
                }
                return (reply, None);
            }
            Step::Authenticate(pending) => {
                let outcome = match self.authenticate(pending.login(), &session_ref).await {
                    Ok(outcome) => outcome,
                    // Nothing is kept: the checkout goes back as the last commit left it.
                    Err(e) => return (self.store_failed(&e), None),
                };
                pending.finish(&mut session, outcome, now)
            }
            Step::ContinueAuthentication(pending) => {
                match self
                    .continue_authentication(&mut session, pending, &session_ref)
                    .await
                {
                    Ok(reply) => reply,
                    // Nothing is kept: the checkout goes back as the last commit left it.
                    Err(e) => return (self.store_failed(&e), None),
                }
            }
            Step::ChangePassword(pending) => {
                match self
                    .change_password(&mut session, pending, &session_ref)
                    .await
                {
                    Ok(reply) => reply,
                    Err(e) => return (self.store_failed(&e), None),
                }
            }
            Step::Operate(pending) => self.operate(&mut session, pending, &session_ref).await,
            Step::ListDesktops(pending) => {
                let started = Instant::now();
                let desktops = self
                    .generation
                    .mapper
                    .list_desktops(pending.user(), session.client())
                    .await;
                self.mapper_done("list-desktops", &desktops, started);
                self.report_listed(
                    &session_ref,
                    &pending.user().username,
                    desktops.as_ref().ok().map(Vec::len),
                );
                pending.finish(&mut session, desktops, now)
            }
            Step::Allocate(pending) => {
                let started = Instant::now();
                let user = pending.user().username.clone();
                let desktop = pending.desktop_id().to_owned();
                let allocation = self
                    .generation
                    .mapper
                    .allocate(pending.user(), pending.desktop_id(), session.client())
                    .await;
                self.mapper_done("allocate", &allocation, started);
                match pending.finish(&mut session, allocation, now) {
                    AllocStep::Reply(reply) => {
                        self.report_allocation(&session_ref, &user, &desktop, false, None);
                        reply
                    }
                    AllocStep::Launch(mut launch) => {
                        let request = launch.request_mut();
                        if request.launch.license_path.is_none() {
                            request
                                .launch
                                .license_path
                                .clone_from(&self.generation.settings.agent.license_path);
                        }
                        let called = Instant::now();
                        let launched = self.generation.agent.launch(launch.request()).await;
                        let latency = called.elapsed();
                        let agent = &launch.request().agent_host;
                        match &launched {
                            Ok(resp) => {
                                info!(%agent, result = %resp.result_id, "agent answered")
                            }
                            Err(e) => warn!(%agent, error = ?e, "agent call failed"),
                        }
                        if matches!(&launched, Err(AgentFailure::CertificateChanged(_))) {
                            self.broker
                                .stats
                                .agent_certificate_refused
                                .fetch_add(1, Ordering::Relaxed);
                            self.broker.metrics().agent_certificate_refused.inc();
                        }
                        let host = agent.clone();
                        let agent_result = match &launched {
                            Ok(_) => Ok(()),
                            Err(e) => Err(format!("{e:?}")),
                        };
                        let reply = launch.finish(&mut session, launched, now);
                        let allocated =
                            matches!(&reply, BrokerReply::Allocate(r) if r.target.is_some());
                        self.report_allocation(
                            &session_ref,
                            &user,
                            &desktop,
                            allocated,
                            Some((&host, latency, agent_result)),
                        );
                        reply
                    }
                }
            }
        };
        if let Some(user) = declining
            && matches!(&reply, BrokerReply::Authenticate(r) if r.result_id == AuthResult::FailedDisclaimerRejected)
        {
            self.report_disclaimer(&session_ref, &user, false);
        }
        if matches!(&reply, BrokerReply::Allocate(r) if r.target.is_some()) {
            self.broker
                .stats
                .allocations
                .fetch_add(1, Ordering::Relaxed);
        }
        let id = session.id().to_owned();
        if let Err(e) = store.commit(session, true).await {
            // The session changed under this request (another node won a race) or the store
            // is gone: what this request did is not kept, and the client is told so.
            return (self.store_failed(&e), None);
        }
        (reply, Some(id))
    }

    /// A password login, unless this user or address is over its failure limit. The attempt
    /// is reserved (counted) before the mapper call, atomically, so concurrent attempts cannot
    /// overrun the limit; a success or a mapper failure gives it back.
    async fn authenticate(
        &self,
        login: &PasswordLogin,
        session: &str,
    ) -> Result<Result<AuthOutcome, MapperError>, StoreError> {
        let limiter = &self.broker.limiter;
        let username = Some(login.username.as_str());
        let ticket = match limiter.reserve(username, self.client_ip).await? {
            Ok(ticket) => ticket,
            Err(which) => {
                // Per refusal at debug only: the audit log sums a locked-out address's refusals.
                debug!(user = %loggable(&login.username), limited = ?which, "authentication refused: too many failures");
                self.report_rate_limited(session, username, which);
                // Cost what a wrong password costs, so that timing does not reveal the lock-out.
                self.generation.mapper.spend_like_a_password_check().await;
                return Ok(Ok(rate_limited(which)));
            }
        };
        self.broker
            .stats
            .mapper_logins
            .fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let outcome = self.generation.mapper.authenticate(login).await;
        self.mapper_done("authenticate", &outcome, started);
        self.report_login(session, &login.username, &outcome, started.elapsed());
        let settled = match &outcome {
            Ok(AuthOutcome::Rejected(r)) => {
                info!(user = %loggable(&login.username), kind = ?r.kind, reason = %loggable(&r.reason), "authentication refused");
                Outcome::Failed
            }
            Ok(AuthOutcome::Accepted(_)) => Outcome::Succeeded,
            Ok(AuthOutcome::Challenge(_) | AuthOutcome::Disclaimer(_)) | Err(_) => {
                Outcome::Undecided
            }
        };
        ticket.settle(settled).await?;
        Ok(outcome)
    }
}

/// The answer for a session that is unknown or has expired.
fn expired() -> BrokerReply {
    error_reply(
        ErrorId::InvalidSession,
        "Your session has expired. Please log in again.",
        None,
    )
}

impl Exchange<'_> {
    /// [`store_failed`], counted in the metrics.
    fn store_failed(&self, e: &StoreError) -> BrokerReply {
        self.broker.metrics().store_error(e);
        store_failed(e)
    }
}

/// The answer when the store could not do what a request needed; the reason goes to the log.
fn store_failed(e: &StoreError) -> BrokerReply {
    match e {
        StoreError::Busy | StoreError::Conflict => {
            info!(error = %e, "a request raced another request of its session");
            error_reply(
                ErrorId::BrokerSysFailed,
                "Another request of this session is in progress; try again",
                None,
            )
        }
        StoreError::Full(_) | StoreError::Unavailable(_) => {
            error!(error = %e, "session store failure");
            error_reply(
                ErrorId::BrokerSysFailed,
                "The broker cannot reach its session store; try again in a minute",
                None,
            )
        }
    }
}

/// The answer to a rate-limited attempt: the same as a wrong password, so it tells nothing.
fn rate_limited(which: Limit) -> AuthOutcome {
    AuthOutcome::Rejected(Rejection {
        kind: RejectionKind::BadCredentials,
        reason: format!("too many failed logins ({which:?})"),
    })
}
