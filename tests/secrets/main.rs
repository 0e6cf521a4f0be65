//! Secrets: a user's password never reaches a log line (at TRACE), a file the broker writes, a
//! `Debug` string or a panic message, and a session lets go of it once a desktop is allocated.
//!
//! One process-wide tracing subscriber at TRACE (with the `log` bridge, so rustls, hyper and
//! wasmtime records are caught too) writes into [`captured`]. Each test plays real flows against
//! an in-process broker with a unique password (`Sup3r-S3cret-<random>` plus characters XML
//! escapes) and then searches everything it can reach for the password, its XML-escaped form and
//! its random core.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use interstate::store::SessionKey;
use interstate_protocol::decode_request;
use interstate_tests::broker::simple_settings;
use interstate_tests::pcoip::result_id;
use interstate_tests::{AgentBehaviour, FakeAgent, TestBroker, TestClient, msg};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Everything logged in this process, as text.
fn captured() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        // TRACE everywhere except inside the wasm compiler, which only ever sees the mapper's
        // code (at load, before any request) and logs megabytes per component at TRACE.
        let filter = EnvFilter::new(
            "trace,cranelift=info,regalloc2=info,wasmtime_cranelift=info,wasmtime_environ=info",
        );
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .try_init()
            .expect("the capturing subscriber is the first one installed");
        logs
    })
    .clone()
}

/// A writer into the shared log buffer.
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A password no other test or process uses, and the strings that must never show up.
struct Password {
    plain: String,
    needles: Vec<String>,
}

impl Password {
    fn new() -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos(),
        );
        let core = format!("S3cret-{:016x}", hasher.finish());
        let plain = format!("Sup3r-{core}&<\"x'>");
        let needles = vec![plain.clone(), msg::escape(&plain), core];
        Self { plain, needles }
    }

    /// The first form of the password that `haystack` holds.
    fn found_in(&self, haystack: &[u8]) -> Option<&str> {
        self.needles
            .iter()
            .find(|needle| {
                haystack
                    .windows(needle.len())
                    .any(|w| w == needle.as_bytes())
            })
            .map(String::as_str)
    }

    /// Panics, naming `place` (not the password), if `haystack` holds the password in any form.
    fn assert_absent(&self, place: &str, haystack: &[u8]) {
        if let Some(needle) = self.found_in(haystack) {
            let form = ["plain", "XML-escaped", "random core"]
                [self.needles.iter().position(|n| n == needle).unwrap_or(0)];
            panic!("the password ({form} form) appears in {place}");
        }
    }
}

/// A broker whose SimpleMapper user `kolmogorov` has `password`. Its files (the component
/// cache the tests share, a "beaker" data directory of its own, anything new in the temporary
/// directory) are searched when it stops.
struct Setup {
    agent: FakeAgent,
    broker: TestBroker,
    data: tempfile::TempDir,
    started: SystemTime,
}

impl Setup {
    async fn start(password: &Password, agent_timeout_ms: u64) -> Self {
        captured();
        let started = SystemTime::now();
        let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
        let data = tempfile::tempdir().unwrap();
        let mut settings = simple_settings(agent.addr);
        settings["mapper"]["settings"]["password_hash"] =
            interstate_mapper::password::hash_ils(&password.plain).into();
        settings["beaker"]["data_dir"] = data.path().display().to_string().into();
        settings["agent"]["timeout_ms"] = agent_timeout_ms.into();
        let broker = TestBroker::start(settings).await;
        Self {
            agent,
            broker,
            data,
            started,
        }
    }

    /// The session behind `client`'s cookie: whether it holds the password, and its Debug text.
    async fn session(&self, client: &TestClient) -> (bool, String) {
        let id = client.cookie.as_deref().expect("a session cookie");
        let store = self.broker.running.broker.store();
        let session = store
            .checkout(SessionKey::Id(id))
            .await
            .expect("the memory store answers")
            .expect("the session is live");
        let seen = (
            session.holds_password(),
            format!("{:?} {:#?}", *session, *session),
        );
        store
            .commit(session, true)
            .await
            .expect("the memory store answers");
        seen
    }

