//! The feed's in-memory state and every operation on it, free of IO: channels, users and
//! connections (study §5), with events numbered and fanned out under one lock.
//!
//! Operations take `now` as a value, so expiry and garbage collection are tested by moving a
//! clock. Delivery never waits: each bound connection has a bounded queue, a full queue closes
//! that connection as a slow consumer, and nobody else is delayed.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::channel::{Channel, ChannelConfig, ChannelConfigPatch};
use crate::clock::Timestamp;
use crate::config::Limits;
use crate::event::{Envelope, Record, RecordKind, Routing, new_uuid};
use crate::ids::Uuid;
use crate::requests;
use crate::schema::{self, Errors, InfoResolution};

/// Why the server closed a subscriber's socket; becomes the websocket close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// `/disconnect` was called for the connection.
    Disconnected,
    /// No client traffic within the connection timeout.
    TimedOut,
    /// The subscriber's queue was full: it does not read fast enough.
    SlowConsumer,
    /// The websocket asked for a connection id that does not exist.
    UnknownConnection,
    /// The client itself went away; nothing is sent.
    ClientGone,
}

impl CloseReason {
    /// The websocket close code.
    pub fn code(self) -> u16 {
        match self {
            Self::SlowConsumer => 1008,
            _ => 1000,
        }
    }

    /// The websocket close reason text.
    pub fn text(self) -> &'static str {
        match self {
            Self::Disconnected => "disconnected",
            Self::TimedOut => "timed out",
            Self::SlowConsumer => "slow consumer",
            Self::UnknownConnection => "unknown connection",
            Self::ClientGone => "client gone",
        }
    }
}

/// A refused REST call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ApiError {
    /// 422 with a field-error map.
    Invalid(Errors),
    /// 503: a configured bound would be exceeded.
    Limit(&'static str),
    /// 404 with a field-error map: the call names something that does not exist (a message).
    NotFound(Errors),
}

impl From<Errors> for ApiError {
    fn from(errors: Errors) -> Self {
        Self::Invalid(errors)
    }
}

/// Why a websocket could not bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BindError {
    Unknown,
    AlreadyBound,
}

/// What a freshly bound socket needs: catch-up frames, then the live queue.
#[derive(Debug)]
pub(crate) struct Bound {
    pub catchup: Vec<Utf8Bytes>,
    pub frames: mpsc::Receiver<Utf8Bytes>,
    pub close: oneshot::Receiver<CloseReason>,
}

#[derive(Debug)]
enum Link {
    /// Minted by `/connect`, waiting for its websocket.
    Minted,
    /// A websocket drains `frames`; `close` tells it why the server ended it.
    Bound {
        frames: mpsc::Sender<Utf8Bytes>,
        close: Option<oneshot::Sender<CloseReason>>,
    },
}

#[derive(Debug)]
struct Connection {
    user: String,
    channels: BTreeSet<String>,
    last_active: Timestamp,
    /// The last `seq` when minted: a first bind catches up from here.
    minted_seq: u64,
    link: Link,
}

#[derive(Debug)]
struct User {
    /// The user object's id (in `admin.json`).
    uuid: Uuid,
    state: Map<String, Value>,
    public_keys: Vec<String>,
    connections: BTreeSet<Uuid>,
    last_active: Timestamp,
    /// Recent global private messages, for catch-up.
    private: VecDeque<Arc<Record>>,
    private_evicted: u64,
}

impl User {
    fn public_state(&self) -> Value {
        let public: Map<String, Value> = self
            .state
            .iter()
            .filter(|(key, _)| self.public_keys.contains(key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        Value::Object(public)
    }
}

/// Counters for snapshots.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counters {
    pub events: u64,
    pub frames_delivered: u64,
    pub slow_consumers: u64,
}

/// All channels, users and connections of one feed.
#[derive(Debug)]
pub(crate) struct State {
    node: String,
    limits: Limits,
    default_channel: ChannelConfig,
    seq: u64,
    channels: HashMap<String, Channel>,
    users: HashMap<String, User>,
    connections: HashMap<Uuid, Connection>,
    /// Connections whose queue overflowed during the current operation, closed at its end.
    doomed: Vec<Uuid>,
    pub counters: Counters,
}

impl State {
    pub fn new(node: String, limits: Limits, default_channel: ChannelConfig) -> Self {
        Self {
            node,
            limits,
            default_channel,
            seq: 0,
            channels: HashMap::new(),
            users: HashMap::new(),
            connections: HashMap::new(),
            doomed: Vec::new(),
            counters: Counters::default(),
        }
    }

