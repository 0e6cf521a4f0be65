//! The broker's HTTP service: one PCoIP request in, one XML answer out.
//!
//! ```text
//! POST /pcoip-broker/xml ─ body limit ─ decode ─┬ hello: probe → hello-resp (no session)
//!                                               │        real  → new session, Set-Cookie
//!                                               └ other: session (cookie | Client-Log-Id)
//!                                                        → Session::on_request → Step
//!                                                        → mapper / agent call → on_* → reply
//! ```
//! Every answer is HTTP 200 with a chunked XML body: protocol failures are `*-resp` failure ids
//! or `<error-resp>`, because a PCoIP client treats any other status as a transport error.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use interstate_protocol::policy::{
    AuthOutcome, ClientContext, Mapper, MapperError, PasswordLogin, Rejection, RejectionKind,
};
use interstate_protocol::{
    AllocStep, BrokerInfo, BrokerReply, ClientRequest, ErrorId, ErrorResp, Root, Session, Step,
    decode_request, encode_reply, hello_reply,
};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::agent::AgentClient;
use crate::body::ChunkedBody;
use crate::ratelimit::{AuthLimiter, Limit};
use crate::settings::Settings;
use crate::store::{MemoryStore, SessionHandle};

/// The path PCoIP clients post to.
pub const BROKER_PATH: &str = "/pcoip-broker/xml";

/// One configuration generation: settings, mapper and agent client. A reload builds a new one and
/// swaps it in; requests in flight keep the one they started with.
pub struct Generation {
    /// The settings it was built from.
    pub settings: Settings,
    /// The site policy.
    pub mapper: Arc<dyn Mapper>,
    /// The agent client.
    pub agent: AgentClient,
    /// What `hello-resp` says about the broker.
    pub info: BrokerInfo,
    /// The mapper's domains, fetched once.
    pub domains: Vec<String>,
}

impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation")
            .field("origin", &self.settings.origin)
            .finish_non_exhaustive()
    }
}

impl Generation {
    /// Assembles a generation; `domains` come from the mapper.
    pub fn new(settings: Settings, mapper: Arc<dyn Mapper>, agent: AgentClient) -> Self {
        let hostname = if settings.server.hostname.is_empty() {
            system_hostname()
        } else {
            settings.server.hostname.clone()
        };
        let info = BrokerInfo {
            product_name: settings.server.broker_name.clone(),
            product_version: env!("CARGO_PKG_VERSION").to_owned(),
            platform: std::env::consts::OS.to_owned(),
            locale: "en_US".to_owned(),
            ip_address: "N/A".to_owned(),
            hostname,
        };
        let domains = mapper.domains();
        Self {
            settings,
            mapper,
            agent,
            info,
            domains,
        }
    }
}

/// State shared by every connection: the current generation and the sessions.
#[derive(Debug)]
pub struct Broker {
    current: RwLock<Arc<Generation>>,
    store: MemoryStore,
    limiter: AuthLimiter,
    stats: Stats,
}

/// Counters for operators (and tests): what the broker did since it started.
#[derive(Debug, Default)]
pub struct Stats {
    /// Password logins sent to the mapper.
    pub mapper_logins: AtomicU64,
    /// Logins refused by the failure limits without a mapper call.
    pub rate_limited: AtomicU64,
    /// Sessions created.
    pub sessions_created: AtomicU64,
    /// Successful allocations.
    pub allocations: AtomicU64,
    /// Successful configuration reloads.
    pub reloads: AtomicU64,
}

impl Broker {
    /// A broker serving `generation`, with sessions kept in `store`.
    pub fn new(generation: Generation, store: MemoryStore) -> Self {
        let limiter = AuthLimiter::new(generation.settings.rate_limits);
        Self {
            current: RwLock::new(Arc::new(generation)),
            store,
            limiter,
            stats: Stats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The authentication failure limiter.
    pub fn limiter(&self) -> &AuthLimiter {
        &self.limiter
    }

    /// The generation new requests use.
    pub fn current(&self) -> Arc<Generation> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Makes `generation` current for new requests; sessions are kept.
    pub fn swap(&self, generation: Generation) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(generation);
    }

    /// The session store.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }
}

/// Milliseconds since the Unix epoch: the clock the session state machine is driven by.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "interstate".to_owned())
}

