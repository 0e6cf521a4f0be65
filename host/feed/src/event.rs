//! Events: what publishers hand in ([`Event`], [`Envelope`]), and what the feed stores and sends
//! (`Record`: the public event object, serialised once, plus its routing metadata).
//!
//! # Format
//!
//! A frame on the websocket is a JSON array of event objects, compact (channelstream pretty-prints;
//! compact is what §8.2 asks for and what JSON clients cannot tell apart). An event object is
//! channelstream's (§4.2) plus `seq` and `node` (§8.4):
//!
//! ```json
//! {"seq":7,"node":"broker-1","uuid":"…","type":"message","channel":"pub","user":"system",
//!  "message":{"text":"hello"},"timestamp":"2026-11-22T01:56:10.247306","edited":null,
//!  "catchup":false}
//! ```
//!
//! The delivery keys `pm_users`, `exclude_users` and `no_history` are never sent, nor returned
//! in history.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::ids::Uuid;

/// An event of the broker's own, published with [`crate::Feed::publish`].
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event name, sent as `type` (e.g. `session.created`).
    pub kind: String,
    /// The end user the event is about, if any (sent as `user`).
    pub user: Option<String>,
    /// The event-specific payload, sent as `message`.
    pub message: Value,
    /// Deliver live but keep out of the channel history (e.g. periodic stats).
    pub no_history: bool,
}

impl Event {
    /// An event named `kind` with payload `message`.
    pub fn new(kind: impl Into<String>, message: Value) -> Self {
        Self {
            kind: kind.into(),
            user: None,
            message,
            no_history: false,
        }
    }

    /// The same event about end user `user`.
    #[must_use]
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// The same event, kept out of the history.
    #[must_use]
    pub fn without_history(mut self) -> Self {
        self.no_history = true;
        self
    }
}

/// An event as it crosses the [`crate::bus::FeedBus`]: complete except for `seq`, which each node
/// assigns when it delivers the envelope, so `seq` is the position in that node's feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The node that published the event.
    pub node: String,
    /// The event's id.
    pub uuid: String,
    /// The event name (`message` for `POST /message`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The target channel; `None` with `pm_users` is a global private message.
    pub channel: Option<String>,
    /// The sender label, or the end user the event is about.
    pub user: Option<String>,
    /// Naive UTC ISO-8601, as channelstream writes it.
    pub timestamp: String,
    /// Only these users receive the event, when not empty.
    pub pm_users: Vec<String>,
    /// These users never receive the event (takes precedence over `pm_users`).
    pub exclude_users: Vec<String>,
    /// Deliver but do not store in the history.
    pub no_history: bool,
    /// The remaining public keys: `message`, `edited`, and any extra keys of `POST /message`.
    pub fields: Map<String, Value>,
}

/// What kind of stored event a record is; decides history and presence routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordKind {
    /// A message or a broker event: history-eligible.
    Message,
    /// `presence`: never sent to its subject.
    Presence,
    /// `user_state_change`.
    UserState,
    /// `message:edit` and `message:delete`: kept for catch-up, never in the history.
    Amendment,
}

/// A delivered event: public object, routing metadata, and its live frame serialised once.
#[derive(Debug)]
pub(crate) struct Record {
    pub seq: u64,
    pub kind: RecordKind,
    pub pm_users: Vec<String>,
    pub exclude_users: Vec<String>,
    /// The user a presence event is about (who must not receive it).
    pub subject: Option<String>,
    pub no_history: bool,
    /// The public event object, without `catchup`.
    pub object: Map<String, Value>,
    /// `[object + "catchup": false]`, shared by every live recipient.
    pub live: Utf8Bytes,
}

impl Record {
    pub fn new(
        seq: u64,
        kind: RecordKind,
        mut object: Map<String, Value>,
        routing: Routing,
    ) -> Arc<Self> {
        object.insert("seq".into(), Value::from(seq));
        let live = frame(&object, false);
        Arc::new(Self {
            seq,
            kind,
            pm_users: routing.pm_users,
            exclude_users: routing.exclude_users,
            subject: routing.subject,
            no_history: routing.no_history,
            object,
            live,
        })
    }

    /// Whether `user` may receive this event.
    pub fn visible_to(&self, user: &str) -> bool {
        let listed = |users: &[String]| users.iter().any(|candidate| candidate == user);
        !listed(&self.exclude_users)
            && (self.pm_users.is_empty() || listed(&self.pm_users))
            && self.subject.as_deref() != Some(user)
    }

    /// The frame replayed on catch-up (`"catchup": true`).
    pub fn catchup_frame(&self) -> Utf8Bytes {
        frame(&self.object, true)
    }

    /// True for a message published through `POST /message` with id `uuid`: what
    /// `PATCH`/`DELETE /message` may change. The broker's own events are never editable.
    pub fn is_message(&self, uuid: &str) -> bool {
        self.kind == RecordKind::Message
            && self.object.get("type").and_then(Value::as_str) == Some("message")
            && self.object.get("uuid").and_then(Value::as_str) == Some(uuid)
    }

    /// This record with `changes` written over its public object (same `seq` and routing).
    pub fn amended(&self, changes: &Map<String, Value>) -> Arc<Self> {
        let mut object = self.object.clone();
        for (key, value) in changes {
            object.insert(key.clone(), value.clone());
        }
        Self::new(
            self.seq,
            self.kind,
            object,
            Routing {
                pm_users: self.pm_users.clone(),
                exclude_users: self.exclude_users.clone(),
                subject: self.subject.clone(),
                no_history: self.no_history,
            },
        )
    }
}

/// Routing metadata of a record.
#[derive(Debug, Default)]
pub(crate) struct Routing {
    pub pm_users: Vec<String>,
    pub exclude_users: Vec<String>,
    pub subject: Option<String>,
    pub no_history: bool,
}

/// A one-event frame: `[object]` with `catchup` set.
fn frame(object: &Map<String, Value>, catchup: bool) -> Utf8Bytes {
    let mut object = object.clone();
    object.insert("catchup".into(), Value::Bool(catchup));
    let array = Value::Array(vec![Value::Object(object)]);
    Utf8Bytes::from(array.to_string())
}

/// A new random event id.
pub(crate) fn new_uuid() -> String {
    Uuid::random().to_string()
}
