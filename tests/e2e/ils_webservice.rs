//! Issue #15: an interstate_love_song settings file for its `SimpleWebserviceMapper` plugin,
//! unchanged (no `mapper.allowed_hosts`, no `.wasm` path), served by the embedded webservice
//! mapper against the web service of [`webservice`](super::webservice), and that service's
//! failures, each a clean protocol answer from a broker that keeps serving.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper::StatusCode;
use interstate::settings::{PluginSource, Settings};
use interstate_tests::pcoip::{flow, result_id};
use interstate_tests::{
    AgentBehaviour, FakeAgent, PASSWORD, TestBroker, TestClient, component_cache_dir, msg,
};
use interstate_tools::wire::WireResponse;
use interstate_tools::xml::element_text;
use serde_json::json;

use super::webservice::{Fault, USER, WebService, log_in_and_list};

/// ILS's `auth_username_suffix` in the example; the service expects it in the Basic
/// credentials, and only there.
const SUFFIX: &str = "@example.com";

/// A failure the service causes must be answered within this (the mapper's own HTTP timeout is
/// 4 s and the call's deadline 5 s; none of these failures waits for either).
const PROMPT: Duration = Duration::from_secs(2);

/// Writes the settings file an ILS user of the SimpleWebserviceMapper plugin has, pointing at
/// `service`, and returns its path.
fn write_ils_file(dir: &Path, service: &WebService) -> PathBuf {
    let base = format!("http://{}", service.addr);
    let ils = json!({
        "logging": {"level": "INFO"},
        "beaker": {"type": "file", "data_dir": "/tmp"},
        "mapper": {"plugin": "SimpleWebserviceMapper", "settings": {
            "base_url": format!("{base}/api"), "cookie_auth_url": format!("{base}/login"),
            "cookie_name": "session", "auth_username_suffix": SUFFIX, "domains": ["EXAMPLE"]}}
    });
    let path = dir.join("settings.json");
    std::fs::write(&path, serde_json::to_string_pretty(&ils).unwrap()).unwrap();
    path
}

/// Starts a broker from the ILS file as `interstate --config` would load it.
async fn start_broker(path: &Path, service: &WebService, agent: &FakeAgent) -> TestBroker {
    interstate_tests::init_logging();
    let mut settings = Settings::load(path).unwrap();
    assert_eq!(settings.mapper.plugin, PluginSource::Webservice);
    assert_eq!(
        settings.mapper.allowed_hosts,
        [format!("http://{}", service.addr)],
        "the service's origin, derived from base_url and cookie_auth_url"
    );
    // The harness's own, not the file's: the fake agent listens on a port of its own rather
    // than 60443, and compiled components are cached across tests.
    settings.agent.port = agent.addr.port();
    settings.mapper.cache_dir = Some(component_cache_dir());
    TestBroker::start_with(settings).await.unwrap()
}

/// Sends `message`, returning the answer and how long it took.
async fn timed(client: &mut TestClient, message: &str) -> (WireResponse, Duration) {
    let started = Instant::now();
    let answer = client.send(message).await;
    (answer, started.elapsed())
}

/// A new client's hello and password login.
async fn authenticate(broker: &TestBroker, password: &str) -> (TestClient, WireResponse, Duration) {
    let mut client = TestClient::connect(broker.addr).await;
    let hello = client.send(&msg::hello()).await;
    assert!(
        hello.text().contains("<domain>EXAMPLE</domain>"),
        "{}",
        hello.text()
    );
    let (auth, took) = timed(
        &mut client,
        &msg::authenticate(USER, password, Some("EXAMPLE")),
    )
    .await;
    (client, auth, took)
}

