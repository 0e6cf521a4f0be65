//! The operator listener: health, metrics, reload, agent pins, the live feed, the admin API and
//! the dashboard, on its own address (usually loopback).
//!
//! # Routes
//!
//! | route | what | who |
//! |---|---|---|
//! | `GET /healthz` | `ok`, or 503 `not ready` while the session store cannot be reached | reader |
//! | `GET /metrics` | Prometheus metrics ([`crate::metrics`]) | reader |
//! | `POST /reload` | re-reads the settings (200 `reloaded`, or 409 with the reason) | operator |
//! | `GET /agents/pin?agent=HOST[:PORT]` | the SHA-256 pinned for an agent, or 404 | reader |
//! | `POST /agents/forget?agent=…`, `POST /agents/trust?agent=…&fingerprint=…` | agent pins | operator |
//! | `/feed/…` | the live feed, channelstream's API in strict mode ([`interstate_feed`]) | signed |
//! | `/channelstream/…` | the same feed in compat mode, for existing channelstream apps | signed |
//! | `GET /admin/api/sessions` | live sessions of every node sharing the store (JSON) | operator |
//! | `POST /admin/api/sessions/end` | `{"session_id": REF}`: ends that session | operator |
//! | `GET /dashboard`, `/dashboard/app.js`, `/dashboard/app.css` | the dashboard ([`dashboard`]) | anyone |
//! | `POST /dashboard/login`, `/dashboard/logout` | the dashboard's cookie | anyone / operator |
//! | `/dashboard/api/…` | the admin API and a feed connection, for the dashboard | operator |
//! | `GET\|POST [/feed\|/channelstream]/admin/admin.json` | channelstream's snapshot ([`compat`]) | cookie, signed or operator; else 302 |
//! | `GET\|POST [/feed\|/channelstream]/admin/sign_in`, `…/sign_out` | channelstream's admin sign-in | anyone |
//! | `OPTIONS *` | CORS preflight (`admin.allow_cors`) | anyone |
//!
//! `PORT` defaults to `agent.port`; an IPv6 address is written `[v6]` or `[v6]:PORT`. Sessions
//! are named by their [`crate::events::session_ref`], never by their id.
//!
//! # Who may call what
//!
//! - An **operator** call (anything that changes state, and the admin API) needs `admin.token`
//!   to be set, always, on loopback too, and one of: `Authorization: Bearer <token>` (compared in
//!   constant time); a feed strict-mode signature in `X-Channelstream-Secret` (the token is the
//!   feed's signing key: `METHOD TARGET sha256hex(body)`, fresh, used once); or the dashboard's
//!   cookie plus its CSRF token in `X-CSRF-Token` (for `POST`s). Without a token these calls are
//!   refused with 403: a loopback listener is not a credential (any local process, or a browser
//!   page aimed at 127.0.0.1, could reach it).
//! - A **reader** call needs the same when a token is set; without a token (which only a loopback
//!   listener may lack) it is open.
//! - Signed API calls (the feed's REST routes, and admin calls signed in
//!   `X-Channelstream-Secret`) must come from `admin.allow_posting_from` when it is set (403
//!   otherwise, token or not); `admin.enforce_https` answers 406 to plain HTTP; an origin in
//!   `admin.allow_cors` may call across origins ([`compat`]).
//! - Every request must name this listener in `Host` (its address, or `localhost`/the loopback
//!   addresses on a loopback listener, or `server.hostname`) and, if it has an `Origin`, come
//!   from this listener's own origin. That refuses DNS rebinding (a foreign name resolving to
//!   127.0.0.1) and cross-site requests from a browser.
//!
//! # Transport
//!
//! On a loopback address the listener speaks plain HTTP unless `admin.tls` is true. Beyond
//! loopback it always speaks TLS with the broker's own certificate (the same one, swapped on reload), so the token and the feed never
//! cross a network in clear. It runs the client listener's accept loop
//! ([`crate::server::serve`]): a connection cap (`admin.max_connections`, which feed
//! subscribers count against), TLS handshakes and header deadlines from `server.*`, and a
//! drain on shutdown, after which the feed's subscribers are closed (code 1000).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::service::service_fn;
use interstate_feed::{AuthMode, Feed, FeedBody, FeedConfig, Mount, SECRET_HEADER};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::app::{Reloader, Running};
use crate::events::{channel, session_ref};
use crate::server::ConnectionCap;
use crate::server::deadline::DeadlineBody;
use crate::store::{SessionKey, parse_agent};
use crate::verify::parse_fingerprint;

