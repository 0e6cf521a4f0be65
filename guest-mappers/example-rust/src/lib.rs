//! The example Interstate mapper in Rust: users and groups from the settings, passwords
//! checked by the host's `verify-password`, and a TOTP code for users with `"mfa": true`.
//!
//! The policy, the settings schema, the desktop ids and every message are those of the
//! JavaScript, Python and Go examples; the e2e conformance test plays one scenario against
//! all four.
//!
//! # Layout
//! - [`settings`]: the operator's settings, validated, and the desktop ids.
//! - [`totp`]: SHA-1, HMAC-SHA1, base32 and RFC 6238 codes.
//! - [`policy`]: the decisions, given the host's services through a trait.
//! - `bindings`: generated from `wit/mapper.wit`; this file wires the exports to the policy.

pub mod policy;
pub mod settings;
pub mod totp;

mod bindings;

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use bindings::exports::interstate::mapper::policy::Guest;
use bindings::interstate::mapper::host::{self, Level};
use bindings::interstate::mapper::types::{
    Allocation, AuthOutcome, ClientInfo, Desktop, FieldAnswer, Identity, PasswordLogin,
};
use policy::ExamplePolicy;
use settings::Settings;

thread_local! {
    /// The policy `configure` built, for the one call that follows in this instance.
    static POLICY: RefCell<Option<ExamplePolicy>> = const { RefCell::new(None) };
}

fn with_policy<R>(f: impl FnOnce(&ExamplePolicy) -> R) -> Result<R, String> {
    POLICY.with_borrow(|policy| match policy {
        Some(policy) => Ok(f(policy)),
        None => Err("configure was not called".to_owned()),
    })
}

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

impl Guest for ExampleMapper {
    fn configure(settings_json: String) -> Result<(), String> {
        let settings = Settings::parse(&settings_json).map_err(|err| err.to_string())?;
        POLICY.with_borrow_mut(|policy| *policy = Some(ExamplePolicy::new(settings)));
        Ok(())
    }

    fn domains() -> Vec<String> {
        with_policy(ExamplePolicy::domains).unwrap_or_default()
    }

    fn authenticate(login: PasswordLogin) -> Result<AuthOutcome, String> {
        with_policy(|policy| policy.authenticate(&WitHost, &login.username, &login.password))
    }

    fn continue_authentication(
        state: String,
        answers: Vec<FieldAnswer>,
        _client: ClientInfo,
    ) -> Result<AuthOutcome, String> {
        with_policy(|policy| policy.continue_authentication(&WitHost, &state, &answers))?
    }

    fn list_desktops(user: Identity, _client: ClientInfo) -> Result<Vec<Desktop>, String> {
        with_policy(|policy| policy.list_desktops(&WitHost, &user))
    }

    fn allocate(
        user: Identity,
        desktop_id: String,
        _client: ClientInfo,
    ) -> Result<Allocation, String> {
        with_policy(|policy| policy.allocate(&WitHost, &user, &desktop_id))
    }
}