/// A broker-side failure: an `error-resp` with `ERR_BROKER_SYS_FAILED` that names nothing of
/// the service, answered promptly.
fn assert_sys_failed(case: &str, answer: &WireResponse, took: Duration) {
    let text = answer.text();
    assert!(text.contains("<error-resp>"), "{case}: {text}");
    assert_eq!(result_id(answer), "ERR_BROKER_SYS_FAILED", "{case}: {text}");
    assert!(
        !text.contains(PASSWORD) && !text.contains("127.0.0.1"),
        "{case}: {text}"
    );
    assert!(took < PROMPT, "{case}: answered after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ils_webservice_file_full_flow() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let service = WebService::start_on("127.0.0.1:0".parse().unwrap(), agent.addr, SUFFIX).await;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&write_ils_file(dir.path(), &service), &service, &agent).await;

    let mut client = TestClient::connect(broker.addr).await;
    let probe = client.send(&msg::probe()).await;
    assert!(probe.text().contains("<hello-resp>"), "{}", probe.text());
    let text = log_in_and_list(&mut client).await;
    assert!(
        text.contains("<resource-name>Elisabeth Taylor</resource-name>")
            && text.contains("<resource-name>James Dean</resource-name>"),
        "{text}"
    );
    let id = element_text(&text, "resource-id").unwrap();
    assert_eq!(id, agent.addr.ip().to_string());
    let alloc = client.send(&msg::allocate(&id)).await;
    assert_eq!(result_id(&alloc), "ALLOC_SUCCESSFUL", "{}", alloc.text());
    assert!(element_text(&alloc.text(), "connect-tag").is_some_and(|t| !t.is_empty()));
    let launch = agent.last().expect("the agent was called");
    assert_eq!(launch.username, USER, "the suffix is for the service only");
    assert_eq!(launch.password.expose(), PASSWORD);
    assert_eq!(launch.domain, "EXAMPLE");
    let bye = client.send(&msg::bye()).await;
    assert!(bye.text().contains("<bye-resp"), "{}", bye.text());

    assert_eq!(
        service.paths(),
        ["/login", "/api/user=kolmogorov", "/api/user=kolmogorov"],
        "login (with the suffixed Basic credentials), listing, listing again for the allocation"
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ils_webservice_failures_are_clean_answers() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let service = WebService::start_on("127.0.0.1:0".parse().unwrap(), agent.addr, SUFFIX).await;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&write_ils_file(dir.path(), &service), &service, &agent).await;
    let mut timings = Vec::new();

    // 401: the service refuses the credentials, the user gets a wrong-password answer.
    let (_, auth, took) = authenticate(&broker, "not the password").await;
    assert_eq!(
        result_id(&auth),
        "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD",
        "{}",
        auth.text()
    );
    assert!(took < PROMPT, "401: answered after {took:?}");
    timings.push(("login 401", took));

    // A non-200 answer to the login.
    service.set_fault(Fault::LoginStatus(StatusCode::INTERNAL_SERVER_ERROR));
    let (_, auth, took) = authenticate(&broker, PASSWORD).await;
    assert_sys_failed("login 500", &auth, took);
    timings.push(("login 500", took));
    service.set_fault(Fault::None);

    // A non-200 answer to the listing, then a body that is not JSON; each time the session
    // stays logged in and lists again once the service is well.
    let (mut client, auth, _) = authenticate(&broker, PASSWORD).await;
    assert_eq!(result_id(&auth), "AUTH_SUCCESSFUL_AND_COMPLETE");
    for (case, fault) in [
        (
            "listing 503",
            Fault::ListingStatus(StatusCode::SERVICE_UNAVAILABLE),
        ),
        ("listing not JSON", Fault::ListingNotJson),
    ] {
        service.set_fault(fault);
        let (list, took) = timed(&mut client, &msg::list()).await;
        assert_sys_failed(case, &list, took);
        timings.push((case, took));
        service.set_fault(Fault::None);
        let list = client.send(&msg::list()).await;
        assert_eq!(
            result_id(&list),
            "LIST_SUCCESSFUL",
            "{case}: {}",
            list.text()
        );
    }

    // The service is down: nothing listens on its port.
    let addr = service.addr;
    service.stop().await;
    let (_, auth, took) = authenticate(&broker, PASSWORD).await;
    assert_sys_failed("service down", &auth, took);
    timings.push(("service down", took));

    // The broker kept serving throughout: once the service is back, a whole flow succeeds.
    let service = WebService::start_on(addr, agent.addr, SUFFIX).await;
    flow(broker.addr, USER, PASSWORD).await.unwrap();
    assert_eq!(
        service.paths(),
        ["/login", "/api/user=kolmogorov", "/api/user=kolmogorov"]
    );
    for (case, took) in timings {
        eprintln!("ils_webservice: {case} answered in {took:?}");
    }
    broker.stop().await;
}
