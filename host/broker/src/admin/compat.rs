//! channelstream's admin surface and transport rules on the admin listener (study §1.2, §1.3,
//! §3.11): the IP allowlist of the signed API, `enforce_https`, CORS, `admin.json`, and the admin
//! sign-in with its `auth_tkt` cookie. The rules come from `admin.*` (`AdminAccess`) and are
//! read per request, so a reload applies them.
//!
//! # Paths
//!
//! channelstream serves `/admin/admin.json`, `/admin/sign_in` and `/admin/sign_out` at its root.
//! They are served at the listener's root (signatures in the strict mode, like every admin
//! call), under `/feed` (strict) and under `/channelstream` (the compat mode: an app whose base
//! URL was channelstream's works with `…/channelstream` as its base).
//!
//! # `admin.json`
//!
//! `GET|POST`, answered with [`interstate_feed::Feed::admin_json`] for a caller holding the
//! sign-in cookie, an API signature (`X-Channelstream-Secret`, per the mount's mode; subject to
//! `admin.allow_posting_from`) or the bearer token. Anyone else is sent to the sign-in page
//! (302), as channelstream does; a bad signature is 401 `{"request":"Bad Signature"}`.
//!
//! # Sign-in
//!
//! `GET /admin/sign_in` is a form; `POST` with `username` and `password` (form-encoded) checks
//! them against `admin.user` and `admin.password_hash` (the broker's password-hash formats; the
//! password is compared by hash only, on a blocking thread, and both comparisons always run).
//! Attempts go through the broker's failure limits (`security.*`, keyed by the address and by
//! `admin:<user>`), so the form cannot be sprayed; a wrong answer waits [`FAILURE_DELAY`] and
//! answers 200 with the form again and no cookie. The right one answers 302 and the cookie
//! `auth_tkt`: `HMAC-SHA256(admin.cookie_secret)` over its expiry and user, `HttpOnly; Secure;
//! SameSite=Strict`, valid [`COOKIE_LIFETIME`]. `GET /admin/sign_out` expires it in the browser
//! and revokes it on this node (the revocation is per node; the cookie still lapses everywhere
//! at its expiry). The cookie opens `admin.json`, nothing that changes state.
//!
//! # Transport
//!
//! With `admin.enforce_https`, a request that reached the listener over plain HTTP gets 406
//! `{"request": "SSL is required"}` (a `X-Forwarded-Proto`, `X-Scheme` or `X-Url-Scheme` of
//! `https` counts only from `server.trusted_proxies`). `OPTIONS` is a CORS preflight: 200, empty,
//! with channelstream's `Access-Control-Allow-Methods`, `-Headers` and `-Max-Age`; an origin in
//! `admin.allow_cors` also gets `Access-Control-Allow-Origin` naming it (never `*`, and never
//! credentials), on the preflight and on its requests. Other foreign origins stay refused.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::Full;
use interstate_config::AdminAccess;
use interstate_feed::{AuthMode, FeedBody, SECRET_HEADER};
use serde_json::json;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{Admin, COMPAT_PREFIX, FEED_PREFIX, reply};
use crate::ratelimit::Outcome;

/// The sign-in cookie's name, as channelstream (Pyramid's `AuthTktAuthenticationPolicy`) has it.
pub const COOKIE: &str = "auth_tkt";

/// How long a failed sign-in waits before it answers (channelstream: 0.5 s).
pub const FAILURE_DELAY: Duration = Duration::from_millis(500);

/// How long a sign-in lasts.
pub const COOKIE_LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// Signed-out cookies remembered until they lapse, at most (the oldest are forgotten first).
const MAX_REVOKED: usize = 4_096;

/// channelstream's `Access-Control-Allow-Methods`.
const ALLOW_METHODS: &str = "GET, POST, OPTIONS, PUT, DELETE, PATCH";

