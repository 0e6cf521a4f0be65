//! The example policy against a scripted host: hashes, TOTP verdicts, a store and a power API.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use std::cell::RefCell;
use std::collections::HashMap;

use interstate_mapper_sdk::types::{ClientInfo, DialogAnswer, FieldAnswer};

use super::*;

const EXAMPLE: &str = include_str!("../../example.settings.json");
const ALICE_SECRET: &str = "JBSWY3DPEHPK3PXP";
const DISCLAIMER: &str =
    "This workstation is for authorised studio work only. Sessions may be monitored.";
/// The code the scripted host accepts for alice, and one it calls replayed.
const RIGHT_CODE: &str = "287082";
const SPENT_CODE: &str = "111111";
const POWER: &str = "http://power.test:8080/v1";

/// A host whose "hashes" are the example's (each standing for one known password) or
/// `hashed:<password>` from its own `hash_password`.
#[derive(Default)]
struct TestHost {
    lines: RefCell<Vec<(Level, String)>>,
    checks: RefCell<usize>,
    store: RefCell<HashMap<String, (String, Option<Duration>)>>,
    store_down: bool,
    /// The power API's answers by `METHOD url`; a missing one is a transport error.
    http: HashMap<String, HttpAnswer>,
    requests: RefCell<Vec<String>>,
}

impl Host for TestHost {
    fn log(&self, level: Level, message: &str) {
        self.lines.borrow_mut().push((level, message.to_owned()));
    }

    fn verify_password(&self, password: &str, hash: &str) -> bool {
        *self.checks.borrow_mut() += 1;
        if let Some(hashed) = hash.strip_prefix("hashed:") {
            return password == hashed;
        }
        let expected = match hash {
            "7f63efb0ab5a0592b47baebc069aaaee864e59d1461e3c85629c040160b26b96" => "alice-pw",
            "8ff41da5ef01bf7ddb6aef29749422ebad97fb879df33126aed850aeb22325e8" => "bob-pw",
            "684d234d891e694c6545dc91afdf411da0f8e938be04d4f562c39397d9194f55" => "carol-pw",
            "f58c6dbf8272e59293875da03eadf595450e34e83d7616cb5db4e3c745b0e54d" => "dave-pw",
            _ => return false,
        };
        password == expected
    }

    fn hash_password(&self, password: &str) -> String {
        format!("hashed:{password}")
    }

    fn verify_totp(&self, secret: &str, code: &str) -> TotpVerdict {
        assert_eq!(secret, ALICE_SECRET, "the secret as the settings write it");
        match code {
            RIGHT_CODE => TotpVerdict::Accepted,
            SPENT_CODE => TotpVerdict::Replayed,
            _ => TotpVerdict::Rejected,
        }
    }

    fn store_get(&self, key: &str) -> Result<Option<String>, String> {
        if self.store_down {
            return Err("unavailable (redis down)".to_owned());
        }
        Ok(self.store.borrow().get(key).map(|(value, _)| value.clone()))
    }

    fn store_set(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<(), String> {
        if self.store_down {
            return Err("unavailable (redis down)".to_owned());
        }
        self.store
            .borrow_mut()
            .insert(key.to_owned(), (value.to_owned(), ttl));
        Ok(())
    }

    fn http(&self, method: HttpMethod, url: &str) -> Result<HttpAnswer, String> {
        let request = format!(
            "{} {url}",
            if method == HttpMethod::Get {
                "GET"
            } else {
                "POST"
            }
        );
        self.requests.borrow_mut().push(request.clone());
        self.http
            .get(&request)
            .cloned()
            .ok_or_else(|| "request to power.test: connection refused".to_owned())
    }
}

impl TestHost {
    fn answering(answers: &[(&str, u16, &str)]) -> Self {
        Self {
            http: answers
                .iter()
                .map(|(request, status, body)| {
                    (
                        (*request).to_owned(),
                        HttpAnswer {
                            status: *status,
                            body: body.as_bytes().to_vec(),
                        },
                    )
                })
                .collect(),
            ..Self::default()
        }
    }

