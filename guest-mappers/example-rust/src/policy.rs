//! The example policy, given the host's services through [`Host`], so that the same code runs
//! in the component (wired to the WIT imports by `lib.rs`) and under `cargo test`.

use interstate_mapper_sdk::host::Level;
use interstate_mapper_sdk::types::{
    Allocation, Attribute, AuthOutcome, Desktop, DesktopState, Dialog, DialogField, FieldAnswer,
    FieldKind, Identity, Launch, RefusalKind, Rejection, RejectionKind, SessionKind,
};
use serde_json::Value;

use crate::settings::{DesktopEntry, Settings, User};
use crate::totp::verify_totp;

/// Wrong codes allowed before the login is refused.
pub const MAX_CODE_ATTEMPTS: u64 = 3;

/// The prompt of the one-time-code dialog.
pub const CODE_PROMPT: &str = "Enter the 6-digit code from your authenticator app";

/// The dialog error after a wrong code.
pub const WRONG_CODE_TEXT: &str = "Wrong code, try again";

/// A well-formed ILS hash of a throw-away password, checked for unknown users so that a login
/// with an unknown name costs the same host time as one with a wrong password.
const DECOY_HASH: &str = "9f70564e7357585cee52b79fa889026721f9eef260bca0ac64a5a549039e919b";

/// The services the broker offers the policy.
pub trait Host {
    /// One line in the broker's log. Never pass a password or a code.
    fn log(&self, level: Level, message: &str);
    /// The host's constant-time password check.
    fn verify_password(&self, password: &str, hash: &str) -> bool;
    /// Unix time in seconds, from the wall clock.
    fn now_unix(&self) -> i64;
}

/// The example policy over validated settings.
#[derive(Debug, Clone)]
pub struct ExamplePolicy {
    settings: Settings,
}

impl ExamplePolicy {
    /// A policy over `settings`.
    pub fn new(settings: Settings) -> Self {
        Self { settings }
    }

    /// The logon domains to offer.
    pub fn domains(&self) -> Vec<String> {
        self.settings.domains.clone()
    }

    /// Checks a password login.
    pub fn authenticate(&self, host: &dyn Host, username: &str, password: &str) -> AuthOutcome {
        let Some(user) = self.settings.users.get(username) else {
            host.verify_password(password, DECOY_HASH);
            return decide(
                host,
                reject(RejectionKind::BadCredentials, "unknown user"),
                username,
            );
        };
        let outcome = if !host.verify_password(password, &user.password_hash) {
            reject(RejectionKind::BadCredentials, "wrong password")
        } else if user.disabled {
            reject(RejectionKind::AccessDenied, "account disabled")
        } else if self.settings.desktops_of(user).is_empty() {
            reject(
                RejectionKind::NoResources,
                "no desktops in the user's groups",
            )
        } else if user.mfa {
            challenge(&user.username, 0, "")
        } else {
            self.accept(user)
        };
        decide(host, outcome, username)
    }

    /// Checks the one-time code of a challenged login. An `Err` means `state` is not one this
    /// mapper wrote.
    pub fn continue_authentication(
        &self,
        host: &dyn Host,
        state: &str,
        answers: &[FieldAnswer],
    ) -> Result<AuthOutcome, String> {
        let (pending_user, attempts) = parse_state(state)?;
        let user = match self.settings.users.get(&pending_user) {
            Some(user) if !user.disabled && user.mfa => user,
            _ => {
                let outcome = reject(
                    RejectionKind::AccessDenied,
                    "user no longer allowed to log in",
                );
                return Ok(decide(host, outcome, &pending_user));
            }
        };
        let Some(key) = &user.totp_key else {
            let outcome = reject(
                RejectionKind::AccessDenied,
                "user no longer allowed to log in",
            );
            return Ok(decide(host, outcome, &pending_user));
        };
        let code = answers
            .iter()
            .find(|answer| answer.id == "code")
            .map_or("", |answer| answer.value.as_str());
        if verify_totp(key, code, host.now_unix()) {
            return Ok(decide(host, self.accept(user), &user.username));
        }
        let attempts = attempts + 1;
        if attempts >= MAX_CODE_ATTEMPTS {
            let outcome = reject(
                RejectionKind::BadCredentials,
                &format!("{attempts} wrong codes"),
            );
            return Ok(decide(host, outcome, &user.username));
        }
        host.log(
            Level::Info,
            &format!(
                "user {}: wrong code (attempt {attempts} of {MAX_CODE_ATTEMPTS})",
                quoted(&user.username)
            ),
        );
        Ok(challenge(&user.username, attempts, WRONG_CODE_TEXT))
    }