/// Handles one HTTP request from a client connected from `peer`.
pub async fn handle<B>(
    broker: Arc<Broker>,
    peer: SocketAddr,
    request: Request<B>,
) -> Result<Response<ChunkedBody>, Infallible>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = request.uri().path();
    if path != BROKER_PATH {
        return Ok(plain(StatusCode::NOT_FOUND, "not found\n"));
    }
    match *request.method() {
        Method::POST => {}
        Method::GET | Method::HEAD => return Ok(health_page(&broker)),
        _ => {
            return Ok(plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "POST PCoIP broker messages here\n",
            ));
        }
    }

    let generation = broker.current();
    let log_id = header_str(request.headers(), "client-log-id")
        .unwrap_or_default()
        .to_owned();
    let span = info_span!("request", client_log_id = %log_id, peer = %peer.ip());
    async move {
        let client_ip = client_address(&generation.settings, peer.ip(), request.headers());
        let cookie = session_cookie(request.headers());
        let limit = generation.settings.server.body_limit_bytes;
        let declared =
            header_str(request.headers(), "content-length").and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Ok(too_large(limit));
        }
        let body = match Limited::new(request.into_body(), limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    return Ok(too_large(limit));
                }
                debug!(error = %e, "request body could not be read");
                return Ok(xml_error(
                    Root::PcoipClient,
                    ErrorId::InvalidMsgFormat,
                    "the request body could not be read",
                    None,
                    true,
                ));
            }
        };
        let exchange = Exchange {
            broker: &broker,
            generation: &generation,
            client_ip,
            log_id: &log_id,
            cookie,
        };
        Ok(exchange.run(&body).await)
    }
    .instrument(span)
    .await
}

/// One protocol exchange: the request's context.
struct Exchange<'a> {
    broker: &'a Broker,
    generation: &'a Generation,
    client_ip: IpAddr,
    log_id: &'a str,
    cookie: Option<String>,
}

