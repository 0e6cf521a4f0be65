//! The DirectoryMapper: logins checked against the broker's LDAP / Active Directory profiles
//! (the host's `directory` interface), desktops given by group membership (nested groups
//! included) or by a desktop attribute, and expired passwords changed in the directory. An
//! operator writes settings only; the broker embeds it as `"plugin": "DirectoryMapper"`.
//!
//! # Layout
//! - [`settings`]: `mapper.settings`, validated, and the desktop ids.
//! - [`policy`]: the decisions, given the directory through a trait (tested natively).
//! - this file: the [`Mapper`] impl that wires the exports and the `directory` imports to the
//!   policy.

pub mod policy;
pub mod settings;

use interstate_mapper_sdk::Mapper;
use interstate_mapper_sdk::directory::{self, Failure, Group, User};
use interstate_mapper_sdk::host::{self, Level};
use interstate_mapper_sdk::types::{
    Allocation, AuthOutcome, ClientInfo, Desktop, Identity, PasswordChange, PasswordChangeOutcome,
    PasswordLogin,
};
use policy::DirectoryPolicy;
use settings::Settings;

interstate_mapper_sdk::export_mapper!(DirectoryMapper);

/// The host imports, as the policy sees them.
struct WitHost;

impl policy::Host for WitHost {
    fn log(&self, level: Level, message: &str) {
        host::log(level, message);
    }

    fn authenticate(&self, profile: &str, username: &str, password: &str) -> Result<User, Failure> {
        directory::authenticate(profile, username, password)
    }

    fn lookup(
        &self,
        profile: &str,
        username: &str,
        attributes: &[String],
    ) -> Result<Option<User>, Failure> {
        directory::lookup(profile, username, attributes)
    }

    fn groups(&self, profile: &str, username: &str) -> Result<Vec<Group>, Failure> {
        directory::groups(profile, username)
    }

    fn change_password(
        &self,
        profile: &str,
        username: &str,
        old: &str,
        new: &str,
    ) -> Result<(), Failure> {
        directory::change_password(profile, username, old, new)
    }
}

/// The exported policy.
#[derive(Debug)]
pub struct DirectoryMapper;

impl Mapper for DirectoryMapper {
    type Settings = DirectoryPolicy;

    fn configure(settings_json: &str) -> Result<DirectoryPolicy, String> {
        Settings::parse(settings_json).map(DirectoryPolicy::new)
    }

    fn domains(policy: &DirectoryPolicy) -> Vec<String> {
        policy.settings().domains.clone()
    }

    fn authenticate(policy: &DirectoryPolicy, login: PasswordLogin) -> Result<AuthOutcome, String> {
        policy.authenticate(&WitHost, &login.username, &login.password, &login.domain)
    }

    fn list_desktops(
        policy: &DirectoryPolicy,
        user: Identity,
        _client: ClientInfo,
    ) -> Result<Vec<Desktop>, String> {
        policy.list_desktops(&WitHost, &user)
    }

    fn allocate(
        policy: &DirectoryPolicy,
        user: Identity,
        desktop_id: String,
        _client: ClientInfo,
    ) -> Result<Allocation, String> {
        policy.allocate(&WitHost, &user, &desktop_id)
    }

    fn change_password(
        policy: &DirectoryPolicy,
        change: PasswordChange,
    ) -> Result<PasswordChangeOutcome, String> {
        policy.change_password(&WitHost, &change)
    }
}
