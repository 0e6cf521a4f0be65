//! The whole client flow, for both roots and both session modes.

use interstate_tests::agent::CONNECT_TAG;
use interstate_tests::broker::simple_settings;
use interstate_tests::pcoip::result_id;
use interstate_tests::{AgentBehaviour, FakeAgent, PASSWORD, TestBroker, TestClient, msg};
use interstate_tools::xml::element_text;

/// probe, hello, authenticate, list, allocate, bye; returns the allocate answer text.
async fn full_flow(client: &mut TestClient, agent: &FakeAgent) {
    let probe = client.send(&msg::probe()).await;
    assert!(probe.text().contains("<hello-resp>"), "{}", probe.text());
    assert!(
        probe.header("set-cookie").is_none(),
        "the probe creates no session"
    );
    assert!(client.cookie.is_none());

    let hello = client.send(&msg::hello()).await;
    let text = hello.text();
    assert!(
        text.contains(&format!("<{} version=\"2.1\">", client.root)),
        "reply uses the request's root: {text}"
    );
    assert!(
        text.contains("<method>AUTHENTICATE_VIA_PASSWORD</method>"),
        "{text}"
    );
    assert!(
        text.contains("<domain>EXAMPLE</domain>") && text.contains("<domain>LAB</domain>"),
        "{text}"
    );
    assert!(
        hello.header_exact("Set-Cookie").is_some(),
        "hello sets the session cookie"
    );
    let cookie = client.cookie.clone().unwrap();

    let auth = client
        .send(&msg::authenticate("kolmogorov", PASSWORD, Some("EXAMPLE")))
        .await;
    assert_eq!(
        result_id(&auth),
        "AUTH_SUCCESSFUL_AND_COMPLETE",
        "{}",
        auth.text()
    );
    assert!(auth.text().contains("method=\"password\""));
    assert_eq!(
        client.cookie.as_deref(),
        Some(cookie.as_str()),
        "the session id is stable"
    );

    let list = client.send(&msg::list()).await;
    let text = list.text();
    assert_eq!(result_id(&list), "LIST_SUCCESSFUL", "{text}");
    assert!(
        text.contains("<resource-name>Elisabeth Taylor</resource-name>"),
        "{text}"
    );
    assert!(
        text.contains("session-type=\"VDI\">DESKTOP</resource-type>"),
        "{text}"
    );
    let id = element_text(&text, "resource-id").unwrap();
    assert!(
        !id.is_empty() && id != "0",
        "stable, non-index resource ids: {id}"
    );

    let alloc = client.send(&msg::allocate(&id)).await;
    let text = alloc.text();
    assert_eq!(result_id(&alloc), "ALLOC_SUCCESSFUL", "{text}");
    assert_eq!(
        element_text(&text, "connect-tag").as_deref(),
        Some(CONNECT_TAG),
        "{text}"
    );
    assert_eq!(element_text(&text, "port").as_deref(), Some("4172"));
    assert_eq!(
        element_text(&text, "session-id").as_deref(),
        Some("2305843009213693954")
    );

    let launch = agent.last().expect("the agent was called");
    assert_eq!(launch.username, "kolmogorov");
    assert_eq!(
        launch.password.expose(),
        PASSWORD,
        "exotic passwords reach the agent verbatim"
    );
    assert_eq!(launch.domain, "EXAMPLE");
    assert_eq!(launch.client_ip, "192.168.114.8");
    assert_eq!(launch.client_mac, "00:67:a8:2d:84:7e");
    assert_eq!(launch.client_name, "euler.leonhard.gov");
    assert_eq!(
        launch.time_zone_windows.as_deref(),
        Some("Pacific Standard Time")
    );
    assert_eq!(
        Some(launch.session_log_id.as_str()),
        client.log_id.as_deref()
    );

    let bye = client.send(&msg::bye()).await;
    assert!(bye.text().contains("<bye-resp"), "{}", bye.text());
    let after = client.send(&msg::list()).await;
    let expected = if client.send_cookie {
        "ERR_INVALID_SESSION"
    } else {
        "ERR_MISSING_SESSION"
    };
    assert_eq!(result_id(&after), expected, "bye ends the broker session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_with_cookies_under_both_roots() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(simple_settings(agent.addr)).await;
    for root in ["pcoip-client", "pcoip-broker"] {
        let mut client = TestClient::connect(broker.addr).await;
        client.root = root;
        full_flow(&mut client, &agent).await;
    }
    assert_eq!(agent.received.lock().unwrap().len(), 2);
    assert!(
        broker.live_sessions().await == 0,
        "bye removed both sessions"
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_with_fallback_sessions_and_no_cookie() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut settings = simple_settings(agent.addr);
    settings["server"] = serde_json::json!({"fallback_sessions": true});
    let broker = TestBroker::start(settings).await;
    for root in ["pcoip-client", "pcoip-broker"] {
        let mut client = TestClient::connect(broker.addr).await;
        client.root = root;
        client.send_cookie = false;
        full_flow(&mut client, &agent).await;
    }

    // The all-zero log id never keys a session.
    let mut zero = TestClient::connect(broker.addr).await;
    zero.send_cookie = false;
    zero.log_id = Some("00000000-0000-0000-0000-000000000000".into());
    zero.send(&msg::hello()).await;
    let auth = zero
        .send(&msg::authenticate("kolmogorov", PASSWORD, Some("")))
        .await;
    assert_eq!(result_id(&auth), "ERR_MISSING_SESSION", "{}", auth.text());

    // Nor does a missing one.
    zero.log_id = None;
    let auth = zero
        .send(&msg::authenticate("kolmogorov", PASSWORD, Some("")))
        .await;
    assert_eq!(result_id(&auth), "ERR_MISSING_SESSION");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_bytes_follow_the_client_quirks() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(simple_settings(agent.addr)).await;
    let mut client = TestClient::connect(broker.addr).await;
    let hello = client.send(&msg::hello()).await;
    // Header names exactly as the 2019/2020 clients need them.
    let names: Vec<&str> = hello.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"Set-Cookie") && names.contains(&"Transfer-Encoding"),
        "{names:?}"
    );
    assert!(
        hello
            .header_exact("Content-Type")
            .unwrap()
            .starts_with("application/xml")
    );
    assert!(
        hello
            .text()
            .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
    );

    // GET on the protocol path is a health page for load balancers.
    let health = client
        .connection()
        .get("/pcoip-broker/xml", interstate_tests::pcoip::ANSWER_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(health.status, 200);
    assert!(health.text().contains("OK"), "{}", health.text());
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_with_the_simple_mapper_loaded_from_a_wasm_file() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut settings = simple_settings(agent.addr);
    let wasm = interstate_mapper::testing::simple_mapper_path();
    assert!(
        wasm.is_file(),
        "built from guest-mappers/simple: {}",
        wasm.display()
    );
    settings["mapper"]["plugin"] = serde_json::Value::String(wasm.display().to_string());
    let broker = TestBroker::start(settings).await;
    assert_eq!(broker.running.broker.current().domains, ["EXAMPLE", "LAB"]);
    let mut client = TestClient::connect(broker.addr).await;
    full_flow(&mut client, &agent).await;
    let mut client = TestClient::connect(broker.addr).await;
    client.send(&msg::hello()).await;
    let auth = client
        .send(&msg::authenticate("kolmogorov", "not it", Some("EXAMPLE")))
        .await;
    assert_eq!(result_id(&auth), "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD");
    broker.stop().await;
}
