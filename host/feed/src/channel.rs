//! Channels: per-channel settings, members, the history ring and the catch-up ring (study §5.1).
//!
//! Two rings, as in channelstream: `history` keeps messages for `/info` snapshots
//! (`store_history`, `history_size`), and the catch-up ring keeps the last events of every kind
//! (`store_frames`) for sockets that bind or rebind late. Fixed here: `history_size: 0` stores
//! nothing (channelstream: unbounded), and channel PMs never enter `history`, so a snapshot does
//! not show a private message to readers outside `pm_users`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::clock::Timestamp;
use crate::event::{Record, RecordKind};
use crate::ids::Uuid;

/// A channel's settings, with channelstream's keys and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Emit `presence` when a user's first connection joins or last connection leaves.
    pub notify_presence: bool,
    /// Attach the channel's user list (public state only) to presence events.
    pub broadcast_presence_with_user_lists: bool,
    /// Emit `user_state_change` when a member's public state changes.
    pub notify_state: bool,
    /// Keep messages in the history ring.
    pub store_history: bool,
    /// Size of the history ring; 0 keeps none.
    pub history_size: usize,
    /// Keep recent events of every kind for catch-up.
    pub store_frames: bool,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            notify_presence: false,
            broadcast_presence_with_user_lists: false,
            notify_state: false,
            store_history: false,
            history_size: 10,
            store_frames: true,
        }
    }
}

impl ChannelConfig {
    /// The `settings` object of channel info.
    pub fn to_json(self) -> Value {
        json!({
            "notify_presence": self.notify_presence,
            "broadcast_presence_with_user_lists": self.broadcast_presence_with_user_lists,
            "notify_state": self.notify_state,
            "store_history": self.store_history,
            "history_size": self.history_size,
            "store_frames": self.store_frames,
        })
    }
}

/// Changes to a [`ChannelConfig`]: only the keys given are applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelConfigPatch {
    /// See [`ChannelConfig::notify_presence`].
    pub notify_presence: Option<bool>,
    /// See [`ChannelConfig::broadcast_presence_with_user_lists`].
    pub broadcast_presence_with_user_lists: Option<bool>,
    /// See [`ChannelConfig::notify_state`].
    pub notify_state: Option<bool>,
    /// See [`ChannelConfig::store_history`].
    pub store_history: Option<bool>,
    /// See [`ChannelConfig::history_size`].
    pub history_size: Option<usize>,
    /// See [`ChannelConfig::store_frames`].
    pub store_frames: Option<bool>,
}

impl ChannelConfigPatch {
    /// `base` with this patch applied.
    pub fn apply(&self, base: ChannelConfig) -> ChannelConfig {
        ChannelConfig {
            notify_presence: self.notify_presence.unwrap_or(base.notify_presence),
            broadcast_presence_with_user_lists: self
                .broadcast_presence_with_user_lists
                .unwrap_or(base.broadcast_presence_with_user_lists),
            notify_state: self.notify_state.unwrap_or(base.notify_state),
            store_history: self.store_history.unwrap_or(base.store_history),
            history_size: self.history_size.unwrap_or(base.history_size),
            store_frames: self.store_frames.unwrap_or(base.store_frames),
        }
    }
}

/// A channel's live state.
#[derive(Debug)]
pub(crate) struct Channel {
    pub uuid: Uuid,
    pub name: String,
    pub config: ChannelConfig,
    pub last_active: Timestamp,
    /// Members: user → that user's connections in this channel.
    pub members: BTreeMap<String, BTreeSet<Uuid>>,
    history: VecDeque<Arc<Record>>,
    catchup: VecDeque<Arc<Record>>,
    /// The highest `seq` dropped from the catch-up ring (0: none), to detect catch-up gaps.
    pub evicted_seq: u64,
}

impl Channel {
    pub fn new(name: String, config: ChannelConfig, now: Timestamp) -> Self {
        Self {
            uuid: Uuid::random(),
            name,
            config,
            last_active: now,
            members: BTreeMap::new(),
            history: VecDeque::new(),
            catchup: VecDeque::new(),
            evicted_seq: 0,
        }
    }

    pub fn connection_count(&self) -> usize {
        self.members.values().map(BTreeSet::len).sum()
    }

    /// Keeps `record` in the rings this channel's settings ask for.
    pub fn store(&mut self, record: &Arc<Record>, catchup_size: usize, now: Timestamp) {
        self.last_active = now;
        let history_eligible =
            record.kind == RecordKind::Message && !record.no_history && record.pm_users.is_empty();
        if self.config.store_history && history_eligible && self.config.history_size > 0 {
            self.history.push_back(Arc::clone(record));
        }
        while self.history.len() > self.config.history_size {
            self.history.pop_front();
        }
        if self.config.store_frames && catchup_size > 0 {
            self.catchup.push_back(Arc::clone(record));
            while self.catchup.len() > catchup_size {
                if let Some(old) = self.catchup.pop_front() {
                    self.evicted_seq = self.evicted_seq.max(old.seq);
                }
            }
        }
    }

