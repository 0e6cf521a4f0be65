//! The dashboard: one page of plain HTML, CSS and JavaScript compiled into the binary
//! (`include_str!`), served by the admin listener, showing live sessions, the event stream and
//! counters, with a button that ends a session.
//!
//! # Sign-in and the cookie
//!
//! The operator types the admin token once; `POST /dashboard/login` checks it (in constant time)
//! and answers with a cookie `interstate_admin` (`HttpOnly`, `SameSite=Strict`, `Path=/`,
//! `Secure` when the listener speaks TLS, 8 hours) and a CSRF token. The cookie is 256 random
//! bits; the listener keeps only its SHA-256 (at most [`MAX_SIGNED_IN`] at a time, the oldest
//! signed out first). Every state-changing dashboard call must also carry the CSRF token in
//! `X-CSRF-Token`: `SameSite=Strict` already keeps other sites' requests cookie-less, and the
//! header, which a cross-site form cannot set, is the second lock. Failed sign-ins are audited
//! and, past [`MAX_FAILURES`] a minute, refused without checking.
//!
//! # Content-Security-Policy
//!
//! `default-src 'none'` and only this listener's own script, style, fetches and websocket
//! (`'self'`): no inline script, no CDN, no frames. The page writes text with `textContent`
//! only, so a user name in an event is never markup.
//!
//! # The feed
//!
//! The page does not hold the token, so it cannot sign feed calls: `POST /dashboard/api/feed`
//! signs a `/feed/connect` on its behalf (strict mode, channels [`super::OPERATOR_CHANNELS`])
//! and returns the feed's answer; the page then opens `/feed/ws?conn_id=…` itself.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use interstate_feed::{FeedBody, SECRET_HEADER};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Admin, FEED_PREFIX, OPERATOR_CHANNELS, read_body, reply, text};

/// The cookie's name.
pub const COOKIE: &str = "interstate_admin";

/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Operators signed in at once, at most.
pub const MAX_SIGNED_IN: usize = 64;

/// Failed sign-ins a minute before sign-ins are refused unchecked for the rest of it.
pub const MAX_FAILURES: u32 = 20;

/// How long a sign-in lasts.
const LIFETIME: Duration = Duration::from_secs(8 * 3600);

const INDEX_HTML: &str = include_str!("dashboard/index.html");
const APP_JS: &str = include_str!("dashboard/app.js");
const APP_CSS: &str = include_str!("dashboard/app.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One signed-in operator.
#[derive(Debug)]
struct SignedIn {
    csrf: String,
    expires: Instant,
}

#[derive(Debug)]
struct State {
    /// By SHA-256 of the cookie value.
    sessions: HashMap<[u8; 32], SignedIn>,
    failures: u32,
    failures_since: Instant,
}

/// The dashboard's signed-in operators.
#[derive(Debug)]
pub(super) struct Cookies {
    state: Mutex<State>,
}

impl Default for Cookies {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                sessions: HashMap::new(),
                failures: 0,
                failures_since: Instant::now(),
            }),
        }
    }
}

impl Cookies {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Signs an operator in: the cookie value and the CSRF token.
    fn issue(&self) -> (String, String) {
        let cookie = random_hex();
        let csrf = random_hex();
        let now = Instant::now();
        let mut state = self.lock();
        state.sessions.retain(|_, s| s.expires > now);
        if state.sessions.len() >= MAX_SIGNED_IN
            && let Some(oldest) = state
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| *k)
        {
            state.sessions.remove(&oldest);
        }
        state.sessions.insert(
            digest(&cookie),
            SignedIn {
                csrf: csrf.clone(),
                expires: now + LIFETIME,
            },
        );
        (cookie, csrf)
    }

    /// The CSRF token of the request's cookie, if it names a signed-in operator.
    fn csrf(&self, headers: &HeaderMap) -> Option<String> {
        let cookie = cookie_value(headers)?;
        let state = self.lock();
        let signed_in = state.sessions.get(&digest(cookie))?;
        (signed_in.expires > Instant::now()).then(|| signed_in.csrf.clone())
    }

    /// True when the request's cookie names a signed-in operator and, with `needs_csrf`, its
    /// `X-CSRF-Token` matches.
    pub(super) fn check(&self, headers: &HeaderMap, needs_csrf: bool) -> bool {
        let Some(csrf) = self.csrf(headers) else {
            return false;
        };
        if !needs_csrf {
            return true;
        }
        let presented = headers
            .get(CSRF_HEADER)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        bool::from(presented.ct_eq(csrf.as_bytes()))
    }

    fn revoke(&self, headers: &HeaderMap) {
        if let Some(cookie) = cookie_value(headers) {
            self.lock().sessions.remove(&digest(cookie));
        }
    }

    /// Counts a failed sign-in; false once the minute's budget is spent.
    fn failed(&self) {
        let mut state = self.lock();
        if state.failures_since.elapsed() >= Duration::from_secs(60) {
            state.failures = 0;
            state.failures_since = Instant::now();
        }
        state.failures = state.failures.saturating_add(1);
    }

    /// True while sign-ins are refused unchecked.
    fn locked(&self) -> bool {
        let state = self.lock();
        state.failures >= MAX_FAILURES && state.failures_since.elapsed() < Duration::from_secs(60)
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    hex::encode(bytes)
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// The value of the `interstate_admin` cookie.
fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    super::request_cookie(headers, COOKIE)
}

