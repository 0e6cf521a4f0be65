//! The operator listener: health, metrics and reload, on its own address (usually loopback).
//!
//! - `GET /healthz`: `ok` while the broker serves; 503 `not ready` while its session store
//!   cannot be reached (a load balancer then sends clients to another node).
//! - `GET /metrics`: Prometheus text.
//! - `POST /reload`: re-reads the settings and swaps in the new generation; answers 200 with
//!   `reloaded` (naming the changed keys that need a restart, if any), or 409 with the reason
//!   the new configuration was refused (the old one keeps serving).
//! - `GET /agents/pin?agent=HOST[:PORT]`: the SHA-256 pinned for an agent (trust on first use),
//!   or 404.
//! - `POST /agents/forget?agent=HOST[:PORT]`: forgets an agent's pin, so that the next launch
//!   pins the certificate it then presents (an agent legitimately re-keyed).
//! - `POST /agents/trust?agent=HOST[:PORT]&fingerprint=SHA256`: pins that certificate now.
//!
//! `PORT` defaults to `agent.port`; an IPv6 address is written `[v6]` or `[v6]:PORT`.
//!
//! When `admin.token` is set, every request needs `Authorization: Bearer <token>` (compared in
//! constant time). A listener on a non-loopback address without a token is refused at startup.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::{Method, Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::app::{Reloader, Running};
use crate::body::ChunkedBody;
use crate::store::parse_agent;
use crate::verify::parse_fingerprint;

/// Serves the admin endpoints on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    running: Arc<Running>,
    reloader: Reloader,
    token: Option<String>,
    shutdown: impl Future<Output = ()>,
) {
    let token = token.map(Arc::<str>::from);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let running = running.clone();
        let reloader = reloader.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let running = running.clone();
                let reloader = reloader.clone();
                let token = token.clone();
                async move {
                    Ok::<_, Infallible>(
                        handle(request, peer, &running, &reloader, token.as_deref()).await,
                    )
                }
            });
            let result = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(tcp), service)
                .await;
            if let Err(e) = result {
                debug!(%peer, error = %e, "admin connection ended with an error");
            }
        });
    }
}

fn authorized<B>(request: &Request<B>, token: Option<&str>) -> bool {
    let Some(token) = token else { return true };
    let presented = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    bool::from(presented.as_bytes().ct_eq(token.as_bytes()))
}

async fn handle<B>(
    request: Request<B>,
    peer: SocketAddr,
    running: &Running,
    reloader: &Reloader,
    token: Option<&str>,
) -> Response<ChunkedBody> {
    if !authorized(&request, token) {
        return text(
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin token\n".into(),
        );
    }
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => match running.broker.store().ready().await {
            Ok(()) => text(StatusCode::OK, "ok\n".into()),
            Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")),
        },
        (&Method::GET, "/metrics") => {
            let mut response = text(StatusCode::OK, metrics(running).await);
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        (&Method::POST, "/reload") => {
            info!(%peer, "reload requested on the admin listener");
            match reloader.reload(running).await {
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
        (method, path) if path.starts_with("/agents/") => {
            agents(method, path, request.uri().query(), peer, running).await
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

/// The agent pin routes.
async fn agents(
    method: &Method,
    path: &str,
    query: Option<&str>,
    peer: SocketAddr,
    running: &Running,
) -> Response<ChunkedBody> {
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
            text(
                StatusCode::OK,
                format!("{agent} now pinned to {}\n", hex::encode(pin)),
            )
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
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
fn store_unavailable(e: &crate::store::StoreError) -> Response<ChunkedBody> {
    warn!(error = %e, "agent pin request failed");
    text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n"))
}

fn text(status: StatusCode, body: String) -> Response<ChunkedBody> {
    let mut response = Response::new(ChunkedBody::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    response
}

/// The Prometheus exposition of the broker's counters.
pub async fn metrics(running: &Running) -> String {
    let broker = &running.broker;
    let stats = broker.stats();
    let counters = [
        (
            "interstate_sessions_created_total",
            "Broker sessions created.",
            stats.sessions_created.load(Ordering::Relaxed),
        ),
        (
            "interstate_mapper_logins_total",
            "Password logins sent to the mapper.",
            stats.mapper_logins.load(Ordering::Relaxed),
        ),
        (
            "interstate_auth_rate_limited_total",
            "Logins refused by the failure limits.",
            stats.rate_limited.load(Ordering::Relaxed),
        ),
        (
            "interstate_allocations_total",
            "Successful allocations.",
            stats.allocations.load(Ordering::Relaxed),
        ),
        (
            "interstate_reloads_total",
            "Successful configuration reloads.",
            stats.reloads.load(Ordering::Relaxed),
        ),
        (
            "interstate_agent_certificate_refused_total",
            "Launches refused because the agent's certificate differed from its pin.",
            stats.agent_certificate_refused.load(Ordering::Relaxed),
        ),
    ];
    let mut out = String::new();
    for (name, help, value) in counters {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        ));
    }
    // A store that cannot be reached has no count: the gauge is left out, not reported as 0.
    if let Ok(live) = broker.store().live_sessions().await {
        out.push_str(&format!(
            "# HELP interstate_sessions Live broker sessions.\n# TYPE interstate_sessions gauge\ninterstate_sessions {live}\n",
        ));
    }
    out
}