/// channelstream's `Access-Control-Allow-Headers`, plus the headers this listener reads.
const ALLOW_HEADERS: &str = "Origin, Content-Type, Accept, Authorization, X-Requested-With, \
                             X-Channelstream-Secret, X-CSRF-Token";

const SIGN_IN_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                           frame-ancestors 'none'; base-uri 'none'";

/// One of channelstream's admin pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Page {
    /// `admin.json`.
    AdminJson,
    /// `sign_in`.
    SignIn,
    /// `sign_out`.
    SignOut,
}

/// An admin page request: the page, the mount prefix it came under, and that mount's mode.
#[derive(Debug, Clone, Copy)]
pub(super) struct PageRoute {
    pub page: Page,
    pub prefix: &'static str,
    pub mode: AuthMode,
}

/// The admin page `path` names, if any.
pub(super) fn page_route(path: &str) -> Option<PageRoute> {
    for (prefix, mode) in [
        ("", AuthMode::Strict),
        (FEED_PREFIX, AuthMode::Strict),
        (COMPAT_PREFIX, AuthMode::Compat),
    ] {
        let Some(rest) = path.strip_prefix(prefix) else {
            continue;
        };
        let page = match rest {
            "/admin/admin.json" => Page::AdminJson,
            "/admin/sign_in" => Page::SignIn,
            "/admin/sign_out" => Page::SignOut,
            _ => continue,
        };
        return Some(PageRoute { page, prefix, mode });
    }
    None
}

/// True when `peer` may make signed API calls.
pub(super) fn may_post(access: &AdminAccess, peer: IpAddr) -> bool {
    access.allow_posting_from.is_empty()
        || access
            .allow_posting_from
            .iter()
            .any(|block| block.contains(peer))
}

/// channelstream's 403 for an address outside the allowlist.
pub(super) fn forbidden_address() -> Response<FeedBody> {
    reply(
        StatusCode::FORBIDDEN,
        &json!({"request": "Forbidden: this address may not call the signed API"}),
    )
}

/// True when the request reached the listener over HTTPS (directly, or via a trusted proxy
/// that says so).
pub(super) fn arrived_over_https(
    scheme: &str,
    headers: &HeaderMap,
    peer: IpAddr,
    trusted_proxies: &[IpAddr],
) -> bool {
    if scheme == "https" {
        return true;
    }
    let peer = peer.to_canonical();
    if !trusted_proxies.iter().any(|p| p.to_canonical() == peer) {
        return false;
    }
    ["x-forwarded-proto", "x-scheme", "x-url-scheme"]
        .iter()
        .filter_map(|name| headers.get(*name))
        .any(|value| value.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// The 406 of `enforce_https`.
pub(super) fn https_required() -> Response<FeedBody> {
    reply(
        StatusCode::NOT_ACCEPTABLE,
        &json!({"request": "SSL is required"}),
    )
}

/// The request's `Origin`, lower case, with its port made explicit (`scheme://host:port`).
pub(super) fn origin_of(headers: &HeaderMap) -> Option<String> {
    let origin = headers
        .get(header::ORIGIN)?
        .to_str()
        .ok()?
        .to_ascii_lowercase();
    let (scheme, rest) = origin.split_once("://")?;
    let port = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let has_port = if rest.starts_with('[') {
        rest.contains("]:")
    } else {
        rest.contains(':')
    };
    Some(if has_port {
        origin.clone()
    } else {
        format!("{origin}:{port}")
    })
}

/// True when the request's `Origin` is one `admin.allow_cors` lists.
pub(super) fn cors_allowed(access: &AdminAccess, headers: &HeaderMap) -> bool {
    origin_of(headers).is_some_and(|origin| access.allow_cors.contains(&origin))
}

/// Adds the CORS headers to `response`; `Access-Control-Allow-Origin` only for a listed origin.
pub(super) fn add_cors(response: &mut Response<FeedBody>, headers: &HeaderMap, listed: bool) {
    let out = response.headers_mut();
    if listed && let Some(origin) = headers.get(header::ORIGIN) {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        out.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    );
    out.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    out.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    out.insert("xdomainrequestallowed", HeaderValue::from_static("1"));
}

/// The answer to a CORS preflight (`OPTIONS`): 200, empty.
pub(super) fn preflight(access: &AdminAccess, headers: &HeaderMap) -> Response<FeedBody> {
    let mut response = Response::new(Full::new(Bytes::new()));
    add_cors(&mut response, headers, cors_allowed(access, headers));
    response
}

/// The sign-in cookies this node has signed out, by SHA-256, with their expiry (Unix seconds).
#[derive(Debug, Default)]
pub(super) struct Revoked {
    cookies: Mutex<HashMap<[u8; 32], u64>>,
}

impl Revoked {
    fn revoke(&self, cookie: &str, expires: u64) {
        let now = unix_now();
        let mut cookies = self.cookies.lock().unwrap_or_else(PoisonError::into_inner);
        cookies.retain(|_, lapse| *lapse > now);
        if cookies.len() >= MAX_REVOKED
            && let Some(oldest) = cookies
                .iter()
                .min_by_key(|(_, lapse)| **lapse)
                .map(|(k, _)| *k)
        {
            cookies.remove(&oldest);
        }
        cookies.insert(digest(cookie), expires);
    }

    fn contains(&self, cookie: &str) -> bool {
        self.cookies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&digest(cookie))
    }
}

fn digest(text: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes()).into()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `auth_tkt` value for `user` until `expires`: `hex(HMAC-SHA256(key, EXPIRY!USERHEX))`,
/// then `EXPIRY` (16 hex digits) and `USERHEX` (the user name in hex), joined by `!`.
fn ticket(secret: &str, user: &str, expires: u64) -> String {
    let body = format!("{expires:016x}!{}", hex::encode(user.as_bytes()));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body.as_bytes());
    format!("{}!{body}", hex::encode(tag.as_ref()))
}

