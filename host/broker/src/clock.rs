//! The broker's clock: unix milliseconds for the session state machine and the failure limits.
//!
//! It reads the wall clock once, when the broker starts, and then advances with tokio's
//! monotonic clock. So a test that pauses tokio's time (`tokio::time::pause`, `advance`) moves
//! every session's notion of "now" with it, and expiry is tested without sleeping. Each request
//! reads it once.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Unix milliseconds, advancing with tokio's clock. Cheap to copy.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch_ms: u64,
    start: Instant,
}

impl Clock {
    /// A clock that reads the wall clock now.
    pub fn new() -> Self {
        let epoch_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            epoch_ms,
            start: Instant::now(),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.epoch_ms.saturating_add(elapsed)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn advances_with_tokio_time() {
        let clock = Clock::new();
        let before = clock.now_ms();
        tokio::time::advance(std::time::Duration::from_secs(600)).await;
        assert_eq!(clock.now_ms() - before, 600_000);
    }
}