    /// The desktops of a user, looked up again in the settings: the identity's attributes are
    /// not trusted, because the settings may have changed since login.
    pub fn list_desktops(&self, host: &dyn Host, identity: &Identity) -> Vec<Desktop> {
        let desktops = self.desktops_of(&identity.username);
        host.log(
            Level::Info,
            &format!(
                "user {}: {} desktop(s)",
                quoted(&identity.username),
                desktops.len()
            ),
        );
        desktops
            .into_iter()
            .map(|d| Desktop {
                id: d.id.clone(),
                name: d.name.clone(),
                hostname: d.hostname.clone(),
                agent_port: d.agent_port,
                session_kind: SessionKind::Vdi,
                state: DesktopState::Unknown,
                operations: Vec::new(),
            })
            .collect()
    }

    /// Launches the user's desktop with that id, or refuses.
    pub fn allocate(&self, host: &dyn Host, identity: &Identity, desktop_id: &str) -> Allocation {
        let desktops = self.desktops_of(&identity.username);
        let Some(desktop) = desktops.into_iter().find(|d| d.id == desktop_id) else {
            host.log(
                Level::Info,
                &format!(
                    "user {}: refused desktop {}",
                    quoted(&identity.username),
                    quoted(desktop_id)
                ),
            );
            return Allocation::Refused((
                RefusalKind::UnknownDesktop,
                format!("{} is not one of the user's desktops", quoted(desktop_id)),
            ));
        };
        host.log(
            Level::Info,
            &format!(
                "user {}: launch on {}",
                quoted(&identity.username),
                desktop.hostname
            ),
        );
        Allocation::Launch(Launch {
            hostname: desktop.hostname.clone(),
            agent_port: desktop.agent_port,
            username: None,
            domain: None,
        })
    }

    fn desktops_of(&self, username: &str) -> Vec<&DesktopEntry> {
        match self.settings.users.get(username) {
            Some(user) if !user.disabled => self.settings.desktops_of(user),
            _ => Vec::new(),
        }
    }

    fn accept(&self, user: &User) -> AuthOutcome {
        AuthOutcome::Accepted(Identity {
            username: user.username.clone(),
            domain: self.settings.logon_domain.clone(),
            attributes: vec![Attribute {
                key: "groups".to_owned(),
                value: user.groups.join(","),
            }],
        })
    }
}

fn reject(kind: RejectionKind, reason: &str) -> AuthOutcome {
    AuthOutcome::Rejected(Rejection {
        kind,
        reason: reason.to_owned(),
    })
}

fn challenge(username: &str, attempts: u64, error_text: &str) -> AuthOutcome {
    let state = serde_json::json!({"user": username, "attempts": attempts}).to_string();
    AuthOutcome::Challenge(Dialog {
        prompt: CODE_PROMPT.to_owned(),
        error_text: error_text.to_owned(),
        fields: vec![DialogField {
            id: "code".to_owned(),
            label: "Code".to_owned(),
            kind: FieldKind::Secret,
        }],
        state,
    })
}

/// Logs one decision line and returns the outcome.
fn decide(host: &dyn Host, outcome: AuthOutcome, username: &str) -> AuthOutcome {
    let verdict = match &outcome {
        AuthOutcome::Accepted(_) => "accepted".to_owned(),
        AuthOutcome::Challenge(_) => "challenge".to_owned(),
        AuthOutcome::Rejected(rejection) => {
            let kind = match rejection.kind {
                RejectionKind::BadCredentials => "bad-credentials",
                RejectionKind::ExpiredPassword => "expired-password",
                RejectionKind::AccessDenied => "access-denied",
                RejectionKind::NoResources => "no-resources",
            };
            format!("rejected ({kind}: {})", rejection.reason)
        }
    };
    host.log(
        Level::Info,
        &format!("user {}: {verdict}", quoted(username)),
    );
    outcome
}