/// The user a valid, unexpired, unrevoked `auth_tkt` names.
fn ticket_user(secret: &str, value: &str, revoked: &Revoked) -> Option<String> {
    let (tag, body) = value.split_once('!')?;
    let tag = hex::decode(tag).ok()?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::verify(&key, body.as_bytes(), &tag).ok()?;
    let (expires, user) = body.split_once('!')?;
    let expires = u64::from_str_radix(expires, 16).ok()?;
    if expires <= unix_now() || revoked.contains(value) {
        return None;
    }
    String::from_utf8(hex::decode(user).ok()?).ok()
}

/// The `auth_tkt` cookie of the request.
fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    super::request_cookie(headers, COOKIE).map(|value| value.trim_matches('"'))
}

impl Admin {
    /// True when the request carries a valid sign-in cookie (and the sign-in is configured).
    pub(super) fn signed_in(&self, access: &AdminAccess, headers: &HeaderMap) -> bool {
        let (Some(secret), Some(_), Some(value)) = (
            access.cookie_secret.as_deref(),
            access.password_hash.as_deref(),
            cookie_value(headers),
        ) else {
            return false;
        };
        ticket_user(secret, value, &self.revoked).is_some_and(|user| user == access.user)
    }

    /// Serves one of channelstream's admin pages.
    pub(super) async fn page(
        &self,
        route: PageRoute,
        access: &AdminAccess,
        parts: &http::request::Parts,
        body: &[u8],
        peer: SocketAddr,
    ) -> Response<FeedBody> {
        match (route.page, &parts.method) {
            (Page::AdminJson, &Method::GET | &Method::POST) => {
                self.admin_json(route, access, parts, body, peer)
            }
            (Page::SignIn, &Method::GET) => sign_in_form(StatusCode::OK, None),
            (Page::SignIn, &Method::POST) => self.sign_in(route, access, body, peer).await,
            (Page::SignOut, &Method::GET | &Method::POST) => self.sign_out(route, &parts.headers),
            _ => reply(
                StatusCode::METHOD_NOT_ALLOWED,
                &json!({"request": "Method Not Allowed"}),
            ),
        }
    }

