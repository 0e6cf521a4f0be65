//! The 0.2 conversation through the real TLS broker against the Rust example mapper built at
//! `interstate:mapper@0.2.0` (`guest-mappers/EXAMPLE-POLICY.md`): a disclaimer before every
//! login, the code dialog with its two buttons, a password change after an expired password
//! (the new password replayed to the agent, then good for the next login), and power
//! operations against a fake power API.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use interstate_protocol::OPERATION_TRY_AGAIN_TEXT;
use interstate_tests::guests::{self, Guest};
use interstate_tests::pcoip::result_id;
use interstate_tests::power::PowerApi;
use interstate_tests::{AgentBehaviour, FakeAgent, TestBroker, TestClient, msg, totp};
use interstate_tools::xml::element_text;
use serde_json::{Value, json};

/// alice's authenticator secret in `example.settings.json`.
const ALICE_SECRET: &str = "JBSWY3DPEHPK3PXP";
const DISCLAIMER: &str =
    "This workstation is for authorised studio work only. Sessions may be monitored.";
const CODE_PROMPT: &str = "Enter the 6-digit code from your authenticator app";
const WRONG_CODE_TEXT: &str = "Wrong code, try again";
/// `interstate hash-password --ils` of `dave-pw` (PBKDF2-HMAC-SHA256, salt `IGNORED`, 100000).
const DAVE_ILS_HASH: &str = "f58c6dbf8272e59293875da03eadf595450e34e83d7616cb5db4e3c745b0e54d";
const DAVE_NEW_PASSWORD: &str = "a n3w <pässword> for dave";

/// What the power API saw, as `METHOD path` lines.
fn seen(power: &PowerApi) -> Vec<String> {
    power
        .calls()
        .into_iter()
        .map(|call| match call.action.as_str() {
            "" => format!("{} /machines/{}", call.method, call.machine),
            action => format!("{} /machines/{}/{action}", call.method, call.machine),
        })
        .collect()
}

/// The example settings at 0.2 (as `conformance.rs` places the desktops): both desktops on the
/// fake agent, the disclaimer, dave with an
/// expired password, and the power API.
fn example_settings(agent: SocketAddr, power: SocketAddr) -> Value {
    let path = guests::repo_root().join("guest-mappers/example-rust/example.settings.json");
    let mut settings: Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    settings["groups"]["artists"][0]["hostname"] = json!(agent.ip().to_string());
    // The IPv4-mapped spelling, so that the two desktops' ids (derived from host names) differ.
    settings["groups"]["render"][0]["hostname"] = json!(format!("::ffff:{}", agent.ip()));
    settings["groups"]["render"][0]["agent_port"] = json!(agent.port());
    settings["disclaimer"] = json!(DISCLAIMER);
    settings["power_api"] = json!(format!("http://{power}"));
    let users = settings["users"].as_array_mut().unwrap();
    if !users.iter().any(|u| u["username"] == "dave") {
        users.push(json!({"username": "dave", "password_hash": DAVE_ILS_HASH,
                          "groups": ["artists"], "password_expired": true}));
    }
    settings
}

