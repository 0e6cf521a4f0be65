//! [`Feed`]: the shared state, the authenticator and the bus, and the broker-facing API.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use serde_json::{Map, Value};

use crate::auth::{AuthError, AuthMode, Authenticator};
use crate::bus::{BusError, BusSink, FeedBus, LocalBus};
use crate::channel::ChannelConfig;
use crate::clock::{Clock, Timestamp};
use crate::config::{FeedConfig, Limits, Timing};
use crate::event::{Envelope, Event, new_uuid};
use crate::signer::SigningKey;
use crate::state::State;

/// The operator live feed. Create it with [`Feed::new`], serve [`Feed::handle`] on an HTTP/1.1
/// listener with upgrades enabled, and publish the broker's events with [`Feed::publish`].
pub struct Feed {
    pub(crate) node: String,
    pub(crate) auth: Authenticator,
    pub(crate) state: Mutex<State>,
    pub(crate) bus: Arc<dyn FeedBus>,
    /// Normalised prefixes (no trailing `/`; root is empty), longest first.
    pub(crate) mounts: Vec<(String, AuthMode)>,
    pub(crate) limits: Limits,
    pub(crate) timing: Timing,
    pub(crate) clock: Arc<dyn Clock>,
    default_channel: ChannelConfig,
    /// When the feed was made (`uptime` in [`Feed::admin_json`]).
    started: Timestamp,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("node", &self.node)
            .field("mounts", &self.mounts)
            .finish_non_exhaustive()
    }
}

/// Why [`Feed::publish`] did not deliver.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The channel does not exist and the channel limit forbids creating it.
    #[error("channel limit reached; {channel:?} was not created")]
    ChannelLimit {
        /// The channel asked for.
        channel: String,
    },
    /// The bus did not take the event.
    #[error("the feed bus refused the event")]
    Bus(#[from] BusError),
}

/// Counters of a feed, for the broker's status pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedStats {
    /// The `seq` of the latest event.
    pub last_seq: u64,
    /// Connections, minted or bound.
    pub connections: usize,
    /// Users remembered.
    pub users: usize,
    /// Channels.
    pub channels: usize,
    /// Events numbered since start.
    pub events: u64,
    /// Frames queued to subscribers since start.
    pub frames_delivered: u64,
    /// Subscribers closed for not reading.
    pub slow_consumers: u64,
}

impl Feed {
    /// A single-node feed (in-process bus). Inside a tokio runtime this also starts the garbage
    /// collector, which stops when the feed is dropped.
    pub fn new(config: FeedConfig) -> Arc<Self> {
        Self::with_bus(config, LocalBus::new())
    }

