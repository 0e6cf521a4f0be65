//! The operator listener: health, metrics and reload, on its own address (usually loopback).
//!
//! - `GET /healthz`: `ok` while the broker serves.
//! - `GET /metrics`: Prometheus text.
//! - `POST /reload`: re-reads the settings and swaps in the new generation; answers 200 with
//!   `reloaded` (naming the changed keys that need a restart, if any), or 409 with the reason
//!   the new configuration was refused (the old one keeps serving).
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
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n".into()),
        (&Method::GET, "/metrics") => {
            let mut response = text(StatusCode::OK, metrics(running));
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
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
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
pub fn metrics(running: &Running) -> String {
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
    ];
    let mut out = String::new();
    for (name, help, value) in counters {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        ));
    }
    out.push_str(&format!(
        "# HELP interstate_sessions Live broker sessions.\n# TYPE interstate_sessions gauge\ninterstate_sessions {}\n",
        broker.store().len()
    ));
    out
}
