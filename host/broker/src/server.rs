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
//!
//! The admin listener runs the same loop ([`serve`]) with its own cap, its own service, and TLS
//! only when it listens beyond loopback (see [`crate::admin`]).

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use std::net::SocketAddr;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, error, info, warn};

use crate::service::{Broker, handle};
use crate::settings::ServerConfig;

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
    let settings = {
        let broker = broker.clone();
        move || broker.current().settings.server.clone()
    };
    let make_service = move |peer: SocketAddr, request_timeout: Duration| {
        let broker = broker.clone();
        service_fn(move |request: http::Request<hyper::body::Incoming>| {
            let request = request.map(|body| DeadlineBody::new(body, request_timeout));
            handle(broker.clone(), peer, request)
        })
    };
    serve(
        listener,
        Some(tls),
        cap,
        true,
        settings,
        make_service,
        shutdown,
    )
    .await;
}

/// The accept loop shared by the client listener and the admin listener: `tls` (or plain
/// HTTP), the connection `cap`, the per-address cap when `per_address_cap`, the deadlines of
/// the [`ServerConfig`] `settings` returns when a connection is accepted, and the drain.
///
/// Connections are served with upgrades enabled (the admin listener's websockets). An upgraded
/// connection leaves hyper, and this drain, when it switches protocols: its owner closes it on
/// shutdown (the feed does).
pub async fn serve<M, S, B>(
    listener: TcpListener,
    tls: Option<TlsConfig>,
    cap: Arc<ConnectionCap>,
    per_address_cap: bool,
    settings: impl Fn() -> ServerConfig,
    make_service: M,
    shutdown: impl Future<Output = ()>,
) where
    M: Fn(SocketAddr, Duration) -> S,
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (stop, stopping) = watch::channel(false);
    // Each connection task holds a clone; when all are gone, the drain is over.
    let (open, mut drained) = mpsc::channel::<()>(1);
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
        let server = settings();
        let peer_ip = peer.ip().to_canonical();
        let address_slot = if !per_address_cap
            || server
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
        let acceptor = tls
            .as_ref()
            .map(|tls| TlsAcceptor::from(tls.borrow().clone()));
        let (handshake_timeout, request_timeout) =
            (server.handshake_timeout, server.header_timeout);
        let mut http = hyper::server::conn::http1::Builder::new();
        http.title_case_headers(true)
            .keep_alive(true)
            .timer(TokioTimer::new())
            .header_read_timeout(request_timeout)
            .max_buf_size(64 * 1024);
        let service = make_service(peer, request_timeout);
        let stopping = stopping.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _address_slot = address_slot;
            let _open = open;
            let Some(acceptor) = acceptor else {
                serve_connection(&http, TokioIo::new(tcp), service, stopping, peer).await;
                return;
            };
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
            serve_connection(&http, TokioIo::new(stream), service, stopping, peer).await;
        });
    }

    let shutdown_grace = settings().shutdown_grace;
    drop(listener);
    let _ = stop.send(true);
    drop(open);
    info!("no longer accepting connections; draining");
    tokio::select! {
        _ = drained.recv() => info!("all connections closed"),
        () = tokio::time::sleep(shutdown_grace) => {
            error!(grace_ms = shutdown_grace.as_millis() as u64, "grace period over; dropping the remaining connections");
        }
    }
}

/// Serves one connection until it closes; once `stopping` turns true, it finishes the request
/// in flight and closes (hyper's graceful shutdown).
async fn serve_connection<I, S, B>(
    http: &hyper::server::conn::http1::Builder,
    io: I,
    service: S,
    mut stopping: watch::Receiver<bool>,
    peer: SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connection = http.serve_connection(io, service).with_upgrades();
    tokio::pin!(connection);
    let stop = async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stop => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        debug!(%peer, error = %e, "connection ended with an error");
    }
}