    /// True when a ring of this channel holds the message `uuid`.
    pub fn holds_message(&self, uuid: &str) -> bool {
        self.history
            .iter()
            .chain(self.catchup.iter())
            .any(|record| record.is_message(uuid))
    }

    /// Replaces the stored message `uuid` (in both rings) by `amend(old)`; true if it was found.
    pub fn amend_message(
        &mut self,
        uuid: &str,
        amend: &mut impl FnMut(&Arc<Record>) -> Arc<Record>,
    ) -> bool {
        let mut found = false;
        for record in self.history.iter_mut().chain(self.catchup.iter_mut()) {
            if record.is_message(uuid) {
                *record = amend(record);
                found = true;
            }
        }
        found
    }

    /// Removes the stored message `uuid` from both rings; true if it was found.
    pub fn remove_message(&mut self, uuid: &str) -> bool {
        let before = self.history.len() + self.catchup.len();
        self.history.retain(|record| !record.is_message(uuid));
        self.catchup.retain(|record| !record.is_message(uuid));
        before != self.history.len() + self.catchup.len()
    }

    /// Events after `since` that `user` may see.
    pub fn catchup_after<'a>(
        &'a self,
        since: u64,
        user: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Record>> {
        self.catchup
            .iter()
            .filter(move |record| record.seq > since && record.visible_to(user))
    }

    /// The `history` list of channel info.
    pub fn history_json(&self) -> Vec<Value> {
        self.history
            .iter()
            .map(|record| Value::Object(record.object.clone()))
            .collect()
    }

    /// Channel info as channelstream shapes it.
    pub fn info(&self, include_history: bool, include_users: bool) -> Value {
        let users: Vec<&String> = if include_users {
            self.members.keys().collect()
        } else {
            Vec::new()
        };
        let mut info = Map::new();
        info.insert("uuid".into(), Value::from(self.uuid.to_string()));
        info.insert("name".into(), Value::from(self.name.clone()));
        info.insert("long_name".into(), Value::Null);
        info.insert("settings".into(), self.config.to_json());
        info.insert(
            "history".into(),
            Value::Array(if include_history {
                self.history_json()
            } else {
                Vec::new()
            }),
        );
        info.insert(
            "last_active".into(),
            Value::from(self.last_active.to_string()),
        );
        info.insert(
            "total_connections".into(),
            Value::from(self.connection_count()),
        );
        info.insert("total_users".into(), Value::from(users.len()));
        info.insert("users".into(), json!(users));
        Value::Object(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Routing;

    fn message(seq: u64) -> Arc<Record> {
        Record::new(seq, RecordKind::Message, Map::new(), Routing::default())
    }

    #[test]
    fn history_is_a_ring_and_zero_keeps_none() {
        let now = Timestamp::from_secs(0);
        let config = ChannelConfig {
            store_history: true,
            history_size: 3,
            ..ChannelConfig::default()
        };
        let mut channel = Channel::new("c".into(), config, now);
        for seq in 1..=5 {
            channel.store(&message(seq), 100, now);
        }
        let kept: Vec<u64> = channel.history.iter().map(|record| record.seq).collect();
        assert_eq!(kept, [3, 4, 5]);

        let mut none = Channel::new(
            "n".into(),
            ChannelConfig {
                history_size: 0,
                ..config
            },
            now,
        );
        none.store(&message(1), 100, now);
        assert!(none.history_json().is_empty());
    }

    #[test]
    fn catchup_ring_tracks_what_it_dropped() {
        let now = Timestamp::from_secs(0);
        let mut channel = Channel::new("c".into(), ChannelConfig::default(), now);
        for seq in 1..=5 {
            channel.store(&message(seq), 2, now);
        }
        assert_eq!(channel.evicted_seq, 3);
        let after: Vec<u64> = channel
            .catchup_after(0, "u")
            .map(|record| record.seq)
            .collect();
        assert_eq!(after, [4, 5]);
    }

    #[test]
    fn a_patch_changes_only_the_keys_it_names() {
        let base = ChannelConfig {
            notify_presence: true,
            store_history: true,
            ..ChannelConfig::default()
        };
        let patched = ChannelConfigPatch {
            notify_state: Some(true),
            ..ChannelConfigPatch::default()
        }
        .apply(base);
        assert!(patched.notify_presence && patched.store_history && patched.notify_state);
    }
}
