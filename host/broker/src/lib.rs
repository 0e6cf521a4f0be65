//! Interstate: a PCoIP connection broker whose site policy runs in WebAssembly mappers.
//!
//! # Layout
//! - [`settings`]: `settings.json` (ILS-compatible) into typed, validated settings (the
//!   `interstate-config` crate, re-exported under its old name).
//! - [`tls`]: the broker's certificate (files or generated) and the rustls server config.
//! - [`server`]: the accept loop (connection cap, TLS in the task, HTTP/1.1, graceful drain).
//! - [`service`]: one HTTP request → one PCoIP exchange (sessions, state machine, mapper, agent).
//! - [`store`]: where live sessions are kept (the [`store::SessionStore`] contract; in memory).
//! - [`clock`]: the time every request reads once (tokio's clock, so tests can pause it).
//! - [`ratelimit`]: authentication failure limits per user and per address.
//! - [`agent`]: the `launch-session` call to a desktop's PCoIP agent ([`agent::Agent`]).
//! - [`body`]: the chunked response body PCoIP clients need.
//! - [`verify`]: certificate checks for self-signed peers (the `interstate-tls` crate).
//! - [`app`]: assembling all of the above from settings; reload.
//! - [`admin`]: the operator listener (health, metrics, reload, the feed, the admin API, the
//!   dashboard).
//! - [`audit`]: the audit log (OWASP vocabulary, its own writer, aggregated refusals).
//! - [`metrics`]: the Prometheus metrics.
//! - [`events`]: the broker's own events on the operator feed.
//! - [`feedbus`]: the feed across nodes, over a Redis Stream, when sessions live in Redis.
//!
//! The protocol codec and the session state machine live in `interstate-protocol` (no IO); the
//! wasm host lives in `interstate-mapper`; the client-side tools (probe, bench, the fake agent)
//! in `interstate-tools`; the `interstate` binary in `interstate-cli`.

pub mod admin;
pub mod agent;
pub mod app;
pub mod audit;
pub mod body;
pub mod clock;
pub mod events;
pub mod feedbus;
pub mod metrics;
pub mod ratelimit;
pub mod server;
pub mod service;
pub use interstate_config as settings;
pub mod store;
pub mod tls;
pub use interstate_tls as verify;
