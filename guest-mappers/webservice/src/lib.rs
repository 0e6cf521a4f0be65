//! Interstate mapper: ILS's `SimpleWebserviceMapper`, working.
//!
//! A user logs in by HTTP Basic against the web service's `cookie_auth_url`, which answers
//! with a session cookie. The cookie's value rides along in the identity (attribute `token`),
//! and the user's desktops come from `GET {base_url}/user=<username>` with that cookie.
//! Outgoing HTTP goes through `wasi:http/outgoing-handler`; the broker allows it only to the
//! hosts in `mapper.allowed_hosts`.
//!
//! # Layout
//! - [`settings`]: the operator's settings, validated.
//! - [`url`]: splitting URLs for `wasi:http`, building the listing URL.
//! - [`wire`]: Basic credentials, the session cookie, the host list, desktop ids.
//! - [`policy`]: the decisions as pure functions of settings and responses.
//! - [`http`]: the one blocking GET over `wasi:http`.
//!
//! The bindings of `wit/mapper.wit` and the export come from `interstate-mapper-sdk`.

pub mod http;
pub mod policy;
pub mod settings;
pub mod url;
pub mod wire;

use interstate_mapper_sdk::Mapper;
use interstate_mapper_sdk::host::{Level, log};
use interstate_mapper_sdk::types::{
    Allocation, AuthOutcome, ClientInfo, Desktop, FieldAnswer, Identity, PasswordLogin, Rejection,
    RejectionKind,
};
use settings::Settings;

interstate_mapper_sdk::export_mapper!(WebserviceMapper);

/// The exported mapper.
#[derive(Debug)]
pub struct WebserviceMapper;

impl Mapper for WebserviceMapper {
    type Settings = Settings;

    fn configure(settings_json: &str) -> Result<Settings, String> {
        Settings::parse(settings_json)
    }

    fn domains(settings: &Settings) -> Vec<String> {
        settings.domains.clone()
    }

    fn authenticate(settings: &Settings, login: PasswordLogin) -> Result<AuthOutcome, String> {
        let basic_user = format!("{}{}", login.username, settings.auth_username_suffix);
        let authorization = match wire::basic_authorization(&basic_user, &login.password) {
            Ok(value) => value,
            Err(reason) => {
                log(
                    Level::Info,
                    &format!("rejected {:?}: {reason}", login.username),
                );
                return Ok(AuthOutcome::Rejected(Rejection {
                    kind: RejectionKind::BadCredentials,
                    reason,
                }));
            }
        };
        let response = http::get(
            &settings.cookie_auth_url,
            &[("authorization", &authorization)],
            settings.timeout_ms,
        )?;
        let outcome = policy::login_outcome(settings, &response, &login.username, &login.domain)?;
        let verdict = match &outcome {
            AuthOutcome::Accepted(_) => "accepted",
            AuthOutcome::Rejected(_) => "rejected (bad credentials)",
            AuthOutcome::Challenge(_) => "challenged",
        };
        log(
            Level::Info,
            &format!(
                "login of {:?} {verdict} by {}",
                login.username,
                settings.cookie_auth_url.host()
            ),
        );
        Ok(outcome)
    }

    fn continue_authentication(
        _settings: &Settings,
        _state: String,
        _answers: Vec<FieldAnswer>,
        _client: ClientInfo,
    ) -> Result<AuthOutcome, String> {
        Err("this mapper never issues a challenge, so there is nothing to continue".to_owned())
    }

    fn list_desktops(
        settings: &Settings,
        user: Identity,
        _client: ClientInfo,
    ) -> Result<Vec<Desktop>, String> {
        let hosts = fetch_hosts(settings, &user)?;
        log(
            Level::Info,
            &format!("listed {} desktop(s) for {:?}", hosts.len(), user.username),
        );
        Ok(hosts.into_iter().map(policy::desktop).collect())
    }

    fn allocate(
        settings: &Settings,
        user: Identity,
        desktop_id: String,
        _client: ClientInfo,
    ) -> Result<Allocation, String> {
        let hosts = fetch_hosts(settings, &user)?;
        let allocation = policy::allocation(hosts, &desktop_id, &user.username);
        let verdict = match &allocation {
            Allocation::Launch(launch) => format!("launch on {}", launch.hostname),
            Allocation::Refused((_, reason)) => format!("refused: {reason}"),
            Allocation::Direct(_) | Allocation::TryAgain(_) => "other".to_owned(),
        };
        log(
            Level::Info,
            &format!("allocate {desktop_id:?} for {:?}: {verdict}", user.username),
        );
        Ok(allocation)
    }
}

fn fetch_hosts(settings: &Settings, user: &Identity) -> Result<Vec<wire::Host>, String> {
    let (url, cookie) = policy::listing_request(settings, user)?;
    let response = http::get(
        &url,
        &[("cookie", &cookie), ("accept", "application/json")],
        settings.timeout_ms,
    )?;
    policy::listing_outcome(settings, &response)
}
