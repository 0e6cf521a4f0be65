//! One scripted scenario, played through the real TLS broker against the example policy built
//! in every language (Rust, Go, JavaScript, Python): the same answers, ids and texts. It covers
//! the whole 0.2 conversation: a disclaimer (declined, then accepted), listing with operations,
//! a power-up that answers "try again" then succeeds (a fake power API over `wasi:http`), the
//! previous desktop listed first on the next login (the mapper's `store`), MFA with a wrong
//! code then the right one (the host's `verify-totp`), the same code replayed and refused,
//! dialog buttons, and an expired password changed on the password-change step.
//!
//! Each language is its own test so that a failure names it. Each also prints its figures:
//! component size, build time, cold compile, warm-cache load, and the cost of one call in a
//! fresh instance (`cargo test -p interstate-tests conformance -- --nocapture` shows them).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use interstate::settings::Settings;
use interstate_mapper::MapperRuntime;
use interstate_protocol::policy::{ClientContext, Identity, Mapper};
use interstate_tests::guests::{self, Guest};
use interstate_tests::pcoip::result_id;
use interstate_tests::power::PowerApi;
use interstate_tests::{AgentBehaviour, FakeAgent, TestBroker, TestClient, msg};
use interstate_tools::wire::WireResponse;
use interstate_tools::xml::element_text;
use serde_json::{Value, json};

use interstate_tests::totp;

/// alice's authenticator secret in `example.settings.json`.
const ALICE_SECRET: &str = "JBSWY3DPEHPK3PXP";
const CODE_PROMPT: &str = "Enter the 6-digit code from your authenticator app";
const WRONG_CODE_TEXT: &str = "Wrong code, try again";
const REPLAYED_CODE_TEXT: &str = "That code was already used, wait for the next one";
/// dave's password after the change (the example policy wants at least 12 characters).
const DAVE_NEW_PASSWORD: &str = "a-much-longer-passphrase-2026";

/// The ids every language must derive from the two host names below.
const EXPECTED_IDS: [&str; 2] = ["127-0-0-2", "--ffff-127-0-0-2"];

/// The example settings with both desktops on the fake agent: `artists` by its IPv4 address
/// (default port = the agent's, from the broker settings), `render` by the IPv4-mapped IPv6
/// spelling with an explicit `agent_port`, so that the two ids differ.
fn example_settings(agent: SocketAddr) -> Value {
    let root = guests::repo_root().join("guest-mappers");
    let text = std::fs::read_to_string(root.join("js/example.settings.json")).unwrap();
    for other in ["example-rust", "go", "python"] {
        let copy = std::fs::read_to_string(root.join(other).join("example.settings.json")).unwrap();
        assert_eq!(
            copy, text,
            "{other}/example.settings.json differs from js's"
        );
    }
    let mut settings: Value = serde_json::from_str(&text).unwrap();
    settings["groups"]["artists"][0]["hostname"] = json!(agent.ip().to_string());
    settings["groups"]["render"][0]["hostname"] = json!(format!("::ffff:{}", agent.ip()));
    settings["groups"]["render"][0]["agent_port"] = json!(agent.port());
    settings
}

fn broker_settings(wasm: &Path, agent: SocketAddr, cache_dir: &Path, power: &PowerApi) -> Value {
    let mut settings = example_settings(agent);
    settings["power_api"] = json!(power.base_url());
    json!({
        "mapper": {
            "plugin": wasm.display().to_string(),
            "settings": settings,
            "allowed_hosts": [power.base_url()],
            "cache_dir": cache_dir.display().to_string(),
            "limits": {"max_concurrent_calls": 8}
        },
        "agent": {"port": agent.port(), "timeout_ms": 5000}
    })
}

fn parse(settings: &Value) -> Settings {
    Settings::parse(&settings.to_string(), Path::new("conformance.json")).unwrap()
}

/// Every `<tag>` text of an answer, in order.
fn all_elements(text: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    text.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(value, _)| value.to_owned()))
        .collect()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Load and call costs, measured on the component directly.
#[derive(Debug)]
struct Figures {
    cold_compile: Duration,
    cold_load: Duration,
    warm_load: Duration,
    cold_call_median: Duration,
    cold_call_min: Duration,
}