    pub fn last_seq(&self) -> u64 {
        self.seq
    }

    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// `POST /connect` (study §3.1).
    pub fn connect(
        &mut self,
        request: requests::Connect,
        now: Timestamp,
    ) -> Result<Value, ApiError> {
        let conn_id = request.conn_id.unwrap_or_else(Uuid::random);
        if self.connections.contains_key(&conn_id) {
            return Err(schema::error("conn_id", "Connection id already in use.").into());
        }
        if self.connections.len() >= self.limits.max_connections {
            return Err(ApiError::Limit("connections"));
        }
        let channels: BTreeSet<String> = request.channels.into_iter().collect();
        self.check_channel_room(&channels, 0)?;
        let user_exists = self.users.contains_key(&request.username);
        if !user_exists && self.users.len() >= self.limits.max_users {
            return Err(ApiError::Limit("users"));
        }
        let mut merged = if user_exists {
            self.users
                .get(&request.username)
                .map(|user| user.state.clone())
                .unwrap_or_default()
        } else {
            request.fresh_user_state
        };
        merged.extend(request.user_state);
        if merged.len() > self.limits.max_state_keys {
            return Err(schema::error("user_state", "Too many state keys.").into());
        }
        let user = self
            .users
            .entry(request.username.clone())
            .or_insert_with(|| User {
                uuid: Uuid::random(),
                state: Map::new(),
                public_keys: Vec::new(),
                connections: BTreeSet::new(),
                last_active: now,
                private: VecDeque::new(),
                private_evicted: 0,
            });
        user.state = merged;
        user.public_keys = request.state_public_keys;
        user.connections.insert(conn_id);
        user.last_active = now;
        self.connections.insert(
            conn_id,
            Connection {
                user: request.username.clone(),
                channels: BTreeSet::new(),
                last_active: now,
                minted_seq: self.seq,
                link: Link::Minted,
            },
        );
        for name in &channels {
            self.join(conn_id, name, &request.channel_configs, now);
        }
        self.reap(now);
        let user = self.users.get(&request.username);
        let listed: Vec<String> = channels.iter().cloned().collect();
        Ok(json!({
            "conn_id": conn_id.to_string(),
            "username": request.username,
            "state": user.map(|user| Value::Object(user.state.clone())).unwrap_or(Value::Null),
            "public_state": user.map(User::public_state).unwrap_or(Value::Null),
            "channels": listed,
            "channels_info": self.channels_info(&listed, &request.info),
            "last_seq": self.seq,
        }))
    }

    /// `POST /subscribe` (study §3.2).
    pub fn subscribe(
        &mut self,
        request: requests::Membership,
        now: Timestamp,
    ) -> Result<Value, ApiError> {
        let joined_already = self.known_connection(request.conn_id)?.channels.len();
        let wanted: BTreeSet<String> = request.channels.into_iter().collect();
        let new: BTreeSet<String> = match self.connections.get(&request.conn_id) {
            Some(connection) => wanted.difference(&connection.channels).cloned().collect(),
            None => BTreeSet::new(),
        };
        self.check_channel_room(&new, joined_already)?;
        for name in &new {
            self.join(request.conn_id, name, &request.channel_configs, now);
        }
        self.touch(request.conn_id, now);
        self.reap(now);
        let channels = self.channels_of(request.conn_id);
        Ok(json!({
            "channels": channels,
            "channels_info": self.channels_info(&channels, &request.info),
            "subscribed_to": new,
        }))
    }

