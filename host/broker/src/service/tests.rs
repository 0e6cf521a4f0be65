//! The 0.2 conversation through the broker's service: real HTTP requests into [`super::handle`],
//! the memory store, the failure limits, the audit log and the feed, with a scripted mapper in
//! Rust (the wasm host for 0.2 components lands separately; `tests/e2e/conversation.rs` plays
//! the same conversation through TLS against the example mapper once it does).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use interstate_feed::channel::ChannelConfig;
use interstate_feed::{Feed, FeedConfig};
use interstate_protocol::policy::{
    Allocation, AuthOutcome, BoxFuture, Capabilities, ClientContext, Desktop, DesktopState, Dialog,
    DialogButton, DialogField, Disclaimer, FieldKind, Identity, Launch, MapperError, Operation,
    OperationOutcome, PasswordChange, PasswordChangeOutcome, PasswordLogin, PasswordRejection,
    PasswordRejectionKind, Rejection, RejectionKind, Secret, SessionKind, StepAnswer,
};
use interstate_protocol::{AgentFailure, LaunchRequest, LaunchSessionResp, Root, SessionInfo};
use interstate_tools::messages::{self, ClientIdentity};
use interstate_tools::xml::element_text;

use super::{BROKER_PATH, Broker, Generation, handle};
use crate::agent::Agent;
use crate::audit::Audit;
use crate::clock::Clock;
use crate::settings::{RateLimits, Settings};
use crate::store::memory::MemoryStore;

const CODE: &str = "123456";

/// A 24.07 client: it shows dialogs and disclaimers.
const TOOL_CLIENT: ClientIdentity<'static> = ClientIdentity {
    caps: &[
        "CAP_DISCLAIMER_AUTHENTICATION",
        "CAP_NO_AUTHENTICATION",
        "CAP_DIALOG_AUTHENTICATION",
    ],
    ..messages::TOOL_CLIENT
};

/// A mapper that answers by script, and counts its calls.
#[derive(Debug, Default)]
struct Scripted {
    capabilities: Mutex<Capabilities>,
    calls: AtomicUsize,
    /// What the last `continue_authentication` was given.
    last_answer: Mutex<Option<StepAnswer>>,
    /// The password the last `change_password` set.
    changed_to: Mutex<Option<String>>,
}

fn identity(name: &str) -> Identity {
    Identity {
        username: name.to_owned(),
        domain: "EXAMPLE".into(),
        attributes: Vec::new(),
    }
}

fn code_dialog(error_text: &str) -> AuthOutcome {
    AuthOutcome::Challenge(Dialog {
        prompt: "Enter the code".into(),
        error_text: error_text.into(),
        fields: vec![DialogField {
            id: "code".into(),
            label: "Code".into(),
            kind: FieldKind::Secret,
        }],
        buttons: vec![
            DialogButton {
                id: "ok".into(),
                label: "Verify".into(),
                is_default: true,
            },
            DialogButton {
                id: "cancel".into(),
                label: "Cancel".into(),
                is_default: false,
            },
        ],
        state: Secret::new("dialog-state"),
    })
}

fn rejected(kind: RejectionKind) -> AuthOutcome {
    AuthOutcome::Rejected(Rejection {
        kind,
        reason: "scripted".into(),
    })
}