/// The value of cookie `name` in the request (the first one, when sent twice).
fn request_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

mod compat;
mod dashboard;

/// Largest admin request body read (the admin API's JSON; the feed has its own limit).
const MAX_BODY: usize = 64 * 1024;

/// Most sessions the admin API lists.
pub const MAX_LISTED: usize = 10_000;

/// Where the feed is mounted in strict mode.
pub const FEED_PREFIX: &str = "/feed";

/// Where the feed is mounted in channelstream's compat mode.
pub const COMPAT_PREFIX: &str = "/channelstream";

/// The channels an operator's feed connection (the dashboard's) joins.
pub const OPERATOR_CHANNELS: [&str; 6] = [
    channel::SESSIONS,
    channel::AUTH,
    channel::ALLOCATIONS,
    channel::MAPPERS,
    channel::SYSTEM,
    channel::ADMIN,
];

/// The admin listener's state.
struct Admin {
    running: Arc<Running>,
    reloader: Reloader,
    token: Option<Arc<str>>,
    feed: Arc<Feed>,
    /// Acceptable `Host` values, lower case.
    hosts: Vec<String>,
    /// `http` or `https`.
    scheme: &'static str,
    cookies: dashboard::Cookies,
    /// Sign-in cookies signed out on this node ([`compat`]).
    revoked: compat::Revoked,
}

/// Who a request is, once authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// `Authorization: Bearer`.
    Token,
    /// A feed strict-mode signature.
    Signed,
    /// The dashboard's cookie (and, for a `POST`, its CSRF token).
    Dashboard,
}

impl Caller {
    fn label(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Signed => "signed",
            Self::Dashboard => "dashboard",
        }
    }
}

/// The feed an admin listener serves, for `running`: signed with the admin token (or, without
/// one, with a random key nobody holds, so only the broker itself can sign). On the Redis store
/// its events travel to and from the other nodes over a [`crate::feedbus::RedisBus`], and the
/// operator channels exist from the start, so the history replayed from Redis lands in them.
pub fn feed_for(running: &Running, token: Option<&str>) -> Arc<Feed> {
    feed_and_bus(running, token).0
}