/// Compiles into the (empty) cache, loads again from it, and times `list-desktops` calls,
/// each of which runs in a fresh instance (instantiate + configure + the call).
async fn measure(settings: &Settings) -> Figures {
    let runtime = MapperRuntime::new(interstate::app::runtime_config(settings)).unwrap();
    let cold = interstate::app::load_mapper(&runtime, settings)
        .await
        .unwrap();
    assert!(!cold.info().from_cache, "the first load compiles");
    assert_eq!(cold.info().world_version, "0.2.0");
    assert_eq!(cold.info().domains, ["EXAMPLE"]);
    drop(runtime);

    let runtime = MapperRuntime::new(interstate::app::runtime_config(settings)).unwrap();
    let warm = interstate::app::load_mapper(&runtime, settings)
        .await
        .unwrap();
    assert!(
        warm.info().from_cache,
        "the second load reads the compile cache"
    );

    let bob = Identity {
        username: "bob".into(),
        domain: "EXAMPLE".into(),
        attributes: Vec::new(),
    };
    let client = ClientContext::default();
    let mut samples = Vec::new();
    for _ in 0..25 {
        let started = Instant::now();
        let desktops = warm.list_desktops(&bob, &client).await.unwrap();
        samples.push(started.elapsed());
        assert_eq!(desktops.len(), 2);
    }
    samples.sort();
    Figures {
        cold_compile: cold.info().compile_time,
        cold_load: cold.info().load_time,
        warm_load: warm.info().load_time,
        cold_call_median: samples[samples.len() / 2],
        cold_call_min: samples[0],
    }
}

async fn login(broker: &TestBroker, user: &str, password: &str) -> (TestClient, String) {
    let mut client = TestClient::connect(broker.addr).await;
    let hello = client.send(&msg::hello()).await;
    assert!(
        hello.text().contains("<domain>EXAMPLE</domain>"),
        "the mapper's domains: {}",
        hello.text()
    );
    let auth = client
        .send(&msg::authenticate(user, password, Some("EXAMPLE")))
        .await;
    let id = result_id(&auth);
    (client, id)
}

/// A code that is wrong in every window the mappers accept now and in the next minute.
fn wrong_code(key: &[u8], now: i64) -> String {
    let valid: Vec<String> = (-1..=3).map(|k| totp::totp(key, now + 30 * k)).collect();
    ["000000", "111111", "222222", "333333", "444444", "555555"]
        .into_iter()
        .find(|code| !valid.iter().any(|v| v == code))
        .unwrap()
        .to_owned()
}

/// Logs `user` in through the disclaimer every example shows first; the answer to accepting it.
async fn past_disclaimer(
    broker: &TestBroker,
    user: &str,
    password: &str,
    lang: &str,
) -> (TestClient, WireResponse) {
    let (mut client, id) = login(broker, user, password).await;
    assert_eq!(
        id, "AUTH_SUCCESSFUL_AND_INCOMPLETE",
        "{lang}: {user} sees the disclaimer"
    );
    let accepted = client.send(&msg::disclaimer(true)).await;
    (client, accepted)
}

/// The `supported-operation`s of each resource, in listing order.
fn operations_of(text: &str) -> Vec<Vec<String>> {
    all_elements(text, "resource")
        .iter()
        .map(|resource| all_elements(resource, "supported-operation"))
        .collect()
}