impl Scripted {
    fn called(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn call(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

impl interstate_protocol::policy::Mapper for Scripted {
    fn domains(&self) -> Vec<String> {
        vec!["EXAMPLE".into()]
    }

    fn capabilities(&self) -> Capabilities {
        *self
            .capabilities
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn authenticate<'a>(
        &'a self,
        login: &'a PasswordLogin,
    ) -> BoxFuture<'a, Result<AuthOutcome, MapperError>> {
        self.call();
        let outcome = match (login.username.as_str(), login.password.expose()) {
            ("alice", "pw") => code_dialog(""),
            ("carol", "pw") => AuthOutcome::Disclaimer(Disclaimer {
                text: "Sessions may be monitored.".into(),
                state: Secret::new("disclaimer-state"),
            }),
            ("dave", "old") => rejected(RejectionKind::ExpiredPassword),
            ("dave", "n3w-pässword") | ("bob", "pw") => {
                AuthOutcome::Accepted(identity(&login.username))
            }
            _ => rejected(RejectionKind::BadCredentials),
        };
        Box::pin(async move { Ok(outcome) })
    }

    fn continue_authentication<'a>(
        &'a self,
        state: &'a Secret,
        answer: &'a StepAnswer,
        _client: &'a ClientContext,
    ) -> BoxFuture<'a, Result<AuthOutcome, MapperError>> {
        self.call();
        *self
            .last_answer
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(answer.clone());
        let outcome = match (state.expose(), answer) {
            ("disclaimer-state", StepAnswer::DisclaimerAccepted) => {
                Ok(AuthOutcome::Accepted(identity("carol")))
            }
            ("dialog-state", StepAnswer::Dialog { button_id, .. }) if button_id == "cancel" => {
                Ok(rejected(RejectionKind::AccessDenied))
            }
            ("dialog-state", StepAnswer::Dialog { fields, .. })
                if fields.iter().any(|f| f.value.expose() == CODE) =>
            {
                Ok(AuthOutcome::Accepted(identity("alice")))
            }
            ("dialog-state", StepAnswer::Dialog { .. }) => {
                Ok(rejected(RejectionKind::BadCredentials))
            }
            _ => Err(MapperError::Guest(
                "step answer does not match the pending step".into(),
            )),
        };
        Box::pin(async move { outcome })
    }

    fn list_desktops<'a>(
        &'a self,
        _user: &'a Identity,
        _client: &'a ClientContext,
    ) -> BoxFuture<'a, Result<Vec<Desktop>, MapperError>> {
        self.call();
        let desktops = ["ws-7", "ws-8"]
            .map(|id| Desktop {
                id: id.into(),
                name: format!("Workstation {id}"),
                hostname: format!("{id}.example.com"),
                agent_port: None,
                session_kind: SessionKind::Vdi,
                state: DesktopState::Running,
                health: None,
                operations: vec![Operation::Restart, Operation::PowerUp],
            })
            .to_vec();
        Box::pin(async move { Ok(desktops) })
    }

    fn allocate<'a>(
        &'a self,
        _user: &'a Identity,
        _desktop_id: &'a str,
        _client: &'a ClientContext,
    ) -> BoxFuture<'a, Result<Allocation, MapperError>> {
        self.call();
        Box::pin(async move {
            Ok(Allocation::Launch(Launch {
                hostname: String::new(),
                agent_port: None,
                username: None,
                domain: None,
            }))
        })
    }

    fn operate<'a>(
        &'a self,
        _user: &'a Identity,
        desktop_id: &'a str,
        op: Operation,
        _client: &'a ClientContext,
    ) -> BoxFuture<'a, Result<OperationOutcome, MapperError>> {
        self.call();
        let outcome = match (desktop_id, op) {
            ("ws-8", _) => Err(MapperError::Timeout(5000)),
            (_, Operation::Restart) => Ok(OperationOutcome::Done("requested".into())),
            (_, _) => Ok(OperationOutcome::TryAgain("starting".into())),
        };
        Box::pin(async move { outcome })
    }

    fn change_password<'a>(
        &'a self,
        change: &'a PasswordChange,
    ) -> BoxFuture<'a, Result<PasswordChangeOutcome, MapperError>> {
        self.call();
        let refuse = |kind| {
            Ok(PasswordChangeOutcome::Rejected(PasswordRejection {
                kind,
                reason: "scripted".into(),
            }))
        };
        let outcome = if change.username != "dave" || change.old_password.expose() != "old" {
            refuse(PasswordRejectionKind::WrongPassword)
        } else if change.new_password.expose().chars().count() < 8 {
            refuse(PasswordRejectionKind::WeakPassword)
        } else {
            *self
                .changed_to
                .lock()
                .unwrap_or_else(PoisonError::into_inner) =
                Some(change.new_password.expose().to_owned());
            Ok(PasswordChangeOutcome::Changed(AuthOutcome::Accepted(
                identity("dave"),
            )))
        };
        Box::pin(async move { outcome })
    }

    fn spend_like_a_password_check(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// An agent that always prepares a session, and keeps what it was sent.
#[derive(Debug, Default)]
struct Launched(Mutex<Vec<String>>);

impl Agent for Launched {
    fn launch<'a>(
        &'a self,
        request: &'a LaunchRequest,
    ) -> BoxFuture<'a, Result<LaunchSessionResp, AgentFailure>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request.launch.password.expose().to_owned());
        Box::pin(async {
            Ok(LaunchSessionResp {
                result_id: "SUCCESSFUL".into(),
                session_info: Some(SessionInfo {
                    ip_address: "10.0.0.7".into(),
                    sni: "ws-7".into(),
                    port: 4172,
                    session_id: "1".into(),
                    session_tag: Secret::new("tag"),
                }),
                fail_reason: None,
            })
        })
    }
}