    /// Stops the broker and searches its logs, its files and recent temporary files.
    async fn finish(self, password: &Password) {
        let running = format!("{:?}", self.broker.running);
        password.assert_absent("the Debug output of the running broker", running.as_bytes());
        self.broker.stop().await;
        drop(self.agent);
        let logs = captured();
        let logs = logs.lock().unwrap().clone();
        password.assert_absent("the TRACE logs", &logs);
        let component_cache = interstate_tests::component_cache_dir();
        for dir in [self.data.path(), component_cache.as_path()] {
            for file in files_under(dir, None) {
                password.assert_absent(&file.display().to_string(), &std::fs::read(&file).unwrap());
            }
        }
        for file in files_under(&std::env::temp_dir(), Some(self.started)) {
            if let Ok(bytes) = std::fs::read(&file) {
                password.assert_absent(&file.display().to_string(), &bytes);
            }
        }
    }
}

/// Regular files under `root` (not following links), modified since `since` when given.
fn files_under(root: &Path, since: Option<SystemTime>) -> Vec<PathBuf> {
    const MAX_FILE: u64 = 64 * 1024 * 1024;
    let mut files = Vec::new();
    let mut pending = vec![(root.to_owned(), 0)];
    while let Some((dir, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() && depth < 8 {
                pending.push((entry.path(), depth + 1));
            } else if meta.is_file()
                && meta.len() <= MAX_FILE
                && since.is_none_or(|since| meta.modified().is_ok_and(|m| m >= since))
            {
                files.push(entry.path());
            }
        }
    }
    files
}

