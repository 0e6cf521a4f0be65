//! `settings.json`: interstate_love_song's file, accepted unchanged, plus Interstate's sections.
//!
//! Parsing happens in two steps (ripgrep's low/high split). [`RawSettings`] mirrors the JSON
//! with serde: unknown keys and misspelt enum-like values are refused there. Then
//! [`Settings::from_raw`] checks ranges and cross-key rules and builds typed pieces. Every error
//! names the file, the key path and what was expected ([`SettingsError`]).
//!
//! # Layout
//! - [`defaults`]: every default value as a named const, the one home of each.
//! - `values`: the enum-like values ([`LogLevel`], [`VerifyMode`], [`RawPlugin`], …) and
//!   their spellings.
//! - `raw`: [`RawSettings`] and its sections, the serde shapes of the file.
//! - `sections`: the validated sections ([`MapperConfig`], [`ServerConfig`], …).
//! - `settings`: [`Settings`], the whole validated file: load, parse, defaults.
//! - `validate`: raw into validated, one function per section; `origin` names the file in its
//!   errors and resolves relative paths.
//! - `restart`: [`RESTART_ONLY`] and [`Settings::restart_required`], the keys a reload cannot
//!   apply.
//! - `fence`: [`AgentFence`] (`agent.allowed_hosts`) and the host-name syntax of agents.
//! - `error`: [`SettingsError`].
//!
//! A leaf crate (serde, serde_json, thiserror, hex): the mapper host takes its defaults from
//! here, and the fuzz targets parse settings without building the broker.

pub mod defaults;
mod error;
mod fence;
mod origin;
mod raw;
mod restart;
mod sections;
mod settings;
mod validate;
mod values;

pub use crate::error::SettingsError;
pub use crate::fence::{AgentFence, Cidr, is_host_name};
pub use crate::raw::{
    RawAdmin, RawAgent, RawAgentTls, RawBeaker, RawLogging, RawMapper, RawMapperLimits,
    RawMapperStore, RawRedis, RawSecurity, RawSentinel, RawServer, RawSession, RawSettings,
};
pub use crate::restart::RESTART_ONLY;
pub use crate::sections::{
    AdminAccess, AgentConfig, AgentVerify, MapperConfig, MapperStoreConfig, PluginSource,
    RateLimits, RedisConfig, RedisTopology, ServerConfig, SessionConfig, StoreConfig,
};
pub use crate::settings::Settings;
pub use crate::validate::{parse_fingerprint, redact_url};
pub use crate::values::{BeakerType, LogFormat, LogLevel, RawPlugin, SessionStore, VerifyMode};

#[cfg(test)]
mod tests;