/// An audit sink the test reads back.
#[derive(Clone, Debug, Default)]
struct Records(Arc<Mutex<Vec<u8>>>);

impl Write for Records {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Records {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into()
    }

    fn events(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|record| record["event"].as_str().map(str::to_owned))
            .collect()
    }
}

struct Harness {
    broker: Arc<Broker>,
    mapper: Arc<Scripted>,
    agent: Arc<Launched>,
    audit: Records,
    feed: Arc<Feed>,
}

impl Harness {
    fn new(capabilities: Capabilities) -> Self {
        let mapper = Arc::new(Scripted::default());
        *mapper
            .capabilities
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = capabilities;
        let agent = Arc::new(Launched::default());
        let settings = Settings::defaults();
        let generation = Generation::new(settings, mapper.clone(), agent.clone());
        let store = Arc::new(MemoryStore::new(generation.store_limits()));
        let audit = Records::default();
        let broker = Broker::new(generation, store, Clock::new())
            .with_audit(Arc::new(Audit::to_writer("n1", Box::new(audit.clone()))));
        broker.limiter().set_limits(RateLimits {
            per_user: 3,
            per_address: 100,
            ..RateLimits::default()
        });
        let feed = Feed::new(FeedConfig::new("n1", vec![b"k".to_vec()]));
        for channel in ["sessions", "auth", "allocations"] {
            feed.configure_channel(
                channel,
                ChannelConfig {
                    store_history: true,
                    history_size: 1_000,
                    ..ChannelConfig::default()
                },
            );
        }
        broker.events().attach(feed.clone());
        Self {
            broker: Arc::new(broker),
            mapper,
            agent,
            audit,
            feed,
        }
    }

    /// A new client session: its cookie.
    async fn hello(&self) -> String {
        let (_, cookie) = self.send(None, &messages::hello(&TOOL_CLIENT)).await;
        cookie.expect("hello sets a cookie")
    }

    /// Posts `message` with `cookie`: the answer and the cookie it set.
    async fn send(&self, cookie: Option<&str>, message: &str) -> (String, Option<String>) {
        let body = messages::wrap(Root::PcoipClient, message);
        let mut request = http::Request::post(BROKER_PATH);
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("JSESSIONID={cookie}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .expect("a request");
        let peer: SocketAddr = "192.0.2.9:50000".parse().expect("an address");
        let Ok(response) = handle(self.broker.clone(), peer, request).await;
        let set = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("JSESSIONID="))
            .and_then(|v| v.split(';').next())
            .map(str::to_owned);
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        (String::from_utf8_lossy(&bytes).into_owned(), set)
    }

    /// Posts in session `cookie`; the answer's `result-id`.
    async fn result(&self, cookie: &str, message: &str) -> String {
        let (text, _) = self.send(Some(cookie), message).await;
        element_text(&text, "result-id").unwrap_or_else(|| panic!("no result-id in {text}"))
    }

    fn feed_text(&self) -> String {
        self.feed.snapshot().to_string()
    }
}

const ALL: Capabilities = Capabilities {
    operate: true,
    change_password: true,
};

fn password(user: &str, password: &str) -> String {
    messages::authenticate(user, password, Some("EXAMPLE"))
}