/// hello and a password login; returns the listed desktop id.
async fn log_in(client: &mut TestClient, password: &str) -> String {
    client.log_in("kolmogorov", password).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successful_flow_leaks_nothing_and_drops_the_password() {
    let password = Password::new();
    let setup = Setup::start(&password, 2_000).await;
    let mut client = TestClient::connect(setup.broker.addr).await;
    let resource = log_in(&mut client, &password.plain).await;

    let (holds, debug) = setup.session(&client).await;
    assert!(
        holds,
        "between login and allocation the session keeps the password for the agent"
    );
    password.assert_absent(
        "the Debug output of a session holding the password",
        debug.as_bytes(),
    );

    let alloc = client.send(&msg::allocate(&resource)).await;
    assert_eq!(result_id(&alloc), "ALLOC_SUCCESSFUL", "{}", alloc.text());
    password.assert_absent("the allocate answer", &alloc.body);
    let launched = setup.agent.last().expect("the agent was called");
    assert_eq!(
        launched.password.expose(),
        password.plain,
        "the agent got the password"
    );
    password.assert_absent(
        "the Debug output of the launch-session",
        format!("{launched:?}").as_bytes(),
    );

    let (holds, debug) = setup.session(&client).await;
    assert!(
        !holds,
        "after allocation the session no longer holds the password"
    );
    password.assert_absent("the Debug output of an allocated session", debug.as_bytes());

    let bye = client.send(&msg::bye()).await;
    assert!(bye.text().contains("bye-resp"));
    let logs = String::from_utf8_lossy(&captured().lock().unwrap()).into_owned();
    assert!(
        logs.contains("TRACE") && logs.contains("handled") && logs.contains("authenticate"),
        "the capture sees the broker's logs at TRACE"
    );
    setup.finish(&password).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_leak_nothing() {
    let password = Password::new();
    let setup = Setup::start(&password, 2_000).await;
    let mut client = TestClient::connect(setup.broker.addr).await;
    client.send(&msg::hello()).await;
    // Near misses: the typed text holds the real password.
    for typed in [
        format!("{}-wrong", password.plain),
        format!(" {}", password.plain),
    ] {
        let auth = client
            .send(&msg::authenticate("kolmogorov", &typed, Some("EXAMPLE")))
            .await;
        assert_eq!(
            result_id(&auth),
            "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD",
            "{}",
            auth.text()
        );
        password.assert_absent("a refusal", &auth.body);
        let (holds, debug) = setup.session(&client).await;
        assert!(!holds, "a refused password is not kept");
        password.assert_absent("the Debug output of a refused session", debug.as_bytes());
    }
    let logs = String::from_utf8_lossy(&captured().lock().unwrap()).into_owned();
    assert!(
        logs.contains("authentication refused"),
        "the refusal was logged"
    );
    setup.finish(&password).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_changes_leak_nothing() {
    let password = Password::new();
    let setup = Setup::start(&password, 2_000).await;
    let mut client = TestClient::connect(setup.broker.addr).await;
    client.send(&msg::hello()).await;
    // The password as the current one and as the new one; the SimpleMapper cannot change
    // passwords, and the request is refused before and after a login.
    let other = format!("{}-next", password.plain);
    for (old, new) in [(&password.plain, &other), (&other, &password.plain)] {
        let change = client
            .send(&msg::update_password("kolmogorov", old, new, "EXAMPLE"))
            .await;
        assert_eq!(
            result_id(&change),
            "PSWD_UPDATE_FAILED_NOT_SUPPORTED",
            "{}",
            change.text()
        );
        password.assert_absent("a password change refusal", &change.body);
        let (holds, debug) = setup.session(&client).await;
        assert!(!holds, "a refused change keeps no password");
        password.assert_absent("the Debug output of the session", debug.as_bytes());
    }
    log_in(&mut client, &password.plain).await;
    let change = client
        .send(&msg::update_password(
            "kolmogorov",
            &password.plain,
            &other,
            "EXAMPLE",
        ))
        .await;
    assert_eq!(
        result_id(&change),
        "PSWD_UPDATE_FAILED_ALREADY_AUTHENTICATED"
    );
    password.assert_absent("a password change refusal", &change.body);
    setup.finish(&password).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_failures_leak_nothing() {
    let password = Password::new();
    let setup = Setup::start(&password, 400).await;
    for behaviour in [
        AgentBehaviour::FailUserAuth,
        AgentBehaviour::BadXml,
        AgentBehaviour::Hang,
    ] {
        setup.agent.set(behaviour.clone());
        let mut client = TestClient::connect(setup.broker.addr).await;
        let resource = log_in(&mut client, &password.plain).await;
        let alloc = client.send(&msg::allocate(&resource)).await;
        assert!(
            result_id(&alloc).starts_with("ALLOC_FAILED"),
            "{behaviour:?}: {}",
            alloc.text()
        );
        password.assert_absent("a failed allocation", &alloc.body);
        let (holds, debug) = setup.session(&client).await;
        assert!(holds, "{behaviour:?}: kept for a retry");
        password.assert_absent(
            "the Debug output of a session after an agent failure",
            debug.as_bytes(),
        );
    }
    let logs = String::from_utf8_lossy(&captured().lock().unwrap()).into_owned();
    assert!(
        logs.contains("agent call failed"),
        "the agent failures were logged"
    );
    setup.agent.set(AgentBehaviour::Succeed);
    setup.finish(&password).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_holding_the_password_leak_nothing() {
    let password = Password::new();
    let setup = Setup::start(&password, 2_000).await;
    let escaped = msg::escape(&password.plain);
    let auth = |inner: &str| {
        format!(
            "<?xml version=\"1.0\"?><pcoip-client version=\"2.1\"><authenticate method=\"password\">\
             <username>kolmogorov</username>{inner}</authenticate></pcoip-client>"
        )
    };
    let whole = auth(&format!("<password>{escaped}</password>"));
    let cut = whole.find(&escaped).unwrap() + escaped.len() / 2;
    let core = &password.needles[2];
    let mut oversized = whole.clone().into_bytes();
    oversized.resize(64 * 1024 + 1, b' ');
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        (
            "two passwords",
            auth(&format!(
                "<password>{escaped}</password><password>{escaped}</password>"
            ))
            .into(),
        ),
        ("cut inside the password", whole.as_bytes()[..cut].to_vec()),
        (
            "cut after the password",
            whole.as_bytes()[..whole.find("</password>").unwrap()].to_vec(),
        ),
        (
            "an unescaped '<' in the password",
            auth(&format!("<password>{}</password>", password.plain)).into(),
        ),
        (
            "a control character in the password",
            auth(&format!("<password>{escaped}&#1;</password>")).into(),
        ),
        (
            "the password as an entity",
            auth(&format!("<password>&{core};</password>")).into(),
        ),
        (
            "the password as an element",
            auth(&format!("<password><{core}></password>")).into(),
        ),
        (
            "the password in a mismatched end tag",
            auth(&format!("<password>x</{core}>")).into(),
        ),
        (
            "the password as the method",
            format!(
                "<pcoip-client version=\"2.1\"><authenticate method=\"{escaped}\"/></pcoip-client>"
            )
            .into(),
        ),
        (
            "the password in a DTD",
            format!("<!DOCTYPE x [<!ENTITY p \"{escaped}\">]>{whole}").into(),
        ),
        ("the password with invalid UTF-8", {
            let mut body = auth(&format!("<password>{escaped}")).into_bytes();
            body.extend_from_slice(b"\xff\xfe</password>");
            body
        }),
        ("the password in a body over the limit", oversized),
    ];
    let mut client = TestClient::connect(setup.broker.addr).await;
    client.send(&msg::hello()).await;
    for (name, body) in &bodies {
        if body.len() > 64 * 1024 {
            // Refused on its Content-Length: the broker may close before the body is written.
            let connection = client.connection();
            let head = format!(
                "POST /pcoip-broker/xml HTTP/1.1\r\nHost: b\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = connection.send_raw(&[head.as_bytes(), body].concat()).await;
            if let Ok(answer) = connection.read_response(Duration::from_secs(20)).await {
                password.assert_absent(&format!("the answer to {name}"), &answer.body);
            }
            client.reconnect().await;
            continue;
        }
        let answer = client.send_body(body).await;
        let id = result_id(&answer);
        assert!(!id.is_empty(), "{name}: {}", answer.text());
        password.assert_absent(&format!("the answer to {name}"), &answer.body);
        if answer.close {
            client.reconnect().await;
        }
    }

    let logs = String::from_utf8_lossy(&captured().lock().unwrap()).into_owned();
    assert!(
        logs.contains("malformed request"),
        "the bad bodies were logged"
    );

    // Panic messages: what `unwrap`, `expect` and `{:?}` would print on a bad day.
    let messages = Arc::new(Mutex::new(Vec::<String>::new()));
    let previous = std::panic::take_hook();
    {
        let messages = messages.clone();
        std::panic::set_hook(Box::new(move |info| {
            messages.lock().unwrap().push(info.to_string());
        }));
    }
    let (_, session_debug) = {
        let mut client = TestClient::connect(setup.broker.addr).await;
        log_in(&mut client, &password.plain).await;
        setup.session(&client).await
    };
    let valid = whole.clone();
    let panics: Vec<Box<dyn FnOnce() + std::panic::UnwindSafe>> = vec![
        Box::new(move || {
            decode_request(valid.as_bytes()).unwrap_err();
        }),
        Box::new(move || {
            decode_request(&bodies[0].1).unwrap();
        }),
        Box::new(move || panic!("session in an impossible state: {session_debug}")),
    ];
    for panicking in panics {
        assert!(std::panic::catch_unwind(panicking).is_err());
    }
    std::panic::set_hook(previous);
    let messages = messages.lock().unwrap().clone();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(messages[0].contains("Secret(***)"), "{}", messages[0]);
    for message in &messages {
        password.assert_absent("a panic message", message.as_bytes());
    }
    setup.finish(&password).await;
}

/// Keeps the suite honest: the search does find the password where it is.
#[test]
fn the_search_finds_every_form_of_the_password() {
    let password = Password::new();
    for needle in &password.needles {
        let haystack = format!("log line: {needle} end");
        assert_eq!(
            password.found_in(haystack.as_bytes()),
            Some(needle.as_str())
        );
    }
    assert!(password.needles[1].contains("&amp;") && password.needles[1].contains("&lt;"));
    assert_eq!(password.found_in(b"Sup3r-S3cret- and nothing else"), None);
}
