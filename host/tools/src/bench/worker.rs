//! One simulated client's loop: whole flows, or one message again and again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use zeroize::Zeroizing;

use crate::bench::Mode;
use crate::bench::stats::Stats;
use crate::conversation::Conversation;
use crate::messages::{self, TOOL_CLIENT};
use crate::wire::{ClientError, WireResponse};
use crate::xml::{self, element_text};

/// What every client task shares.
#[derive(Debug)]
pub struct Shared {
    /// Flows (or single messages) handed out so far; a task stops once this reaches the cap.
    pub tickets: AtomicU64,
    /// The cap on flows.
    pub max_flows: u64,
    /// No new flow starts after this.
    pub deadline: Instant,
    /// Flows that succeeded.
    pub done: AtomicU64,
    /// Flows that failed.
    pub failed: AtomicU64,
}

/// The flow parameters.
#[derive(Debug, Clone)]
pub struct FlowSettings {
    /// The loop.
    pub mode: Mode,
    /// A new TLS connection for every flow.
    pub new_connection_per_flow: bool,
    /// The user.
    pub username: String,
    /// The password.
    pub password: Zeroizing<String>,
    /// The domain sent.
    pub domain: String,
    /// The resource to allocate, by id or name; the first listed otherwise.
    pub resource: Option<String>,
}