#[tokio::test]
async fn a_dialog_with_buttons_wrong_codes_and_the_failure_limit() {
    let h = Harness::new(ALL);
    let cookie = h.hello().await;
    assert_eq!(
        h.result(&cookie, &password("alice", "pw")).await,
        "AUTH_SUCCESSFUL_AND_INCOMPLETE"
    );
    let calls = h.mapper.called();
    // A button the dialog did not show: refused without a mapper call, the dialog stays.
    assert_eq!(
        h.result(
            &cookie,
            &messages::dialog_answer(&[("code", CODE)], "retry")
        )
        .await,
        "AUTH_FAILED_INVALID_FIELD_BUTTON_ID"
    );
    assert_eq!(h.mapper.called(), calls, "no mapper call");
    // A wrong code: the dialog stays open with its state; fields not shown never reach the
    // mapper.
    assert_eq!(
        h.result(
            &cookie,
            &messages::dialog_answer(&[("code", "000000"), ("smuggled", "x")], "ok")
        )
        .await,
        "AUTH_FAILED_DIALOG_INVALID_USER_ENTRY"
    );
    let answer = h.mapper.last_answer.lock().unwrap().clone();
    let Some(StepAnswer::Dialog { fields, button_id }) = answer else {
        panic!("{answer:?}");
    };
    assert_eq!(button_id, "ok");
    assert_eq!(fields.len(), 1, "only the dialog's own field");
    assert_eq!(
        h.result(&cookie, &messages::dialog_answer(&[("code", CODE)], "ok"))
            .await,
        "AUTH_SUCCESSFUL_AND_COMPLETE"
    );
    let events = h.audit.events();
    assert!(
        events.contains(&"authn_login_success".to_owned()),
        "{events:?}"
    );

    // Per user 3: two more wrong codes in a new attempt reach the limit (one failure so far,
    // the success cleared the user's count), the next answer is refused without the mapper
    // and ends the dialog.
    let cookie = h.hello().await;
    h.result(&cookie, &password("alice", "pw")).await;
    for _ in 0..3 {
        assert_eq!(
            h.result(&cookie, &messages::dialog_answer(&[("code", "1")], "ok"))
                .await,
            "AUTH_FAILED_DIALOG_INVALID_USER_ENTRY"
        );
    }
    let calls = h.mapper.called();
    assert_eq!(
        h.result(&cookie, &messages::dialog_answer(&[("code", CODE)], "ok"))
            .await,
        "AUTH_FAILED_DIALOG_INVALID_USER_ENTRY"
    );
    assert_eq!(h.mapper.called(), calls, "refused before the mapper");
    assert_eq!(
        h.result(&cookie, &messages::dialog_answer(&[("code", CODE)], "ok"))
            .await,
        "AUTH_FAILED_UNEXPECTED_METHOD",
        "the dialog ended"
    );
    assert!(h.feed_text().contains("session.rate_limited"));
    // The user name is counted, not only the address: the same user's password step is now
    // refused too (answered like a wrong password).
    let cookie = h.hello().await;
    assert_eq!(
        h.result(&cookie, &password("alice", "pw")).await,
        "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD"
    );
    assert!(!h.audit.text().contains(CODE));
}

#[tokio::test]
async fn a_disclaimer_accepted_and_declined() {
    let h = Harness::new(ALL);
    let cookie = h.hello().await;
    let (text, _) = h.send(Some(&cookie), &password("carol", "pw")).await;
    assert!(
        text.contains("<method>AUTHENTICATE_VIA_DISCLAIMER</method>")
            && text.contains("<disclaimer>Sessions may be monitored.</disclaimer>"),
        "{text}"
    );
    assert!(!text.contains("disclaimer-state"), "{text}");
    assert_eq!(
        h.result(&cookie, &messages::dialog_answer(&[("code", CODE)], "ok"))
            .await,
        "AUTH_FAILED_UNEXPECTED_METHOD"
    );
    assert_eq!(
        h.result(&cookie, &messages::disclaimer(true)).await,
        "AUTH_SUCCESSFUL_AND_COMPLETE"
    );
    assert_eq!(
        h.mapper.last_answer.lock().unwrap().clone(),
        Some(StepAnswer::DisclaimerAccepted)
    );

    let cookie = h.hello().await;
    h.result(&cookie, &password("carol", "pw")).await;
    let calls = h.mapper.called();
    assert_eq!(
        h.result(&cookie, &messages::disclaimer(false)).await,
        "AUTH_FAILED_DISCLAIMER_REJECTED"
    );
    assert_eq!(h.mapper.called(), calls, "declining asks no mapper");
    assert_eq!(
        h.result(&cookie, &messages::list()).await,
        "LIST_FAILED_NO_USER"
    );
    let events = h.audit.events();
    assert_eq!(
        events.iter().filter(|e| *e == "authn_disclaimer").count(),
        2,
        "{events:?}"
    );
    let feed = h.feed_text();
    assert_eq!(
        feed.matches("session.disclaimer").count(),
        4,
        "two events on two channels"
    );
}