impl Exchange<'_> {
    async fn run(self, body: &[u8]) -> Response<ChunkedBody> {
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
            ClientRequest::Hello(hello) if hello.is_probe() => (
                hello_reply(&self.generation.info, self.generation.domains.clone()),
                None,
            ),
            ClientRequest::Hello(hello) => self.hello(&hello),
            message => self.in_session(message).await,
        };
        info!(message = %kind, result = reply.result_id().unwrap_or(reply.name()), elapsed_us = started.elapsed().as_micros() as u64, "handled");
        xml_response(root, &reply, cookie.as_deref(), false)
    }

    fn client_context(&self) -> ClientContext {
        ClientContext {
            address: self.client_ip.to_string(),
            log_id: self.log_id.to_owned(),
            ..ClientContext::default()
        }
    }

    fn hello(&self, hello: &interstate_protocol::Hello) -> (BrokerReply, Option<String>) {
        let now = now_ms();
        let info = &hello.client_info;
        let client = ClientContext {
            hostname: info.hostname.clone(),
            product_name: info.product_name.clone(),
            product_version: info.product_version.clone(),
            platform: info.platform.clone(),
            locale: info.locale.clone(),
            ..self.client_context()
        };
        let store = self.broker.store();
        if let Some(old) = &self.cookie {
            store.remove(old);
        }
        let fallback = self
            .generation
            .settings
            .server
            .fallback_sessions
            .then_some((self.log_id, self.client_ip));
        match store.insert(Session::new(hello, client, now), fallback, now) {
            Ok(id) => {
                self.broker
                    .stats
                    .sessions_created
                    .fetch_add(1, Ordering::Relaxed);
                (
                    hello_reply(&self.generation.info, self.generation.domains.clone()),
                    Some(id),
                )
            }
            Err(full) => {
                warn!(%full, "refusing a new session");
                (
                    error_reply(
                        ErrorId::BrokerSysFailed,
                        "The broker is busy; try again in a minute",
                        None,
                    ),
                    None,
                )
            }
        }
    }

    /// Finds the request's session: the cookie first, then (with fallback sessions) the log id.
    fn find_session(&self) -> Result<(String, SessionHandle), Box<BrokerReply>> {
        let store = self.broker.store();
        if let Some(id) = &self.cookie
            && let Some(handle) = store.get(id)
        {
            return Ok((id.clone(), handle));
        }
        if self.generation.settings.server.fallback_sessions
            && let Some(found) = store.get_by_log_id(self.log_id, self.client_ip)
        {
            return Ok(found);
        }
        Err(Box::new(if self.cookie.is_some() {
            error_reply(
                ErrorId::InvalidSession,
                "Your session has expired. Please log in again.",
                None,
            )
        } else {
            error_reply(
                ErrorId::MissingSession,
                "No broker session; start again from the beginning",
                None,
            )
        }))
    }

    async fn in_session(&self, message: ClientRequest) -> (BrokerReply, Option<String>) {
        let (id, handle) = match self.find_session() {
            Ok(found) => found,
            Err(reply) => return (*reply, None),
        };
        let mut session = handle.lock().await;
        let now = now_ms();
        if session.is_expired(now, self.broker.store().limits()) {
            drop(session);
            self.broker.store().remove(&id);
            return (
                error_reply(
                    ErrorId::InvalidSession,
                    "Your session has expired. Please log in again.",
                    None,
                ),
                None,
            );
        }
        let generation = self.generation;
        let mapper = &generation.mapper;
        let reply = match session.on_request(message, now) {
            Step::Reply(reply) => reply,
            Step::End(reply) => {
                drop(session);
                self.broker.store().remove(&id);
                return (reply, None);
            }
            Step::Authenticate(login) => {
                let outcome = self.authenticate(&login).await;
                session.on_auth_outcome(outcome, now_ms())
            }
            Step::ContinueAuthentication { state, answers } => {
                let client = session.client().clone();
                let limiter = &self.broker.limiter;
                let outcome = match limiter.check_address(self.client_ip, now_ms()) {
                    Err(which) => Ok(rate_limited(which)),
                    Ok(()) => {
                        mapper
                            .continue_authentication(&state, &answers, &client)
                            .await
                    }
                };
                log_mapper_failure("continue-authentication", &outcome);
                if let Ok(AuthOutcome::Rejected(_)) = &outcome {
                    limiter.failed(None, self.client_ip, now_ms());
                }
                session.on_auth_outcome(outcome, now_ms())
            }
            Step::ListDesktops(user) => {
                let client = session.client().clone();
                let desktops = mapper.list_desktops(&user, &client).await;
                log_mapper_failure("list-desktops", &desktops);
                session.on_desktops(desktops, now_ms())
            }
            Step::Allocate { user, desktop_id } => {
                let client = session.client().clone();
                let allocation = mapper.allocate(&user, &desktop_id, &client).await;
                log_mapper_failure("allocate", &allocation);
                match session.on_allocation(allocation, now_ms()) {
                    AllocStep::Reply(reply) => reply,
                    AllocStep::Launch(mut launch) => {
                        if launch.launch.license_path.is_none() {
                            launch
                                .launch
                                .license_path
                                .clone_from(&generation.settings.agent.license_path);
                        }
                        let launched = generation.agent.launch(&launch).await;
                        match &launched {
                            Ok(resp) => {
                                info!(agent = %launch.agent_host, result = %resp.result_id, "agent answered")
                            }
                            Err(e) => {
                                warn!(agent = %launch.agent_host, error = ?e, "agent call failed")
                            }
                        }
                        session.on_launch(launched, now_ms())
                    }
                }
            }
        };
        if matches!(&reply, BrokerReply::Allocate(r) if r.target.is_some()) {
            self.broker
                .stats
                .allocations
                .fetch_add(1, Ordering::Relaxed);
        }
        (reply, Some(id))
    }
}