/// Runs flows until the deadline or the cap; returns this client's figures.
pub async fn run(
    mut conversation: Conversation,
    shared: Arc<Shared>,
    flow: Arc<FlowSettings>,
) -> Stats {
    let mut stats = Stats::default();
    if flow.mode == Mode::Sessions {
        conversation.send_cookie = false;
    }
    loop {
        if Instant::now() >= shared.deadline {
            break;
        }
        if shared.tickets.fetch_add(1, Ordering::Relaxed) >= shared.max_flows {
            break;
        }
        let started = Instant::now();
        let ok = match flow.mode {
            Mode::Flow => whole_flow(&mut conversation, &flow, &mut stats).await,
            Mode::Hello => step(
                &mut conversation,
                &mut stats,
                "hello",
                &messages::hello(&TOOL_CLIENT),
                "hello-resp",
                None,
            )
            .await
            .is_some(),
            Mode::Probe => {
                let answered = step(
                    &mut conversation,
                    &mut stats,
                    "probe",
                    &messages::probe_hello(&TOOL_CLIENT),
                    "hello-resp",
                    None,
                )
                .await
                .is_some();
                conversation.cookie = None;
                answered
            }
            Mode::Sessions => {
                let answered = step(
                    &mut conversation,
                    &mut stats,
                    "hello",
                    &messages::hello(&TOOL_CLIENT),
                    "hello-resp",
                    None,
                )
                .await;
                match answered {
                    Some(_) if conversation.cookie.take().is_some() => true,
                    Some(_) => {
                        stats.error("hello", "no session cookie");
                        false
                    }
                    None => false,
                }
            }
        };
        if ok {
            stats.record("flow", started.elapsed());
            shared.done.fetch_add(1, Ordering::Relaxed);
        } else {
            // The connection's state is unknown after a failure: start over as a new client.
            conversation.disconnect();
            conversation.forget_session();
            shared.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    stats
}

/// probe, hello, authenticate, get-resource-list, allocate-resource, bye.
async fn whole_flow(
    conversation: &mut Conversation,
    flow: &FlowSettings,
    stats: &mut Stats,
) -> bool {
    conversation.forget_session();
    if flow.new_connection_per_flow || !conversation.is_connected() {
        let started = Instant::now();
        match conversation.connect().await {
            Ok(_) => stats.record("connect", started.elapsed()),
            Err(e) => {
                stats.error("connect", error_kind(&e));
                return false;
            }
        }
    }
    if step(
        conversation,
        stats,
        "probe",
        &messages::probe_hello(&TOOL_CLIENT),
        "hello-resp",
        None,
    )
    .await
    .is_none()
    {
        return false;
    }
    // Some brokers (ILS) wrongly start a session on the probe; the hello starts the real one.
    conversation.cookie = None;
    if step(
        conversation,
        stats,
        "hello",
        &messages::hello(&TOOL_CLIENT),
        "hello-resp",
        None,
    )
    .await
    .is_none()
    {
        return false;
    }
    if conversation.cookie.is_none() && conversation.send_cookie {
        stats.error("hello", "no session cookie");
        return false;
    }
    let auth = Zeroizing::new(messages::authenticate(
        &flow.username,
        &flow.password,
        Some(&flow.domain),
    ));
    if step(
        conversation,
        stats,
        "authenticate",
        &auth,
        "authenticate-resp",
        Some("AUTH_SUCCESSFUL_AND_COMPLETE"),
    )
    .await
    .is_none()
    {
        return false;
    }
    let Some(list) = step(
        conversation,
        stats,
        "get-resource-list",
        &messages::list(),
        "get-resource-list-resp",
        Some("LIST_SUCCESSFUL"),
    )
    .await
    else {
        return false;
    };
    let listed = xml::resources(&list.text());
    let chosen = match &flow.resource {
        None => listed.first(),
        Some(wanted) => listed
            .iter()
            .find(|r| &r.id == wanted)
            .or_else(|| listed.iter().find(|r| &r.name == wanted)),
    };
    let Some(chosen) = chosen else {
        stats.error("get-resource-list", "resource not listed");
        return false;
    };
    let Some(alloc) = step(
        conversation,
        stats,
        "allocate-resource",
        &messages::allocate(&chosen.id, &TOOL_CLIENT),
        "allocate-resource-resp",
        Some("ALLOC_SUCCESSFUL"),
    )
    .await
    else {
        return false;
    };
    if element_text(&alloc.text(), "connect-tag").is_none_or(|t| t.trim().is_empty()) {
        stats.error("allocate-resource", "empty connect-tag");
        return false;
    }
    step(
        conversation,
        stats,
        "bye",
        &messages::bye(),
        "bye-resp",
        None,
    )
    .await
    .is_some()
}

/// Sends one message; records its latency when the answer is the expected one, else its error.
async fn step(
    conversation: &mut Conversation,
    stats: &mut Stats,
    name: &'static str,
    message: &str,
    expected_message: &str,
    expected_result: Option<&str>,
) -> Option<WireResponse> {
    let started = Instant::now();
    stats.requests += 1;
    let response = match conversation.send(message).await {
        Ok(response) => response,
        Err(e) => {
            stats.error(name, error_kind(&e));
            return None;
        }
    };
    let elapsed = started.elapsed();
    if response.status != 200 {
        stats.error(name, &format!("HTTP {}", response.status));
        return None;
    }
    let text = response.text();
    let got = xml::message_element(&text);
    if got.as_deref() != Some(expected_message) {
        let kind = match (got, element_text(&text, "result-id")) {
            (Some(m), Some(id)) => format!("<{m}> {}", id.trim()),
            (Some(m), None) => format!("<{m}>"),
            (None, _) => "not XML".to_owned(),
        };
        stats.error(name, &kind);
        return None;
    }
    if let Some(expected) = expected_result {
        let id = element_text(&text, "result-id").unwrap_or_default();
        if id.trim() != expected {
            stats.error(name, id.trim());
            return None;
        }
    }
    stats.record(name, elapsed);
    Some(response)
}

/// A short, bounded name for a transport failure.
fn error_kind(e: &ClientError) -> &'static str {
    match e {
        ClientError::Connect { .. } => "connect refused",
        ClientError::Tls { .. } => "TLS handshake",
        ClientError::Io(_) => "connection lost",
        ClientError::Mangled(_) => "mangled HTTP",
        ClientError::Timeout(_) => "timeout",
        _ => "client error",
    }
}