    fn admin_json(
        &self,
        route: PageRoute,
        access: &AdminAccess,
        parts: &http::request::Parts,
        body: &[u8],
        peer: SocketAddr,
    ) -> Response<FeedBody> {
        let (method, headers) = (&parts.method, &parts.headers);
        let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let allowed = || reply(StatusCode::OK, &self.feed.admin_json());
        if self.signed_in(access, headers) {
            return allowed();
        }
        if let Some(token) = headers.get(SECRET_HEADER) {
            if !may_post(access, peer.ip()) {
                return forbidden_address();
            }
            let endpoint = target
                .split('?')
                .next()
                .unwrap_or(target)
                .strip_prefix(route.prefix)
                .unwrap_or(target);
            return match self.feed.verify(
                token.to_str().ok(),
                route.mode,
                method.as_str(),
                target,
                endpoint,
                body,
            ) {
                Ok(()) => allowed(),
                Err(error) => {
                    tracing::debug!(%error, "admin.json signature refused");
                    reply(
                        StatusCode::UNAUTHORIZED,
                        &json!({"request": "Bad Signature"}),
                    )
                }
            };
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if let (Some(presented), Some(token)) = (bearer, self.token.as_deref())
            && bool::from(presented.as_bytes().ct_eq(token.as_bytes()))
        {
            return allowed();
        }
        redirect(&format!("{}/admin/sign_in", route.prefix), None)
    }

    async fn sign_in(
        &self,
        route: PageRoute,
        access: &AdminAccess,
        body: &[u8],
        peer: SocketAddr,
    ) -> Response<FeedBody> {
        let (Some(hash), Some(secret)) = (
            access.password_hash.clone(),
            access.cookie_secret.as_deref(),
        ) else {
            return sign_in_form(
                StatusCode::FORBIDDEN,
                Some("The sign-in is off: set admin.password_hash and admin.cookie_secret."),
            );
        };
        let user = form_field(body, "username").unwrap_or_default();
        let password = Zeroizing::new(form_field(body, "password").unwrap_or_default());
        let broker = &self.running.broker;
        let audit = broker.audit();
        let ticket_slot = match broker
            .limiter()
            .reserve(Some(&format!("admin:{}", access.user)), peer.ip())
            .await
        {
            Ok(Ok(slot)) => slot,
            Ok(Err(limit)) => {
                audit.login_fail_max(
                    Some(&user),
                    peer.ip(),
                    &format!("admin {limit:?}"),
                    broker.clock().now_ms(),
                );
                tokio::time::sleep(FAILURE_DELAY).await;
                return sign_in_form(
                    StatusCode::TOO_MANY_REQUESTS,
                    Some("Too many failed sign-ins; try again later."),
                );
            }
            Err(error) => {
                tracing::warn!(%error, "admin sign-in: the failure counter is unreachable");
                return sign_in_form(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some("The sign-in is unavailable; try again later."),
                );
            }
        };
        // Both comparisons run whatever the user name, so timing tells nothing.
        let password_ok = tokio::task::spawn_blocking(move || {
            interstate_mapper::password::verify(&password, &hash)
        })
        .await
        .unwrap_or(false);
        let user_ok = bool::from(user.as_bytes().ct_eq(access.user.as_bytes()));
        if !(user_ok && password_ok) {
            if let Err(error) = ticket_slot.settle(Outcome::Failed).await {
                tracing::warn!(%error, "admin sign-in: a failure was not counted");
            }
            audit.admin_login(peer.ip(), false);
            tokio::time::sleep(FAILURE_DELAY).await;
            return sign_in_form(StatusCode::OK, Some("Wrong user name or password."));
        }
        if let Err(error) = ticket_slot.settle(Outcome::Succeeded).await {
            tracing::warn!(%error, "admin sign-in: a success was not counted");
        }
        audit.admin_login(peer.ip(), true);
        let expires = unix_now() + COOKIE_LIFETIME.as_secs();
        let cookie = format!(
            "{COOKIE}={}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
            ticket(secret, &access.user, expires),
            COOKIE_LIFETIME.as_secs()
        );
        redirect(&format!("{}/admin/admin.json", route.prefix), Some(&cookie))
    }

    fn sign_out(&self, route: PageRoute, headers: &HeaderMap) -> Response<FeedBody> {
        if let Some(value) = cookie_value(headers) {
            let expires = value
                .rsplit('!')
                .nth(1)
                .and_then(|e| u64::from_str_radix(e, 16).ok())
                .unwrap_or_else(|| unix_now() + COOKIE_LIFETIME.as_secs());
            self.revoked
                .revoke(value, expires.min(unix_now() + COOKIE_LIFETIME.as_secs()));
        }
        let clear = format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict");
        redirect(&format!("{}/admin/sign_in", route.prefix), Some(&clear))
    }
}

/// A 302 to `location`, setting `cookie` if given.
fn redirect(location: &str, cookie: Option<&str>) -> Response<FeedBody> {
    let mut response = reply(StatusCode::FOUND, &json!({"location": location}));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    if let Some(value) = cookie.and_then(|c| HeaderValue::from_str(c).ok()) {
        headers.insert(header::SET_COOKIE, value);
    }
    response
}

/// The sign-in form, with `message` above it.
fn sign_in_form(status: StatusCode, message: Option<&str>) -> Response<FeedBody> {
    let note = message.map_or_else(String::new, |m| format!("<p role=\"alert\">{m}</p>"));
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Interstate admin sign-in</title></head><body><h1>Sign in</h1>{note}\
         <form method=\"post\"><label>User <input name=\"username\" autocomplete=\"username\"></label>\
         <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\"></label>\
         <button type=\"submit\">Sign in</button></form></body></html>"
    );
    let mut response = Response::new(Full::new(Bytes::from(page)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(SIGN_IN_CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The first value of `name` in a form-encoded body (`+` is a space, `%XX` a byte).
fn form_field(body: &[u8], name: &str) -> Option<String> {
    interstate_feed::service::form_value(std::str::from_utf8(body).ok()?, name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn tickets_verify_only_with_their_key_and_before_expiry() {
        let revoked = Revoked::default();
        let later = unix_now() + 60;
        let value = ticket("k0123456789abcdef", "admin", later);
        assert_eq!(
            ticket_user("k0123456789abcdef", &value, &revoked).as_deref(),
            Some("admin")
        );
        assert_eq!(ticket_user("another key 0000", &value, &revoked), None);
        let forged = value.replacen("!", "!0", 1);
        assert_eq!(ticket_user("k0123456789abcdef", &forged, &revoked), None);
        let old = ticket("k0123456789abcdef", "admin", unix_now() - 1);
        assert_eq!(ticket_user("k0123456789abcdef", &old, &revoked), None);
        revoked.revoke(&value, later);
        assert_eq!(ticket_user("k0123456789abcdef", &value, &revoked), None);
    }

    #[test]
    fn form_fields_and_pages() {
        assert_eq!(
            form_field(b"username=ad+min&password=p%26w", "password").as_deref(),
            Some("p&w")
        );
        assert_eq!(
            form_field(b"username=ad+min", "username").as_deref(),
            Some("ad min")
        );
        assert_eq!(
            page_route("/channelstream/admin/admin.json").map(|r| (r.page, r.prefix, r.mode)),
            Some((Page::AdminJson, "/channelstream", AuthMode::Compat))
        );
        assert_eq!(
            page_route("/admin/sign_in").map(|r| (r.page, r.prefix)),
            Some((Page::SignIn, ""))
        );
        assert!(page_route("/admin/api/sessions").is_none());
    }
}
