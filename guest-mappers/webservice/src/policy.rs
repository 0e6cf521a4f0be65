//! The decisions, as pure functions of the settings and the web service's answers, so they
//! can be tested on the host target without a network.

use crate::http::Response;
use crate::settings::Settings;
use crate::url::Url;
use crate::wire::{self, Host, MAX_TOKEN_BYTES};
use interstate_mapper_sdk::types::{
    Allocation, Attribute, AuthOutcome, Desktop, DesktopState, Identity, Launch, RefusalKind,
    Rejection, RejectionKind, SessionKind,
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
        401 => Ok(AuthOutcome::Rejected(Rejection {
            kind: RejectionKind::BadCredentials,
            reason: format!("login at {host} refused the credentials (HTTP 401)"),
        })),
        status => Err(format!("login at {host}: unexpected HTTP status {status}")),
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
        operations: Vec::new(),
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