async fn scenario(guest: Guest) {
    let built = guests::build(guest);
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let power = PowerApi::start().await;
    let cache = tempfile::tempdir().unwrap();
    let settings = broker_settings(&built.path, agent.addr, cache.path(), &power);
    let figures = measure(&parse(&settings)).await;
    let broker = TestBroker::start(settings).await;
    let lang = guest.label();

    // bob: the disclaimer, declined, ends the attempt without a word to the mapper.
    let (mut client, id) = login(&broker, "bob", "bob-pw").await;
    assert_eq!(id, "AUTH_SUCCESSFUL_AND_INCOMPLETE", "{lang}: bob");
    let declined = client.send(&msg::disclaimer(false)).await;
    assert_eq!(
        result_id(&declined),
        "AUTH_FAILED_DISCLAIMER_REJECTED",
        "{lang}: {}",
        declined.text()
    );

    // bob: accepted, two desktops with host-name ids and the three operations.
    let (mut client, id) = login(&broker, "bob", "bob-pw").await;
    assert_eq!(id, "AUTH_SUCCESSFUL_AND_INCOMPLETE", "{lang}: bob");
    // (the first answer carries the disclaimer text)
    let accepted = client.send(&msg::disclaimer(true)).await;
    assert_eq!(
        result_id(&accepted),
        "AUTH_SUCCESSFUL_AND_COMPLETE",
        "{lang}: {}",
        accepted.text()
    );
    let list = client.send(&msg::list()).await;
    let text = list.text();
    assert_eq!(result_id(&list), "LIST_SUCCESSFUL", "{lang}: {text}");
    assert_eq!(
        all_elements(&text, "resource-id"),
        EXPECTED_IDS,
        "{lang}: {text}"
    );
    assert_eq!(
        all_elements(&text, "resource-name"),
        ["Artist Workstation 1", "Render Node 7"],
        "{lang}: {text}"
    );
    let all_ops = ["CMD_OS_RESTART", "CMD_PWR_DOWN", "CMD_PWR_UP"]
        .map(String::from)
        .to_vec();
    assert_eq!(
        operations_of(&text),
        [all_ops.clone(), all_ops],
        "{lang}: {text}"
    );

    // Power up the render node: the power API is asked once, the first answer says try again,
    // the second (the machine reports running) succeeds; the session goes on.
    let machine = format!("::ffff:{}", agent.addr.ip());
    let first = client
        .send(&msg::perform_operation(EXPECTED_IDS[1], "CMD_PWR_UP"))
        .await;
    assert_eq!(
        result_id(&first),
        "OP_FAILED_TO_EXECUTE",
        "{lang}: {}",
        first.text()
    );
    assert!(
        first.text().contains("try again"),
        "{lang}: {}",
        first.text()
    );
    let second = client
        .send(&msg::perform_operation(EXPECTED_IDS[1], "CMD_PWR_UP"))
        .await;
    assert_eq!(
        result_id(&second),
        "OP_SUCCESSFUL",
        "{lang}: {}",
        second.text()
    );
    let posts: Vec<_> = power
        .calls()
        .into_iter()
        .filter(|c| c.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1, "{lang}: one power-up request: {posts:?}");
    assert_eq!(
        (posts[0].machine.as_str(), posts[0].action.as_str()),
        (machine.as_str(), "power-up"),
        "{lang}"
    );
    let sleep = client
        .send(&msg::perform_operation(EXPECTED_IDS[1], "CMD_PWR_SLEEP"))
        .await;
    assert_eq!(
        result_id(&sleep),
        "OP_FAILED_OPERATION_NOT_SUPPORTED",
        "{lang}: {}",
        sleep.text()
    );

    // Allocate the render node; the agent gets bob's password.
    let alloc = client.send(&msg::allocate(EXPECTED_IDS[1])).await;
    assert_eq!(
        result_id(&alloc),
        "ALLOC_SUCCESSFUL",
        "{lang}: {}",
        alloc.text()
    );
    let launch = agent.last().expect("the agent was called");
    assert_eq!(launch.username, "bob", "{lang}");
    assert_eq!(launch.password.expose(), "bob-pw", "{lang}");
    assert_eq!(
        launch.domain, "EXAMPLE",
        "{lang}: the mapper's logon_domain"
    );
    let bye = client.send(&msg::bye()).await;
    assert!(bye.text().contains("<bye-resp"), "{lang}: {}", bye.text());

    // bob again: the desktop he had is listed first.
    let (mut client, accepted) = past_disclaimer(&broker, "bob", "bob-pw", lang).await;
    assert_eq!(
        result_id(&accepted),
        "AUTH_SUCCESSFUL_AND_COMPLETE",
        "{lang}"
    );
    let list = client.send(&msg::list()).await;
    assert_eq!(
        all_elements(&list.text(), "resource-id"),
        [EXPECTED_IDS[1], EXPECTED_IDS[0]],
        "{lang}: the previous desktop first: {}",
        list.text()
    );

    // alice: the disclaimer, then the TOTP dialog with its two buttons; a wrong code, then the
    // right one.
    let (mut client, dialog) = past_disclaimer(&broker, "alice", "alice-pw", lang).await;
    let text = dialog.text();
    assert_eq!(
        result_id(&dialog),
        "AUTH_SUCCESSFUL_AND_INCOMPLETE",
        "{lang}: {text}"
    );
    assert_eq!(
        element_text(&text, "prompt").as_deref(),
        Some(CODE_PROMPT),
        "{lang}"
    );
    assert_eq!(
        all_elements(&text, "id"),
        ["code", "ok", "cancel"],
        "{lang}: {text}"
    );
    assert_eq!(
        all_elements(&text, "label"),
        ["Code", "Verify", "Cancel"],
        "{lang}: {text}"
    );
    let key = totp::base32_decode(ALICE_SECRET).unwrap();
    let wrong = client
        .send(&msg::dialog("code", &wrong_code(&key, unix_now())))
        .await;
    let text = wrong.text();
    assert_eq!(
        result_id(&wrong),
        "AUTH_SUCCESSFUL_AND_INCOMPLETE",
        "{lang}: {text}"
    );
    assert_eq!(
        element_text(&text, "error-text").as_deref(),
        Some(WRONG_CODE_TEXT),
        "{lang}: {text}"
    );
    let code = totp::totp(&key, unix_now());
    let right = client
        .send(&msg::dialog_answer(&[("code", &code)], "ok"))
        .await;
    assert_eq!(
        result_id(&right),
        "AUTH_SUCCESSFUL_AND_COMPLETE",
        "{lang}: {}",
        right.text()
    );
    let list = client.send(&msg::list()).await;
    assert_eq!(
        all_elements(&list.text(), "resource-id"),
        [EXPECTED_IDS[0]],
        "{lang}"
    );

    // The same code again, in another session: spent.
    let (mut client, _) = past_disclaimer(&broker, "alice", "alice-pw", lang).await;
    let replayed = client.send(&msg::dialog("code", &code)).await;
    let text = replayed.text();
    assert_eq!(
        result_id(&replayed),
        "AUTH_SUCCESSFUL_AND_INCOMPLETE",
        "{lang}: {text}"
    );
    assert_eq!(
        element_text(&text, "error-text").as_deref(),
        Some(REPLAYED_CODE_TEXT),
        "{lang}: {text}"
    );
    // A button the dialog did not show is refused by the broker; Cancel ends the attempt.
    let forged = client
        .send(&msg::dialog_answer(&[("code", "123456")], "skip"))
        .await;
    assert_eq!(
        result_id(&forged),
        "AUTH_FAILED_INVALID_FIELD_BUTTON_ID",
        "{lang}: {}",
        forged.text()
    );
    let cancel = client
        .send(&msg::dialog_answer(&[("code", "")], "cancel"))
        .await;
    assert_eq!(
        result_id(&cancel),
        "AUTH_FAILED_ACCESS_DENIED",
        "{lang}: {}",
        cancel.text()
    );
    let after = client.send(&msg::list()).await;
    assert_eq!(result_id(&after), "LIST_FAILED_NO_USER", "{lang}");

    // alice: three wrong codes; the first two re-prompt, the third is the "Wrong code" id.
    let (mut client, _) = past_disclaimer(&broker, "alice", "alice-pw", lang).await;
    for attempt in 1..=3 {
        let wrong = client
            .send(&msg::dialog("code", &wrong_code(&key, unix_now())))
            .await;
        let expected = if attempt < 3 {
            "AUTH_SUCCESSFUL_AND_INCOMPLETE"
        } else {
            "AUTH_FAILED_DIALOG_INVALID_USER_ENTRY"
        };
        assert_eq!(result_id(&wrong), expected, "{lang}: wrong code {attempt}");
    }
    let after = client.send(&msg::list()).await;
    assert_eq!(result_id(&after), "LIST_FAILED_NO_USER", "{lang}");

    // dave: an expired password, changed on the password-change step.
    let (mut client, id) = login(&broker, "dave", "dave-pw").await;
    assert_eq!(id, "AUTH_FAILED_EXPIRED_PASSWORD", "{lang}: dave");
    let wrong_old = client
        .send(&msg::update_password(
            "dave",
            "not-daves",
            DAVE_NEW_PASSWORD,
            "EXAMPLE",
        ))
        .await;
    assert_eq!(
        result_id(&wrong_old),
        "PSWD_UPDATE_FAILED_UNKNOWN_USERNAME_OR_PASSWORD",
        "{lang}: {}",
        wrong_old.text()
    );
    let weak = client
        .send(&msg::update_password(
            "dave", "dave-pw", "short-1", "EXAMPLE",
        ))
        .await;
    assert_eq!(
        result_id(&weak),
        "PSWD_UPDATE_FAILED_WEAK_PASSWORD",
        "{lang}: {}",
        weak.text()
    );
    let changed = client
        .send(&msg::update_password(
            "dave",
            "dave-pw",
            DAVE_NEW_PASSWORD,
            "EXAMPLE",
        ))
        .await;
    assert_eq!(
        result_id(&changed),
        "PSWD_UPDATE_SUCCESSFUL_AUTH_INCOMPLETE",
        "{lang}: the disclaimer still comes: {}",
        changed.text()
    );
    assert!(
        changed.text().contains("AUTHENTICATE_VIA_DISCLAIMER"),
        "{lang}: {}",
        changed.text()
    );
    let accepted = client.send(&msg::disclaimer(true)).await;
    assert_eq!(
        result_id(&accepted),
        "AUTH_SUCCESSFUL_AND_COMPLETE",
        "{lang}: {}",
        accepted.text()
    );
    let list = client.send(&msg::list()).await;
    assert_eq!(
        result_id(&list),
        "LIST_SUCCESSFUL",
        "{lang}: {}",
        list.text()
    );
    let alloc = client.send(&msg::allocate(EXPECTED_IDS[0])).await;
    assert_eq!(
        result_id(&alloc),
        "ALLOC_SUCCESSFUL",
        "{lang}: {}",
        alloc.text()
    );
    assert_eq!(
        agent
            .last()
            .expect("the agent was called")
            .password
            .expose(),
        DAVE_NEW_PASSWORD,
        "{lang}: the agent logs dave on with the new password"
    );
    let (_, id) = login(&broker, "dave", "dave-pw").await;
    assert_eq!(
        id, "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD",
        "{lang}: the old password is gone"
    );
    let (_, accepted) = past_disclaimer(&broker, "dave", DAVE_NEW_PASSWORD, lang).await;
    assert_eq!(
        result_id(&accepted),
        "AUTH_SUCCESSFUL_AND_COMPLETE",
        "{lang}: the new one works"
    );

    // Refusals.
    let (_, id) = login(&broker, "carol", "carol-pw").await;
    assert_eq!(id, "AUTH_FAILED_ACCESS_DENIED", "{lang}: carol is disabled");
    let (_, id) = login(&broker, "bob", "not-bobs-password").await;
    assert_eq!(
        id, "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD",
        "{lang}: wrong password"
    );
    let (_, id) = login(&broker, "mallory", "bob-pw").await;
    assert_eq!(
        id, "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD",
        "{lang}: unknown user"
    );

    // A cold call through the broker: one listing (fresh instance) over a kept-alive connection.
    let (mut client, _) = past_disclaimer(&broker, "bob", "bob-pw", lang).await;
    let started = Instant::now();
    let list = client.send(&msg::list()).await;
    let via_broker = started.elapsed();
    assert_eq!(result_id(&list), "LIST_SUCCESSFUL");

    println!(
        "conformance[{lang}]: size {} B; build {:.1?}{}; cold compile {:.0?} (load {:.0?}); \
         warm-cache load {:.1?}; cold call (fresh instance, list-desktops) median {:.2?}, min {:.2?}; \
         listing through the broker {:.2?}",
        built.size_bytes,
        built.build_time,
        if built.reused {
            " (cached component)"
        } else {
            ""
        },
        figures.cold_compile,
        figures.cold_load,
        figures.warm_load,
        figures.cold_call_median,
        figures.cold_call_min,
        via_broker,
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_rust() {
    scenario(Guest::ExampleRust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_go() {
    scenario(Guest::Go).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_js() {
    scenario(Guest::Js).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_python() {
    scenario(Guest::Python).await;
}