#[tokio::test]
async fn an_expired_password_changed_then_replayed_to_the_agent() {
    let h = Harness::new(ALL);
    let cookie = h.hello().await;
    assert_eq!(
        h.result(&cookie, &password("dave", "old")).await,
        "AUTH_FAILED_EXPIRED_PASSWORD"
    );
    assert_eq!(
        h.result(
            &cookie,
            &messages::update_password("dave", "old", "short", "EXAMPLE")
        )
        .await,
        "PSWD_UPDATE_FAILED_WEAK_PASSWORD"
    );
    assert_eq!(
        h.result(
            &cookie,
            &messages::update_password("dave", "old", "n3w-pässword", "EXAMPLE")
        )
        .await,
        "PSWD_UPDATE_SUCCESSFUL_AUTH_COMPLETE"
    );
    assert_eq!(
        h.mapper.changed_to.lock().unwrap().as_deref(),
        Some("n3w-pässword")
    );
    assert_eq!(
        h.result(
            &cookie,
            &messages::update_password("dave", "old", "another-one", "EXAMPLE")
        )
        .await,
        "PSWD_UPDATE_FAILED_ALREADY_AUTHENTICATED"
    );
    assert_eq!(
        h.result(&cookie, &messages::list()).await,
        "LIST_SUCCESSFUL"
    );
    assert_eq!(
        h.result(&cookie, &messages::allocate("ws-7", &TOOL_CLIENT))
            .await,
        "ALLOC_SUCCESSFUL"
    );
    assert_eq!(
        h.agent.0.lock().unwrap().as_slice(),
        ["n3w-pässword"],
        "the agent logon replays the new password"
    );
    let events = h.audit.events();
    for event in ["authn_password_change_fail", "authn_password_change"] {
        assert!(events.contains(&event.to_owned()), "{event}: {events:?}");
    }
    let feed = h.feed_text();
    assert!(
        feed.contains("session.password_changed")
            && feed.contains("session.password_change_failed"),
        "{feed}"
    );
    let metrics = h.broker.metrics().render();
    assert!(
        metrics.contains("interstate_password_changes_total{outcome=\"changed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("export=\"change-password\""),
        "mapper_done counts the call"
    );
    for secret in ["n3w-pässword", "\"old\"", "short"] {
        assert!(
            !h.audit.text().contains(secret),
            "{secret} in the audit log"
        );
        assert!(!feed.contains(secret), "{secret} on the feed");
    }
}

