//! The `host` interface of both contract versions: `log` and `verify-password` (0.1 and 0.2),
//! `hash-password` and `verify-totp` (0.2).

use zeroize::Zeroizing;

use crate::bindings::{v01, v02};
use crate::state::CallState;
use crate::totp;

/// Longest log line kept; the rest is cut at a character boundary.
const MAX_LOG_BYTES: usize = 2048;
/// Lines one call may log; later ones are dropped (one notice says so).
const MAX_LOG_LINES: u32 = 100;

/// A log level of either version.
#[derive(Clone, Copy, Debug)]
enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl CallState {
    /// `log`: one line tagged with the mapper, within the call's line budget.
    fn log_line(&mut self, level: Level, message: &str) {
        self.log_lines = self.log_lines.saturating_add(1);
        if self.log_lines > MAX_LOG_LINES {
            if self.log_lines == MAX_LOG_LINES + 1 {
                tracing::warn!(
                    target: "interstate::mapper",
                    mapper = %self.mapper,
                    "the mapper logged more than {MAX_LOG_LINES} lines in one call; dropping the rest"
                );
            }
            return;
        }
        let line = truncate(message, MAX_LOG_BYTES);
        let mapper = &*self.mapper;
        match level {
            Level::Trace => tracing::trace!(target: "interstate::mapper", mapper, "{line}"),
            Level::Debug => tracing::debug!(target: "interstate::mapper", mapper, "{line}"),
            Level::Info => tracing::info!(target: "interstate::mapper", mapper, "{line}"),
            Level::Warn => tracing::warn!(target: "interstate::mapper", mapper, "{line}"),
            Level::Error => tracing::error!(target: "interstate::mapper", mapper, "{line}"),
        }
    }

    /// `verify-password`. PBKDF2 with 100k iterations or argon2 costs tens of milliseconds of
    /// CPU: it runs on the bounded hash pool, off the async workers, and not at all once the
    /// call's deadline has passed while it waited.
    async fn check_password(&mut self, password: String, hash: String) -> bool {
        let password = Zeroizing::new(password);
        self.hashes.verify(self.deadline, password, hash).await
    }
}

impl v01::wit::Host for CallState {}

impl v01::interstate::mapper::host::Host for CallState {
    async fn log(&mut self, level: v01::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            v01::Level::Trace => Level::Trace,
            v01::Level::Debug => Level::Debug,
            v01::Level::Info => Level::Info,
            v01::Level::Warn => Level::Warn,
            v01::Level::Error => Level::Error,
        };
        self.log_line(level, &message);
        Ok(())
    }

    async fn verify_password(&mut self, password: String, hash: String) -> wasmtime::Result<bool> {
        Ok(self.check_password(password, hash).await)
    }
}

impl v02::wit::Host for CallState {}

impl v02::interstate::mapper::host::Host for CallState {
    async fn log(&mut self, level: v02::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            v02::Level::Trace => Level::Trace,
            v02::Level::Debug => Level::Debug,
            v02::Level::Info => Level::Info,
            v02::Level::Warn => Level::Warn,
            v02::Level::Error => Level::Error,
        };
        self.log_line(level, &message);
        Ok(())
    }

    async fn verify_password(&mut self, password: String, hash: String) -> wasmtime::Result<bool> {
        Ok(self.check_password(password, hash).await)
    }

    /// A PHC argon2id string on the hash pool; a hash that cannot start before the call's
    /// deadline traps the call (the request fails like a timeout) rather than answering a
    /// string that is not a hash.
    async fn hash_password(&mut self, password: String) -> wasmtime::Result<String> {
        let password = Zeroizing::new(password);
        self.hashes
            .hash(self.deadline, password)
            .await
            .ok_or_else(|| {
                wasmtime::Error::msg(
                    "hash-password: the call's deadline passed before a hash slot was free",
                )
            })
    }

    async fn verify_totp(
        &mut self,
        secret: String,
        code: String,
    ) -> wasmtime::Result<v02::interstate::mapper::host::TotpVerdict> {
        use v02::interstate::mapper::host::TotpVerdict;
        let secret = Zeroizing::new(secret);
        let code = Zeroizing::new(code);
        let verdict = totp::verify(
            &self.mapper,
            self.services.kv.as_ref(),
            &secret,
            &code,
            totp::unix_now(),
            self.deadline,
        )
        .await;
        Ok(match verdict {
            totp::Verdict::Accepted => TotpVerdict::Accepted,
            totp::Verdict::Rejected => TotpVerdict::Rejected,
            totp::Verdict::Replayed => TotpVerdict::Replayed,
        })
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
