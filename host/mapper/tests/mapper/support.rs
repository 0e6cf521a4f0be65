//! Shared helpers: runtimes, guests built from source, logins.

use std::path::PathBuf;
use std::time::Duration;

use interstate_mapper::testing::build_rust_guest;
use interstate_mapper::{MapperRuntime, MapperSettings, MapperSource, RuntimeConfig, WasmMapper};
use interstate_protocol::policy::{AuthOutcome, ClientContext, Mapper, PasswordLogin, Secret};

/// ILS hash of "correct horse battery staple", from Python's
/// `hashlib.pbkdf2_hmac("sha256", pw.encode(), b"IGNORED", 100000).hex()`.
pub const ILS_HASH: &str = "660738cb8ad3c9ba4a7fc7337e868e3022de55272d487b269e45ff81b4561021";
pub const PASSWORD: &str = "correct horse battery staple";

pub fn runtime() -> MapperRuntime {
    runtime_with(8)
}

pub fn runtime_with(max_concurrent_calls: usize) -> MapperRuntime {
    MapperRuntime::new(RuntimeConfig {
        cache_dir: None,
        max_concurrent_calls,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// Builds a guest of `guest-mappers/` (a missing toolchain fails the test with cargo's message).
pub fn guest(package: &str) -> PathBuf {
    build_rust_guest(package).unwrap_or_else(|err| panic!("{err}"))
}

pub fn settings(json: serde_json::Value) -> MapperSettings {
    MapperSettings {
        settings_json: json.to_string(),
        ..MapperSettings::default()
    }
}

pub fn login(username: &str, password: &str) -> PasswordLogin {
    PasswordLogin {
        username: username.to_owned(),
        password: Secret::new(password),
        domain: String::new(),
        client: ClientContext::default(),
    }
}

/// The hostile fixture in `mode`, with `tweak` applied to its settings.
pub async fn hostile(
    runtime: &MapperRuntime,
    mode: &str,
    tweak: impl FnOnce(&mut MapperSettings),
) -> WasmMapper {
    let mut settings = settings(serde_json::json!({ "mode": mode }));
    tweak(&mut settings);
    runtime
        .load(
            MapperSource::File(guest("interstate-hostile-mapper")),
            settings,
        )
        .await
        .unwrap()
}

/// Asserts that `mapper` (a well-behaved one) still answers: the runtime survived.
pub async fn assert_still_serving(mapper: &WasmMapper) {
    let outcome = mapper.authenticate(&login("good", "pw")).await.unwrap();
    assert!(matches!(outcome, AuthOutcome::Accepted(_)), "{outcome:?}");
}

/// A deadline check with the slack the contract promises.
pub fn assert_within(elapsed: Duration, limit: Duration) {
    assert!(elapsed <= limit, "took {elapsed:?}, more than {limit:?}");
}
