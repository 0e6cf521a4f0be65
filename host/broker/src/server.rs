//! The accept loop: bounded connections, TLS in the connection task, HTTP/1.1, graceful drain.
//!
//! - A semaphore permit is taken before each accept, so at most `max_connections` are open.
//! - An accept error is logged and retried with backoff; it never stops the server.
//! - The TLS handshake runs inside the spawned task under a deadline, so a client that never
//!   finishes its handshake holds one permit until the deadline and nothing else.
//! - hyper writes Title-Case header names (`Set-Cookie`, quirk 2) and bounds header reading; the
//!   body then gets the same deadline ([`deadline`]), so a lying `Content-Length` cannot hold a
//!   connection open.
//! - On shutdown the listener closes, connections finish their request in flight, and after the
//!   grace period whatever is left is dropped.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, error, info, warn};

use crate::service::{Broker, handle};

pub mod deadline;

use deadline::DeadlineBody;

/// Listener limits, from `server` settings.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most open connections.
    pub max_connections: usize,
    /// TLS handshake deadline.
    pub handshake_timeout: Duration,
    /// Deadline for one request's headers, and again for its body.
    pub header_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

/// The TLS configuration in use; replaced on reload.
pub type TlsConfig = watch::Receiver<Arc<rustls::ServerConfig>>;

/// Serves PCoIP clients on `listener` until `shutdown` resolves, then drains.
///
/// Returns once every connection has finished or the grace period has passed.
pub async fn run(
    listener: TcpListener,
    tls: TlsConfig,
    broker: Arc<Broker>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.title_case_headers(true)
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    let http = Arc::new(http);
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(5);

    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff = Duration::from_millis(5);
                    accepted
                }
                Err(e) => {
                    // EMFILE and friends: wait for connections to close rather than spin or quit.
                    warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = TlsAcceptor::from(tls.borrow().clone());
        let broker = broker.clone();
        let http = http.clone();
        let handshake_timeout = limits.handshake_timeout;
        let body_timeout = limits.header_timeout;
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let request = request.map(|body| DeadlineBody::new(body, body_timeout));
                handle(broker.clone(), peer, request)
            });
            let connection = http.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection).await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }

    drop(listener);
    info!("no longer accepting connections; draining");
    tokio::select! {
        () = graceful.shutdown() => info!("all connections closed"),
        () = tokio::time::sleep(limits.shutdown_grace) => {
            error!(grace_ms = limits.shutdown_grace.as_millis() as u64, "grace period over; dropping the remaining connections");
        }
    }
}
