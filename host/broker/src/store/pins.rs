//! Agent certificate pins for trust on first use (`agent.tls.verify: "tofu"`): the
//! [`PinStore`] contract.
//!
//! A pin is the SHA-256 of the leaf certificate an agent presented the first time the broker
//! called it, keyed by the agent's address as `host:port` (see [`pin_key`]). Pins live in the
//! session store so that every broker node sharing a store trusts the same certificates: the
//! shared store (Redis) implements these methods on its shared state, with
//! [`PinStore::pin_if_absent`] as one atomic set-if-absent (`SET key value NX` and a `GET`), so
//! that two nodes racing on the first call to an agent agree on one pin. Pins never expire;
//! only an operator replaces or forgets one (`POST /agents/forget`, `POST /agents/trust`,
//! `interstate agent forget|trust`).

use std::fmt;

use futures_util::future::BoxFuture;

use super::StoreError;

/// A pin, or why the store could not say: a caller never takes an error for "no pin", which
/// would pin anew whatever answers.
pub type PinResult = Result<Option<[u8; 32]>, StoreError>;

/// The pin of each agent address.
pub trait PinStore: Send + Sync + fmt::Debug {
    /// The pin of `agent`, if any.
    fn pin<'a>(&'a self, agent: &'a str) -> BoxFuture<'a, PinResult>;

    /// Pins `fingerprint` for `agent` unless it already has a pin, atomically. Returns the pin
    /// that was already there (`None`: `fingerprint` is now the pin).
    fn pin_if_absent<'a>(
        &'a self,
        agent: &'a str,
        fingerprint: [u8; 32],
    ) -> BoxFuture<'a, PinResult>;

    /// The operator's word: replaces the pin of `agent` with `fingerprint`, or forgets it
    /// (`None`, so that the next call pins again). Returns the previous pin.
    fn set_pin<'a>(
        &'a self,
        agent: &'a str,
        fingerprint: Option<[u8; 32]>,
    ) -> BoxFuture<'a, PinResult>;
}

/// The key of an agent's pin: its host, lowercased and without IPv6 brackets, and port, as
/// `host:port` (`[v6]:port` for an IPv6 address).
pub fn pin_key(host: &str, port: u16) -> String {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Parses an operator's `HOST[:PORT]` (`[v6]` or `[v6]:PORT` for IPv6) into a pin key, the
/// port defaulting to `default_port`. `None` for an empty host or a bad port.
pub fn parse_agent(text: &str, default_port: u16) -> Option<String> {
    let text = text.trim();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else if text.matches(':').count() > 1 {
        (text, None)
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(port) => port.parse::<u16>().ok().filter(|p| *p != 0)?,
        None => default_port,
    };
    Some(pin_key(host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_normalised_and_operator_input_parses() {
        assert_eq!(pin_key("WS1.Example.com.", 60443), "ws1.example.com:60443");
        assert_eq!(pin_key("[::1]", 4172), "[::1]:4172");
        assert_eq!(pin_key("::1", 4172), "[::1]:4172");
        assert_eq!(parse_agent("ws1", 60443).as_deref(), Some("ws1:60443"));
        assert_eq!(parse_agent("ws1:4172", 60443).as_deref(), Some("ws1:4172"));
        assert_eq!(parse_agent("[::1]:4172", 1).as_deref(), Some("[::1]:4172"));
        assert_eq!(parse_agent("[::1]", 1).as_deref(), Some("[::1]:1"));
        assert_eq!(parse_agent("::1", 1).as_deref(), Some("[::1]:1"));
        assert_eq!(parse_agent("", 1), None);
        assert_eq!(parse_agent("ws1:x", 1), None);
        assert_eq!(parse_agent("ws1:0", 1), None);
    }
}