    /// `POST /unsubscribe` (study §3.2), without channelstream's spurious `parted`.
    pub fn unsubscribe(
        &mut self,
        request: requests::Membership,
        now: Timestamp,
    ) -> Result<Value, ApiError> {
        self.known_connection(request.conn_id)?;
        let mut left = BTreeSet::new();
        for name in request.channels {
            if self.leave(request.conn_id, &name, now) {
                left.insert(name);
            }
        }
        self.touch(request.conn_id, now);
        self.reap(now);
        let channels = self.channels_of(request.conn_id);
        Ok(json!({
            "channels": channels,
            "channels_info": self.channels_info(&channels, &request.info),
            "unsubscribed_from": left,
        }))
    }

    /// `POST /user_state` (study §3.3). A change of private keys only emits nothing.
    pub fn user_state(
        &mut self,
        request: requests::UserState,
        now: Timestamp,
    ) -> Result<Value, ApiError> {
        let Some(user) = self.users.get_mut(&request.user) else {
            return Err(schema::error("user", "Unknown user").into());
        };
        let mut state = user.state.clone();
        let mut changed = Vec::new();
        for (key, value) in request.user_state {
            if state.get(&key) != Some(&value) {
                changed.push((key.clone(), value.clone()));
            }
            state.insert(key, value);
        }
        if state.len() > self.limits.max_state_keys {
            return Err(schema::error("user_state", "Too many state keys.").into());
        }
        user.state = state;
        if let Some(keys) = request.state_public_keys {
            user.public_keys = keys;
        }
        user.last_active = now;
        let public_changed: Vec<Value> = changed
            .iter()
            .filter(|(key, _)| user.public_keys.contains(key))
            .map(|(key, value)| json!({"key": key, "value": value}))
            .collect();
        let response = json!({
            "user_state": Value::Object(user.state.clone()),
            "changed_state": changed
                .iter()
                .map(|(key, value)| json!({"key": key, "value": value}))
                .collect::<Vec<_>>(),
            "public_keys": user.public_keys.clone(),
        });
        if !public_changed.is_empty() {
            let public_state = user.public_state();
            let channels: BTreeSet<String> = user
                .connections
                .iter()
                .filter_map(|id| self.connections.get(id))
                .flat_map(|connection| connection.channels.iter().cloned())
                .collect();
            for name in channels {
                if !self
                    .channels
                    .get(&name)
                    .is_some_and(|channel| channel.config.notify_state)
                {
                    continue;
                }
                let mut object = Map::new();
                object.insert("uuid".into(), Value::from(new_uuid()));
                object.insert("type".into(), Value::from("user_state_change"));
                object.insert("channel".into(), Value::from(name.clone()));
                object.insert("user".into(), Value::from(request.user.clone()));
                object.insert(
                    "message".into(),
                    json!({"state": public_state, "changed": public_changed}),
                );
                object.insert("timestamp".into(), Value::from(now.to_string()));
                self.emit(
                    &name,
                    RecordKind::UserState,
                    object,
                    Routing::default(),
                    now,
                );
            }
        }
        self.reap(now);
        Ok(response)
    }

    /// Stores and delivers a published envelope (from this node or, via the bus, another).
    pub fn deliver(&mut self, envelope: Envelope, now: Timestamp) -> Option<u64> {
        if envelope.kind == EDIT || envelope.kind == DELETE {
            return self.deliver_amendment(envelope, now);
        }
        let mut object = envelope.fields;
        object.insert("uuid".into(), Value::from(envelope.uuid));
        object.insert("type".into(), Value::from(envelope.kind));
        object.insert(
            "channel".into(),
            envelope.channel.clone().map_or(Value::Null, Value::from),
        );
        object.insert(
            "user".into(),
            envelope.user.map_or(Value::Null, Value::from),
        );
        object.insert("timestamp".into(), Value::from(envelope.timestamp));
        object.insert("node".into(), Value::from(envelope.node));
        let routing = Routing {
            pm_users: envelope.pm_users,
            exclude_users: envelope.exclude_users,
            subject: None,
            no_history: envelope.no_history,
        };
        let seq = match envelope.channel {
            Some(name) => self.emit(&name, RecordKind::Message, object, routing, now),
            None if !routing.pm_users.is_empty() => {
                Some(self.emit_private(RecordKind::Message, object, routing, now))
            }
            None => None,
        };
        self.reap(now);
        seq
    }

