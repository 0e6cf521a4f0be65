//! Hostile clients: bodies, connections and sessions that a PCoIP client never sends.
//!
//! Every case ends in one of two ways, and the test says which: a clear answer (HTTP 200,
//! chunked, a result id the client knows) or a closed connection, within a deadline. After each
//! group of cases a good client still completes a whole flow on the same broker. Timing bounds
//! assert deadlines with generous slack, never speed; measured times are printed
//! (`cargo test -p interstate-tests --test e2e hostile -- --nocapture`).
//!
//! # Layout
//! - `raw`: TLS and TCP connections that misbehave below HTTP.
//! - `bodies`: malformed, truncated, entity-laden, oversized and mislabelled request bodies.
//! - `connections`: slowloris, idle hordes, the connection cap, stalled handshakes.
//! - `sessions`: forged, expired and reused cookies, log-id fallback, every message in every state.

mod bodies;
mod connections;
mod raw;
mod sessions;

use std::collections::BTreeSet;
use std::time::Instant;

use interstate_protocol::{
    AllocResult, AuthResult, ErrorId, ListResult, OperationResult, PasswordResult,
};
use interstate_tests::broker::simple_settings;
use interstate_tests::pcoip::result_id;
use interstate_tests::{AgentBehaviour, FakeAgent, PASSWORD, TestBroker, TestClient, msg};
use interstate_tools::wire::WireResponse;
use serde_json::Value;

/// Every `result-id` a PCoIP client knows.
fn known_result_ids() -> BTreeSet<&'static str> {
    AuthResult::ALL
        .iter()
        .map(|id| id.as_str())
        .chain(ListResult::ALL.iter().map(|id| id.as_str()))
        .chain(AllocResult::ALL.iter().map(|id| id.as_str()))
        .chain(OperationResult::ALL.iter().map(|id| id.as_str()))
        .chain(PasswordResult::ALL.iter().map(|id| id.as_str()))
        .chain(ErrorId::ALL.iter().map(|id| id.as_str()))
        .collect()
}

/// What an answer is: its `result-id`, or the name of a reply that has none.
fn answer_kind(response: &WireResponse) -> String {
    let text = response.text();
    let id = result_id(response);
    if !id.is_empty() {
        assert!(
            known_result_ids().contains(id.as_str()),
            "the client does not know {id}: {text}"
        );
        return id;
    }
    for reply in ["hello-resp", "bye-resp"] {
        if text.contains(&format!("<{reply}>")) || text.contains(&format!("<{reply}/>")) {
            return reply.to_owned();
        }
    }
    panic!("an answer with no result id that is not hello-resp or bye-resp: {text}");
}

/// A fake agent that succeeds and a broker on the SimpleMapper, with `server` settings merged in.
async fn broker_with(server: Value) -> (FakeAgent, TestBroker) {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut settings = simple_settings(agent.addr);
    settings["server"] = server;
    let broker = TestBroker::start(settings).await;
    (agent, broker)
}

/// A good client's whole flow on a new connection: hello, authenticate, list, allocate, bye.
async fn assert_still_serves(broker: &TestBroker) {
    let started = Instant::now();
    let mut client = TestClient::connect(broker.addr).await;
    let id = client.log_in("kolmogorov", PASSWORD).await;
    let alloc = client.send(&msg::allocate(&id)).await;
    assert_eq!(result_id(&alloc), "ALLOC_SUCCESSFUL", "{}", alloc.text());
    let bye = client.send(&msg::bye()).await;
    assert_eq!(answer_kind(&bye), "bye-resp");
    println!(
        "hostile: good flow after the abuse took {} ms",
        started.elapsed().as_millis()
    );
}

/// `message` in the envelope `TestClient::send` uses.
fn envelope(message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<pcoip-client version=\"2.1\">{message}</pcoip-client>"
    )
}
