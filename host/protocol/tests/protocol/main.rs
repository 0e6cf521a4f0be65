//! Tests of `interstate-protocol` against the fixtures under `testdata/`.
//!
//! Set `INTERSTATE_BLESS=1` to rewrite the golden replies after a deliberate format change, then
//! review the diff.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions panic on broken fixtures by design"
)]

mod agent;
mod codec;
mod fixtures;
mod malformed;
mod replies;
mod roundtrip;
mod session;