/// A static asset with the security headers every dashboard answer carries.
fn asset(body: &'static str, content_type: &'static str) -> Response<FeedBody> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Serves `/` and `/dashboard…`.
pub(super) async fn handle<B>(
    admin: &Admin,
    request: Request<B>,
    peer: SocketAddr,
) -> Response<FeedBody>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    match (&parts.method, path.as_str()) {
        (&Method::GET, "/") => {
            let mut response = text(StatusCode::SEE_OTHER, "see /dashboard\n".into());
            response
                .headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/dashboard"));
            return response;
        }
        (&Method::GET, "/dashboard" | "/dashboard/") => {
            return asset(INDEX_HTML, "text/html; charset=utf-8");
        }
        (&Method::GET, "/dashboard/app.js") => {
            return asset(APP_JS, "text/javascript; charset=utf-8");
        }
        (&Method::GET, "/dashboard/app.css") => return asset(APP_CSS, "text/css; charset=utf-8"),
        _ => {}
    }
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    if parts.method == Method::POST && path == "/dashboard/login" {
        return login(admin, &body, peer, &parts.headers);
    }
    let state_changing = parts.method != Method::GET;
    if admin.token.is_none() || !admin.cookies.check(&parts.headers, state_changing) {
        return reply(
            StatusCode::UNAUTHORIZED,
            &json!({"request": "sign in first"}),
        );
    }
    let actor = format!("dashboard {}", peer.ip());
    match (&parts.method, path.as_str()) {
        (&Method::POST, "/dashboard/logout") => {
            admin.cookies.revoke(&parts.headers);
            let mut response = reply(StatusCode::OK, &json!({"signed_out": true}));
            let clear = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
            if let Ok(value) = HeaderValue::from_str(&clear) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        (&Method::GET, "/dashboard/api/session") => reply(
            StatusCode::OK,
            &json!({"csrf": admin.cookies.csrf(&parts.headers),
                    "node": admin.running.broker.current().settings.node}),
        ),
        (&Method::GET, "/dashboard/api/sessions") => admin.list_sessions().await,
        (&Method::POST, "/dashboard/api/sessions/end") => {
            admin.end_session_request(&body, &actor).await
        }
        (&Method::GET, "/dashboard/api/stats") => stats(admin).await,
        (&Method::POST, "/dashboard/api/feed") => connect_feed(admin, peer).await,
        _ => reply(StatusCode::NOT_FOUND, &json!({"request": "Not Found"})),
    }
}

/// `POST /dashboard/login` with `{"token": "…"}`.
fn login(admin: &Admin, body: &[u8], peer: SocketAddr, _headers: &HeaderMap) -> Response<FeedBody> {
    let audit = admin.running.broker.audit();
    let Some(token) = admin.token.as_deref() else {
        return reply(
            StatusCode::FORBIDDEN,
            &json!({"request": "set admin.token to use the dashboard"}),
        );
    };
    if admin.cookies.locked() {
        audit.login_fail_max(
            None,
            peer.ip(),
            "admin",
            admin.running.broker.clock().now_ms(),
        );
        return reply(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({"request": "too many failed sign-ins; wait a minute"}),
        );
    }
    let presented = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("token")?.as_str().map(str::to_owned))
        .unwrap_or_default();
    if !bool::from(presented.as_bytes().ct_eq(token.as_bytes())) {
        admin.cookies.failed();
        audit.admin_login(peer.ip(), false);
        return reply(
            StatusCode::UNAUTHORIZED,
            &json!({"request": "wrong admin token"}),
        );
    }
    audit.admin_login(peer.ip(), true);
    let (cookie, csrf) = admin.cookies.issue();
    let secure = if admin.scheme == "https" {
        "; Secure"
    } else {
        ""
    };
    let set_cookie = format!(
        "{COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        LIFETIME.as_secs()
    );
    let mut response = reply(StatusCode::OK, &json!({"csrf": csrf}));
    if let Ok(value) = HeaderValue::from_str(&set_cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Counters for the page's header.
async fn stats(admin: &Admin) -> Response<FeedBody> {
    let broker = &admin.running.broker;
    let live = broker.store().live_sessions().await.ok();
    let feed = admin.feed.stats();
    let stats = broker.stats();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    reply(
        StatusCode::OK,
        &json!({
            "node": broker.current().settings.node,
            "live_sessions": live,
            "sessions_created": load(&stats.sessions_created),
            "allocations": load(&stats.allocations),
            "rate_limited": load(&stats.rate_limited),
            "feed_connections": feed.connections,
            "feed_last_seq": feed.last_seq,
        }),
    )
}

/// Signs a `/feed/connect` for the page and returns the feed's answer.
async fn connect_feed(admin: &Admin, peer: SocketAddr) -> Response<FeedBody> {
    let body = json!({
        "username": format!("operator@{}", peer.ip()),
        "channels": OPERATOR_CHANNELS,
    })
    .to_string();
    let target = format!("{FEED_PREFIX}/connect");
    let value = format!(
        "POST {target} {}",
        hex::encode(Sha256::digest(body.as_bytes()))
    );
    let Some(signature) = admin.feed.sign(&value) else {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"request": "the feed has no key"}),
        );
    };
    let request = Request::builder()
        .method(Method::POST)
        .uri(&target)
        .header(SECRET_HEADER, signature)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)));
    match request {
        Ok(request) => {
            let response = admin.feed.handle(request).await;
            let (parts, body) = response.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let mut response = Response::from_parts(parts, Full::new(bytes));
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"request": "could not build the feed request"}),
        ),
    }
}
