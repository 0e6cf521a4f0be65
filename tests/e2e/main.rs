//! End-to-end tests: a real TLS broker on 127.0.0.1:0, the fake PCoIP agent on 127.0.0.2, real
//! wasm mappers, and a client that checks the bytes on the wire.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod agent_fence;
mod agent_tls;
mod agent_tofu;
mod conformance;
mod conversation;
mod dashboard;
mod directory_mapper;
mod failures;
mod flow;
mod hostile_client;
mod hostile_mapper;
mod ils_webservice;
mod operator;
mod operator_compat;
mod operator_load;
mod operator_nodes;
mod operator_slow;
mod pool;
mod probe;
mod python_directory;
mod ratelimit;
mod redis_store;
mod reload;
mod reload_keys;
mod security;
mod tls_resumption;
mod webservice;
