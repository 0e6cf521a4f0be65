//! The accept loop: bounded connections, TLS in the connection task, HTTP/1.1, graceful drain.
//!
//! - A permit of the [`ConnectionCap`] is taken before each accept, so at most
//!   `server.max_connections` are open; a reload resizes the cap.
//! - At most `server.max_connections_per_address` are open from one client address
//!   ([`per_address`]; trusted proxies are exempt), so one host cannot hold every slot: a
//!   connection beyond it is closed at once.
//! - An accept error is logged and retried with backoff; it never stops the server.
//! - The TLS handshake runs inside the spawned task under a deadline, so a client that never
//!   finishes its handshake holds one permit until the deadline and nothing else.
//! - hyper writes Title-Case header names (`Set-Cookie`, quirk 2) and bounds header reading; the
//!   body then gets the same deadline ([`deadline`]), so a lying `Content-Length` cannot hold a
//!   connection open.
//! - Each new connection takes its deadlines from the settings in force when it is accepted, so
//!   a reload applies them to new connections.
//! - On shutdown the listener closes, connections finish their request in flight, and after the
//!   grace period in force then, whatever is left is dropped.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, error, info, warn};

use crate::service::{Broker, handle};

pub mod deadline;
pub mod per_address;

use deadline::DeadlineBody;
use per_address::PerAddress;

/// The TLS configuration in use; replaced on reload.
pub type TlsConfig = watch::Receiver<Arc<rustls::ServerConfig>>;

/// The open-connection limit, resizable while connections are open.
#[derive(Debug)]
pub struct ConnectionCap {
    permits: Arc<Semaphore>,
    size: Mutex<usize>,
}

impl ConnectionCap {
    /// A cap of `size` connections.
    pub fn new(size: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(size)),
            size: Mutex::new(size),
        }
    }

    /// Changes the cap. A larger one admits waiting connections at once; a smaller one takes
    /// the difference as connections close (open connections are never cut).
    pub fn resize(&self, size: usize) {
        let mut current = self.size.lock().unwrap_or_else(PoisonError::into_inner);
        if size > *current {
            self.permits.add_permits(size - *current);
        } else if size < *current {
            let excess = u32::try_from(*current - size).unwrap_or(u32::MAX);
            let permits = self.permits.clone();
            tokio::spawn(async move {
                if let Ok(taken) = permits.acquire_many_owned(excess).await {
                    taken.forget();
                }
            });
        }
        *current = size;
    }

    async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().acquire_owned().await.ok()
    }
}

/// Serves PCoIP clients on `listener` until `shutdown` resolves, then drains.
///
/// Returns once every connection has finished or the grace period has passed.
pub async fn run(
    listener: TcpListener,
    tls: TlsConfig,
    broker: Arc<Broker>,
    cap: Arc<ConnectionCap>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let per_address = Arc::new(PerAddress::default());
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(5);

    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = cap.acquire() => match permit {
                Some(permit) => permit,
                None => break,
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
        let server = broker.current().settings.server.clone();
        let peer_ip = peer.ip().to_canonical();
        let address_slot = if server
            .trusted_proxies
            .iter()
            .any(|proxy| proxy.to_canonical() == peer_ip)
        {
            None
        } else {
            match per_address.try_take(peer_ip, server.max_connections_per_address) {
                Some(slot) => Some(slot),
                None => {
                    debug!(%peer, cap = server.max_connections_per_address, "too many connections from one address; closed");
                    continue;
                }
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = TlsAcceptor::from(tls.borrow().clone());
        let (handshake_timeout, request_timeout) =
            (server.handshake_timeout, server.header_timeout);
        let mut http = hyper::server::conn::http1::Builder::new();
        http.title_case_headers(true)
            .keep_alive(true)
            .timer(TokioTimer::new())
            .header_read_timeout(request_timeout)
            .max_buf_size(64 * 1024);
        let broker = broker.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let _address_slot = address_slot;
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
                let request = request.map(|body| DeadlineBody::new(body, request_timeout));
                handle(broker.clone(), peer, request)
            });
            let connection = http.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection).await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }

    let shutdown_grace = broker.current().settings.server.shutdown_grace;
    drop(listener);
    info!("no longer accepting connections; draining");
    tokio::select! {
        () = graceful.shutdown() => info!("all connections closed"),
        () = tokio::time::sleep(shutdown_grace) => {
            error!(grace_ms = shutdown_grace.as_millis() as u64, "grace period over; dropping the remaining connections");
        }
    }
}
