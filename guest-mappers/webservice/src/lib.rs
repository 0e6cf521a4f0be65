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
    Allocation, AuthOutcome, ClientInfo, Desktop, Identity, Operation, OperationOutcome,
    PasswordChange, PasswordChangeOutcome, PasswordLogin, PasswordRejection, PasswordRejectionKind,
    Rejection, RejectionKind, StepAnswer,
};
use policy::ChangeVerdict;
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
        log_in(settings, &login.username, &login.password, &login.domain)
    }

    fn continue_authentication(
        _settings: &Settings,
        _state: String,
        _answer: StepAnswer,
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

    fn operate(
        settings: &Settings,
        user: Identity,
        desktop_id: String,
        op: Operation,
        _client: ClientInfo,
    ) -> Result<OperationOutcome, String> {
        let hosts = fetch_hosts(settings, &user)?;
        let operation = wire::operation_name(op);
        let Some(host) = hosts.iter().find(|h| h.id == desktop_id) else {
            log(
                Level::Info,
                &format!(
                    "{operation} {desktop_id:?} for {:?}: unknown desktop",
                    user.username
                ),
            );
            return Ok(OperationOutcome::Refused(format!(
                "{:?} has no desktop with id {desktop_id:?}",
                user.username
            )));
        };
        let (_, cookie) = policy::listing_request(settings, &user)?;
        let url = settings.base_url.endpoint("operate");
        let body = wire::operate_body(&user.username, host, op);
        let outcome =
            match http::post_json(&url, &[("cookie", &cookie)], &body, settings.timeout_ms) {
                Ok(response) => policy::operation_outcome(settings, &response),
                Err(e) => OperationOutcome::Refused(e),
            };
        let verdict = match &outcome {
            OperationOutcome::Done(detail) => format!("done ({detail})"),
            OperationOutcome::TryAgain(detail) => format!("try again ({detail})"),
            OperationOutcome::Refused(reason) => format!("refused: {reason}"),
            OperationOutcome::Unsupported => "unsupported".to_owned(),
        };
        log(
            Level::Info,
            &format!(
                "{operation} {desktop_id:?} for {:?}: {verdict}",
                user.username
            ),
        );
        Ok(outcome)
    }

    fn change_password(
        settings: &Settings,
        change: PasswordChange,
    ) -> Result<PasswordChangeOutcome, String> {
        let url = settings.base_url.endpoint("change-password");
        let body = wire::change_password_body(
            &change.username,
            &change.domain,
            &change.old_password,
            &change.new_password,
        );
        let verdict = match http::post_json(&url, &[], &body, settings.timeout_ms) {
            Ok(response) => policy::change_verdict(settings, &response),
            Err(e) => ChangeVerdict::Rejected(PasswordRejection {
                kind: PasswordRejectionKind::DirectoryError,
                reason: e,
            }),
        };
        let outcome = match verdict {
            ChangeVerdict::Unsupported => PasswordChangeOutcome::Unsupported,
            ChangeVerdict::Rejected(rejection) => PasswordChangeOutcome::Rejected(rejection),
            // The new password logs the user in, as a login would: the identity needs the
            // service's session cookie. A login that fails now asks for the password again.
            ChangeVerdict::Changed => PasswordChangeOutcome::Changed(
                log_in(
                    settings,
                    &change.username,
                    &change.new_password,
                    &change.domain,
                )
                .unwrap_or_else(|reason| {
                    AuthOutcome::Rejected(Rejection {
                        kind: RejectionKind::BadCredentials,
                        reason,
                    })
                }),
            ),
        };
        let verdict = match &outcome {
            PasswordChangeOutcome::Changed(_) => "changed".to_owned(),
            PasswordChangeOutcome::Rejected(rejection) => {
                format!("rejected: {}", rejection.reason)
            }
            PasswordChangeOutcome::Unsupported => "unsupported by the service".to_owned(),
        };
        log(
            Level::Info,
            &format!("password change of {:?}: {verdict}", change.username),
        );
        Ok(outcome)
    }
}

/// A login by HTTP Basic against `cookie_auth_url`, logged in one line.
fn log_in(
    settings: &Settings,
    username: &str,
    password: &str,
    domain: &str,
) -> Result<AuthOutcome, String> {
    let basic_user = format!("{username}{}", settings.auth_username_suffix);
    let authorization = match wire::basic_authorization(&basic_user, password) {
        Ok(value) => value,
        Err(reason) => {
            log(Level::Info, &format!("rejected {username:?}: {reason}"));
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
    let outcome = policy::login_outcome(settings, &response, username, domain)?;
    let verdict = match &outcome {
        AuthOutcome::Accepted(_) => "accepted",
        AuthOutcome::Rejected(Rejection {
            kind: RejectionKind::ExpiredPassword,
            ..
        }) => "rejected (expired password)",
        AuthOutcome::Rejected(_) => "rejected (bad credentials)",
        AuthOutcome::Challenge(_) | AuthOutcome::Disclaimer(_) => "challenged",
    };
    log(
        Level::Info,
        &format!(
            "login of {username:?} {verdict} by {}",
            settings.cookie_auth_url.host()
        ),
    );
    Ok(outcome)
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