/// [`feed_for`], and the bus it started when the store is shared.
pub fn feed_and_bus(
    running: &Running,
    token: Option<&str>,
) -> (Arc<Feed>, Option<Arc<crate::feedbus::RedisBus>>) {
    let secret = match token {
        Some(token) => token.as_bytes().to_vec(),
        None => {
            let mut key = vec![0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
            key
        }
    };
    let node = running.broker.current().settings.node.clone();
    let mut config = FeedConfig::new(node, vec![secret]);
    config.mounts = vec![
        Mount::new(FEED_PREFIX, AuthMode::Strict),
        Mount::new(COMPAT_PREFIX, AuthMode::Compat),
    ];
    config.limits.max_connections = running
        .broker
        .current()
        .settings
        .admin_max_connections
        .max(16);
    let Some(bus) = running.feed_bus() else {
        return (Feed::new(config), None);
    };
    let feed = Feed::with_bus(config, bus.clone());
    for name in OPERATOR_CHANNELS {
        feed.configure_channel(name, feed.default_channel());
    }
    bus.start();
    (feed, Some(bus))
}

/// Serves the admin endpoints on `listener` until `shutdown` resolves, then drains.
pub async fn run(
    listener: TcpListener,
    running: Arc<Running>,
    reloader: Reloader,
    token: Option<String>,
    shutdown: impl Future<Output = ()>,
) {
    let feed = match running.broker.events().feed() {
        Some(feed) => feed.clone(),
        None => {
            let feed = feed_for(&running, token.as_deref());
            running.broker.events().attach(feed.clone());
            feed
        }
    };
    let local = match listener.local_addr() {
        Ok(local) => local,
        Err(e) => {
            warn!(error = %e, "the admin listener has no address");
            return;
        }
    };
    let settings = running.broker.current().settings.clone();
    let tls = (settings.admin_tls || !local.ip().is_loopback()).then(|| running.tls_config());
    let admin = Arc::new(Admin {
        hosts: allowed_hosts(local, &settings.server.hostname),
        scheme: if tls.is_some() { "https" } else { "http" },
        running: running.clone(),
        reloader,
        token: token.map(Arc::<str>::from),
        feed: feed.clone(),
        cookies: dashboard::Cookies::default(),
        revoked: compat::Revoked::default(),
    });
    let cap = Arc::new(ConnectionCap::new(settings.admin_max_connections));
    let server_settings = {
        let running = running.clone();
        move || running.broker.current().settings.server.clone()
    };
    let make_service = move |peer: SocketAddr, request_timeout: Duration| {
        let admin = admin.clone();
        service_fn(move |request: Request<hyper::body::Incoming>| {
            let admin = admin.clone();
            let request = request.map(|body| DeadlineBody::new(body, request_timeout));
            async move { Ok::<_, Infallible>(admin.handle(request, peer).await) }
        })
    };
    crate::server::serve(
        listener,
        tls,
        cap,
        false,
        server_settings,
        make_service,
        shutdown,
    )
    .await;
    feed.close_all();
}

/// The `Host` values a listener on `local` answers to.
fn allowed_hosts(local: SocketAddr, hostname: &str) -> Vec<String> {
    let port = local.port();
    let mut hosts = vec![local.to_string()];
    if local.ip().is_loopback() {
        hosts.extend([
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ]);
    }
    if !hostname.is_empty() {
        hosts.push(format!("{}:{port}", hostname.to_ascii_lowercase()));
    }
    hosts.dedup();
    hosts
}

impl Admin {
    async fn handle<B>(&self, request: Request<B>, peer: SocketAddr) -> Response<FeedBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let generation = self.running.broker.current();
        let settings = &generation.settings;
        let access = &settings.admin_access;
        if let Err(refusal) = self.same_host(request.headers()) {
            return refusal;
        }
        if access.enforce_https
            && !compat::arrived_over_https(
                self.scheme,
                request.headers(),
                peer.ip(),
                &settings.server.trusted_proxies,
            )
        {
            return compat::https_required();
        }
        if request.method() == Method::OPTIONS {
            return compat::preflight(access, request.headers());
        }
        let listed = compat::cors_allowed(access, request.headers());
        if !listed && let Err(refusal) = self.same_origin(request.headers()) {
            return refusal;
        }
        let headers = listed.then(|| request.headers().clone());
        let mut response = self.route(request, peer, access).await;
        if let Some(headers) = headers {
            compat::add_cors(&mut response, &headers, true);
        }
        response
    }

    async fn route<B>(
        &self,
        request: Request<B>,
        peer: SocketAddr,
        access: &interstate_config::AdminAccess,
    ) -> Response<FeedBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = request.uri().path().to_owned();
        if let Some(route) = compat::page_route(&path) {
            let (parts, body) = request.into_parts();
            let body = match read_body(body).await {
                Ok(body) => body,
                Err(response) => return response,
            };
            return self.page(route, access, &parts, &body, peer).await;
        }
        if under(&path, FEED_PREFIX) || under(&path, COMPAT_PREFIX) {
            let socket = path.ends_with("/ws");
            if !socket && !compat::may_post(access, peer.ip()) {
                return compat::forbidden_address();
            }
            return self.feed.handle(request).await;
        }
        if path == "/" || path.starts_with("/dashboard") {
            return dashboard::handle(self, request, peer).await;
        }
        let (parts, body) = request.into_parts();
        let body = match read_body(body).await {
            Ok(body) => body,
            Err(response) => return response,
        };
        let caller = self.authenticate(&parts.method, &parts.uri, &parts.headers, &body);
        if caller == Some(Caller::Signed) && !compat::may_post(access, peer.ip()) {
            return compat::forbidden_address();
        }
        let reader_ok = self.token.is_none() || caller.is_some();
        match (&parts.method, path.as_str()) {
            (&Method::GET, "/healthz") if reader_ok => self.healthz().await,
            (&Method::GET, "/metrics") if reader_ok => self.metrics().await,
            (&Method::GET, "/agents/pin") if reader_ok => {
                self.agents(&parts.method, &path, parts.uri.query(), peer)
                    .await
            }
            (&Method::GET, "/healthz" | "/metrics" | "/agents/pin") => unauthorized(),
            (method, _) => {
                let Some(caller) = self.operator(caller) else {
                    return self.refuse_operator();
                };
                let actor = format!("{} {}", caller.label(), peer.ip());
                match (method, path.as_str()) {
                    (&Method::POST, "/reload") => self.reload(&actor).await,
                    (_, p) if p.starts_with("/agents/") => {
                        self.agents(method, p, parts.uri.query(), peer).await
                    }
                    (&Method::GET, "/admin/api/sessions") => self.list_sessions().await,
                    (&Method::POST, "/admin/api/sessions/end") => {
                        self.end_session_request(&body, &actor).await
                    }
                    _ => reply(StatusCode::NOT_FOUND, &json!({"request": "Not Found"})),
                }
            }
        }
    }

    /// The caller of an operator route: refused without `admin.token`.
    fn operator(&self, caller: Option<Caller>) -> Option<Caller> {
        self.token.as_ref()?;
        caller
    }

    fn refuse_operator(&self) -> Response<FeedBody> {
        if self.token.is_none() {
            return text(
                StatusCode::FORBIDDEN,
                "this call changes state: set admin.token to allow it\n".into(),
            );
        }
        unauthorized()
    }

    /// Refuses a `Host` that is not this listener (DNS rebinding).
    #[allow(
        clippy::result_large_err,
        reason = "the refusal is the response itself"
    )]
    fn same_host(&self, headers: &HeaderMap) -> Result<String, Response<FeedBody>> {
        let host = headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase);
        host.filter(|h| self.hosts.contains(h)).ok_or_else(|| {
            text(
                StatusCode::MISDIRECTED_REQUEST,
                "this listener does not serve that Host\n".into(),
            )
        })
    }

    /// Refuses a `Host` that is not this listener, and an `Origin` that is not its origin.
    #[allow(
        clippy::result_large_err,
        reason = "the refusal is the response itself"
    )]
    fn same_origin(&self, headers: &HeaderMap) -> Result<(), Response<FeedBody>> {
        let host = self.same_host(headers)?;
        if let Some(origin) = headers.get(http::header::ORIGIN) {
            let expected = format!("{}://{host}", self.scheme);
            let same = origin
                .to_str()
                .is_ok_and(|o| o.eq_ignore_ascii_case(&expected));
            if !same {
                return Err(text(
                    StatusCode::FORBIDDEN,
                    "cross-origin requests are refused\n".into(),
                ));
            }
        }
        Ok(())
    }

    /// Who sent the request, if anyone the listener knows.
    fn authenticate(
        &self,
        method: &Method,
        uri: &http::Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<Caller> {
        let token = self.token.as_deref()?;
        let bearer = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if let Some(presented) = bearer {
            return bool::from(presented.as_bytes().ct_eq(token.as_bytes()))
                .then_some(Caller::Token);
        }
        if let Some(signature) = headers.get(SECRET_HEADER) {
            let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
            return self
                .feed
                .verify_strict(signature.to_str().ok(), method.as_str(), target, body)
                .then_some(Caller::Signed);
        }
        self.cookies
            .check(headers, *method != Method::GET && *method != Method::HEAD)
            .then_some(Caller::Dashboard)
    }

    async fn healthz(&self) -> Response<FeedBody> {
        match self.running.broker.store().ready().await {
            Ok(()) => text(StatusCode::OK, "ok\n".into()),
            Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")),
        }
    }

    async fn metrics(&self) -> Response<FeedBody> {
        let mut response = text(StatusCode::OK, metrics(&self.running).await);
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
        );
        response
    }

    async fn reload(&self, actor: &str) -> Response<FeedBody> {
        info!(%actor, "reload requested on the admin listener");
        match self.reloader.reload_by(&self.running, actor).await {
            Ok(report) if report.restart_required.is_empty() => {
                text(StatusCode::OK, "reloaded\n".into())
            }
            Ok(report) => text(
                StatusCode::OK,
                format!(
                    "reloaded; these keys take effect only after a restart: {}\n",
                    report.restart_required.join(", ")
                ),
            ),
            Err(reason) => text(StatusCode::CONFLICT, format!("reload refused: {reason}\n")),
        }
    }

    /// The live sessions, as JSON.
    async fn list_sessions(&self) -> Response<FeedBody> {
        let broker = &self.running.broker;
        let now = broker.clock().now_ms();
        match broker.store().list(MAX_LISTED).await {
            Ok(list) => {
                let this_node = broker.current().settings.node.clone();
                let sessions: Vec<Value> = list
                    .iter()
                    .map(|s| {
                        json!({
                            "node": s.node.as_deref().unwrap_or(&this_node),
                            "desktop": s.desktop.as_deref().map(crate::audit::loggable),
                            "session_id": session_ref(&s.id),
                            "user": s.user.as_deref().map(crate::audit::loggable),
                            "client_address": s.client_address,
                            "state": match s.phase {
                                Some(interstate_protocol::Phase::Created) => "created",
                                Some(interstate_protocol::Phase::Authenticated) => "authenticated",
                                Some(interstate_protocol::Phase::Allocated) => "allocated",
                                None => "busy",
                            },
                            "age_s": (s.created_at_ms > 0)
                                .then(|| now.saturating_sub(s.created_at_ms) / 1000),
                            "idle_s": (s.last_seen_ms > 0)
                                .then(|| now.saturating_sub(s.last_seen_ms) / 1000),
                        })
                    })
                    .collect();
                reply(
                    StatusCode::OK,
                    &json!({"node": broker.current().settings.node, "sessions": sessions}),
                )
            }
            Err(e) => {
                broker.metrics().store_error(&e);
                reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"error": e.to_string()}),
                )
            }
        }
    }

    async fn end_session_request(&self, body: &[u8], actor: &str) -> Response<FeedBody> {
        let wanted = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("session_id")?.as_str().map(str::to_owned));
        let Some(wanted) = wanted else {
            return reply(
                StatusCode::BAD_REQUEST,
                &json!({"session_id": ["expected {\"session_id\": \"<ref>\"}"]}),
            );
        };
        match self.end_session(&wanted, actor).await {
            Ok(true) => reply(StatusCode::OK, &json!({"ended": wanted})),
            Ok(false) => reply(
                StatusCode::NOT_FOUND,
                &json!({"session_id": ["no such live session"]}),
            ),
            Err(e) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"error": e.to_string()}),
            ),
        }
    }

    /// Ends the live session whose reference is `wanted`: false when there is none.
    async fn end_session(
        &self,
        wanted: &str,
        actor: &str,
    ) -> Result<bool, crate::store::StoreError> {
        use crate::service::report::{EndReason, Ended};
        let broker = &self.running.broker;
        let store = broker.store();
        let list = store.list(MAX_LISTED).await?;
        let Some(found) = list.into_iter().find(|s| session_ref(&s.id) == wanted) else {
            return Ok(false);
        };
        // Through a checkout, so that the end is reported with what the session was; a request
        // of the session in flight finishes first (or, on a shared store, the call is Busy).
        let Some(checkout) = store.checkout(SessionKey::Id(&found.id)).await? else {
            return Ok(false);
        };
        let ended = Ended::of(&checkout);
        store.commit(checkout, false).await?;
        ended.report(broker, EndReason::Killed, broker.clock().now_ms());
        broker
            .audit()
            .admin_action("admin_session_end", actor, wanted, "ended");
        broker.events().emit(
            &[channel::ADMIN],
            "admin.action",
            None,
            json!({"operator": actor, "action": "end_session", "target": wanted, "result": "ended"}),
        );
        Ok(true)
    }

    /// The agent pin routes.
    async fn agents(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        peer: SocketAddr,
    ) -> Response<FeedBody> {
        let running = &self.running;
        let param = |name: &str| {
            query?
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| *key == name)
                .map(|(_, value)| percent_decode(value))
        };
        let default_port = running.broker.current().settings.agent.port;
        let Some(agent) = param("agent").and_then(|a| parse_agent(&a, default_port)) else {
            return text(
                StatusCode::BAD_REQUEST,
                "expected ?agent=HOST[:PORT]\n".into(),
            );
        };
        let pins = &running.pins;
        let audit = running.broker.audit();
        let actor = peer.ip().to_string();
        match (method, path) {
            (&Method::GET, "/agents/pin") => match pins.pin(&agent).await {
                Ok(Some(pin)) => text(StatusCode::OK, format!("{agent} {}\n", hex::encode(pin))),
                Ok(None) => text(StatusCode::NOT_FOUND, format!("{agent} has no pin\n")),
                Err(e) => store_unavailable(&e),
            },
            (&Method::POST, "/agents/forget") => {
                let old = match pins.set_pin(&agent, None).await {
                    Ok(old) => old,
                    Err(e) => return store_unavailable(&e),
                };
                warn!(%peer, %agent, old = ?old.map(hex::encode), "agent pin forgotten by the operator");
                audit.admin_action("admin_agent_pin", &actor, &agent, "forgotten");
                match old {
                    Some(old) => text(
                        StatusCode::OK,
                        format!(
                            "forgot the pin of {agent} ({}); its next certificate will be pinned\n",
                            hex::encode(old)
                        ),
                    ),
                    None => text(StatusCode::OK, format!("{agent} had no pin\n")),
                }
            }
            (&Method::POST, "/agents/trust") => {
                let Some(pin) = param("fingerprint").and_then(|f| parse_fingerprint(&f)) else {
                    return text(
                        StatusCode::BAD_REQUEST,
                        "expected &fingerprint=SHA256 (64 hex digits, colons allowed)\n".into(),
                    );
                };
                let old = match pins.set_pin(&agent, Some(pin)).await {
                    Ok(old) => old,
                    Err(e) => return store_unavailable(&e),
                };
                warn!(%peer, %agent, old = ?old.map(hex::encode), new = %hex::encode(pin), "agent pin set by the operator");
                audit.admin_action("admin_agent_pin", &actor, &agent, "trusted");
                text(
                    StatusCode::OK,
                    format!("{agent} now pinned to {}\n", hex::encode(pin)),
                )
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
        }
    }
}

