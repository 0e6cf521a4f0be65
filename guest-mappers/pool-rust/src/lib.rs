//! An Interstate mapper for a floating pool of machines: a user gets any free machine, keeps it
//! while they come back within the hold time, and every broker node agrees on who holds what
//! through the host's store (`compare-and-swap` on `machine:<hostname>`).
//!
//! # Layout
//! - [`settings`]: the users, the machines, `hold_minutes`, `max_per_user`.
//! - [`policy`]: the decisions, given the host's services through a trait.
//! - this file: the [`Mapper`] impl that wires the exports and imports to the policy.

pub mod policy;
pub mod settings;

use std::time::Duration;

use interstate_mapper_sdk::Mapper;
use interstate_mapper_sdk::host::{self, Level};
use interstate_mapper_sdk::store;
use interstate_mapper_sdk::types::{
    Allocation, AuthOutcome, ClientInfo, Desktop, Identity, PasswordLogin,
};
use policy::PoolPolicy;
use settings::Settings;

interstate_mapper_sdk::export_mapper!(PoolMapper);

/// The host imports, as the policy sees them.
struct WitHost;

impl policy::Host for WitHost {
    fn log(&self, level: Level, message: &str) {
        host::log(level, message);
    }

    fn verify_password(&self, password: &str, hash: &str) -> bool {
        host::verify_password(password, hash)
    }

    fn store_get(&self, key: &str) -> Result<Option<String>, String> {
        store::get_string(key).map_err(|err| err.to_string())
    }

    fn store_set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), String> {
        store::set_string(key, value, Some(ttl)).map_err(|err| store::describe(&err))
    }

    fn store_cas(
        &self,
        key: &str,
        expected: Option<&str>,
        new: &str,
        ttl: Duration,
    ) -> Result<bool, String> {
        store::compare_and_swap_string(key, expected, Some(new), Some(ttl))
            .map_err(|err| store::describe(&err))
    }
}

/// The exported policy.
#[derive(Debug)]
pub struct PoolMapper;

impl Mapper for PoolMapper {
    type Settings = PoolPolicy;

    fn configure(settings_json: &str) -> Result<PoolPolicy, String> {
        Settings::parse(settings_json).map(PoolPolicy::new)
    }

    fn domains(policy: &PoolPolicy) -> Vec<String> {
        policy.domains()
    }

    fn authenticate(policy: &PoolPolicy, login: PasswordLogin) -> Result<AuthOutcome, String> {
        Ok(policy.authenticate(&WitHost, &login.username, &login.password))
    }

    fn list_desktops(
        policy: &PoolPolicy,
        user: Identity,
        _client: ClientInfo,
    ) -> Result<Vec<Desktop>, String> {
        Ok(policy.list_desktops(&WitHost, &user))
    }

    fn allocate(
        policy: &PoolPolicy,
        user: Identity,
        desktop_id: String,
        _client: ClientInfo,
    ) -> Result<Allocation, String> {
        Ok(policy.allocate(&WitHost, &user, &desktop_id))
    }
}
