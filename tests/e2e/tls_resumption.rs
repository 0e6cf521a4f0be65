//! No TLS session resumption reaches a client: the HP Anyware PCoIP Client 24.07.3 broker
//! library cannot read a reply that follows a TLS 1.3 `NewSessionTicket` (reference §11), so
//! the broker must never send one, and it keeps no TLS 1.2 session ids either.
//!
//! A rustls client whose session store records everything the server hands it talks to the
//! real broker over TLS 1.3 and TLS 1.2, on kept-alive connections (tickets arrive after the
//! handshake, so the client reads several whole replies before the store is checked).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use interstate_protocol::Root;
use interstate_tests::agent::{AgentBehaviour, FakeAgent};
use interstate_tests::broker::{TestBroker, simple_settings};
use interstate_tests::pcoip::msg;
use interstate_tls::Verification;
use interstate_tools::messages::wrap;
use interstate_tools::wire::Connection;
use rustls::client::{
    ClientSessionStore, Resumption, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, NamedGroup, SupportedProtocolVersion};

/// What the broker handed the client to resume with.
#[derive(Debug, Default)]
struct Recorder {
    tls13_tickets: Mutex<usize>,
    tls12_sessions: Mutex<usize>,
}

impl ClientSessionStore for Recorder {
    fn set_kx_hint(&self, _: ServerName<'static>, _: NamedGroup) {}

    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        None
    }

    fn set_tls12_session(&self, _: ServerName<'static>, _: Tls12ClientSessionValue) {
        *self.tls12_sessions.lock().unwrap() += 1;
    }

    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        None
    }

    fn remove_tls12_session(&self, _: &ServerName<'static>) {}

    fn insert_tls13_ticket(&self, _: ServerName<'static>, _: Tls13ClientSessionValue) {
        *self.tls13_tickets.lock().unwrap() += 1;
    }

    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        None
    }
}

fn client_config(
    version: &'static SupportedProtocolVersion,
    recorder: Arc<Recorder>,
) -> Arc<ClientConfig> {
    let mut config = interstate_tls::client_config_with(
        Arc::new(rustls::crypto::ring::default_provider()),
        &[version],
        &Verification::DangerAcceptAny,
    )
    .unwrap();
    config.resumption = Resumption::store(recorder);
    Arc::new(config)
}

#[tokio::test]
async fn the_broker_sends_no_session_tickets_and_keeps_no_sessions() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(simple_settings(agent.addr)).await;
    for (label, version) in [
        ("TLS 1.3", &rustls::version::TLS13),
        ("TLS 1.2", &rustls::version::TLS12),
    ] {
        let recorder = Arc::new(Recorder::default());
        let config = client_config(version, recorder.clone());
        // Two connections, each with a probe and a hello: a ticket sent after either handshake
        // is read before the second reply on its connection.
        for _ in 0..2 {
            let mut conn = Connection::connect(
                &broker.addr.to_string(),
                "localhost",
                config.clone(),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
            for message in [msg::probe(), msg::hello()] {
                let body = wrap(Root::PcoipClient, &message);
                let response = conn
                    .post(
                        "/pcoip-broker/xml",
                        &[],
                        body.as_bytes(),
                        Duration::from_secs(5),
                    )
                    .await
                    .unwrap();
                assert_eq!(response.status, 200, "{label}");
                assert!(response.text().contains("<hello-resp>"), "{label}");
            }
        }
        assert_eq!(
            *recorder.tls13_tickets.lock().unwrap(),
            0,
            "{label}: the broker sent a TLS 1.3 NewSessionTicket"
        );
        assert_eq!(
            *recorder.tls12_sessions.lock().unwrap(),
            0,
            "{label}: the broker offered a resumable TLS 1.2 session"
        );
    }
    broker.stop().await;
}

/// The recorder itself works: a rustls server with its defaults (two TLS 1.3 tickets, a TLS 1.2
/// session cache) is caught by the same client, so the test above can fail.
#[tokio::test]
async fn the_recorder_sees_tickets_from_a_server_that_sends_them() {
    let identity = interstate::tls::Identity::self_signed(&["localhost".into()]).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buffer = vec![0_u8; 4096];
                while let Ok(n) = tls.read(&mut buffer).await {
                    if n == 0 {
                        break;
                    }
                    let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                    if tls.write_all(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    for (label, version, tls13, tls12) in [
        ("TLS 1.3", &rustls::version::TLS13, true, false),
        ("TLS 1.2", &rustls::version::TLS12, false, true),
    ] {
        let recorder = Arc::new(Recorder::default());
        let mut conn = Connection::connect(
            &addr.to_string(),
            "localhost",
            client_config(version, recorder.clone()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        for _ in 0..2 {
            let response = conn
                .post("/", &[], b"x", Duration::from_secs(5))
                .await
                .unwrap();
            assert_eq!(response.status, 200);
        }
        assert_eq!(
            *recorder.tls13_tickets.lock().unwrap() > 0,
            tls13,
            "{label}"
        );
        assert_eq!(
            *recorder.tls12_sessions.lock().unwrap() > 0,
            tls12,
            "{label}"
        );
    }
    server.abort();
}