    /// True when this node still stores the message `uuid` (published through `/message`) in a
    /// channel's rings or a user's private ring.
    pub fn has_message(&self, uuid: &str) -> bool {
        self.channels
            .values()
            .any(|channel| channel.holds_message(uuid))
            || self
                .users
                .values()
                .any(|user| user.private.iter().any(|record| record.is_message(uuid)))
    }

    /// `message:edit` / `message:delete` (study §3.5, §3.6): the stored copies of the message
    /// change (an edit overwrites only [`EDITABLE`] keys) or go, then the amendment is delivered
    /// like a message, to the channel or `pm_users` the caller named.
    fn deliver_amendment(&mut self, envelope: Envelope, now: Timestamp) -> Option<u64> {
        let uuid = envelope.uuid;
        if envelope.kind == EDIT {
            let mut changes = Map::new();
            for key in EDITABLE {
                if let Some(value) = envelope.fields.get(*key) {
                    changes.insert((*key).to_owned(), value.clone());
                }
            }
            let mut amended: HashMap<u64, Arc<Record>> = HashMap::new();
            let mut amend = |old: &Arc<Record>| {
                Arc::clone(
                    amended
                        .entry(old.seq)
                        .or_insert_with(|| old.amended(&changes)),
                )
            };
            for channel in self.channels.values_mut() {
                channel.amend_message(&uuid, &mut amend);
            }
            for user in self.users.values_mut() {
                for record in &mut user.private {
                    if record.is_message(&uuid) {
                        *record = amend(record);
                    }
                }
            }
        } else {
            for channel in self.channels.values_mut() {
                channel.remove_message(&uuid);
            }
            for user in self.users.values_mut() {
                user.private.retain(|record| !record.is_message(&uuid));
            }
        }
        let mut object = envelope.fields;
        object.insert("uuid".into(), Value::from(uuid));
        object.insert("type".into(), Value::from(envelope.kind));
        object.insert(
            "channel".into(),
            envelope.channel.clone().map_or(Value::Null, Value::from),
        );
        object.insert("node".into(), Value::from(envelope.node));
        let routing = Routing {
            pm_users: envelope.pm_users,
            exclude_users: envelope.exclude_users,
            subject: None,
            no_history: true,
        };
        let seq = match envelope.channel {
            Some(name) => self.emit(&name, RecordKind::Amendment, object, routing, now),
            None if !routing.pm_users.is_empty() => {
                Some(self.emit_private(RecordKind::Amendment, object, routing, now))
            }
            None => None,
        };
        self.reap(now);
        seq
    }

