//! interstate_love_song's `SimpleMapper` as an Interstate mapper component.
//!
//! One user, one password hash, a fixed list of desktops. The settings schema is the one ILS
//! used (`username`, `password_hash`, `resources`, `domains`), so an ILS `settings.json` works
//! unchanged; see `README.md`.

mod settings;

use interstate_mapper_sdk::Mapper;
use interstate_mapper_sdk::host::{self, Level};
use interstate_mapper_sdk::types::{
    Allocation, AuthOutcome, ClientInfo, Desktop, DesktopState, Identity, Launch, PasswordLogin,
    RefusalKind, Rejection, RejectionKind, SessionKind, StepAnswer,
};
use sha2::{Digest, Sha256};

use crate::settings::{Resource, Settings};

interstate_mapper_sdk::export_mapper!(SimpleMapper);

/// The exported policy.
struct SimpleMapper;

/// A desktop id derived from what the desktop is, so that it survives reordering the list.
fn desktop_id(resource: &Resource) -> String {
    let mut hasher = Sha256::new();
    hasher.update(resource.name.as_bytes());
    hasher.update([0]);
    hasher.update(resource.hostname.as_bytes());
    let digest = hasher.finalize();
    digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn rejected(kind: RejectionKind, reason: &str) -> AuthOutcome {
    AuthOutcome::Rejected(Rejection {
        kind,
        reason: reason.to_owned(),
    })
}

impl Mapper for SimpleMapper {
    type Settings = Settings;

    fn configure(settings_json: &str) -> Result<Settings, String> {
        Settings::parse(settings_json)
    }

    fn domains(settings: &Settings) -> Vec<String> {
        settings.domains.clone()
    }

    fn authenticate(settings: &Settings, login: PasswordLogin) -> Result<AuthOutcome, String> {
        // The hash is checked even for an unknown user so that timing does not reveal
        // which user names exist.
        let password_ok = host::verify_password(&login.password, &settings.password_hash);
        if login.username != settings.username {
            return Ok(rejected(RejectionKind::BadCredentials, "unknown user"));
        }
        if !password_ok {
            return Ok(rejected(RejectionKind::BadCredentials, "wrong password"));
        }
        if settings.resources.is_empty() {
            return Ok(rejected(
                RejectionKind::NoResources,
                "the settings list no resources",
            ));
        }
        Ok(AuthOutcome::Accepted(Identity {
            username: login.username,
            domain: login.domain,
            attributes: Vec::new(),
        }))
    }

    fn continue_authentication(
        _settings: &Settings,
        _state: String,
        _answer: StepAnswer,
        _client: ClientInfo,
    ) -> Result<AuthOutcome, String> {
        host::log(
            Level::Warn,
            "continue-authentication called, but SimpleMapper never issues a challenge",
        );
        Ok(rejected(
            RejectionKind::BadCredentials,
            "SimpleMapper never issues a challenge",
        ))
    }

    fn list_desktops(
        settings: &Settings,
        user: Identity,
        _client: ClientInfo,
    ) -> Result<Vec<Desktop>, String> {
        if user.username != settings.username {
            return Ok(Vec::new());
        }
        Ok(settings
            .resources
            .iter()
            .map(|resource| Desktop {
                id: desktop_id(resource),
                name: resource.name.clone(),
                hostname: resource.hostname.clone(),
                agent_port: None,
                session_kind: SessionKind::Vdi,
                state: DesktopState::Unknown,
                operations: Vec::new(),
            })
            .collect())
    }

    fn allocate(
        settings: &Settings,
        user: Identity,
        desktop_id_wanted: String,
        _client: ClientInfo,
    ) -> Result<Allocation, String> {
        let found = settings
            .resources
            .iter()
            .find(|resource| desktop_id(resource) == desktop_id_wanted);
        match found {
            Some(resource) if user.username == settings.username => {
                Ok(Allocation::Launch(Launch {
                    hostname: resource.hostname.clone(),
                    agent_port: None,
                    username: None,
                    domain: None,
                }))
            }
            _ => Ok(Allocation::Refused((
                RefusalKind::UnknownDesktop,
                format!("no desktop with id {desktop_id_wanted:?} for this user"),
            ))),
        }
    }
}