    fn logged(&self) -> Vec<String> {
        self.lines
            .borrow()
            .iter()
            .map(|(_, line)| line.clone())
            .collect()
    }
}

fn settings() -> Settings {
    Settings::parse(EXAMPLE).unwrap()
}

fn policy() -> ExamplePolicy {
    ExamplePolicy::new(settings())
}

fn without_disclaimer() -> ExamplePolicy {
    let mut s = settings();
    s.disclaimer = None;
    ExamplePolicy::new(s)
}

fn with_power_api() -> ExamplePolicy {
    let mut s = settings();
    s.power_api = Some(POWER.to_owned());
    ExamplePolicy::new(s)
}

fn identity(username: &str) -> Identity {
    Identity {
        username: username.into(),
        domain: "EXAMPLE".into(),
        attributes: Vec::new(),
    }
}

fn rejected(outcome: &AuthOutcome) -> (RejectionKind, &str) {
    match outcome {
        AuthOutcome::Rejected(rejection) => (rejection.kind, rejection.reason.as_str()),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn dialog(outcome: AuthOutcome) -> Dialog {
    match outcome {
        AuthOutcome::Challenge(dialog) => dialog,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn disclaimer(outcome: AuthOutcome) -> Disclaimer {
    match outcome {
        AuthOutcome::Disclaimer(disclaimer) => disclaimer,
        other => panic!("expected a disclaimer, got {other:?}"),
    }
}

fn answer(button: &str, code: &str) -> StepAnswer {
    StepAnswer::Dialog(DialogAnswer {
        fields: vec![FieldAnswer {
            id: "code".into(),
            value: code.into(),
        }],
        button_id: button.into(),
    })
}

fn change(username: &str, old: &str, new: &str) -> PasswordChange {
    PasswordChange {
        username: username.into(),
        domain: String::new(),
        old_password: old.into(),
        new_password: new.into(),
        client: ClientInfo {
            address: String::new(),
            hostname: String::new(),
            product_name: String::new(),
            product_version: String::new(),
            platform: String::new(),
            locale: String::new(),
            log_id: String::new(),
        },
    }
}

fn refusal(outcome: &PasswordChangeOutcome) -> PasswordRejectionKind {
    match outcome {
        PasswordChangeOutcome::Rejected(rejection) => rejection.kind,
        other => panic!("expected a refused change, got {other:?}"),
    }
}

#[test]
fn bob_sees_the_disclaimer_then_is_accepted_with_his_groups() {
    let host = TestHost::default();
    let p = policy();
    let notice = disclaimer(p.authenticate(&host, "bob", "bob-pw").unwrap());
    assert_eq!(notice.text, DISCLAIMER);
    assert_eq!(notice.state, r#"{"user":"bob","stage":"disclaimer"}"#);
    let AuthOutcome::Accepted(identity) = p
        .continue_authentication(&host, &notice.state, &StepAnswer::DisclaimerAccepted)
        .unwrap()
    else {
        panic!("bob is accepted");
    };
    assert_eq!(identity.username, "bob");
    assert_eq!(identity.domain, "EXAMPLE");
    assert_eq!(
        identity.attributes,
        [Attribute {
            key: "groups".into(),
            value: "artists,render".into()
        }]
    );
    assert_eq!(
        host.logged(),
        ["user \"bob\": disclaimer", "user \"bob\": accepted"]
    );
}

#[test]
fn without_a_disclaimer_bob_is_accepted_at_once() {
    let host = TestHost::default();
    let outcome = without_disclaimer()
        .authenticate(&host, "bob", "bob-pw")
        .unwrap();
    assert!(matches!(outcome, AuthOutcome::Accepted(ref i) if i.username == "bob"));
}

#[test]
fn refusals_and_the_decoy_check() {
    let host = TestHost::default();
    let p = policy();
    for (user, password, kind, reason) in [
        (
            "bob",
            "wrong",
            RejectionKind::BadCredentials,
            "wrong password",
        ),
        (
            "nobody",
            "bob-pw",
            RejectionKind::BadCredentials,
            "unknown user",
        ),
        (
            "carol",
            "carol-pw",
            RejectionKind::AccessDenied,
            "account disabled",
        ),
        (
            "dave",
            "dave-pw",
            RejectionKind::ExpiredPassword,
            "password expired",
        ),
        (
            "dave",
            "wrong",
            RejectionKind::BadCredentials,
            "wrong password",
        ),
    ] {
        let outcome = p.authenticate(&host, user, password).unwrap();
        assert_eq!(rejected(&outcome), (kind, reason), "{user}");
    }
    assert_eq!(
        *host.checks.borrow(),
        5,
        "an unknown user costs one hash check"
    );
    assert!(
        host.logged()
            .iter()
            .all(|line| !line.contains("-pw") && !line.contains("wrong\"")),
        "no password in the log: {:?}",
        host.logged()
    );
}

#[test]
fn a_user_without_desktops_has_no_resources() {
    let settings = Settings::parse(
        r#"{"users": [{"username": "dan", "password_hash": "8ff41da5ef01bf7ddb6aef29749422ebad97fb879df33126aed850aeb22325e8"}]}"#,
    )
    .unwrap();
    let outcome = ExamplePolicy::new(settings)
        .authenticate(&TestHost::default(), "dan", "bob-pw")
        .unwrap();
    assert_eq!(
        rejected(&outcome),
        (
            RejectionKind::NoResources,
            "no desktops in the user's groups"
        )
    );
}

#[test]
fn alice_accepts_the_disclaimer_then_gets_the_code_dialog() {
    let host = TestHost::default();
    let p = policy();
    let notice = disclaimer(p.authenticate(&host, "alice", "alice-pw").unwrap());
    assert_eq!(notice.state, r#"{"user":"alice","stage":"disclaimer"}"#);
    let first = dialog(
        p.continue_authentication(&host, &notice.state, &StepAnswer::DisclaimerAccepted)
            .unwrap(),
    );
    assert_eq!(first.prompt, CODE_PROMPT);
    assert_eq!(first.error_text, "");
    assert_eq!(
        first.fields,
        [DialogField {
            id: "code".into(),
            label: "Code".into(),
            kind: FieldKind::Secret
        }]
    );
    assert_eq!(
        first.buttons,
        [
            DialogButton {
                id: "ok".into(),
                label: "Verify".into(),
                is_default: true
            },
            DialogButton {
                id: "cancel".into(),
                label: "Cancel".into(),
                is_default: false
            }
        ]
    );
    assert_eq!(
        first.state,
        r#"{"user":"alice","stage":"code","attempts":0}"#
    );
    let accepted = p
        .continue_authentication(&host, &first.state, &answer("ok", RIGHT_CODE))
        .unwrap();
    assert!(matches!(accepted, AuthOutcome::Accepted(ref i) if i.username == "alice"));
    assert!(
        host.logged().iter().all(|line| !line.contains(RIGHT_CODE)),
        "no code in the log"
    );
}

#[test]
fn wrong_and_replayed_codes_take_attempts_and_the_third_ends_it() {
    let host = TestHost::default();
    let p = without_disclaimer();
    let first = dialog(p.authenticate(&host, "alice", "alice-pw").unwrap());
    assert_eq!(
        first.state,
        r#"{"user":"alice","stage":"code","attempts":0}"#
    );

    let second = dialog(
        p.continue_authentication(&host, &first.state, &answer("ok", "000000"))
            .unwrap(),
    );
    assert_eq!(second.error_text, WRONG_CODE_TEXT);
    assert_eq!(
        second.state,
        r#"{"user":"alice","stage":"code","attempts":1}"#
    );

    let third = dialog(
        p.continue_authentication(&host, &second.state, &answer("ok", SPENT_CODE))
            .unwrap(),
    );
    assert_eq!(
        third.error_text,
        "That code was already used, wait for the next one"
    );
    assert_eq!(
        third.state,
        r#"{"user":"alice","stage":"code","attempts":2}"#
    );
    assert_eq!(third.buttons.len(), 2, "the dialog keeps its buttons");

    let last = p
        .continue_authentication(&host, &third.state, &answer("ok", "000000"))
        .unwrap();
    assert_eq!(
        rejected(&last),
        (RejectionKind::BadCredentials, "3 wrong codes")
    );
}

#[test]
fn cancel_ends_the_login() {
    let host = TestHost::default();
    let outcome = policy()
        .continue_authentication(
            &host,
            r#"{"user":"alice","stage":"code","attempts":1}"#,
            &answer("cancel", ""),
        )
        .unwrap();
    assert_eq!(
        rejected(&outcome),
        (RejectionKind::AccessDenied, "code dialog cancelled")
    );
}

#[test]
fn answers_for_another_step_and_foreign_states_are_errors() {
    let host = TestHost::default();
    let p = policy();
    assert_eq!(
        p.continue_authentication(
            &host,
            r#"{"user":"alice","stage":"disclaimer"}"#,
            &answer("ok", RIGHT_CODE)
        )
        .unwrap_err(),
        "step answer does not match the pending step"
    );
    assert_eq!(
        p.continue_authentication(
            &host,
            r#"{"user":"alice","stage":"code","attempts":0}"#,
            &StepAnswer::DisclaimerAccepted
        )
        .unwrap_err(),
        "step answer does not match the pending step"
    );
    assert_eq!(
        p.continue_authentication(&host, "not json", &StepAnswer::DisclaimerAccepted)
            .unwrap_err(),
        "challenge state is not valid JSON"
    );
    for state in [
        r#"{"user":"alice"}"#,
        r#"{"user":"alice","stage":"code"}"#,
        r#"{"user":"alice","stage":"code","attempts":-1}"#,
        r#"{"user":1,"stage":"disclaimer"}"#,
        r#"{"user":"alice","stage":"other"}"#,
        "[]",
    ] {
        assert_eq!(
            p.continue_authentication(&host, state, &answer("ok", ""))
                .unwrap_err(),
            "challenge state is malformed",
            "{state}"
        );
    }
    let bob = p
        .continue_authentication(
            &host,
            r#"{"user":"bob","stage":"code","attempts":0}"#,
            &answer("ok", RIGHT_CODE),
        )
        .unwrap();
    assert_eq!(
        rejected(&bob),
        (
            RejectionKind::AccessDenied,
            "user no longer allowed to log in"
        ),
        "bob has no mfa"
    );
    let carol = p
        .continue_authentication(
            &host,
            r#"{"user":"carol","stage":"disclaimer"}"#,
            &StepAnswer::DisclaimerAccepted,
        )
        .unwrap();
    assert_eq!(rejected(&carol).0, RejectionKind::AccessDenied);
}

#[test]
fn dave_changes_his_expired_password() {
    let host = TestHost::default();
    let p = policy();
    let new = "a much longer passphrase";
    assert_eq!(
        refusal(&p.change_password(&host, &change("dave", "wrong", new))),
        PasswordRejectionKind::WrongPassword
    );
    assert_eq!(
        refusal(&p.change_password(&host, &change("nobody", "dave-pw", new))),
        PasswordRejectionKind::WrongPassword
    );
    assert_eq!(
        refusal(&p.change_password(&host, &change("dave", "dave-pw", "short-pw-11"))),
        PasswordRejectionKind::WeakPassword,
        "11 characters < 12"
    );
    assert!(host.store.borrow().is_empty(), "nothing stored yet");

    let PasswordChangeOutcome::Changed(next) =
        p.change_password(&host, &change("dave", "dave-pw", new))
    else {
        panic!("the change is accepted");
    };
    let notice = disclaimer(next);
    assert_eq!(notice.state, r#"{"user":"dave","stage":"disclaimer"}"#);
    assert_eq!(
        host.store.borrow()["password-hash:dave"],
        (format!("hashed:{new}"), None)
    );

    // The new password now logs in (no longer expired); the old one is wrong.
    assert!(matches!(
        p.authenticate(&host, "dave", new).unwrap(),
        AuthOutcome::Disclaimer(_)
    ));
    assert_eq!(
        rejected(&p.authenticate(&host, "dave", "dave-pw").unwrap()),
        (RejectionKind::BadCredentials, "wrong password")
    );
    // The stored hash is the one a further change checks; the same password again is weak.
    assert_eq!(
        refusal(&p.change_password(&host, &change("dave", new, new))),
        PasswordRejectionKind::WeakPassword
    );
    assert_eq!(
        refusal(&p.change_password(&host, &change("dave", "dave-pw", "another long one"))),
        PasswordRejectionKind::WrongPassword
    );
    let lines = host.logged();
    assert!(
        lines
            .iter()
            .all(|line| !line.contains("dave-pw") && !line.contains(new)),
        "no password in the log: {lines:?}"
    );
    assert!(
        lines.contains(&"user \"dave\": password changed, then disclaimer".to_owned()),
        "{lines:?}"
    );
}

#[test]
fn a_change_without_a_disclaimer_accepts_and_a_store_failure_is_a_directory_error() {
    let host = TestHost::default();
    let PasswordChangeOutcome::Changed(next) = without_disclaimer().change_password(
        &host,
        &change("dave", "dave-pw", "a much longer passphrase"),
    ) else {
        panic!("changed");
    };
    assert!(matches!(next, AuthOutcome::Accepted(ref i) if i.username == "dave"));

    let down = TestHost {
        store_down: true,
        ..TestHost::default()
    };
    assert_eq!(
        refusal(&policy().change_password(&down, &change("dave", "dave-pw", "a much longer one"))),
        PasswordRejectionKind::DirectoryError
    );
    assert!(
        policy().authenticate(&down, "bob", "bob-pw").is_err(),
        "a login cannot tell a changed password without the store"
    );
}

#[test]
fn listing_puts_the_last_launched_desktop_first() {
    let host = TestHost::default();
    let p = policy();
    let bob = identity("bob");
    let ids = |host: &TestHost| -> Vec<String> {
        p.list_desktops(host, &bob)
            .into_iter()
            .map(|d| d.id)
            .collect()
    };
    assert_eq!(ids(&host), ["ws-art-1-example-com", "render-7-example-com"]);

    let Allocation::Launch(launch) = p.allocate(&host, &bob, "render-7-example-com") else {
        panic!("bob may launch render-7");
    };
    assert_eq!(launch.hostname, "render-7.example.com");
    assert_eq!(launch.agent_port, Some(60443));
    assert!(launch.username.is_none() && launch.domain.is_none());
    assert_eq!(
        host.store.borrow()["last-desktop:bob"],
        (
            "render-7-example-com".to_owned(),
            Some(Duration::from_secs(30 * 24 * 3600))
        )
    );
    assert_eq!(ids(&host), ["render-7-example-com", "ws-art-1-example-com"]);

    // A remembered desktop the user no longer has changes nothing.
    host.store
        .borrow_mut()
        .insert("last-desktop:bob".into(), ("gone".into(), None));
    assert_eq!(ids(&host), ["ws-art-1-example-com", "render-7-example-com"]);

    let desktops = p.list_desktops(&host, &bob);
    assert!(
        desktops.iter().all(|d| d.operations.is_empty()),
        "no power_api"
    );
    assert!(matches!(desktops[0].session_kind, SessionKind::Vdi));

    assert!(matches!(
        p.allocate(&host, &identity("alice"), "render-7-example-com"),
        Allocation::Refused((RefusalKind::UnknownDesktop, _))
    ));
    assert!(
        p.list_desktops(&host, &identity("carol")).is_empty(),
        "disabled users list nothing"
    );
}

#[test]
fn a_store_failure_only_costs_the_ordering() {
    let host = TestHost {
        store_down: true,
        ..TestHost::default()
    };
    let p = policy();
    assert_eq!(p.list_desktops(&host, &identity("bob")).len(), 2);
    assert!(matches!(
        p.allocate(&host, &identity("bob"), "ws-art-1-example-com"),
        Allocation::Launch(_)
    ));
    let warnings: Vec<String> = host
        .lines
        .borrow()
        .iter()
        .filter(|(level, _)| *level == Level::Warn)
        .map(|(_, line)| line.clone())
        .collect();
    assert_eq!(
        warnings,
        [
            "user \"bob\": last desktop not read: unavailable (redis down)",
            "user \"bob\": last desktop not kept: unavailable (redis down)"
        ]
    );
}

#[test]
fn with_a_power_api_every_desktop_offers_the_three_operations() {
    let desktops = with_power_api().list_desktops(&TestHost::default(), &identity("bob"));
    for desktop in desktops {
        assert_eq!(
            desktop.operations,
            [Operation::Restart, Operation::PowerDown, Operation::PowerUp]
        );
    }
}

#[test]
fn operations_through_the_power_api() {
    let machine = format!("{POWER}/machines/render-7.example.com");
    let bob = identity("bob");
    let id = "render-7-example-com";
    let run = |answers: &[(&str, u16, &str)], op| {
        let host = TestHost::answering(answers);
        let outcome = with_power_api().operate(&host, &bob, id, op);
        (outcome, host.requests.take())
    };
    let get = format!("GET {machine}");
    let power_up = format!("POST {machine}/power-up");

    let (outcome, sent) = run(&[(&get, 200, r#"{"state":"running"}"#)], Operation::PowerUp);
    assert_eq!(outcome, OperationOutcome::Done("running".into()));
    assert_eq!(sent, std::slice::from_ref(&get));
    let (outcome, _) = run(
        &[(&get, 200, r#"{"state":"starting"}"#)],
        Operation::PowerUp,
    );
    assert_eq!(outcome, OperationOutcome::TryAgain("starting".into()));
    let (outcome, sent) = run(
        &[(&get, 200, r#"{"state":"stopped"}"#), (&power_up, 202, "")],
        Operation::PowerUp,
    );
    assert_eq!(outcome, OperationOutcome::TryAgain("powering on".into()));
    assert_eq!(sent, [get.clone(), power_up.clone()]);

    for (op, path) in [
        (Operation::Restart, "restart"),
        (Operation::PowerDown, "power-down"),
    ] {
        let post = format!("POST {machine}/{path}");
        let (outcome, sent) = run(&[(&post, 204, "")], op);
        assert_eq!(outcome, OperationOutcome::Done("requested".into()));
        assert_eq!(sent, std::slice::from_ref(&post));
        let (outcome, _) = run(&[(&post, 503, "")], op);
        assert_eq!(
            outcome,
            OperationOutcome::Refused(format!("power API: POST {machine}/{path}: HTTP 503"))
        );
    }

    let (outcome, _) = run(&[(&get, 200, "<html>")], Operation::PowerUp);
    assert!(
        matches!(&outcome, OperationOutcome::Refused(r) if r.starts_with(&format!("power API: GET {machine}: malformed answer"))),
        "{outcome:?}"
    );
    let (outcome, _) = run(&[(&get, 200, r#"{"state":"stopped"}"#)], Operation::PowerUp);
    assert_eq!(
        outcome,
        OperationOutcome::Refused("power API: request to power.test: connection refused".into())
    );
    let (outcome, _) = run(&[(&get, 404, "")], Operation::PowerUp);
    assert_eq!(
        outcome,
        OperationOutcome::Refused(format!("power API: GET {machine}: HTTP 404"))
    );
}

#[test]
fn operate_without_a_power_api_or_on_a_foreign_desktop() {
    let host = TestHost::default();
    assert_eq!(
        policy().operate(
            &host,
            &identity("bob"),
            "render-7-example-com",
            Operation::Restart
        ),
        OperationOutcome::Unsupported
    );
    assert_eq!(
        with_power_api().operate(
            &host,
            &identity("alice"),
            "render-7-example-com",
            Operation::Restart
        ),
        OperationOutcome::Refused("unknown desktop".into())
    );
    assert!(host.requests.borrow().is_empty());
}
