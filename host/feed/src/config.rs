//! The feed's settings: keys, limits and defaults. Every limit has a safe default, so
//! `FeedConfig::new(node, secrets)` is a working configuration.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::AuthMode;
use crate::channel::ChannelConfig;
use crate::clock::{Clock, SystemClock};

/// Where the feed is mounted and how its REST calls are authenticated there.
///
/// The broker may mount the same feed twice, e.g. `/feed/` in [`AuthMode::Compat`] for
/// channelstream apps and `/admin/api/` in [`AuthMode::Strict`] for its own admin calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The path prefix, e.g. `/feed` or `/` (a trailing `/` is optional).
    pub prefix: String,
    /// How tokens must bind requests under this prefix.
    pub auth: AuthMode,
}

impl Mount {
    /// A mount at `prefix` with `auth`.
    pub fn new(prefix: impl Into<String>, auth: AuthMode) -> Self {
        Self {
            prefix: prefix.into(),
            auth,
        }
    }
}

/// Hard bounds on memory and work; reaching one refuses the request instead of growing.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest REST request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Most connections (minted or bound) at once.
    pub max_connections: usize,
    /// Most users remembered at once.
    pub max_users: usize,
    /// Most channels at once.
    pub max_channels: usize,
    /// Most channels one connection may join.
    pub max_channels_per_connection: usize,
    /// Most messages in one `POST /message` call.
    pub max_messages_per_call: usize,
    /// Frames queued for one subscriber before it is closed as a slow consumer.
    pub subscriber_queue: usize,
    /// Largest websocket message accepted from a client, in bytes.
    pub max_client_frame_bytes: usize,
    /// Events kept per channel for catch-up (channelstream's `store_frames`, fixed at 100 there).
    pub catchup_frames: usize,
    /// Global private messages kept per user for catch-up (channelstream: 50).
    pub user_frames: usize,
    /// Keys in one user's state.
    pub max_state_keys: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024,
            max_connections: 10_000,
            max_users: 10_000,
            max_channels: 10_000,
            max_channels_per_connection: 256,
            max_messages_per_call: 1_000,
            subscriber_queue: 1_024,
            max_client_frame_bytes: 64 * 1024,
            catchup_frames: 100,
            user_frames: 50,
            max_state_keys: 64,
        }
    }
}

/// Timers of the feed.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Oldest accepted token (itsdangerous `max_age`).
    pub token_max_age: Duration,
    /// How far in the future a token may be dated (clock skew between signer and feed).
    pub token_future_skew: Duration,
    /// A connection with no client traffic for this long (or minted and never bound) is collected.
    pub connection_timeout: Duration,
    /// A user with no connections and no activity for this long is forgotten.
    pub user_timeout: Duration,
    /// Interval of the server heartbeat `[]` and websocket ping on every bound socket.
    pub heartbeat: Duration,
    /// Interval of the garbage collector.
    pub gc_interval: Duration,
    /// How long the server waits to deliver a close frame before dropping the socket.
    pub close_grace: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            token_max_age: Duration::from_secs(60),
            token_future_skew: Duration::from_secs(2),
            connection_timeout: Duration::from_secs(30),
            user_timeout: Duration::from_secs(24 * 3_600),
            heartbeat: Duration::from_secs(10),
            gc_interval: Duration::from_secs(1),
            close_grace: Duration::from_secs(5),
        }
    }
}

/// Everything [`crate::Feed::new`] needs.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// This broker node's name, put in every event's `node`.
    pub node: String,
    /// Signing secrets: the first signs, all verify (rotation). Never logged.
    pub secrets: Vec<Vec<u8>>,
    /// Mount points and their auth modes; a request under none of them gets 404.
    pub mounts: Vec<Mount>,
    /// Most accepted tokens remembered for replay detection.
    pub replay_cache_size: usize,
    /// Settings of channels created without an explicit config (e.g. by [`crate::Feed::publish`]).
    pub default_channel: ChannelConfig,
    /// Resource bounds.
    pub limits: Limits,
    /// Timers.
    pub timing: Timing,
    /// Where "now" comes from; tests use [`crate::clock::ManualClock`].
    pub clock: Arc<dyn Clock>,
}

impl FeedConfig {
    /// Safe defaults for `node` with `secrets`, mounted at `/` in strict mode.
    pub fn new(node: impl Into<String>, secrets: Vec<Vec<u8>>) -> Self {
        Self {
            node: node.into(),
            secrets,
            mounts: vec![Mount::new("/", AuthMode::Strict)],
            replay_cache_size: 100_000,
            default_channel: ChannelConfig::default(),
            limits: Limits::default(),
            timing: Timing::default(),
            clock: Arc::new(SystemClock),
        }
    }
}