/// A string as a JSON literal, for unambiguous log lines.
fn quoted(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// The pending user and the wrong codes so far, from a dialog state this mapper wrote.
fn parse_state(state: &str) -> Result<(String, u64), String> {
    let parsed: Value =
        serde_json::from_str(state).map_err(|_| "challenge state is not valid JSON".to_owned())?;
    match (
        parsed.get("user").and_then(Value::as_str),
        parsed.get("attempts").and_then(Value::as_u64),
    ) {
        (Some(user), Some(attempts)) => Ok((user.to_owned(), attempts)),
        _ => Err("challenge state is malformed".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use std::cell::RefCell;

    use super::*;
    use crate::totp::{base32_decode, totp};

    const EXAMPLE: &str = include_str!("../example.settings.json");
    const NOW: i64 = 1_700_000_015;

    /// A host whose "hashes" are the example's, each standing for one known password.
    #[derive(Default)]
    struct TestHost {
        lines: RefCell<Vec<String>>,
        checks: RefCell<usize>,
    }

    impl Host for TestHost {
        fn log(&self, _level: Level, message: &str) {
            self.lines.borrow_mut().push(message.to_owned());
        }

        fn verify_password(&self, password: &str, hash: &str) -> bool {
            *self.checks.borrow_mut() += 1;
            let expected = match hash {
                "7f63efb0ab5a0592b47baebc069aaaee864e59d1461e3c85629c040160b26b96" => "alice-pw",
                "8ff41da5ef01bf7ddb6aef29749422ebad97fb879df33126aed850aeb22325e8" => "bob-pw",
                "684d234d891e694c6545dc91afdf411da0f8e938be04d4f562c39397d9194f55" => "carol-pw",
                _ => return false,
            };
            password == expected
        }

        fn now_unix(&self) -> i64 {
            NOW
        }
    }

    fn policy() -> ExamplePolicy {
        ExamplePolicy::new(Settings::parse(EXAMPLE).unwrap())
    }

    fn kind(outcome: &AuthOutcome) -> Option<RejectionKind> {
        match outcome {
            AuthOutcome::Rejected(rejection) => Some(rejection.kind),
            _ => None,
        }
    }

    fn dialog(outcome: AuthOutcome) -> Dialog {
        match outcome {
            AuthOutcome::Challenge(dialog) => dialog,
            other => panic!("expected a challenge, got {other:?}"),
        }
    }

    fn code(value: &str) -> Vec<FieldAnswer> {
        vec![FieldAnswer {
            id: "code".into(),
            value: value.into(),
        }]
    }

    #[test]
    fn bob_is_accepted_with_his_groups() {
        let host = TestHost::default();
        let AuthOutcome::Accepted(identity) = policy().authenticate(&host, "bob", "bob-pw") else {
            panic!("bob is accepted");
        };
        assert_eq!(identity.username, "bob");
        assert_eq!(identity.domain, "EXAMPLE");
        assert_eq!(identity.attributes[0].key, "groups");
        assert_eq!(identity.attributes[0].value, "artists,render");
        assert_eq!(host.lines.borrow().as_slice(), ["user \"bob\": accepted"]);
    }

    #[test]
    fn refusals_and_the_decoy_check() {
        let host = TestHost::default();
        let p = policy();
        for (user, password, expected) in [
            ("bob", "wrong", RejectionKind::BadCredentials),
            ("nobody", "bob-pw", RejectionKind::BadCredentials),
            ("carol", "carol-pw", RejectionKind::AccessDenied),
        ] {
            assert_eq!(
                kind(&p.authenticate(&host, user, password)),
                Some(expected),
                "{user}"
            );
        }
        assert_eq!(
            *host.checks.borrow(),
            3,
            "an unknown user costs one hash check"
        );
        assert!(
            host.lines
                .borrow()
                .iter()
                .all(|line| !line.contains("bob-pw") && !line.contains("carol-pw")),
            "no password in the log"
        );
    }

    #[test]
    fn a_user_without_desktops_has_no_resources() {
        let settings = Settings::parse(
            r#"{"users": [{"username": "dan", "password_hash": "8ff41da5ef01bf7ddb6aef29749422ebad97fb879df33126aed850aeb22325e8"}]}"#,
        )
        .unwrap();
        let outcome =
            ExamplePolicy::new(settings).authenticate(&TestHost::default(), "dan", "bob-pw");
        assert_eq!(kind(&outcome), Some(RejectionKind::NoResources));
    }

    #[test]
    fn alice_needs_a_totp_code_and_gets_three_tries() {
        let host = TestHost::default();
        let p = policy();
        let first = dialog(p.authenticate(&host, "alice", "alice-pw"));
        assert_eq!(first.prompt, CODE_PROMPT);
        assert_eq!(first.error_text, "");
        assert_eq!(first.fields.len(), 1);
        assert_eq!(first.fields[0].id, "code");
        assert!(matches!(first.fields[0].kind, FieldKind::Secret));
        assert_eq!(first.state, r#"{"user":"alice","attempts":0}"#);

        let second = dialog(
            p.continue_authentication(&host, &first.state, &code("000000"))
                .unwrap(),
        );
        assert_eq!(second.error_text, WRONG_CODE_TEXT);
        assert_eq!(second.state, r#"{"user":"alice","attempts":1}"#);

        let key = base32_decode("JBSWY3DPEHPK3PXP").unwrap();
        let right = totp(&key, NOW);
        let accepted = p
            .continue_authentication(&host, &second.state, &code(&right))
            .unwrap();
        assert!(matches!(accepted, AuthOutcome::Accepted(ref i) if i.username == "alice"));
        assert!(
            host.lines
                .borrow()
                .iter()
                .all(|line| !line.contains(&right)),
            "no code in the log"
        );

        let third = p
            .continue_authentication(&host, r#"{"user":"alice","attempts":2}"#, &code("000000"))
            .unwrap();
        assert_eq!(kind(&third), Some(RejectionKind::BadCredentials));
    }

    #[test]
    fn foreign_states_are_errors() {
        let host = TestHost::default();
        let p = policy();
        assert_eq!(
            p.continue_authentication(&host, "not json", &[])
                .unwrap_err(),
            "challenge state is not valid JSON"
        );
        for state in [
            r#"{"user":"alice"}"#,
            r#"{"user":1,"attempts":0}"#,
            r#"{"user":"alice","attempts":-1}"#,
            "[]",
        ] {
            assert_eq!(
                p.continue_authentication(&host, state, &[]).unwrap_err(),
                "challenge state is malformed",
                "{state}"
            );
        }
        let bob = p
            .continue_authentication(&host, r#"{"user":"bob","attempts":0}"#, &code("123456"))
            .unwrap();
        assert_eq!(
            kind(&bob),
            Some(RejectionKind::AccessDenied),
            "bob has no mfa"
        );
    }

    #[test]
    fn listing_and_allocation() {
        let host = TestHost::default();
        let p = policy();
        let bob = Identity {
            username: "bob".into(),
            domain: String::new(),
            attributes: Vec::new(),
        };
        let desktops = p.list_desktops(&host, &bob);
        let ids: Vec<&str> = desktops.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["ws-art-1-example-com", "render-7-example-com"]);
        assert_eq!(desktops[1].agent_port, Some(60443));
        assert!(matches!(desktops[0].session_kind, SessionKind::Vdi));

        let Allocation::Launch(launch) = p.allocate(&host, &bob, "render-7-example-com") else {
            panic!("bob may launch render-7");
        };
        assert_eq!(launch.hostname, "render-7.example.com");
        assert_eq!(launch.agent_port, Some(60443));
        assert!(launch.username.is_none() && launch.domain.is_none());

        let alice = Identity {
            username: "alice".into(),
            ..bob.clone()
        };
        assert!(matches!(
            p.allocate(&host, &alice, "render-7-example-com"),
            Allocation::Refused((RefusalKind::UnknownDesktop, _))
        ));
        let carol = Identity {
            username: "carol".into(),
            ..bob
        };
        assert!(
            p.list_desktops(&host, &carol).is_empty(),
            "disabled users list nothing"
        );
    }
}
