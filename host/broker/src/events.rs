//! The broker's own events on the operator feed (the channels and catalogue of
//! `shared/reference/channelstream.md` §8.3–8.4).
//!
//! | type | channels |
//! |---|---|
//! | `session.created` | sessions |
//! | `session.authenticated`, `session.challenged`, `session.auth_failed`, `session.rate_limited` | sessions, auth |
//! | `session.disclaimer` (`accepted`) | sessions, auth |
//! | `session.password_changed`, `session.password_change_failed` (`reason`) | sessions, auth |
//! | `session.operation` (`operation`, `result`, `outcome`) | sessions, allocations |
//! | `session.resources_listed` | sessions |
//! | `session.allocated`, `session.allocation_failed` | sessions, allocations |
//! | `session.ended` (`reason`: bye, timeout, killed) | sessions |
//! | `agent.error` (with `latency_ms`) | allocations, system |
//! | `mapper.loaded`, `mapper.reloaded`, `mapper.failed` | mappers, system |
//! | `broker.config_reloaded`, `broker.config_refused` | system |
//! | `broker.stats` (live only, not kept in history) | system |
//! | `admin.action` | admin |
//!
//! The feed numbers every event (`seq`) and names its node (`node`); a subscriber that
//! reconnects catches up from its last `seq` (the feed crate does this).
//!
//! # What an event never carries
//!
//! Passwords, one-time codes and dialog answers never reach this module: it is handed user
//! names, outcomes and counts only. Nor does the connect tag the agent returns, nor a raw
//! session id (the cookie, a credential): sessions are named by [`session_ref`], the same short
//! hash the Redis store's logs use. User names and mapper reasons pass through
//! [`crate::audit::loggable`] (escaped, cut at 256 characters).
//!
//! Publishing never waits: without a feed attached (no admin listener) it does nothing, and a
//! feed that refuses an event (a full channel table) costs a debug line, never the request.

use std::sync::{Arc, OnceLock};

use interstate_feed::{Event, Feed};
use serde_json::Value;

use crate::audit::loggable;

/// The channels the broker publishes to.
pub mod channel {
    /// Every session lifecycle event.
    pub const SESSIONS: &str = "sessions";
    /// Authentication outcomes.
    pub const AUTH: &str = "auth";
    /// Allocation results.
    pub const ALLOCATIONS: &str = "allocations";
    /// Mapper lifecycle and failures.
    pub const MAPPERS: &str = "mappers";
    /// Reloads, agent errors, periodic stats.
    pub const SYSTEM: &str = "system";
    /// Operator actions.
    pub const ADMIN: &str = "admin";
}

/// How events and admin lists name a session: the first 48 bits of the SHA-256 of its id, in
/// hex. Enough to tell sessions apart on a dashboard; useless as a cookie.
pub fn session_ref(id: &str) -> String {
    crate::store::redis::hash_id(id)
}

/// Where the broker's events go: the feed, once the admin listener attaches one.
#[derive(Debug, Default)]
pub struct Events {
    feed: OnceLock<Arc<Feed>>,
}

impl Events {
    /// Sends events to `feed` from now on. A second feed is ignored (the first stays).
    pub fn attach(&self, feed: Arc<Feed>) {
        let _ = self.feed.set(feed);
    }

    /// The attached feed, if any.
    pub fn feed(&self) -> Option<&Arc<Feed>> {
        self.feed.get()
    }

    /// Publishes one event of `kind` about `user` to each of `channels`.
    pub fn emit(&self, channels: &[&str], kind: &str, user: Option<&str>, message: Value) {
        let Some(feed) = self.feed.get() else { return };
        let mut event = Event::new(kind, message);
        if let Some(user) = user {
            event = event.with_user(loggable(user));
        }
        publish(feed, channels, &event);
    }

    /// Publishes an event that is delivered live but kept out of the history (periodic stats).
    pub fn emit_live(&self, channels: &[&str], kind: &str, message: Value) {
        let Some(feed) = self.feed.get() else { return };
        publish(feed, channels, &Event::new(kind, message).without_history());
    }
}

fn publish(feed: &Feed, channels: &[&str], event: &Event) {
    for channel in channels {
        if let Err(e) = feed.publish(channel, event.clone()) {
            tracing::debug!(%channel, error = %e, "feed event not published");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_refs_are_short_stable_and_not_the_id() {
        let id = "0123456789abcdef0123456789abcdef";
        let r = session_ref(id);
        assert_eq!(r.len(), 12);
        assert_eq!(r, session_ref(id));
        assert!(!id.contains(&r));
    }

    #[tokio::test]
    async fn events_reach_the_feed_with_escaped_users() {
        let events = Events::default();
        events.emit(&[channel::SESSIONS], "session.created", None, Value::Null);
        let feed = Feed::new(interstate_feed::FeedConfig::new("n1", vec![b"k".to_vec()]));
        events.attach(feed.clone());
        events.emit(
            &[channel::SESSIONS, channel::AUTH],
            "session.auth_failed",
            Some("eve\nroot"),
            serde_json::json!({"reason": "invalid_credentials"}),
        );
        assert_eq!(
            feed.stats().events,
            2,
            "one per channel, none before attach"
        );
        let info = feed.snapshot().to_string();
        assert!(info.contains("sessions") && info.contains("auth"), "{info}");
    }
}
