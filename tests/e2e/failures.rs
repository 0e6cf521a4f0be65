//! Every failure gets HTTP 200, a chunked body and a result id the PCoIP client knows.

use std::time::{Duration, Instant};

use interstate_tests::broker::simple_settings;
use interstate_tests::pcoip::result_id;
use interstate_tests::{AgentBehaviour, FakeAgent, PASSWORD, TestBroker, TestClient, msg};
use interstate_tools::xml::element_text;

async fn logged_in(broker: &TestBroker) -> (TestClient, String) {
    let mut client = TestClient::connect(broker.addr).await;
    let id = client.log_in("kolmogorov", PASSWORD).await;
    (client, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_then_retry_in_the_same_session() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(simple_settings(agent.addr)).await;
    let mut client = TestClient::connect(broker.addr).await;
    client.send(&msg::hello()).await;
    for (user, password) in [
        ("kolmogorov", "wrong"),
        ("nobody", PASSWORD),
        ("kolmogorov", ""),
    ] {
        let auth = client
            .send(&msg::authenticate(user, password, Some("EXAMPLE")))
            .await;
        assert_eq!(
            result_id(&auth),
            "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD",
            "{}",
            auth.text()
        );
    }
    let list = client.send(&msg::list()).await;
    assert_eq!(
        result_id(&list),
        "LIST_FAILED_NO_USER",
        "a failed login lists nothing"
    );
    let auth = client
        .send(&msg::authenticate("kolmogorov", PASSWORD, Some("EXAMPLE")))
        .await;
    assert_eq!(result_id(&auth), "AUTH_SUCCESSFUL_AND_COMPLETE");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_domain_element_is_accepted() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(simple_settings(agent.addr)).await;
    let mut client = TestClient::connect(broker.addr).await;
    client.send(&msg::hello()).await;
    let auth = client
        .send(&msg::authenticate("kolmogorov", PASSWORD, None))
        .await;
    assert_eq!(
        result_id(&auth),
        "AUTH_SUCCESSFUL_AND_COMPLETE",
        "{}",
        auth.text()
    );
    broker.stop().await;
}

/// Expiry itself is tested in-process on a paused clock (`host/broker/tests/service.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_missing_sessions() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(simple_settings(agent.addr)).await;

    let mut client = TestClient::connect(broker.addr).await;
    let auth = client
        .send(&msg::authenticate("kolmogorov", PASSWORD, None))
        .await;
    assert_eq!(result_id(&auth), "ERR_MISSING_SESSION", "{}", auth.text());

    client.cookie = Some("0123456789abcdef0123456789abcdef".into());
    let auth = client
        .send(&msg::authenticate("kolmogorov", PASSWORD, None))
        .await;
    assert_eq!(result_id(&auth), "ERR_INVALID_SESSION", "a forged cookie");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_foreign_xml() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(simple_settings(agent.addr)).await;
    let mut client = TestClient::connect(broker.addr).await;
    let cases: [(&[u8], &str); 6] = [
        (b"<?xml version=\"1.0\"?><pcoip-broker version=\"2.1\"><hello><client-info></hello></pcoip-broker>", "ERR_INVALID_MSG_FORMAT"),
        (b"this is not xml", "ERR_INVALID_MSG_FORMAT"),
        (b"<pcoip-client version=\"2.1\"><hello><client-info><hostname>\xff\xfe</hostname></client-info></hello></pcoip-client>", "ERR_INVALID_MSG_FORMAT"),
        (b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]><pcoip-client version=\"2.1\"><bye/></pcoip-client>", "ERR_INVALID_MSG_FORMAT"),
        (b"<broker version=\"2.0\"><get-desktops/></broker>", "ERR_INVALID_MSG_ENVELOPE"),
        (b"<pcoip-client version=\"1.0\"><bye/></pcoip-client>", "ERR_UNSUPPORTED_VERSION"),
    ];
    for (body, expected) in cases {
        let response = client.send_body(body).await;
        assert_eq!(
            result_id(&response),
            expected,
            "{:?} -> {}",
            String::from_utf8_lossy(body),
            response.text()
        );
        assert!(response.text().contains("<error-resp>"));
        assert!(
            response
                .text()
                .contains("<detected-by>BROKER</detected-by>")
        );
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_messages_get_matching_failures() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(simple_settings(agent.addr)).await;
    let mut client = TestClient::connect(broker.addr).await;
    client.send(&msg::hello()).await;
    let list = client.send(&msg::list()).await;
    assert_eq!(result_id(&list), "LIST_FAILED_NO_USER", "{}", list.text());
    let alloc = client.send(&msg::allocate("anything")).await;
    assert_eq!(
        result_id(&alloc),
        "ALLOC_FAILED_NO_USER",
        "{}",
        alloc.text()
    );
    let op = client.send("<perform-operation><resource-id>x</resource-id><operation>CMD_OS_RESTART</operation></perform-operation>").await;
    assert_eq!(result_id(&op), "OP_FAILED_NO_USER", "{}", op.text());
    let dialog = client.send(&msg::dialog("code", "123456")).await;
    assert_eq!(
        result_id(&dialog),
        "AUTH_FAILED_UNEXPECTED_METHOD",
        "{}",
        dialog.text()
    );

    let (mut client, _) = logged_in(&broker).await;
    let alloc = client.send(&msg::allocate("no-such-desktop")).await;
    assert_eq!(
        result_id(&alloc),
        "ALLOC_FAILED_INVALID_PARAMETER",
        "{}",
        alloc.text()
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_failures_map_to_client_ids() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut settings = simple_settings(agent.addr);
    settings["agent"]["timeout_ms"] = serde_json::json!(400);
    let broker = TestBroker::start(settings).await;
    let cases = [
        (
            AgentBehaviour::FailUserAuth,
            "ALLOC_FAILED_UNKNOWN_USERNAME_OR_PASSWORD",
        ),
        (
            AgentBehaviour::AnotherSession,
            "ALLOC_FAILED_TO_ALLOCATE_AGENT",
        ),
        (
            AgentBehaviour::Unknown("FAILED_SOMETHING_NEW".into()),
            "ALLOC_FAILED_TO_ALLOCATE_AGENT",
        ),
        (AgentBehaviour::BadXml, "ALLOC_FAILED_TO_ALLOCATE_AGENT"),
        (AgentBehaviour::Hang, "ALLOC_FAILED_TO_ALLOCATE_AGENT"),
    ];
    for (behaviour, expected) in cases {
        agent.set(behaviour.clone());
        let (mut client, id) = logged_in(&broker).await;
        let started = Instant::now();
        let alloc = client.send(&msg::allocate(&id)).await;
        let text = alloc.text();
        assert_eq!(result_id(&alloc), expected, "{behaviour:?}: {text}");
        assert!(
            !text.contains("FAILED_USER_AUTH<") && !text.contains(">FAILED_ANOTHER"),
            "agent ids never reach the client: {text}"
        );
        let result_str = element_text(&text, "result-str").unwrap();
        assert!(!result_str.is_empty(), "a useful result-str");
        if behaviour == AgentBehaviour::Hang {
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "the agent deadline holds"
            );
            assert!(result_str.contains("did not answer"), "{result_str}");
        }
        // The session is still usable: the password was not consumed by a failed launch.
        agent.set(AgentBehaviour::Succeed);
        let retry = client.send(&msg::allocate(&id)).await;
        assert_eq!(result_id(&retry), "ALLOC_SUCCESSFUL", "{}", retry.text());
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_agent() {
    // Bind and drop to get a port with nothing behind it.
    let port = std::net::TcpListener::bind("127.0.0.2:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 2], port));
    let broker = TestBroker::start(simple_settings(addr)).await;
    let (mut client, id) = logged_in(&broker).await;
    let alloc = client.send(&msg::allocate(&id)).await;
    assert_eq!(
        result_id(&alloc),
        "ALLOC_FAILED_TO_ALLOCATE_AGENT",
        "{}",
        alloc.text()
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_the_limit() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(simple_settings(agent.addr)).await;
    let mut client = TestClient::connect(broker.addr).await;
    let mut body = b"<pcoip-client version=\"2.1\"><hello><client-info><hostname>".to_vec();
    body.resize(64 * 1024 + 1, b'a');
    // The broker answers from the declared length without reading the body and closes the
    // connection; the client may still be writing, so the answer or a closed socket are both fine.
    let answered = client
        .connection()
        .post(
            "/pcoip-broker/xml",
            &[],
            &body,
            interstate_tests::pcoip::ANSWER_TIMEOUT,
        )
        .await;
    match answered {
        Ok(response) => {
            interstate_tests::pcoip::check_wire(&response);
            assert_eq!(
                result_id(&response),
                "ERR_INVALID_MSG_FORMAT",
                "{}",
                response.text()
            );
            assert!(
                response.close,
                "the unread rest of the body ends the connection"
            );
        }
        Err(e) => assert!(
            matches!(e, interstate_tools::wire::ClientError::Io(_)),
            "only the connection may end: {e}"
        ),
    }

    // The broker still serves.
    client.reconnect().await;
    let hello = client.send(&msg::hello()).await;
    assert!(hello.text().contains("<hello-resp>"));
    broker.stop().await;
}