    /// `admin.json` (study §3.11): counters, channels with history and users, and the users
    /// that have a connection (public state only).
    pub fn admin_json(&self, uptime_secs: i64, version: &str) -> Value {
        let mut names: Vec<String> = self.channels.keys().cloned().collect();
        names.sort();
        let channels = self.channels_info(&names, &InfoResolution::everything());
        let mut connected: Vec<(&String, &User)> = self
            .users
            .iter()
            .filter(|(_, user)| !user.connections.is_empty())
            .collect();
        connected.sort_by(|a, b| a.0.cmp(b.0));
        let users: Vec<Value> = connected
            .into_iter()
            .map(|(name, user)| {
                json!({
                    "user": name,
                    "uuid": user.uuid.to_string(),
                    "state": user.public_state(),
                    "connections": user.connections.iter().map(Uuid::to_string).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "remembered_user_count": self.users.len(),
            "unique_user_count": users.len(),
            "total_connections": self.connections.len(),
            "total_channels": self.channels.len(),
            "total_messages": self.counters.frames_delivered,
            "total_unique_messages": self.counters.events,
            "uptime": uptime(uptime_secs),
            "version": version,
            "last_seq": self.seq,
            "channels": channels["channels"],
            "users": users,
        })
    }

    /// Creates a channel for [`crate::Feed::publish`] if it is missing; false at the channel limit.
    pub fn ensure_channel(&mut self, name: &str, now: Timestamp) -> bool {
        if self.channels.contains_key(name) {
            return true;
        }
        if self.channels.len() >= self.limits.max_channels {
            return false;
        }
        self.channels.insert(
            name.to_owned(),
            Channel::new(name.to_owned(), self.default_channel, now),
        );
        true
    }

    /// `/info` (study §3.8).
    pub fn info(&self, resolution: &InfoResolution) -> Value {
        let mut names: Vec<String> = match &resolution.channels {
            Some(names) => names
                .iter()
                .filter(|name| self.channels.contains_key(*name))
                .cloned()
                .collect(),
            None => self.channels.keys().cloned().collect(),
        };
        names.retain(|name| !resolution.exclude_channels.contains(name));
        names.sort();
        names.dedup();
        self.channels_info(&names, resolution)
    }

    /// `POST /channel_config`: creates channels or changes only the keys given.
    pub fn configure(
        &mut self,
        patches: Vec<(String, ChannelConfigPatch)>,
        now: Timestamp,
    ) -> Result<Value, ApiError> {
        let new = patches
            .iter()
            .filter(|(name, _)| !self.channels.contains_key(name))
            .count();
        if self.channels.len() + new > self.limits.max_channels {
            return Err(ApiError::Limit("channels"));
        }
        let mut out = Map::new();
        for (name, patch) in patches {
            let default = self.default_channel;
            let channel = self
                .channels
                .entry(name.clone())
                .or_insert_with(|| Channel::new(name.clone(), default, now));
            channel.config = patch.apply(channel.config);
            channel.last_active = now;
            out.insert(name, channel.info(false, false));
        }
        Ok(json!({"channels": out, "users": []}))
    }

    /// Applies `patch` to `name`, creating it if needed (the broker's own channel setup).
    pub fn configure_one(&mut self, name: &str, config: ChannelConfig, now: Timestamp) -> bool {
        if !self.ensure_channel(name, now) {
            return false;
        }
        if let Some(channel) = self.channels.get_mut(name) {
            channel.config = config;
        }
        true
    }

    /// `/disconnect`: true if the connection existed.
    pub fn disconnect(&mut self, conn_id: Uuid, now: Timestamp) -> bool {
        let existed = self.remove_connection(conn_id, CloseReason::Disconnected, now);
        self.reap(now);
        existed
    }

    /// Attaches a websocket to a minted connection and computes its catch-up.
    ///
    /// Catch-up covers events after `since` (default: the `seq` at minting) from the rings of
    /// the connection's channels and the user's private ring. If a ring already dropped events
    /// after `since`, a `catchup_gap` event leads the catch-up so the client can re-snapshot.
    pub fn bind(
        &mut self,
        conn_id: Uuid,
        since: Option<u64>,
        now: Timestamp,
    ) -> Result<Bound, BindError> {
        let queue = self.limits.subscriber_queue.max(1);
        let Some(connection) = self.connections.get_mut(&conn_id) else {
            return Err(BindError::Unknown);
        };
        if matches!(connection.link, Link::Bound { .. }) {
            return Err(BindError::AlreadyBound);
        }
        let since = since.unwrap_or(connection.minted_seq);
        let (frames_tx, frames_rx) = mpsc::channel(queue);
        let (close_tx, close_rx) = oneshot::channel();
        connection.link = Link::Bound {
            frames: frames_tx,
            close: Some(close_tx),
        };
        connection.last_active = now;
        let user_name = connection.user.clone();
        let mut records: Vec<&Arc<Record>> = Vec::new();
        let mut gap_upto = 0;
        for name in &connection.channels {
            if let Some(channel) = self.channels.get(name) {
                records.extend(channel.catchup_after(since, &user_name));
                if channel.evicted_seq > since {
                    gap_upto = gap_upto.max(channel.evicted_seq);
                }
            }
        }
        if let Some(user) = self.users.get(&user_name) {
            records.extend(user.private.iter().filter(|record| record.seq > since));
            if user.private_evicted > since {
                gap_upto = gap_upto.max(user.private_evicted);
            }
        }
        records.sort_by_key(|record| record.seq);
        records.dedup_by_key(|record| record.seq);
        let mut catchup = Vec::with_capacity(records.len() + 1);
        if gap_upto > 0 {
            let gap = json!([{
                "type": "catchup_gap",
                "node": self.node,
                "since": since,
                "missed_through": gap_upto,
                "last_seq": self.seq,
                "catchup": true,
            }]);
            catchup.push(Utf8Bytes::from(gap.to_string()));
        }
        catchup.extend(records.iter().map(|record| record.catchup_frame()));
        Ok(Bound {
            catchup,
            frames: frames_rx,
            close: close_rx,
        })
    }

    /// Client traffic on a connection: it is alive.
    pub fn touch(&mut self, conn_id: Uuid, now: Timestamp) {
        if let Some(connection) = self.connections.get_mut(&conn_id) {
            connection.last_active = now;
            if let Some(user) = self.users.get_mut(&connection.user) {
                user.last_active = now;
            }
        }
    }

    /// The client's socket ended: the connection goes now, with `parted` where due.
    pub fn release(&mut self, conn_id: Uuid, now: Timestamp) {
        self.remove_connection(conn_id, CloseReason::ClientGone, now);
        self.reap(now);
    }

    /// Removes every connection silent for longer than `connection_timeout_micros` (bound or
    /// not, in channels or not), and users without connections idle longer than
    /// `user_timeout_micros`. Returns how many connections were collected.
    pub fn collect_garbage(
        &mut self,
        now: Timestamp,
        connection_timeout_micros: i64,
        user_timeout_micros: i64,
    ) -> usize {
        let stale: Vec<Uuid> = self
            .connections
            .iter()
            .filter(|(_, connection)| {
                now.micros().saturating_sub(connection.last_active.micros())
                    > connection_timeout_micros
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &stale {
            self.remove_connection(*id, CloseReason::TimedOut, now);
        }
        self.reap(now);
        self.users.retain(|_, user| {
            !user.connections.is_empty()
                || now.micros().saturating_sub(user.last_active.micros()) <= user_timeout_micros
        });
        stale.len()
    }

    /// Closes every connection (feed shutdown).
    pub fn close_all(&mut self, now: Timestamp) {
        let ids: Vec<Uuid> = self.connections.keys().copied().collect();
        for id in ids {
            self.remove_connection(id, CloseReason::Disconnected, now);
        }
        self.reap(now);
    }

    fn known_connection(&self, conn_id: Uuid) -> Result<&Connection, ApiError> {
        self.connections
            .get(&conn_id)
            .ok_or_else(|| schema::error("conn_id", "Unknown connection").into())
    }

    fn check_channel_room(
        &self,
        wanted: &BTreeSet<String>,
        already: usize,
    ) -> Result<(), ApiError> {
        if wanted.len() + already > self.limits.max_channels_per_connection {
            return Err(schema::error(
                "channels",
                &format!(
                    "At most {} channels per connection.",
                    self.limits.max_channels_per_connection
                ),
            )
            .into());
        }
        let new = wanted
            .iter()
            .filter(|name| !self.channels.contains_key(*name))
            .count();
        if self.channels.len() + new > self.limits.max_channels {
            return Err(ApiError::Limit("channels"));
        }
        Ok(())
    }

    fn channels_of(&self, conn_id: Uuid) -> Vec<String> {
        self.connections
            .get(&conn_id)
            .map(|connection| connection.channels.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn channels_info(&self, names: &[String], resolution: &InfoResolution) -> Value {
        let mut channels = Map::new();
        let mut users = BTreeSet::new();
        for name in names {
            if let Some(channel) = self.channels.get(name) {
                channels.insert(
                    name.clone(),
                    channel.info(resolution.include_history, resolution.include_users),
                );
                if resolution.include_users {
                    users.extend(channel.members.keys().cloned());
                }
            }
        }
        let users: Vec<Value> = users
            .into_iter()
            .filter_map(|name| {
                let user = self.users.get(&name)?;
                let state = if resolution.return_public_state {
                    user.public_state()
                } else {
                    Value::Object(user.state.clone())
                };
                Some(json!({"user": name, "state": state}))
            })
            .collect();
        json!({"channels": channels, "users": users})
    }

    /// Adds a connection to a channel (creating it with `configs` if missing).
    fn join(
        &mut self,
        conn_id: Uuid,
        name: &str,
        configs: &[(String, ChannelConfigPatch)],
        now: Timestamp,
    ) {
        let Some(connection) = self.connections.get_mut(&conn_id) else {
            return;
        };
        if !connection.channels.insert(name.to_owned()) {
            return;
        }
        let user = connection.user.clone();
        let default = self.default_channel;
        let channel = self.channels.entry(name.to_owned()).or_insert_with(|| {
            let config = configs
                .iter()
                .find(|(configured, _)| configured == name)
                .map_or(default, |(_, patch)| patch.apply(default));
            Channel::new(name.to_owned(), config, now)
        });
        channel.last_active = now;
        let members = channel.members.entry(user.clone()).or_default();
        let first = members.is_empty();
        members.insert(conn_id);
        if first {
            self.presence(name, &user, true, now);
        }
    }

    /// Removes a connection from a channel; true if it was a member.
    fn leave(&mut self, conn_id: Uuid, name: &str, now: Timestamp) -> bool {
        let Some(connection) = self.connections.get_mut(&conn_id) else {
            return false;
        };
        if !connection.channels.remove(name) {
            return false;
        }
        let user = connection.user.clone();
        let Some(channel) = self.channels.get_mut(name) else {
            return true;
        };
        let mut last = false;
        if let Some(members) = channel.members.get_mut(&user) {
            members.remove(&conn_id);
            if members.is_empty() {
                channel.members.remove(&user);
                last = true;
            }
        }
        if last {
            self.presence(name, &user, false, now);
        }
        true
    }

    fn remove_connection(&mut self, conn_id: Uuid, reason: CloseReason, now: Timestamp) -> bool {
        let Some(connection) = self.connections.get(&conn_id) else {
            return false;
        };
        let channels: Vec<String> = connection.channels.iter().cloned().collect();
        for name in channels {
            self.leave(conn_id, &name, now);
        }
        let Some(connection) = self.connections.remove(&conn_id) else {
            return true;
        };
        if let Some(user) = self.users.get_mut(&connection.user) {
            user.connections.remove(&conn_id);
        }
        if let Link::Bound {
            close: Some(close), ..
        } = connection.link
        {
            // The socket task may already be gone; then there is nobody left to tell.
            let _ = close.send(reason);
        }
        true
    }

    /// Closes the connections whose queues overflowed, until none is left.
    fn reap(&mut self, now: Timestamp) {
        while let Some(id) = self.doomed.pop() {
            if self.remove_connection(id, CloseReason::SlowConsumer, now) {
                self.counters.slow_consumers += 1;
            }
        }
    }

    fn presence(&mut self, name: &str, user: &str, joined: bool, now: Timestamp) {
        let Some(channel) = self.channels.get(name) else {
            return;
        };
        if !channel.config.notify_presence {
            return;
        }
        let users: Vec<Value> = if channel.config.broadcast_presence_with_user_lists {
            channel
                .members
                .keys()
                .filter_map(|member| {
                    let state = self.users.get(member)?.public_state();
                    Some(json!({"user": member, "state": state}))
                })
                .collect()
        } else {
            Vec::new()
        };
        let state = if joined {
            self.users.get(user).map_or(Value::Null, User::public_state)
        } else {
            Value::Null
        };
        let mut object = Map::new();
        object.insert("uuid".into(), Value::from(new_uuid()));
        object.insert("type".into(), Value::from("presence"));
        object.insert("channel".into(), Value::from(name));
        object.insert("user".into(), Value::from(user));
        object.insert(
            "message".into(),
            json!({"action": if joined { "joined" } else { "parted" }}),
        );
        object.insert("state".into(), state);
        object.insert("users".into(), Value::Array(users));
        object.insert("timestamp".into(), Value::from(now.to_string()));
        let routing = Routing {
            subject: Some(user.to_owned()),
            ..Routing::default()
        };
        self.emit(name, RecordKind::Presence, object, routing, now);
    }

    /// Numbers an event, stores it in `name`'s rings and queues it for the members who may see
    /// it. `None` when the channel does not exist (channelstream drops such messages too).
    fn emit(
        &mut self,
        name: &str,
        kind: RecordKind,
        mut object: Map<String, Value>,
        routing: Routing,
        now: Timestamp,
    ) -> Option<u64> {
        let channel = self.channels.get_mut(name)?;
        self.seq += 1;
        object
            .entry("node")
            .or_insert_with(|| Value::from(self.node.clone()));
        let record = Record::new(self.seq, kind, object, routing);
        channel.store(&record, self.limits.catchup_frames, now);
        self.counters.events += 1;
        for (user, members) in &channel.members {
            if !record.visible_to(user) {
                continue;
            }
            for id in members {
                if let Some(connection) = self.connections.get(id) {
                    push(
                        connection,
                        id,
                        &record,
                        &mut self.doomed,
                        &mut self.counters,
                    );
                }
            }
        }
        Some(self.seq)
    }

    /// A global private message: to every connection of each addressee, kept in their rings.
    fn emit_private(
        &mut self,
        kind: RecordKind,
        mut object: Map<String, Value>,
        routing: Routing,
        now: Timestamp,
    ) -> u64 {
        self.seq += 1;
        object
            .entry("node")
            .or_insert_with(|| Value::from(self.node.clone()));
        let record = Record::new(self.seq, kind, object, routing);
        self.counters.events += 1;
        let addressees: BTreeSet<String> = record.pm_users.iter().cloned().collect();
        for name in addressees {
            if !record.visible_to(&name) {
                continue;
            }
            let Some(user) = self.users.get_mut(&name) else {
                continue;
            };
            user.last_active = now;
            if self.limits.user_frames > 0 {
                user.private.push_back(Arc::clone(&record));
                while user.private.len() > self.limits.user_frames {
                    if let Some(old) = user.private.pop_front() {
                        user.private_evicted = user.private_evicted.max(old.seq);
                    }
                }
            }
            for id in &user.connections {
                if let Some(connection) = self.connections.get(id) {
                    push(
                        connection,
                        id,
                        &record,
                        &mut self.doomed,
                        &mut self.counters,
                    );
                }
            }
        }
        self.seq
    }
}

/// The `type` of an edit (`PATCH /message`).
pub(crate) const EDIT: &str = "message:edit";

/// The `type` of a deletion (`DELETE /message`).
pub(crate) const DELETE: &str = "message:delete";

/// The keys an edit may overwrite in the stored message (channelstream's `MSG_EDITABLE_KEYS`).
pub(crate) const EDITABLE: &[&str] = &["uuid", "timestamp", "user", "message", "edited"];

/// Python's `str(timedelta)` without fractions: `0:00:54`, `1 day, 2:03:04`, `3 days, 0:00:00`.
fn uptime(secs: i64) -> String {
    let secs = secs.max(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let clock = format!("{}:{:02}:{:02}", rest / 3_600, rest % 3_600 / 60, rest % 60);
    match days {
        0 => clock,
        1 => format!("1 day, {clock}"),
        days => format!("{days} days, {clock}"),
    }
}

/// Queues `record` for a bound connection without waiting; a full or closed queue dooms it.
fn push(
    connection: &Connection,
    id: &Uuid,
    record: &Record,
    doomed: &mut Vec<Uuid>,
    counters: &mut Counters,
) {
    if let Link::Bound { frames, .. } = &connection.link {
        match frames.try_send(record.live.clone()) {
            Ok(()) => counters.frames_delivered += 1,
            Err(_) => doomed.push(*id),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn uptime_is_written_as_python_prints_a_timedelta() {
        assert_eq!(super::uptime(54), "0:00:54");
        assert_eq!(super::uptime(86_400 + 3_723), "1 day, 1:02:03");
        assert_eq!(super::uptime(3 * 86_400), "3 days, 0:00:00");
    }
}
