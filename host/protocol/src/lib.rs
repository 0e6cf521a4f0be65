//! Sans-IO codec and session state machine for the PCoIP broker protocol.
//!
//! Nothing here does IO or knows about tokio, hyper, rustls or wasmtime.

pub mod policy;
