//! A fake PCoIP agent for benchmarks: a real HTTPS server (self-signed) that answers every
//! `launch-session` with `SUCCESSFUL` and a connect tag, as fast as it can.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use interstate_protocol::policy::Secret;
use interstate_protocol::{
    LaunchSessionResp, SessionInfo, decode_launch_session, encode_launch_session_resp,
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The connect tag the fake agent hands out.
pub const FAKE_CONNECT_TAG: &str = "SCS1fw0Zbk+Eu7q2BenchTagA==";

/// Largest request read.
const MAX_REQUEST: usize = 64 * 1024;

/// The fake agent could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FakeAgentError {
    /// Binding the address.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Making the certificate.
    #[error("cannot make the fake agent's certificate: {0}")]
    Certificate(String),
}

/// A running fake agent; it stops when dropped.
#[derive(Debug)]
pub struct FakeAgent {
    /// Where it listens.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeAgent {
    /// Starts serving on `addr` (port 0 picks one).
    pub async fn start(addr: SocketAddr) -> Result<Self, FakeAgentError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| FakeAgentError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| FakeAgentError::Bind { addr, source })?;
        let certified = rcgen::generate_simple_self_signed(vec![addr.ip().to_string()])
            .map_err(|e| FakeAgentError::Certificate(e.to_string()))?;
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| FakeAgentError::Certificate(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .map_err(|e| FakeAgentError::Certificate(e.to_string()))?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                // Without it a response written in two TLS records waits for the peer's delayed
                // ACK (40 ms on Linux) and every allocation looks 40 ms slower than it is.
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service_fn(answer))
                        .await;
                });
            }
        });
        Ok(Self { addr, task })
    }
}

async fn answer(
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let body = match Limited::new(request.into_body(), MAX_REQUEST)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(status(400)),
    };
    let Ok(launch) = decode_launch_session(&body) else {
        return Ok(status(400));
    };
    let resp = LaunchSessionResp {
        result_id: "SUCCESSFUL".into(),
        session_info: Some(SessionInfo {
            ip_address: "127.0.0.2".into(),
            sni: "fake-agent".into(),
            port: 4172,
            session_id: "2305843009213693954".into(),
            session_tag: Secret::new(FAKE_CONNECT_TAG),
        }),
        fail_reason: None,
    };
    drop(launch);
    Ok(hyper::Response::new(Full::new(Bytes::from(
        encode_launch_session_resp(&resp),
    ))))
}

fn status(code: u16) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    *response.status_mut() =
        hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::BAD_REQUEST);
    response
}