#[tokio::test]
async fn wrong_current_passwords_count_and_the_limit_answers_max_retries() {
    let h = Harness::new(ALL);
    let cookie = h.hello().await;
    for _ in 0..3 {
        assert_eq!(
            h.result(
                &cookie,
                &messages::update_password("dave", "guess", "n3w-pässword", "EXAMPLE")
            )
            .await,
            "PSWD_UPDATE_FAILED_UNKNOWN_USERNAME_OR_PASSWORD"
        );
    }
    let calls = h.mapper.called();
    assert_eq!(
        h.result(
            &cookie,
            &messages::update_password("dave", "old", "n3w-pässword", "EXAMPLE")
        )
        .await,
        "PSWD_UPDATE_FAILED_MAX_RETRIES_EXCEEDED"
    );
    assert_eq!(h.mapper.called(), calls, "refused before the mapper");
    let metrics = h.broker.metrics().render();
    assert!(
        metrics.contains("interstate_password_changes_total{outcome=\"rate_limited\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_mapper_that_cannot_change_passwords_is_not_asked() {
    let h = Harness::new(Capabilities::default());
    let cookie = h.hello().await;
    h.result(&cookie, &password("dave", "old")).await;
    let calls = h.mapper.called();
    assert_eq!(
        h.result(
            &cookie,
            &messages::update_password("dave", "old", "n3w-pässword", "EXAMPLE")
        )
        .await,
        "PSWD_UPDATE_FAILED_NOT_SUPPORTED"
    );
    assert_eq!(h.mapper.called(), calls);
    // and its listings offer no operation, which is then refused without a call
    h.result(&cookie, &password("bob", "pw")).await;
    let (list, _) = h.send(Some(&cookie), &messages::list()).await;
    assert!(!list.contains("supported-operation"), "{list}");
    let calls = h.mapper.called();
    assert_eq!(
        h.result(
            &cookie,
            &messages::perform_operation("ws-7", "CMD_OS_RESTART")
        )
        .await,
        "OP_FAILED_OPERATION_NOT_SUPPORTED"
    );
    assert_eq!(h.mapper.called(), calls);
}

#[tokio::test]
async fn operations_before_and_after_an_allocation() {
    let h = Harness::new(ALL);
    let cookie = h.hello().await;
    assert_eq!(
        h.result(
            &cookie,
            &messages::perform_operation("ws-7", "CMD_OS_RESTART")
        )
        .await,
        "OP_FAILED_NO_USER"
    );
    h.result(&cookie, &password("bob", "pw")).await;
    let (list, _) = h.send(Some(&cookie), &messages::list()).await;
    assert!(
        list.contains("<supported-operation>CMD_OS_RESTART</supported-operation>"),
        "{list}"
    );
    for (id, op, want) in [
        ("ws-9", "CMD_OS_RESTART", "OP_FAILED_INVALID_PARAMETER"),
        ("ws-7", "CMD_PWR_SLEEP", "OP_FAILED_OPERATION_NOT_SUPPORTED"),
        ("ws-7", "CMD_PWR_DOWN", "OP_FAILED_OPERATION_NOT_SUPPORTED"),
        ("ws-7", "CMD_OS_RESTART", "OP_SUCCESSFUL"),
        ("ws-8", "CMD_OS_RESTART", "OP_FAILED_TO_EXECUTE"),
    ] {
        assert_eq!(
            h.result(&cookie, &messages::perform_operation(id, op))
                .await,
            want,
            "{id} {op}"
        );
    }
    let (text, _) = h
        .send(
            Some(&cookie),
            &messages::perform_operation("ws-7", "CMD_PWR_UP"),
        )
        .await;
    assert_eq!(
        element_text(&text, "result-str").as_deref(),
        Some(interstate_protocol::OPERATION_TRY_AGAIN_TEXT)
    );
    assert_eq!(
        h.result(&cookie, &messages::allocate("ws-7", &TOOL_CLIENT))
            .await,
        "ALLOC_SUCCESSFUL",
        "an operation does not consume the password"
    );
    assert_eq!(h.agent.0.lock().unwrap().as_slice(), ["pw"]);
    assert_eq!(
        h.result(
            &cookie,
            &messages::perform_operation("ws-7", "CMD_OS_RESTART")
        )
        .await,
        "OP_SUCCESSFUL",
        "and works after it"
    );
    let audit = h.audit.events();
    assert_eq!(
        audit.iter().filter(|e| *e == "desktop_operation").count(),
        4,
        "one per mapper call: {audit:?}"
    );
    let feed = h.feed_text();
    assert!(feed.contains("session.operation"), "{feed}");
    let metrics = h.broker.metrics().render();
    for line in [
        "interstate_operations_total{outcome=\"done\"} 2",
        "interstate_operations_total{outcome=\"try_again\"} 1",
        "interstate_operations_total{outcome=\"error\"} 1",
    ] {
        assert!(metrics.contains(line), "{line}: {metrics}");
    }
}

#[tokio::test]
async fn unknown_messages_are_unsupported_with_or_without_a_session() {
    let h = Harness::new(ALL);
    let body = "<get-authentication-method></get-authentication-method>";
    let (text, _) = h.send(None, body).await;
    assert_eq!(
        element_text(&text, "result-id").as_deref(),
        Some("ERR_UNSUPPORTED_REQUEST"),
        "{text}"
    );
    assert!(text.contains("<detected-by>BROKER</detected-by>"), "{text}");
    let cookie = h.hello().await;
    assert_eq!(h.result(&cookie, body).await, "ERR_UNSUPPORTED_REQUEST");
    // A known message without a session is still told there is none.
    let (text, _) = h.send(None, &messages::list()).await;
    assert_eq!(
        element_text(&text, "result-id").as_deref(),
        Some("ERR_MISSING_SESSION")
    );
    // hello-resp always names at least one domain.
    let (text, _) = h.send(None, &messages::hello(&TOOL_CLIENT)).await;
    assert!(text.contains("<domain>EXAMPLE</domain>"), "{text}");
}
