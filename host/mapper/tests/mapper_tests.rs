//! The wasm mapper host against real components built from `guest-mappers/`.

#![allow(
    clippy::unwrap_used,
    reason = "tests fail loudly on any unexpected error"
)]

#[path = "mapper/support.rs"]
mod support;

#[path = "mapper/capabilities.rs"]
mod capabilities;
#[path = "mapper/hostile.rs"]
mod hostile;
#[path = "mapper/loading.rs"]
mod loading;
#[path = "mapper/simple.rs"]
mod simple;
#[path = "mapper/versions.rs"]
mod versions;
