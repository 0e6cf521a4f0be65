//! The wire client against the fake agent, over real TLS on loopback: every behaviour, what is
//! recorded, and the benchmark's fast path.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use std::net::SocketAddr;
use std::time::Duration;

use interstate_protocol::policy::Secret;
use interstate_protocol::{LaunchSession, decode_launch_session_resp, encode_launch_session};
use interstate_tools::agent::{AgentBehaviour, CONNECT_TAG, FakeAgent};
use interstate_tools::wire::{ClientError, Connection, Verify, WireResponse, tls_config};

const TIMEOUT: Duration = Duration::from_secs(20);

fn launch(username: &str) -> LaunchSession {
    LaunchSession {
        session_type: "UNSPECIFIED".into(),
        ip_address: "127.0.0.1".into(),
        hostname: "desktop".into(),
        username: username.into(),
        password: Secret::new("pw"),
        domain: String::new(),
        client_mac: "00:00:00:00:00:00".into(),
        client_ip: "127.0.0.1".into(),
        client_name: "client".into(),
        license_path: None,
        session_log_id: "log".into(),
        time_zone_windows: None,
    }
}

async fn connect(addr: SocketAddr) -> Connection {
    let tls = tls_config(&Verify::Insecure).unwrap();
    Connection::connect(&addr.to_string(), "127.0.0.1", tls, TIMEOUT)
        .await
        .unwrap()
}

async fn post(connection: &mut Connection, body: &[u8]) -> WireResponse {
    connection
        .post("/pcoip-agent/xml", &[], body, TIMEOUT)
        .await
        .unwrap()
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[tokio::test]
async fn every_behaviour_answers_as_told_and_requests_are_recorded() {
    let agent = FakeAgent::start(loopback(), AgentBehaviour::Succeed)
        .await
        .unwrap();
    let mut connection = connect(agent.addr).await;

    let ok = post(&mut connection, &encode_launch_session(&launch("first"))).await;
    assert_eq!(ok.status_line, "HTTP/1.1 200 OK");
    assert!(ok.peer_fingerprint.is_some());
    let resp = decode_launch_session_resp(&ok.body).unwrap();
    assert_eq!(resp.result_id, "SUCCESSFUL");
    let tag = resp.session_info.unwrap().session_tag;
    assert_eq!(tag.expose(), CONNECT_TAG);

    for (behaviour, expected) in [
        (AgentBehaviour::FailUserAuth, "FAILED_USER_AUTH"),
        (
            AgentBehaviour::AnotherSession,
            "FAILED_ANOTHER_SESSION_STARTED",
        ),
        (AgentBehaviour::Unknown("FAILED_X".into()), "FAILED_X"),
    ] {
        agent.set(behaviour);
        let answer = post(&mut connection, &encode_launch_session(&launch("again"))).await;
        let resp = decode_launch_session_resp(&answer.body).unwrap();
        assert_eq!(resp.result_id, expected);
    }
    agent.set(AgentBehaviour::BadXml);
    let bad = post(&mut connection, &encode_launch_session(&launch("bad"))).await;
    assert!(decode_launch_session_resp(&bad.body).is_err());

    let refused = post(&mut connection, b"<not-a-launch/>").await;
    assert_eq!(refused.status, 400);

    assert_eq!(agent.received.lock().unwrap().len(), 5);
    assert_eq!(agent.last().unwrap().username, "bad");

    agent.set(AgentBehaviour::Hang);
    let body = encode_launch_session(&launch("hang"));
    connection
        .send_raw(
            format!(
                "POST /pcoip-agent/xml HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    connection.send_raw(&body).await.unwrap();
    let hung = connection.read_response(Duration::from_millis(300)).await;
    assert!(matches!(hung, Err(ClientError::Timeout(_))), "{hung:?}");
}

#[tokio::test]
async fn the_fast_path_succeeds_and_records_nothing() {
    let agent = FakeAgent::start_fast(loopback()).await.unwrap();
    let mut connection = connect(agent.addr).await;
    for _ in 0..3 {
        let answer = post(&mut connection, &encode_launch_session(&launch("bench"))).await;
        let resp = decode_launch_session_resp(&answer.body).unwrap();
        assert_eq!(resp.result_id, "SUCCESSFUL");
    }
    assert!(agent.last().is_none());
}

#[tokio::test]
async fn a_pinned_client_refuses_another_certificate() {
    let agent = FakeAgent::start(loopback(), AgentBehaviour::Succeed)
        .await
        .unwrap();
    let tls = tls_config(&Verify::Pin([7; 32])).unwrap();
    let refused = Connection::connect(&agent.addr.to_string(), "127.0.0.1", tls, TIMEOUT).await;
    assert!(
        matches!(refused, Err(ClientError::Tls { .. })),
        "{refused:?}"
    );
}
