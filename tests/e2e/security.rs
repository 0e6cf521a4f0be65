//! Issue #13: the levers an outside review found, each attack played against a real broker and
//! shown to fail.

use interstate_tests::broker::simple_settings;
use interstate_tests::{AgentBehaviour, FakeAgent, TestBroker, TestClient, msg};
use interstate_tools::xml::element_text;

/// Item 10: the unauthenticated probe says what the operator configured, never the machine's
/// host name or operating system.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_discloses_neither_host_name_nor_os() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut settings = simple_settings(agent.addr);
    settings["server"]["broker_name"] = serde_json::json!("Acme Desktops");
    let broker = TestBroker::start(settings).await;
    let mut client = TestClient::connect(broker.addr).await;
    let probe = client.send(&msg::probe()).await;
    let text = probe.text();
    assert_eq!(
        element_text(&text, "hostname").as_deref(),
        Some("Acme Desktops"),
        "{text}"
    );
    let system = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let system = system.trim();
    let lower = text.to_ascii_lowercase();
    assert!(
        system.is_empty() || !text.contains(&format!(">{system}<")),
        "the machine's host name is disclosed: {text}"
    );
    assert!(
        !lower.contains(std::env::consts::OS),
        "the OS is disclosed: {text}"
    );
}
