//! The host imports every mapper gets: `log` and `verify-password`.

use zeroize::Zeroizing;

use crate::bindings::Level;
use crate::bindings::interstate::mapper::{host, types};
use crate::state::CallState;

/// Longest log line kept; the rest is cut at a character boundary.
const MAX_LOG_BYTES: usize = 2048;
/// Lines one call may log; later ones are dropped (one notice says so).
const MAX_LOG_LINES: u32 = 100;

impl types::Host for CallState {}

impl host::Host for CallState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.log_lines = self.log_lines.saturating_add(1);
        if self.log_lines > MAX_LOG_LINES {
            if self.log_lines == MAX_LOG_LINES + 1 {
                tracing::warn!(
                    target: "interstate::mapper",
                    mapper = %self.mapper,
                    "the mapper logged more than {MAX_LOG_LINES} lines in one call; dropping the rest"
                );
            }
            return Ok(());
        }
        let line = truncate(&message, MAX_LOG_BYTES);
        let mapper = &*self.mapper;
        match level {
            Level::Trace => tracing::trace!(target: "interstate::mapper", mapper, "{line}"),
            Level::Debug => tracing::debug!(target: "interstate::mapper", mapper, "{line}"),
            Level::Info => tracing::info!(target: "interstate::mapper", mapper, "{line}"),
            Level::Warn => tracing::warn!(target: "interstate::mapper", mapper, "{line}"),
            Level::Error => tracing::error!(target: "interstate::mapper", mapper, "{line}"),
        }
        Ok(())
    }

    async fn verify_password(&mut self, password: String, hash: String) -> wasmtime::Result<bool> {
        // PBKDF2 with 100k iterations or argon2 costs tens of milliseconds of CPU: it runs on
        // the bounded hash pool, off the async workers, and not at all once the call's
        // deadline has passed while it waited.
        let password = Zeroizing::new(password);
        Ok(self.hashes.verify(self.deadline, password, hash).await)
    }
}

/// `text` cut to at most `max` bytes at a character boundary, with a marker when cut.
fn truncate(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes cut]", &text[..end], text.len() - end).into()
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncates_at_a_char_boundary() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate("ééé", 3);
        assert!(cut.starts_with("é…"), "{cut}");
    }
}
