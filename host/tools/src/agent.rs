//! A fake PCoIP agent: a real HTTPS server (self-signed unless given a certificate) that answers
//! `launch-session` as told. The end-to-end tests use it with every behaviour and read what it
//! received; `interstate bench --fake-agent` uses its fast path, which always succeeds and records
//! nothing, so that a long benchmark neither slows down nor grows.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use interstate_protocol::policy::Secret;
use interstate_protocol::{
    LaunchSession, LaunchSessionResp, SessionInfo, decode_launch_session,
    encode_launch_session_resp,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The connect tag the fake agent hands out.
pub const CONNECT_TAG: &str = "SCS1fw0Zbk+Eu7q2TestTagAA==";

/// Largest request read.
const MAX_REQUEST: usize = 64 * 1024;

/// How the fake agent answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentBehaviour {
    /// `SUCCESSFUL` with a session tag.
    Succeed,
    /// `FAILED_USER_AUTH`.
    FailUserAuth,
    /// `FAILED_ANOTHER_SESSION_STARTED`.
    AnotherSession,
    /// Some other result id.
    Unknown(String),
    /// Never answers.
    Hang,
    /// Answers garbage.
    BadXml,
}

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
    /// Making the certificate or the TLS configuration.
    #[error("cannot make the fake agent's certificate: {0}")]
    Certificate(String),
}

/// A running fake agent; it stops when dropped.
#[derive(Debug)]
pub struct FakeAgent {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every `launch-session` received (always empty on the fast path).
    pub received: Arc<Mutex<Vec<LaunchSession>>>,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

/// What every connection of one agent shares.
#[derive(Debug)]
struct State {
    behaviour: Mutex<AgentBehaviour>,
    received: Arc<Mutex<Vec<LaunchSession>>>,
    /// False on the fast path: nothing is recorded.
    record: bool,
    /// The `SUCCESSFUL` answer, encoded once.
    success: Bytes,
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeAgent {
    /// Starts an agent on `addr` (port 0 picks one) with a fresh self-signed certificate for its
    /// IP address, as agents ship, recording every request.
    pub async fn start(
        addr: SocketAddr,
        behaviour: AgentBehaviour,
    ) -> Result<Self, FakeAgentError> {
        let (chain, key) = self_signed(addr)?;
        Self::serve(addr, behaviour, chain, key, true).await
    }

    /// Starts an agent on `addr` presenting `chain` (leaf first) with `key`, recording every
    /// request.
    pub async fn start_with(
        addr: SocketAddr,
        behaviour: AgentBehaviour,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, FakeAgentError> {
        Self::serve(addr, behaviour, chain, key, true).await
    }

    /// Starts the benchmark agent on `addr`: self-signed, always `SUCCESSFUL`, records nothing.
    pub async fn start_fast(addr: SocketAddr) -> Result<Self, FakeAgentError> {
        let (chain, key) = self_signed(addr)?;
        Self::serve(addr, AgentBehaviour::Succeed, chain, key, false).await
    }

    /// Changes how later calls are answered.
    pub fn set(&self, behaviour: AgentBehaviour) {
        *lock(&self.state.behaviour) = behaviour;
    }

    /// The last `launch-session` received.
    pub fn last(&self) -> Option<LaunchSession> {
        lock(&self.received).last().cloned()
    }

    async fn serve(
        addr: SocketAddr,
        behaviour: AgentBehaviour,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        record: bool,
    ) -> Result<Self, FakeAgentError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| FakeAgentError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| FakeAgentError::Bind { addr, source })?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| FakeAgentError::Certificate(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| FakeAgentError::Certificate(e.to_string()))?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let received = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(State {
            behaviour: Mutex::new(behaviour),
            received: received.clone(),
            record,
            success: Bytes::from(encode_launch_session_resp(&success())),
        });
        let task = tokio::spawn(accept_loop(listener, acceptor, state.clone()));
        Ok(Self {
            addr,
            received,
            state,
            task,
        })
    }
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        // Without it a response written in two TLS records waits for the peer's delayed ACK
        // (40 ms on Linux) and every allocation looks 40 ms slower than it is.
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = service_fn(move |request| answer(state.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

async fn answer(
    state: Arc<State>,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let Ok(body) = Limited::new(request.into_body(), MAX_REQUEST)
        .collect()
        .await
    else {
        return Ok(bad_request());
    };
    let Ok(launch) = decode_launch_session(&body.to_bytes()) else {
        return Ok(bad_request());
    };
    if state.record {
        lock(&state.received).push(launch);
    }
    let behaviour = lock(&state.behaviour).clone();
    let failure = |id: &str, reason: &str| LaunchSessionResp {
        result_id: id.to_owned(),
        session_info: None,
        fail_reason: Some(reason.to_owned()),
    };
    let resp = match behaviour {
        AgentBehaviour::Succeed => {
            return Ok(hyper::Response::new(Full::new(state.success.clone())));
        }
        AgentBehaviour::FailUserAuth => failure(
            "FAILED_USER_AUTH",
            "Failed to start the session due to user authentication failing.",
        ),
        AgentBehaviour::AnotherSession => failure(
            "FAILED_ANOTHER_SESSION_STARTED",
            "Failed to start the session due to an existing session for a different user.",
        ),
        AgentBehaviour::Unknown(id) => failure(&id, "something else"),
        AgentBehaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            failure("FAILED", "late")
        }
        AgentBehaviour::BadXml => {
            return Ok(hyper::Response::new(Full::new(Bytes::from_static(
                b"<pcoip-agent version=\"1.0\"><oops",
            ))));
        }
    };
    Ok(hyper::Response::new(Full::new(Bytes::from(
        encode_launch_session_resp(&resp),
    ))))
}

/// `SUCCESSFUL` with a session on 127.0.0.2:4172 and [`CONNECT_TAG`].
fn success() -> LaunchSessionResp {
    LaunchSessionResp {
        result_id: "SUCCESSFUL".into(),
        session_info: Some(SessionInfo {
            ip_address: "127.0.0.2".into(),
            sni: "fake-agent".into(),
            port: 4172,
            session_id: "2305843009213693954".into(),
            session_tag: Secret::new(CONNECT_TAG),
        }),
        fail_reason: None,
    }
}

fn bad_request() -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = hyper::StatusCode::BAD_REQUEST;
    response
}

/// A self-signed certificate for `addr`'s IP address.
fn self_signed(
    addr: SocketAddr,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), FakeAgentError> {
    let certified = rcgen::generate_simple_self_signed(vec![addr.ip().to_string()])
        .map_err(|e| FakeAgentError::Certificate(e.to_string()))?;
    let key = PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    Ok((vec![certified.cert.der().clone()], key))
}

/// Locks a mutex; a panicked holder leaves plain data, still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
