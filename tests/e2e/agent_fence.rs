//! `agent.allowed_hosts` and the agent host-name syntax: a launch (which carries the user's
//! password) goes nowhere the operator did not allow, whatever the mapper answers.

use interstate_tests::broker::{parse_settings as parse, simple_settings};
use interstate_tests::pcoip::result_id;
use interstate_tests::{AgentBehaviour, FakeAgent, PASSWORD, TestBroker, TestClient, msg};
use interstate_tools::xml::element_text;
use serde_json::{Value, json};

/// hello, authenticate, list, allocate (first desktop); returns the allocate answer's text and
/// result id.
async fn allocate(addr: std::net::SocketAddr) -> (String, String) {
    let mut client = TestClient::connect(addr).await;
    client.send(&msg::hello()).await;
    let auth = client
        .send(&msg::authenticate("kolmogorov", PASSWORD, Some("EXAMPLE")))
        .await;
    assert_eq!(result_id(&auth), "AUTH_SUCCESSFUL_AND_COMPLETE");
    let list = client.send(&msg::list()).await;
    let id = element_text(&list.text(), "resource-id").expect("a desktop");
    let alloc = client.send(&msg::allocate(&id)).await;
    (alloc.text(), result_id(&alloc))
}

fn fenced(agent: &FakeAgent, allowed: Value) -> Value {
    let mut settings = simple_settings(agent.addr);
    settings["agent"]["allowed_hosts"] = allowed;
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_outside_allowed_hosts_never_receives_a_launch_until_a_reload_allows_it() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    // The fake agent is on 127.0.0.2; only 127.0.0.3 is allowed.
    let broker = TestBroker::start(fenced(&agent, json!(["127.0.0.3/32"]))).await;
    let (text, id) = allocate(broker.addr).await;
    assert_eq!(id, "ALLOC_FAILED_TO_ALLOCATE_AGENT", "{text}");
    assert!(text.contains("does not start sessions"), "{text}");
    assert!(agent.last().is_none(), "the agent received a launch");
    assert!(agent.received.lock().unwrap().is_empty());

    // A name entry does not cover an address literal outside the blocks either.
    broker
        .running
        .reload(parse(&fenced(&agent, json!([".example.com", "localhost"]))))
        .await
        .unwrap();
    let (text, id) = allocate(broker.addr).await;
    assert_eq!(id, "ALLOC_FAILED_TO_ALLOCATE_AGENT", "{text}");
    assert!(agent.last().is_none(), "the agent received a launch");

    // The reload takes effect for the next launch.
    broker
        .running
        .reload(parse(&fenced(&agent, json!(["127.0.0.2/32"]))))
        .await
        .unwrap();
    let (text, id) = allocate(broker.addr).await;
    assert_eq!(id, "ALLOC_SUCCESSFUL", "{text}");
    assert_eq!(agent.received.lock().unwrap().len(), 1);
    assert_eq!(agent.last().unwrap().username, "kolmogorov");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_allowed_hosts_the_flow_succeeds() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker =
        TestBroker::start(fenced(&agent, json!(["127.0.0.0/29", ".render.example"]))).await;
    let (text, id) = allocate(broker.addr).await;
    assert_eq!(id, "ALLOC_SUCCESSFUL", "{text}");
    assert_eq!(agent.received.lock().unwrap().len(), 1);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_host_name_with_bad_syntax_is_refused_before_any_lookup() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut settings = simple_settings(agent.addr);
    for resource in settings["mapper"]["settings"]["resources"]
        .as_array_mut()
        .unwrap()
    {
        resource["hostname"] = json!("bad host!");
    }
    let broker = TestBroker::start(settings).await;
    let (text, id) = allocate(broker.addr).await;
    assert_eq!(id, "ALLOC_FAILED_TO_ALLOCATE_AGENT", "{text}");
    // Refused for its syntax, not "could not reach" after a lookup or a connection.
    assert!(text.contains("does not start sessions"), "{text}");
    assert!(agent.last().is_none());
    broker.stop().await;
}
