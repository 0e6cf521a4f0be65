//! The decisions, as pure functions of the settings and the web service's answers, so they
//! can be tested on the host target without a network.

use crate::http::Response;
use crate::settings::Settings;
use crate::url::Url;
use crate::wire::{self, Host, MAX_TOKEN_BYTES};
use interstate_mapper_sdk::types::{
    Allocation, Attribute, AuthOutcome, Desktop, DesktopState, Identity, Launch, OperationOutcome,
    PasswordRejection, PasswordRejectionKind, RefusalKind, Rejection, RejectionKind, SessionKind,
};

/// The identity attribute that carries the session cookie's value between calls.
pub const TOKEN_ATTRIBUTE: &str = "token";

/// Turns the login endpoint's answer into an outcome for `username`.
pub fn login_outcome(
    settings: &Settings,
    response: &Response,
    username: &str,
    domain: &str,
) -> Result<AuthOutcome, String> {
    let host = settings.cookie_auth_url.host();
    match response.status {
        200 => {
            let token = wire::find_cookie(&response.set_cookies, &settings.cookie_name)
                .ok_or_else(|| {
                    format!(
                        "login at {host} answered 200 without a {:?} cookie",
                        settings.cookie_name
                    )
                })?;
            if token.len() > MAX_TOKEN_BYTES {
                return Err(format!(
                    "login at {host}: the {:?} cookie is {} bytes; at most {MAX_TOKEN_BYTES} fit in an identity attribute",
                    settings.cookie_name,
                    token.len()
                ));
            }
            Ok(AuthOutcome::Accepted(Identity {
                username: username.to_owned(),
                domain: domain.to_owned(),
                attributes: vec![Attribute {
                    key: TOKEN_ATTRIBUTE.to_owned(),
                    value: token,
                }],
            }))
        }
        401 if says_expired(&response.body) => Ok(AuthOutcome::Rejected(Rejection {
            kind: RejectionKind::ExpiredPassword,
            reason: format!("login at {host}: the password has expired (HTTP 401)"),
        })),
        401 => Ok(AuthOutcome::Rejected(Rejection {
            kind: RejectionKind::BadCredentials,
            reason: format!("login at {host} refused the credentials (HTTP 401)"),
        })),
        status => Err(format!("login at {host}: unexpected HTTP status {status}")),
    }
}

/// True for a 401 body `{"result": "expired-password"}`: the password is right but must be
/// changed. Any other 401 body (ILS services send whatever they like) is a wrong password.
fn says_expired(body: &[u8]) -> bool {
    matches!(wire::parse_result(body), Ok((result, _)) if result == "expired-password")
}

/// The service's verdict on `POST {base_url}/change-password`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeVerdict {
    /// Changed: the mapper logs in again with the new password.
    Changed,
    /// Not changed.
    Rejected(PasswordRejection),
    /// The service has no such endpoint (404).
    Unsupported,
}

/// Turns the change-password endpoint's answer into a verdict. A service that fails (a status
/// other than 2xx or 404, an answer that is not the documented JSON) is a
/// `directory-error`: the user stays on the password-change step.
pub fn change_verdict(settings: &Settings, response: &Response) -> ChangeVerdict {
    let host = settings.base_url.host();
    let rejected =
        |kind, reason: String| ChangeVerdict::Rejected(PasswordRejection { kind, reason });
    if response.status == 404 {
        return ChangeVerdict::Unsupported;
    }
    if !(200..300).contains(&response.status) {
        return rejected(
            PasswordRejectionKind::DirectoryError,
            format!(
                "change-password at {host}: unexpected HTTP status {}",
                response.status
            ),
        );
    }
    let (result, detail) = match wire::parse_result(&response.body) {
        Ok(answer) => answer,
        Err(e) => {
            return rejected(
                PasswordRejectionKind::DirectoryError,
                format!("change-password at {host}: {e}"),
            );
        }
    };
    let kind = match result.as_str() {
        "changed" => return ChangeVerdict::Changed,
        "wrong-password" => PasswordRejectionKind::WrongPassword,
        "weak-password" => PasswordRejectionKind::WeakPassword,
        "too-many-attempts" => PasswordRejectionKind::TooManyAttempts,
        "directory-error" => PasswordRejectionKind::DirectoryError,
        other => {
            return rejected(
                PasswordRejectionKind::DirectoryError,
                format!("change-password at {host}: unknown result {other:?}"),
            );
        }
    };
    rejected(
        kind,
        format!("change-password at {host}: {result}{}", suffix(&detail)),
    )
}