/// True when `path` is `prefix` or below it.
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Reads a request body of at most [`MAX_BODY`] bytes.
async fn read_body<B>(body: B) -> Result<Bytes, Response<FeedBody>>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large or did not arrive\n".into(),
        )),
    }
}

/// Decodes `%XX` escapes (`[`, `]`, `:` of IPv6 agents); anything malformed is kept as is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The answer when the store holding the pins cannot be reached.
fn store_unavailable(e: &crate::store::StoreError) -> Response<FeedBody> {
    warn!(error = %e, "agent pin request failed");
    text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n"))
}

fn unauthorized() -> Response<FeedBody> {
    text(
        StatusCode::UNAUTHORIZED,
        "missing or wrong admin token\n".into(),
    )
}

fn text(status: StatusCode, body: String) -> Response<FeedBody> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    response
}

fn reply(status: StatusCode, body: &Value) -> Response<FeedBody> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

/// The Prometheus exposition of the broker's metrics, with the gauges that describe state kept
/// elsewhere (live sessions, feed connections) read now.
pub async fn metrics(running: &Running) -> String {
    let broker = &running.broker;
    let metrics = broker.metrics();
    // A store that cannot be reached leaves the gauge at its last value and counts an error.
    match broker.store().live_sessions().await {
        Ok(live) => {
            metrics
                .sessions
                .set(i64::try_from(live).unwrap_or(i64::MAX));
        }
        Err(e) => metrics.store_error(&e),
    }
    if let Some(feed) = broker.events().feed() {
        let connections = feed.stats().connections;
        metrics
            .feed_connections
            .set(i64::try_from(connections).unwrap_or(i64::MAX));
    }
    metrics.render()
}
