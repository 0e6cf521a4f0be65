//! The seam for more than one broker node: published events go through a [`FeedBus`], which
//! hands each [`Envelope`] to the [`BusSink`] of every node, this one included.
//!
//! [`LocalBus`] is the single-node implementation: it delivers synchronously to the one local
//! feed. A networked bus (e.g. Redis Streams, study §8.7) implements the same trait: `publish`
//! must not block (queue to a writer task), and a reader task calls [`BusSink::deliver`] for each
//! envelope read, from any node. Each node numbers what it delivers (`seq` is the position in
//! that node's feed), so catch-up by `seq` stays exact per node; `node` tells where an event came
//! from. Presence and `user_state_change` describe this node's subscribers and stay local.

use std::fmt;
use std::sync::{Arc, RwLock, Weak};

use crate::event::Envelope;

/// A bus refused or lost an envelope.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// No feed is attached to receive envelopes.
    #[error("no feed attached to the bus")]
    Detached,
    /// The bus's transport failed; the source says why.
    #[error("bus transport failed")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The receiving side of a bus: a node's feed.
pub trait BusSink: Send + Sync {
    /// Stores and fans out one envelope; returns its local `seq`, or `None` when it was dropped
    /// (e.g. its channel does not exist on this node).
    fn deliver(&self, envelope: Envelope) -> Option<u64>;
}

/// Fans published events out to every node's feed.
pub trait FeedBus: Send + Sync + fmt::Debug {
    /// Sends `envelope` to every attached node. Must not block on IO.
    ///
    /// # Errors
    ///
    /// A [`BusError`] if the envelope could not be handed on.
    fn publish(&self, envelope: Envelope) -> Result<Option<u64>, BusError>;

    /// Attaches this node's feed; called once by [`crate::Feed::with_bus`].
    fn attach(&self, sink: Weak<dyn BusSink>);
}

/// The in-process bus: one node, synchronous delivery.
#[derive(Default)]
pub struct LocalBus {
    sink: RwLock<Option<Weak<dyn BusSink>>>,
}

impl fmt::Debug for LocalBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalBus").finish_non_exhaustive()
    }
}

impl LocalBus {
    /// A bus with nothing attached yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
}

impl FeedBus for LocalBus {
    fn publish(&self, envelope: Envelope) -> Result<Option<u64>, BusError> {
        let sink = self
            .sink
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .and_then(Weak::upgrade)
            .ok_or(BusError::Detached)?;
        Ok(sink.deliver(envelope))
    }

    fn attach(&self, sink: Weak<dyn BusSink>) {
        *self
            .sink
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sink);
    }
}