/// Turns the operate endpoint's answer into an outcome. A 404 is `unsupported`; a service that
/// fails is `refused` (never an `err`: the user gets a clean "could not" and the session goes
/// on).
pub fn operation_outcome(settings: &Settings, response: &Response) -> OperationOutcome {
    let host = settings.base_url.host();
    if response.status == 404 {
        return OperationOutcome::Unsupported;
    }
    if !(200..300).contains(&response.status) {
        return OperationOutcome::Refused(format!(
            "operate at {host}: unexpected HTTP status {}",
            response.status
        ));
    }
    match wire::parse_result(&response.body) {
        Ok((result, detail)) => match result.as_str() {
            "done" => OperationOutcome::Done(detail),
            "try-again" => OperationOutcome::TryAgain(detail),
            "refused" => OperationOutcome::Refused(detail),
            "unsupported" => OperationOutcome::Unsupported,
            other => {
                OperationOutcome::Refused(format!("operate at {host}: unknown result {other:?}"))
            }
        },
        Err(e) => OperationOutcome::Refused(format!("operate at {host}: {e}")),
    }
}

fn suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

/// The session token kept in an identity by [`login_outcome`].
pub fn token_of(user: &Identity) -> Result<&str, String> {
    user.attributes
        .iter()
        .find(|a| a.key == TOKEN_ATTRIBUTE)
        .map(|a| a.value.as_str())
        .ok_or_else(|| {
            format!(
                "the identity of {:?} has no {TOKEN_ATTRIBUTE:?} attribute: it was not accepted by this mapper",
                user.username
            )
        })
}

/// The listing URL and the `Cookie` header value for `user`.
pub fn listing_request(settings: &Settings, user: &Identity) -> Result<(Url, String), String> {
    let token = token_of(user)?;
    Ok((
        settings.base_url.user_listing(&user.username),
        format!("{}={token}", settings.cookie_name),
    ))
}

/// Turns the listing endpoint's answer into the user's hosts.
pub fn listing_outcome(settings: &Settings, response: &Response) -> Result<Vec<Host>, String> {
    let host = settings.base_url.host();
    match response.status {
        200 => wire::parse_hosts(&response.body).map_err(|e| format!("listing at {host}: {e}")),
        401 => Err(format!("session token refused (HTTP 401 from {host})")),
        status => Err(format!(
            "listing at {host}: unexpected HTTP status {status}"
        )),
    }
}

/// A host from the listing as a contract desktop.
pub fn desktop(host: Host) -> Desktop {
    Desktop {
        id: host.id,
        name: host.name,
        hostname: host.hostname,
        agent_port: None,
        session_kind: SessionKind::Vdi,
        state: DesktopState::Unknown,
        operations: host.operations,
    }
}