async fn start(agent: &FakeAgent, power: &PowerApi) -> (TestBroker, tempfile::TempDir) {
    let built = guests::build(Guest::ExampleRust);
    let cache = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(json!({
        "mapper": {
            "plugin": built.path.display().to_string(),
            "settings": example_settings(agent.addr, power.addr),
            "cache_dir": cache.path().display().to_string(),
            "allowed_hosts": [format!("http://{}", power.addr)],
        },
        "agent": {"port": agent.addr.port(), "timeout_ms": 5000}
    }))
    .await;
    (broker, cache)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A code that is wrong in every window the host accepts now and in the next minute.
fn wrong_code(key: &[u8]) -> String {
    let now = unix_now();
    let valid: Vec<String> = (-1..=3).map(|k| totp::totp(key, now + 30 * k)).collect();
    ["000000", "111111", "222222", "333333"]
        .into_iter()
        .find(|code| !valid.iter().any(|v| v == code))
        .unwrap()
        .to_owned()
}

/// A new session that typed `user`/`password`: the client and the answer's text.
async fn password_step(broker: &TestBroker, user: &str, password: &str) -> (TestClient, String) {
    let mut client = TestClient::connect(broker.addr).await;
    client.send(&msg::hello()).await;
    let auth = client
        .send(&msg::authenticate(user, password, Some("EXAMPLE")))
        .await;
    (client, auth.text())
}

fn id_of(text: &str) -> String {
    element_text(text, "result-id").unwrap_or_default()
}

/// The disclaimer as the 24.07 client library reads it (reference §11 [R]).
fn assert_disclaimer(text: &str) {
    assert_eq!(id_of(text), "AUTH_SUCCESSFUL_AND_INCOMPLETE", "{text}");
    assert!(
        text.contains("<method>AUTHENTICATE_VIA_DISCLAIMER</method>"),
        "{text}"
    );
    assert_eq!(
        element_text(text, "disclaimer").as_deref(),
        Some(DISCLAIMER),
        "{text}"
    );
    assert!(
        !text.contains("stage"),
        "the mapper's state stays in the broker: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disclaimer_then_the_code_dialog_with_its_buttons() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let power = PowerApi::start().await;
    let (broker, _cache) = start(&agent, &power).await;
    let key = totp::base32_decode(ALICE_SECRET).unwrap();

    let (mut client, text) = password_step(&broker, "alice", "alice-pw").await;
    assert_disclaimer(&text);
    // A dialog answer while the disclaimer is shown.
    let early = client
        .send(&msg::dialog_answer(&[("code", "123456")], "ok"))
        .await;
    assert_eq!(result_id(&early), "AUTH_FAILED_UNEXPECTED_METHOD");
    let accepted = client.send(&msg::disclaimer(true)).await;
    let text = accepted.text();
    assert_eq!(
        result_id(&accepted),
        "AUTH_SUCCESSFUL_AND_INCOMPLETE",
        "{text}"
    );
    assert_eq!(element_text(&text, "prompt").as_deref(), Some(CODE_PROMPT));
    let compact: String = text.lines().map(str::trim).collect();
    assert!(
        compact.contains(
            r#"<buttons><button is-default="true"><id>ok</id><label>Verify</label></button><button is-default="false"><id>cancel</id><label>Cancel</label></button></buttons>"#
        ),
        "{text}"
    );
    // A button the dialog does not have: refused, the dialog stays.
    let refused = client
        .send(&msg::dialog_answer(&[("code", "123456")], "retry"))
        .await;
    assert_eq!(result_id(&refused), "AUTH_FAILED_INVALID_FIELD_BUTTON_ID");
    // A wrong code: the dialog again, with the mapper's error text.
    let wrong = client
        .send(&msg::dialog_answer(&[("code", &wrong_code(&key))], "ok"))
        .await;
    assert_eq!(result_id(&wrong), "AUTH_SUCCESSFUL_AND_INCOMPLETE");
    assert_eq!(
        element_text(&wrong.text(), "error-text").as_deref(),
        Some(WRONG_CODE_TEXT)
    );
    let right = client
        .send(&msg::dialog_answer(
            &[("code", &totp::totp(&key, unix_now()))],
            "ok",
        ))
        .await;
    assert_eq!(
        result_id(&right),
        "AUTH_SUCCESSFUL_AND_COMPLETE",
        "{}",
        right.text()
    );

    // Cancel ends the attempt.
    let (mut client, _) = password_step(&broker, "alice", "alice-pw").await;
    client.send(&msg::disclaimer(true)).await;
    let cancelled = client
        .send(&msg::dialog_answer(&[("code", "")], "cancel"))
        .await;
    assert_eq!(result_id(&cancelled), "AUTH_FAILED_ACCESS_DENIED");

    // Declining the disclaimer ends it too, without the mapper.
    let (mut client, _) = password_step(&broker, "bob", "bob-pw").await;
    let declined = client.send(&msg::disclaimer(false)).await;
    assert_eq!(result_id(&declined), "AUTH_FAILED_DISCLAIMER_REJECTED");
    let list = client.send(&msg::list()).await;
    assert_eq!(result_id(&list), "LIST_FAILED_NO_USER");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_password_is_changed_and_replayed() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let power = PowerApi::start().await;
    let (broker, _cache) = start(&agent, &power).await;

    let (mut client, text) = password_step(&broker, "dave", "dave-pw").await;
    assert_eq!(id_of(&text), "AUTH_FAILED_EXPIRED_PASSWORD", "{text}");
    for (old, new, want) in [
        (
            "not-daves",
            DAVE_NEW_PASSWORD,
            "PSWD_UPDATE_FAILED_UNKNOWN_USERNAME_OR_PASSWORD",
        ),
        ("dave-pw", "short", "PSWD_UPDATE_FAILED_WEAK_PASSWORD"),
        ("dave-pw", "dave-pw", "PSWD_UPDATE_FAILED_WEAK_PASSWORD"),
    ] {
        let answer = client
            .send(&msg::update_password("dave", old, new, "EXAMPLE"))
            .await;
        assert_eq!(result_id(&answer), want, "{}", answer.text());
    }
    let changed = client
        .send(&msg::update_password(
            "dave",
            "dave-pw",
            DAVE_NEW_PASSWORD,
            "EXAMPLE",
        ))
        .await;
    let text = changed.text();
    assert_eq!(
        result_id(&changed),
        "PSWD_UPDATE_SUCCESSFUL_AUTH_INCOMPLETE",
        "{text}"
    );
    assert!(text.contains("<update-password-resp>"), "{text}");
    assert!(
        text.contains("<method>AUTHENTICATE_VIA_DISCLAIMER</method>"),
        "a change never skips the steps after the password: {text}"
    );
    let accepted = client.send(&msg::disclaimer(true)).await;
    assert_eq!(result_id(&accepted), "AUTH_SUCCESSFUL_AND_COMPLETE");
    let list = client.send(&msg::list()).await;
    assert_eq!(result_id(&list), "LIST_SUCCESSFUL", "{}", list.text());
    let id = element_text(&list.text(), "resource-id").unwrap();
    let alloc = client.send(&msg::allocate(&id)).await;
    assert_eq!(result_id(&alloc), "ALLOC_SUCCESSFUL", "{}", alloc.text());
    let launch = agent.last().expect("the agent was called");
    assert_eq!(launch.username, "dave");
    assert_eq!(
        launch.password.expose(),
        DAVE_NEW_PASSWORD,
        "the agent logon replays the new password"
    );

    // The next login takes the new password, and no longer the old one.
    let (_, text) = password_step(&broker, "dave", DAVE_NEW_PASSWORD).await;
    assert_disclaimer(&text);
    let (_, text) = password_step(&broker, "dave", "dave-pw").await;
    assert_eq!(
        id_of(&text),
        "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD",
        "{text}"
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_operations_before_and_after_an_allocation() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let power = PowerApi::start().await;
    let (broker, _cache) = start(&agent, &power).await;

    let (mut client, text) = password_step(&broker, "bob", "bob-pw").await;
    assert_disclaimer(&text);
    client.send(&msg::disclaimer(true)).await;
    let list = client.send(&msg::list()).await;
    let text = list.text();
    assert_eq!(result_id(&list), "LIST_SUCCESSFUL", "{text}");
    for op in ["CMD_OS_RESTART", "CMD_PWR_DOWN", "CMD_PWR_UP"] {
        assert!(
            text.contains(&format!("<supported-operation>{op}</supported-operation>")),
            "{op}: {text}"
        );
    }
    let id = element_text(&text, "resource-id").unwrap();

    let up = client
        .send(&msg::perform_operation(&id, "CMD_PWR_UP"))
        .await;
    assert_eq!(result_id(&up), "OP_FAILED_TO_EXECUTE", "{}", up.text());
    assert_eq!(
        element_text(&up.text(), "result-str").as_deref(),
        Some(OPERATION_TRY_AGAIN_TEXT),
        "a stopped machine powering on: try again"
    );
    let restart = client
        .send(&msg::perform_operation(&id, "CMD_OS_RESTART"))
        .await;
    assert_eq!(result_id(&restart), "OP_SUCCESSFUL", "{}", restart.text());
    let sleep = client
        .send(&msg::perform_operation(&id, "CMD_PWR_SLEEP"))
        .await;
    assert_eq!(result_id(&sleep), "OP_FAILED_OPERATION_NOT_SUPPORTED");
    let unknown = client
        .send(&msg::perform_operation("not-listed", "CMD_OS_RESTART"))
        .await;
    assert_eq!(result_id(&unknown), "OP_FAILED_INVALID_PARAMETER");
    let machine = agent.addr.ip().to_string();
    assert_eq!(
        seen(&power),
        [
            format!("GET /machines/{machine}"),
            format!("POST /machines/{machine}/power-up"),
            format!("POST /machines/{machine}/restart"),
        ],
        "the mapper was asked only for the operations the broker let through"
    );

    // An operation does not use up the password: the allocation still launches with it.
    let alloc = client.send(&msg::allocate(&id)).await;
    assert_eq!(result_id(&alloc), "ALLOC_SUCCESSFUL", "{}", alloc.text());
    assert_eq!(agent.last().unwrap().password.expose(), "bob-pw");
    let down = client
        .send(&msg::perform_operation(&id, "CMD_PWR_DOWN"))
        .await;
    assert_eq!(result_id(&down), "OP_SUCCESSFUL", "{}", down.text());
    broker.stop().await;
}
