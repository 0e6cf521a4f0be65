//! Interstate's operator live feed: a server that speaks channelstream's REST and websocket API
//! (so a channelstream app or script works against it with only the base URL changed), without
//! channelstream's security flaws. The design follows the study in
//! `shared/reference/channelstream.md`, whose sections the module docs cite.
//!
//! # Use
//!
//! ```no_run
//! # async fn demo() {
//! use interstate_feed::{Event, Feed, FeedConfig, Mount, AuthMode};
//! let mut config = FeedConfig::new("broker-1", vec![b"a long random secret".to_vec()]);
//! config.mounts = vec![Mount::new("/feed", AuthMode::Compat), Mount::new("/admin/api", AuthMode::Strict)];
//! let feed = Feed::new(config);
//! // In the admin listener's service: `feed.handle(request).await`, with upgrades enabled.
//! let _ = feed.publish("sessions", Event::new("session.created", serde_json::json!({"session_id": "s1"})));
//! # }
//! ```
//!
//! # Layout
//!
//! - [`feed`]: [`Feed`], the broker-facing API (`new`, `handle`, `publish`, `collect_garbage`).
//! - [`service`]: HTTP routing, limits, authentication and the REST handlers.
//! - [`ws`]: the websocket: binding, catch-up, heartbeats, slow-consumer closing.
//! - [`state`]: channels, users and connections, without IO; fan-out under one lock.
//! - [`channel`]: channel settings and the history and catch-up rings.
//! - [`event`]: the event envelope and frames; [`bus`]: the seam for several nodes.
//! - [`auth`], [`signer`]: itsdangerous tokens, request binding, replay cache.
//! - `requests`, `schema`: body validation with marshmallow-shaped errors.
//! - [`clock`], [`ids`]: time as a value; UUIDs.
//!
//! # Adopted from channelstream (study §8.2)
//!
//! The mint-then-bind flow (`POST /connect` returns a `conn_id`, the browser opens
//! `/ws?conn_id=`); named channels with `notify_presence`, `broadcast_presence_with_user_lists`,
//! `notify_state`, `store_history`/`history_size` and `store_frames`; JSON-array frames with a `[]`
//! heartbeat; catch-up flagged `catchup: true`; presence and `user_state_change` events in their
//! exact shapes; public/private user state; itsdangerous `TimestampSigner` tokens in
//! `X-Channelstream-Secret`, verified as leniently as Python (and the JS signer) need; the error
//! bodies 401 `{"request":"Bad Signature"}` and 422 field maps.
//!
//! # Fixed
//!
//! - The signed VALUE is checked: the endpoint path in compat mode, `METHOD PATH sha256(body)` in
//!   strict mode ([`auth`]); tokens dated more than 2 s ahead are refused; a replay cache refuses a
//!   token used twice; keys rotate; secrets in the query string are refused, never accepted.
//! - `/disconnect` is signed; conn_ids are single-use (a reused id is 422, a second bind 409);
//!   a malformed `conn_id` is refused before the websocket upgrade.
//! - Every event carries `seq` and `node`; catch-up is "`seq` > since", with an explicit gap
//!   signal, not a timestamp comparison.
//! - Garbage collection covers connections in no channel (channelstream leaked them); the
//!   heartbeat runs however late a socket binds; `history_size: 0` stores nothing; history holds
//!   no private messages and no delivery metadata; unsubscribing from a channel never joined emits
//!   no `parted`; a change of private state emits nothing; `/channel_config` changes only the keys
//!   given.
//! - Everything is bounded: body size, connections, users, channels, channels per connection,
//!   messages per call, state keys, rings, and each subscriber's queue. A subscriber that stops
//!   reading is closed with 1008 "slow consumer" and slows nobody down.
//! - Answers are JSON everywhere (channelstream sent HTML for 403/404 and 500 for bad JSON).
//!
//! Not carried over: long-polling, JSONP, the flash policy server and CORS wildcards. The IP
//! allowlist, `enforce_https`, CORS and the admin sign-in are the broker admin listener's
//! (`admin.allow_posting_from`, …); the feed provides [`Feed::admin_json`].

pub mod auth;
pub mod bus;
pub mod channel;
pub mod clock;
pub mod config;
pub mod event;
pub mod feed;
pub mod ids;
mod requests;
mod schema;
pub mod service;
pub mod signer;
pub mod state;
pub mod ws;

pub use auth::AuthMode;
pub use bus::{BusError, BusSink, FeedBus, LocalBus};
pub use channel::ChannelConfig;
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use config::{FeedConfig, Limits, Mount, Timing};
pub use event::{Envelope, Event};
pub use feed::{Feed, FeedStats, PublishError};
pub use service::{FeedBody, SECRET_HEADER};