impl Exchange<'_> {
    /// A password login, unless this user or address is over its failure limit; failures and
    /// successes are counted.
    async fn authenticate(&self, login: &PasswordLogin) -> Result<AuthOutcome, MapperError> {
        let limiter = &self.broker.limiter;
        if let Err(which) = limiter.check(&login.username, self.client_ip, now_ms()) {
            info!(user = %login.username, limited = ?which, "authentication refused: too many failures");
            self.broker
                .stats
                .rate_limited
                .fetch_add(1, Ordering::Relaxed);
            return Ok(rate_limited(which));
        }
        self.broker
            .stats
            .mapper_logins
            .fetch_add(1, Ordering::Relaxed);
        let outcome = self.generation.mapper.authenticate(login).await;
        log_mapper_failure("authenticate", &outcome);
        match &outcome {
            Ok(AuthOutcome::Rejected(r)) => {
                info!(user = %login.username, kind = ?r.kind, reason = %r.reason, "authentication refused");
                limiter.failed(Some(&login.username), self.client_ip, now_ms());
            }
            Ok(AuthOutcome::Accepted(_)) => limiter.succeeded(&login.username),
            _ => {}
        }
        outcome
    }
}

/// The answer to a rate-limited attempt: the same as a wrong password, so it tells nothing.
fn rate_limited(which: Limit) -> AuthOutcome {
    AuthOutcome::Rejected(Rejection {
        kind: RejectionKind::BadCredentials,
        reason: format!("too many failed logins ({which:?})"),
    })
}

fn log_mapper_failure<T>(call: &str, result: &Result<T, MapperError>) {
    if let Err(e) = result {
        warn!(call, error = %e, "mapper call failed");
    }
}

fn error_reply(id: ErrorId, text: &str, detail: Option<&str>) -> BrokerReply {
    BrokerReply::Error(ErrorResp {
        result_id: id,
        result_str: text.to_owned(),
        detail: detail.map(str::to_owned),
    })
}

fn xml_error(
    root: Root,
    id: ErrorId,
    text: &str,
    detail: Option<&str>,
    close: bool,
) -> Response<ChunkedBody> {
    xml_response(root, &error_reply(id, text, detail), None, close)
}

fn too_large(limit: usize) -> Response<ChunkedBody> {
    let detail = format!("the request body is larger than {limit} bytes");
    // The rest of the body was not read, so the connection cannot carry another request.
    xml_error(
        Root::PcoipClient,
        ErrorId::InvalidMsgFormat,
        "The request is too large",
        Some(&detail),
        true,
    )
}

fn xml_response(
    root: Root,
    reply: &BrokerReply,
    cookie: Option<&str>,
    close: bool,
) -> Response<ChunkedBody> {
    let mut response = Response::new(ChunkedBody::new(encode_reply(root, reply)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=UTF-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(id) = cookie
        && let Ok(value) =
            HeaderValue::from_str(&format!("JSESSIONID={id}; Path=/; Secure; HttpOnly"))
    {
        headers.insert(header::SET_COOKIE, value);
    }
    if close {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<ChunkedBody> {
    let mut response = Response::new(ChunkedBody::new(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    response
}

fn health_page(broker: &Broker) -> Response<ChunkedBody> {
    let generation = broker.current();
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>{name}</title></head><body>\n\
         <h1>{name}</h1>\n<p>PCoIP connection broker {version}: OK. Point a PCoIP client at this host.</p>\n\
         </body></html>\n",
        name = escape_html(&generation.info.product_name),
        version = env!("CARGO_PKG_VERSION"),
    );
    let mut response = Response::new(ChunkedBody::new(page));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    response
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The `JSESSIONID` cookie, if the request carries a well-formed one.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("JSESSIONID"))
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
        .filter(|value| value.len() <= 128)
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the nearest address in
/// `X-Forwarded-For` that is not itself a trusted proxy.
fn client_address(settings: &Settings, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let trusted = &settings.server.trusted_proxies;
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_is_found_among_others_and_case_insensitively() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("lb=1; jsessionid=abc ; x=y"),
        );
        assert_eq!(session_cookie(&headers).as_deref(), Some("abc"));
        headers.insert(header::COOKIE, HeaderValue::from_static("lb=1"));
        assert_eq!(session_cookie(&headers), None);
    }

    #[test]
    fn forwarded_for_is_honoured_only_from_trusted_proxies() {
        let mut settings = Settings::defaults();
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 10.0.0.1"),
        );
        assert_eq!(client_address(&settings, proxy, &headers), proxy);
        settings.server.trusted_proxies = vec![proxy];
        assert_eq!(
            client_address(&settings, proxy, &headers),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }
}