/// Launches on the host with `desktop_id`, or refuses when the user has none such.
pub fn allocation(hosts: Vec<Host>, desktop_id: &str, username: &str) -> Allocation {
    match hosts.into_iter().find(|h| h.id == desktop_id) {
        Some(host) => Allocation::Launch(Launch {
            hostname: host.hostname,
            agent_port: None,
            username: None,
            domain: None,
        }),
        None => Allocation::Refused((
            RefusalKind::UnknownDesktop,
            format!("{username:?} has no desktop with id {desktop_id:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::parse(
            r#"{"base_url":"http://127.0.0.1:8080/api","cookie_auth_url":"http://127.0.0.1:8080/login","cookie_name":"session"}"#,
        )
        .unwrap()
    }

    fn response(status: u16, set_cookies: &[&str], body: &str) -> Response {
        Response {
            status,
            set_cookies: set_cookies.iter().map(|c| c.as_bytes().to_vec()).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_200_with_the_cookie_accepts_and_keeps_the_token() {
        let outcome = login_outcome(
            &settings(),
            &response(200, &["lang=en", "session=tok-42; Path=/; HttpOnly"], ""),
            "alice",
            "EXAMPLE",
        )
        .unwrap();
        let AuthOutcome::Accepted(identity) = outcome else {
            panic!("not accepted: {outcome:?}");
        };
        assert_eq!(identity.username, "alice");
        assert_eq!(identity.domain, "EXAMPLE");
        assert_eq!(token_of(&identity).unwrap(), "tok-42");
        let (url, cookie) = listing_request(&settings(), &identity).unwrap();
        assert_eq!(url.to_string(), "http://127.0.0.1:8080/api/user=alice");
        assert_eq!(cookie, "session=tok-42");
    }

    #[test]
    fn login_failures_are_told_apart() {
        let s = settings();
        let rejected = login_outcome(&s, &response(401, &[], ""), "a", "").unwrap();
        assert!(matches!(
            rejected,
            AuthOutcome::Rejected(Rejection {
                kind: RejectionKind::BadCredentials,
                ..
            })
        ));
        let no_cookie = login_outcome(&s, &response(200, &["other=1"], ""), "a", "").unwrap_err();
        assert_eq!(
            no_cookie,
            "login at 127.0.0.1 answered 200 without a \"session\" cookie"
        );
        let server_error = login_outcome(&s, &response(503, &[], ""), "a", "").unwrap_err();
        assert_eq!(
            server_error,
            "login at 127.0.0.1: unexpected HTTP status 503"
        );
        let huge = format!("session={}", "x".repeat(MAX_TOKEN_BYTES + 1));
        assert!(login_outcome(&s, &response(200, &[&huge], ""), "a", "").is_err());
    }

    #[test]
    fn listing_maps_status_and_body() {
        let s = settings();
        let hosts = listing_outcome(
            &s,
            &response(
                200,
                &[],
                r#"{"hosts":[{"name":"WS 1","hostname":"ws-1.example.com"}]}"#,
            ),
        )
        .unwrap();
        let d = desktop(hosts[0].clone());
        assert_eq!(d.id, "ws-1.example.com");
        assert_eq!(d.name, "WS 1");
        assert!(matches!(d.session_kind, SessionKind::Vdi));
        assert!(matches!(d.state, DesktopState::Unknown));
        assert_eq!(
            listing_outcome(&s, &response(401, &[], "")).unwrap_err(),
            "session token refused (HTTP 401 from 127.0.0.1)"
        );
        assert!(
            listing_outcome(&s, &response(200, &[], "not json"))
                .unwrap_err()
                .starts_with("listing at 127.0.0.1: the host list is not valid JSON")
        );
        assert!(listing_outcome(&s, &response(500, &[], "")).is_err());
    }

    #[test]
    fn a_401_that_says_expired_asks_for_a_change() {
        let s = settings();
        let expired = login_outcome(
            &s,
            &response(401, &[], r#"{"result":"expired-password"}"#),
            "a",
            "",
        )
        .unwrap();
        assert!(matches!(
            expired,
            AuthOutcome::Rejected(Rejection {
                kind: RejectionKind::ExpiredPassword,
                ..
            })
        ));
        let other = login_outcome(&s, &response(401, &[], r#"{"result":"nope"}"#), "a", "");
        assert!(matches!(
            other,
            Ok(AuthOutcome::Rejected(Rejection {
                kind: RejectionKind::BadCredentials,
                ..
            }))
        ));
    }

    #[test]
    fn change_verdicts() {
        let s = settings();
        let verdict = |status, body| change_verdict(&s, &response(status, &[], body));
        assert_eq!(
            verdict(200, r#"{"result":"changed"}"#),
            ChangeVerdict::Changed
        );
        assert_eq!(verdict(404, ""), ChangeVerdict::Unsupported);
        for (body, kind) in [
            (
                r#"{"result":"wrong-password"}"#,
                PasswordRejectionKind::WrongPassword,
            ),
            (
                r#"{"result":"weak-password","detail":"too short"}"#,
                PasswordRejectionKind::WeakPassword,
            ),
            (
                r#"{"result":"too-many-attempts"}"#,
                PasswordRejectionKind::TooManyAttempts,
            ),
            (
                r#"{"result":"directory-error"}"#,
                PasswordRejectionKind::DirectoryError,
            ),
            (
                r#"{"result":"maybe"}"#,
                PasswordRejectionKind::DirectoryError,
            ),
            ("not json", PasswordRejectionKind::DirectoryError),
        ] {
            match verdict(200, body) {
                ChangeVerdict::Rejected(rejection) => assert_eq!(rejection.kind, kind, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        let ChangeVerdict::Rejected(weak) =
            verdict(200, r#"{"result":"weak-password","detail":"too short"}"#)
        else {
            panic!("weak");
        };
        assert_eq!(
            weak.reason,
            "change-password at 127.0.0.1: weak-password (too short)"
        );
        let ChangeVerdict::Rejected(failed) = verdict(502, "") else {
            panic!("a 502 is a directory error");
        };
        assert_eq!(failed.kind, PasswordRejectionKind::DirectoryError);
        assert_eq!(
            failed.reason,
            "change-password at 127.0.0.1: unexpected HTTP status 502"
        );
    }

    #[test]
    fn operation_outcomes() {
        let s = settings();
        let outcome = |status, body| operation_outcome(&s, &response(status, &[], body));
        assert_eq!(
            outcome(200, r#"{"result":"done","detail":"restarting"}"#),
            OperationOutcome::Done("restarting".into())
        );
        assert_eq!(
            outcome(200, r#"{"result":"try-again","detail":"booting"}"#),
            OperationOutcome::TryAgain("booting".into())
        );
        assert_eq!(
            outcome(200, r#"{"result":"refused","detail":"in use"}"#),
            OperationOutcome::Refused("in use".into())
        );
        assert_eq!(
            outcome(200, r#"{"result":"unsupported"}"#),
            OperationOutcome::Unsupported
        );
        assert_eq!(outcome(404, ""), OperationOutcome::Unsupported);
        assert_eq!(
            outcome(500, ""),
            OperationOutcome::Refused("operate at 127.0.0.1: unexpected HTTP status 500".into())
        );
        assert!(matches!(
            outcome(200, "<html>"),
            OperationOutcome::Refused(_)
        ));
        assert!(matches!(
            outcome(200, r#"{"result":"later"}"#),
            OperationOutcome::Refused(_)
        ));
    }

    #[test]
    fn allocation_launches_only_a_listed_desktop() {
        let hosts =
            wire::parse_hosts(br#"{"hosts":[{"name":"WS","hostname":"ws.example.com"}]}"#).unwrap();
        match allocation(hosts.clone(), "ws.example.com", "bob") {
            Allocation::Launch(launch) => {
                assert_eq!(launch.hostname, "ws.example.com");
                assert_eq!(launch.agent_port, None);
                assert_eq!(launch.username, None);
                assert_eq!(launch.domain, None);
            }
            other => panic!("not launched: {other:?}"),
        }
        assert!(matches!(
            allocation(hosts, "0", "bob"),
            Allocation::Refused((RefusalKind::UnknownDesktop, _))
        ));
    }

    #[test]
    fn an_identity_without_a_token_is_an_error() {
        let user = Identity {
            username: "eve".into(),
            domain: String::new(),
            attributes: Vec::new(),
        };
        assert!(
            listing_request(&settings(), &user)
                .unwrap_err()
                .contains("no \"token\" attribute")
        );
    }
}
