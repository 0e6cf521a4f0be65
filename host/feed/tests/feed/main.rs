//! Black-box conformance (study §6.2) against a real hyper server on 127.0.0.1 with real
//! websocket clients. Case numbers refer to §6.2; [C] cases keep channelstream's behaviour, [B]
//! cases assert the deliberate fixes.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
#![allow(missing_docs, reason = "tests")]

mod auth;
mod rest;
mod socket;
mod support;