    /// A feed whose published events travel over `bus`.
    pub fn with_bus(config: FeedConfig, bus: Arc<dyn FeedBus>) -> Arc<Self> {
        let keys = config
            .secrets
            .iter()
            .map(|secret| SigningKey::derive(secret))
            .collect();
        let auth = Authenticator::new(
            keys,
            u32::try_from(config.timing.token_max_age.as_secs()).unwrap_or(u32::MAX),
            u32::try_from(config.timing.token_future_skew.as_secs()).unwrap_or(u32::MAX),
            config.replay_cache_size,
        );
        let mut mounts: Vec<(String, AuthMode)> = config
            .mounts
            .iter()
            .map(|mount| {
                let trimmed = mount.prefix.trim_end_matches('/');
                let prefix = if trimmed.is_empty() || trimmed.starts_with('/') {
                    trimmed.to_owned()
                } else {
                    format!("/{trimmed}")
                };
                (prefix, mount.auth)
            })
            .collect();
        mounts.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        let feed = Arc::new(Self {
            node: config.node.clone(),
            auth,
            state: Mutex::new(State::new(
                config.node,
                config.limits.clone(),
                config.default_channel,
            )),
            bus: Arc::clone(&bus),
            mounts,
            limits: config.limits,
            timing: config.timing,
            started: config.clock.now(),
            clock: config.clock,
            default_channel: config.default_channel,
        });
        let sink: Weak<dyn BusSink> = Arc::downgrade(&feed) as Weak<dyn BusSink>;
        bus.attach(sink);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(collect_periodically(Arc::downgrade(&feed)));
        }
        feed
    }

    /// Publishes one of the broker's events to `channel` (created with the default channel
    /// settings if missing). Never waits for subscribers. Returns the event's `seq` on this node
    /// when the bus delivers synchronously.
    ///
    /// # Errors
    ///
    /// [`PublishError`] when the channel cannot be created or the bus refuses the event.
    pub fn publish(&self, channel: &str, event: Event) -> Result<Option<u64>, PublishError> {
        let now = self.now();
        if !self.lock().ensure_channel(channel, now) {
            return Err(PublishError::ChannelLimit {
                channel: channel.to_owned(),
            });
        }
        let mut fields = Map::new();
        fields.insert("message".into(), event.message);
        let envelope = Envelope {
            node: self.node.clone(),
            uuid: new_uuid(),
            kind: event.kind,
            channel: Some(channel.to_owned()),
            user: event.user,
            timestamp: now.to_string(),
            pm_users: Vec::new(),
            exclude_users: Vec::new(),
            no_history: event.no_history,
            fields,
        };
        Ok(self.bus.publish(envelope)?)
    }

    /// Creates `channel` or replaces its settings (the broker's channel table, study §8.3).
    /// False when the channel limit forbids creating it.
    pub fn configure_channel(&self, channel: &str, config: ChannelConfig) -> bool {
        let now = self.now();
        self.lock().configure_one(channel, config, now)
    }

    /// The settings new channels get unless told otherwise.
    pub fn default_channel(&self) -> ChannelConfig {
        self.default_channel
    }

    /// Runs the garbage collector once (the periodic task calls this every `gc_interval`):
    /// connections silent longer than the connection timeout are closed, bound or not, in
    /// channels or not, with `parted` where due. Returns how many were collected.
    pub fn collect_garbage(&self) -> usize {
        let now = self.now();
        let connection_timeout = micros(self.timing.connection_timeout);
        let user_timeout = micros(self.timing.user_timeout);
        self.lock()
            .collect_garbage(now, connection_timeout, user_timeout)
    }

    /// Closes every subscriber (code 1000); the feed keeps working for new ones.
    pub fn close_all(&self) {
        let now = self.now();
        self.lock().close_all(now);
    }

    /// A token for `value` signed with the first key and dated now (for the broker's own calls
    /// and tests); `None` without keys.
    pub fn sign(&self, value: &str) -> Option<String> {
        self.auth.sign(value, self.now())
    }

    /// Checks a token for one request under `mode` ([`crate::auth`]): for callers that route
    /// requests to their own handlers but authenticate them like the feed (the broker's
    /// `admin.json`). `endpoint` is the path relative to the mount, as [`AuthMode::Compat`]
    /// tokens name it. The token is remembered (used once).
    ///
    /// # Errors
    ///
    /// Why the token was refused ([`AuthError::Missing`] without one).
    pub fn verify(
        &self,
        token: Option<&str>,
        mode: AuthMode,
        method: &str,
        target: &str,
        endpoint: &str,
        body: &[u8],
    ) -> Result<(), AuthError> {
        let path = target.split('?').next().unwrap_or(target);
        let binding = crate::auth::RequestBinding {
            method,
            target,
            path,
            endpoint,
            body,
        };
        self.auth.verify(token, mode, &binding, self.now())
    }

    /// channelstream's `admin.json` (study §3.11): `remembered_user_count`,
    /// `unique_user_count`, `total_connections`, `total_channels`, `total_messages` (frames
    /// delivered), `total_unique_messages` (events published), `uptime` (as Python prints a
    /// `timedelta`), `version`, `channels` (info with history and users) and `users` (those
    /// connected, public state only), plus `last_seq`.
    pub fn admin_json(&self) -> Value {
        let uptime = self.now().secs().saturating_sub(self.started.secs());
        self.lock().admin_json(uptime, env!("CARGO_PKG_VERSION"))
    }

    /// Checks a strict-mode token for a request that is not a feed route (the broker's admin
    /// API signs its calls the way the feed's strict mounts do): `token` must sign
    /// `METHOD TARGET sha256hex(BODY)` with one of the feed's keys, be fresh, and be unused.
    /// Returns false for every refusal; the reason is not told.
    pub fn verify_strict(
        &self,
        token: Option<&str>,
        method: &str,
        target: &str,
        body: &[u8],
    ) -> bool {
        let path = target.split('?').next().unwrap_or(target);
        let binding = crate::auth::RequestBinding {
            method,
            target,
            path,
            endpoint: path,
            body,
        };
        match self
            .auth
            .verify(token, AuthMode::Strict, &binding, self.now())
        {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(reason = ?e, "admin request signature refused");
                false
            }
        }
    }

    /// Current counters.
    pub fn stats(&self) -> FeedStats {
        let state = self.lock();
        FeedStats {
            last_seq: state.last_seq(),
            connections: state.connection_count(),
            users: state.user_count(),
            channels: state.channel_count(),
            events: state.counters.events,
            frames_delivered: state.counters.frames_delivered,
            slow_consumers: state.counters.slow_consumers,
        }
    }

    /// The snapshot `/info` returns for an empty body.
    pub fn snapshot(&self) -> Value {
        self.lock()
            .info(&crate::schema::InfoResolution::everything())
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // Operations leave the state consistent between statements that could panic, so a
        // poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl BusSink for Feed {
    fn deliver(&self, envelope: Envelope) -> Option<u64> {
        let now = self.now();
        self.lock().deliver(envelope, now)
    }
}

fn micros(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

async fn collect_periodically(feed: Weak<Feed>) {
    let period = match feed.upgrade() {
        Some(feed) => feed.timing.gc_interval,
        None => return,
    };
    let mut ticks = tokio::time::interval(period.max(std::time::Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(feed) = feed.upgrade() else {
            return;
        };
        let collected = feed.collect_garbage();
        if collected > 0 {
            tracing::debug!(collected, "feed connections collected");
        }
    }
}
