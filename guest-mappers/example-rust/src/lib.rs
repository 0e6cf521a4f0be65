//! The example Interstate mapper in Rust: users and groups from the settings, passwords
//! checked by the host's `verify-password` (or a changed password's hash in the host's store),
//! an optional disclaimer, a TOTP code checked by the host's `verify-totp` for users with
//! `"mfa": true`, power operations through an optional power API, and password changes.
//!
//! The policy, the settings schema, the desktop ids and every message are those of the
//! JavaScript, Python and Go examples (`../EXAMPLE-POLICY.md` is the spec); the
//! e2e conformance test plays one scenario against all four.
//!
//! # Layout
//! - [`settings`]: the operator's settings, validated, and the desktop ids.
//! - [`policy`]: the decisions, given the host's services through a trait.
//! - [`power`]: the power API calls behind `operate`.
//! - this file: the [`Mapper`] impl that wires the exports and imports to the policy; the
//!   bindings and the export come from `interstate-mapper-sdk`.

pub mod policy;
pub mod power;
pub mod settings;

use std::time::Duration;

use interstate_mapper_sdk::Mapper;
use interstate_mapper_sdk::host::{self, Level, TotpVerdict};
use interstate_mapper_sdk::http::{Method, Request};
use interstate_mapper_sdk::store;
use interstate_mapper_sdk::types::{
    Allocation, AuthOutcome, ClientInfo, Desktop, Identity, Operation, OperationOutcome,
    PasswordChange, PasswordChangeOutcome, PasswordLogin, StepAnswer,
};
use policy::{ExamplePolicy, HttpAnswer, HttpMethod};
use settings::Settings;

interstate_mapper_sdk::export_mapper!(ExampleMapper);

/// How long one power API request may take: under the host's default 5 s call deadline.
const POWER_API_TIMEOUT: Duration = Duration::from_secs(4);

/// The host imports, as the policy sees them.
struct WitHost;

impl policy::Host for WitHost {
    fn log(&self, level: Level, message: &str) {
        host::log(level, message);
    }

    fn verify_password(&self, password: &str, hash: &str) -> bool {
        host::verify_password(password, hash)
    }

    fn hash_password(&self, password: &str) -> String {
        host::hash_password(password)
    }

    fn verify_totp(&self, secret: &str, code: &str) -> TotpVerdict {
        host::verify_totp(secret, code)
    }

    fn store_get(&self, key: &str) -> Result<Option<String>, String> {
        store::get_string(key).map_err(|err| err.to_string())
    }

    fn store_set(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<(), String> {
        store::set_string(key, value, ttl).map_err(|err| store::describe(&err))
    }

    fn http(&self, method: HttpMethod, url: &str) -> Result<HttpAnswer, String> {
        let method = match method {
            HttpMethod::Get => Method::Get,
            HttpMethod::Post => Method::Post,
        };
        let response = Request::new(method, url)
            .and_then(|request| {
                request
                    .header("accept", "application/json")
                    .timeout(POWER_API_TIMEOUT)
                    .send()
            })
            .map_err(|err| err.to_string())?;
        Ok(HttpAnswer {
            status: response.status,
            body: response.body,
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
        policy.authenticate(&WitHost, &login.username, &login.password)
    }

    fn continue_authentication(
        policy: &ExamplePolicy,
        state: String,
        answer: StepAnswer,
        _client: ClientInfo,
    ) -> Result<AuthOutcome, String> {
        policy.continue_authentication(&WitHost, &state, &answer)
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

    fn operate(
        policy: &ExamplePolicy,
        user: Identity,
        desktop_id: String,
        op: Operation,
        _client: ClientInfo,
    ) -> Result<OperationOutcome, String> {
        Ok(policy.operate(&WitHost, &user, &desktop_id, op))
    }

    fn change_password(
        policy: &ExamplePolicy,
        change: PasswordChange,
    ) -> Result<PasswordChangeOutcome, String> {
        Ok(policy.change_password(&WitHost, &change))
    }
}
