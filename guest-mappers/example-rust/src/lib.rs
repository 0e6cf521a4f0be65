//! The example Interstate mapper in Rust: users and groups from the settings, passwords
//! checked by the host's `verify-password`, and a TOTP code for users with `"mfa": true`.
//!
//! The policy, the settings schema, the desktop ids and every message are those of the
//! JavaScript, Python and Go examples; the e2e conformance test plays one scenario against
//! all four.
//!
//! # Layout
//! - [`settings`]: the operator's settings, validated, and the desktop ids.
//! - [`totp`]: base32 secrets and RFC 6238 codes (HMAC-SHA1 from RustCrypto's `hmac` + `sha1`).
//! - [`policy`]: the decisions, given the host's services through a trait.
//! - this file: the [`Mapper`] impl that wires the exports and imports to the policy; the
//!   bindings and the export come from `interstate-mapper-sdk`.

pub mod policy;
pub mod settings;
pub mod totp;

use std::time::{SystemTime, UNIX_EPOCH};

use interstate_mapper_sdk::Mapper;
use interstate_mapper_sdk::host::{self, Level};
use interstate_mapper_sdk::types::{
    Allocation, AuthOutcome, ClientInfo, Desktop, FieldAnswer, Identity, PasswordLogin,
};
use policy::ExamplePolicy;
use settings::Settings;

interstate_mapper_sdk::export_mapper!(ExampleMapper);

/// The host imports, as the policy sees them.
struct WitHost;

impl policy::Host for WitHost {
    fn log(&self, level: Level, message: &str) {
        host::log(level, message);
    }

    fn verify_password(&self, password: &str, hash: &str) -> bool {
        host::verify_password(password, hash)
    }

    fn now_unix(&self) -> i64 {
        // Reads wasi:clocks/wall-clock; a clock before 1970 gives step 0, which never matches.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
            })
    }
}

/// The exported policy.
#[derive(Debug)]
pub struct ExampleMapper;

impl Mapper for ExampleMapper {
    /// The policy over the validated settings, built once per instance by `configure`.
    type Settings = ExamplePolicy;

    fn configure(settings_json: &str) -> Result<ExamplePolicy, String> {
        let settings = Settings::parse(settings_json).map_err(|err| err.to_string())?;
        Ok(ExamplePolicy::new(settings))
    }

    fn domains(policy: &ExamplePolicy) -> Vec<String> {
        policy.domains()
    }

    fn authenticate(policy: &ExamplePolicy, login: PasswordLogin) -> Result<AuthOutcome, String> {
        Ok(policy.authenticate(&WitHost, &login.username, &login.password))
    }

    fn continue_authentication(
        policy: &ExamplePolicy,
        state: String,
        answers: Vec<FieldAnswer>,
        _client: ClientInfo,
    ) -> Result<AuthOutcome, String> {
        policy.continue_authentication(&WitHost, &state, &answers)
    }

    fn list_desktops(
        policy: &ExamplePolicy,
        user: Identity,
        _client: ClientInfo,
    ) -> Result<Vec<Desktop>, String> {
        Ok(policy.list_desktops(&WitHost, &user))
    }

    fn allocate(
        policy: &ExamplePolicy,
        user: Identity,
        desktop_id: String,
        _client: ClientInfo,
    ) -> Result<Allocation, String> {
        Ok(policy.allocate(&WitHost, &user, &desktop_id))
    }
}
