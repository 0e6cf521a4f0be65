//! A fake PCoIP agent: a real HTTPS server on 127.0.0.2 that answers `launch-session`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use interstate_protocol::policy::Secret;
use interstate_protocol::{
    LaunchSession, LaunchSessionResp, SessionInfo, decode_launch_session,
    encode_launch_session_resp,
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

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

/// The connect tag the fake agent hands out.
pub const CONNECT_TAG: &str = "SCS1fw0Zbk+Eu7q2TestTagAA==";

/// A running fake agent.
#[derive(Debug)]
pub struct FakeAgent {
    /// Where it listens (127.0.0.2).
    pub addr: SocketAddr,
    /// Every `launch-session` received.
    pub received: Arc<Mutex<Vec<LaunchSession>>>,
    behaviour: Arc<Mutex<AgentBehaviour>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeAgent {
    /// Starts an agent on 127.0.0.2 with a fresh self-signed certificate, as agents ship.
    pub async fn start(behaviour: AgentBehaviour) -> Self {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.2".into()]).unwrap();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        Self::start_with(behaviour, vec![certified.cert.der().clone()], key).await
    }

    /// Starts an agent on 127.0.0.2 presenting `chain` (leaf first) with `key`.
    pub async fn start_with(
        behaviour: AgentBehaviour,
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.2:0")
            .await
            .expect("bind 127.0.0.2");
        let addr = listener.local_addr().unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let received = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Mutex::new(behaviour));
        let task = {
            let received = received.clone();
            let behaviour = behaviour.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let acceptor = acceptor.clone();
                    let received = received.clone();
                    let behaviour = behaviour.clone();
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let service =
                            service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                                let received = received.clone();
                                let behaviour = behaviour.lock().unwrap().clone();
                                async move {
                                    let body =
                                        request.into_body().collect().await.unwrap().to_bytes();
                                    let launch = decode_launch_session(&body)
                                        .expect("agent got a bad launch-session");
                                    received.lock().unwrap().push(launch);
                                    Ok::<_, Infallible>(hyper::Response::new(Full::new(
                                        answer(&behaviour).await,
                                    )))
                                }
                            });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                    });
                }
            })
        };
        Self {
            addr,
            received,
            behaviour,
            task,
        }
    }

    /// Changes how later calls are answered.
    pub fn set(&self, behaviour: AgentBehaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    /// The last `launch-session` received.
    pub fn last(&self) -> Option<LaunchSession> {
        self.received.lock().unwrap().last().cloned()
    }
}

async fn answer(behaviour: &AgentBehaviour) -> Bytes {
    let failure = |id: &str, reason: &str| LaunchSessionResp {
        result_id: id.to_owned(),
        session_info: None,
        fail_reason: Some(reason.to_owned()),
    };
    let resp = match behaviour {
        AgentBehaviour::Succeed => LaunchSessionResp {
            result_id: "SUCCESSFUL".into(),
            session_info: Some(SessionInfo {
                ip_address: "127.0.0.2".into(),
                sni: "fake-agent".into(),
                port: 4172,
                session_id: "2305843009213693954".into(),
                session_tag: Secret::new(CONNECT_TAG),
            }),
            fail_reason: None,
        },
        AgentBehaviour::FailUserAuth => failure(
            "FAILED_USER_AUTH",
            "Failed to start the session due to user authentication failing.",
        ),
        AgentBehaviour::AnotherSession => failure(
            "FAILED_ANOTHER_SESSION_STARTED",
            "Failed to start the session due to an existing session for a different user.",
        ),
        AgentBehaviour::Unknown(id) => failure(id, "something else"),
        AgentBehaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            failure("FAILED", "late")
        }
        AgentBehaviour::BadXml => return Bytes::from_static(b"<pcoip-agent version=\"1.0\"><oops"),
    };
    Bytes::from(encode_launch_session_resp(&resp))
}
