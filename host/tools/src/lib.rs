//! Interstate's client-side tools: everything that plays a PCoIP client or a PCoIP agent, kept
//! out of the server library (no broker, no wasmtime).
//!
//! # Layout
//! - [`wire`]: a PCoIP-client-shaped HTTP/1.1 connection over TLS that keeps what real clients
//!   depend on (exact header spelling, chunked framing), parsed with `httparse`.
//! - [`messages`]: the requests a PCoIP client sends (the one set of builders).
//! - [`xml`]: reading answers from any broker with quick-xml: roots, element texts, resources.
//! - [`target`]: the broker URL a probe or a bench is pointed at.
//! - [`conversation`]: one simulated client (connection, cookie, log id).
//! - [`probe`]: `interstate probe`, a whole client flow with every quirk checked.
//! - [`bench`](mod@bench): `interstate bench`, simulated clients with latency percentiles and server usage.
//! - [`agent`]: a fake PCoIP agent (a real HTTPS server) for tests and benchmark setups.
//!
//! The command lines themselves live in the `interstate` binary (`interstate-cli`).

pub mod agent;
pub mod bench;
pub mod conversation;
pub mod messages;
pub mod probe;
pub mod target;
pub mod wire;
pub mod xml;
