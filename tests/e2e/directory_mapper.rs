//! The embedded DirectoryMapper (`"plugin": "DirectoryMapper"`) through the real TLS broker
//! against a real `slapd` (LDAPS with the test CA): nested groups to desktops, the directory's
//! refusals as the client's answers, a must-change password changed in the directory, the
//! directory down and back, and the broker's failure limits, audit log and metrics around it.
//! Plus an ignored measurement of full logins with and without the service-account pool.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use interstate_tests::pcoip::result_id;
use interstate_tests::slapd::{GROUPS_DN, SERVICE_PASSWORD, Slapd, password_of, user_dn};
use interstate_tests::{AgentBehaviour, FakeAgent, TestBroker, TestClient, msg};
use interstate_tools::xml::element_text;
use serde_json::{Value, json};

/// The desktop of `artists` (alice, directly): the fake agent.
const ART_DESKTOP: &str = "Art Workstation";
/// The desktop of `staff` (alice through `artists`, bob directly); never allocated.
const STAFF_DESKTOP: &str = "Staff Workstation";
/// The desktop of `loop-b` (bob through the cycle); alice must not see it.
const LOOP_DESKTOP: &str = "Loop Workstation";
/// The desktop of `changers` (the must-change user `reset`): the fake agent.
const CHANGERS_DESKTOP: &str = "Changers Workstation";

/// The `directory.profiles.corp` of `slapd`: LDAPS with its CA, the service account from a
/// password file, groups by `member` under `ou=groups`.
fn profile(slapd: &Slapd, pool_size: u32) -> Value {
    let password_file = slapd.dir().join("service.pw");
    std::fs::write(&password_file, format!("{SERVICE_PASSWORD}\n")).unwrap();
    json!({
        "kind": "ldap",
        "servers": [slapd.ldaps_url()],
        "base_dn": interstate_tests::slapd::BASE_DN,
        "bind_dn": interstate_tests::slapd::SERVICE_DN,
        "password_file": password_file,
        "groups": {"base_dn": GROUPS_DN},
        "tls": {"ca_file": slapd.ca_file},
        "timeout_ms": 3000,
        "pool_size": pool_size,
    })
}

/// Broker settings: the DirectoryMapper on profile `corp`, desktops by group, the fake agent's
/// port as the default agent port.
fn settings(slapd: &Slapd, agent: SocketAddr, pool_size: u32) -> Value {
    let agent_host = agent.ip().to_string();
    json!({
        "logging": {"level": "INFO"},
        "beaker": {"type": "file", "data_dir": "/tmp"},
        "directory": {"profiles": {"corp": profile(slapd, pool_size)}},
        "mapper": {
            "plugin": "DirectoryMapper",
            "settings": {
                "profile": "corp",
                "domains": ["CORP", "LAB"],
                "logon_domain": "CORP",
                "groups": {
                    "artists": [{"name": ART_DESKTOP, "hostname": agent_host}],
                    "Staff": [{"name": STAFF_DESKTOP, "hostname": "staff-1.corp.example"}],
                    "loop-b": [{"name": LOOP_DESKTOP, "hostname": "loop-1.corp.example"}],
                    "changers": [{"name": CHANGERS_DESKTOP, "hostname": agent_host}]
                }
            }
        },
        "agent": {"port": agent.port(), "timeout_ms": 2000}
    })
}

/// hello, then a password login in domain `LAB`; returns the client and the answer's result id.
async fn login(addr: SocketAddr, user: &str, password: &str) -> (TestClient, String) {
    let mut client = TestClient::connect(addr).await;
    let hello = client.send(&msg::hello()).await;
    assert!(hello.text().contains("<hello-resp>"), "{}", hello.text());
    let auth = client
        .send(&msg::authenticate(user, password, Some("LAB")))
        .await;
    let id = result_id(&auth);
    (client, id)
}

/// The resource names and ids of a listing.
fn listed(text: &str) -> Vec<(String, String)> {
    text.split("<resource>")
        .skip(1)
        .map(|part| {
            (
                element_text(part, "resource-name").unwrap_or_default(),
                element_text(part, "resource-id").unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_group_member_lists_and_allocates_with_the_directory_login() {
    let slapd = Slapd::start().await;
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(settings(&slapd, agent.addr, 2)).await;

    let mut client = TestClient::connect(broker.addr).await;
    let hello = client.send(&msg::hello()).await;
    let text = hello.text();
    assert!(
        text.contains("<domain>CORP</domain>") && text.contains("<domain>LAB</domain>"),
        "the mapper's domains reach the login dialog: {text}"
    );
    let alice = password_of("alice");
    let auth = client
        .send(&msg::authenticate("alice", &alice, Some("LAB")))
        .await;
    assert_eq!(
        result_id(&auth),
        "AUTH_SUCCESSFUL_AND_COMPLETE",
        "{}",
        auth.text()
    );

    let list = client.send(&msg::list()).await;
    assert_eq!(result_id(&list), "LIST_SUCCESSFUL", "{}", list.text());
    let desktops = listed(&list.text());
    let mut names: Vec<&str> = desktops.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [ART_DESKTOP, STAFF_DESKTOP],
        "artists directly, staff through artists, nothing else: {}",
        list.text()
    );
    let (_, art_id) = desktops.iter().find(|(n, _)| n == ART_DESKTOP).unwrap();

    let alloc = client.send(&msg::allocate(art_id)).await;
    assert_eq!(result_id(&alloc), "ALLOC_SUCCESSFUL", "{}", alloc.text());
    let launch = agent.last().expect("the agent was called");
    assert_eq!(launch.username, "alice");
    assert_eq!(launch.password.expose(), alice);
    assert_eq!(
        launch.domain, "CORP",
        "the logon domain of the settings, not the one typed"
    );

    // A desktop of someone else's group is not allocatable by guessing its id.
    let bob = login(broker.addr, "bob", &password_of("bob")).await;
    let (mut bob, id) = bob;
    assert_eq!(id, "AUTH_SUCCESSFUL_AND_COMPLETE");
    let list = bob.send(&msg::list()).await;
    let mut names: Vec<String> = listed(&list.text()).into_iter().map(|(n, _)| n).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [LOOP_DESKTOP, STAFF_DESKTOP],
        "bob: staff directly, loop-b through the cycle"
    );
    let loop_id = listed(&list.text())
        .into_iter()
        .find(|(n, _)| n == LOOP_DESKTOP)
        .unwrap()
        .1;
    let stolen = client.send(&msg::allocate(&loop_id)).await;
    assert_ne!(result_id(&stolen), "ALLOC_SUCCESSFUL", "{}", stolen.text());
    assert_eq!(agent.received.lock().unwrap().len(), 1);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_refusals_become_the_clients_answers() {
    let slapd = Slapd::start().await;
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(settings(&slapd, agent.addr, 2)).await;

    for (user, password, want) in [
        (
            "alice",
            "not-alices-password".to_owned(),
            "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD",
        ),
        (
            "nobody",
            "whatever-pw-1".to_owned(),
            "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD",
        ),
        ("lock", password_of("lock"), "AUTH_FAILED_ACCESS_DENIED"),
        // eve: expired without grace logins, so she cannot change it herself.
        ("eve", password_of("eve"), "AUTH_FAILED_EXPIRED_PASSWORD"),
        // grace: expired, with grace logins left.
        (
            "grace",
            password_of("grace"),
            "AUTH_FAILED_EXPIRED_PASSWORD",
        ),
        (
            "carol",
            password_of("carol"),
            "AUTH_FAILED_USER_HAS_NO_RESOURCE",
        ),
    ] {
        let (_, id) = login(broker.addr, user, &password).await;
        assert_eq!(id, want, "{user}");
    }
    assert!(agent.last().is_none());
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_must_change_password_is_changed_in_the_directory() {
    let slapd = Slapd::start().await;
    // `reset` (pwdReset) gets a desktop through a group added now.
    slapd.ldapadd(&format!(
        "dn: cn=changers,{GROUPS_DN}\nobjectClass: groupOfNames\ncn: changers\nmember: {}\n\n",
        user_dn("reset")
    ));
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(settings(&slapd, agent.addr, 2)).await;
    let old = password_of("reset");
    let new = "Reset-new-pw-2";

    let (mut client, id) = login(broker.addr, "reset", &old).await;
    assert_eq!(id, "AUTH_FAILED_EXPIRED_PASSWORD");
    let weak = client
        .send(&msg::update_password("reset", &old, "short", "LAB"))
        .await;
    assert_eq!(
        result_id(&weak),
        "PSWD_UPDATE_FAILED_WEAK_PASSWORD",
        "{}",
        weak.text()
    );
    assert!(slapd.whoami(&user_dn("reset"), &old), "nothing changed yet");
    let changed = client
        .send(&msg::update_password("reset", &old, new, "LAB"))
        .await;
    assert_eq!(
        result_id(&changed),
        "PSWD_UPDATE_SUCCESSFUL_AUTH_COMPLETE",
        "{}",
        changed.text()
    );
    assert!(
        slapd.whoami(&user_dn("reset"), new),
        "the directory has the new password"
    );
    assert!(
        !slapd.whoami(&user_dn("reset"), &old),
        "and not the old one"
    );

    let list = client.send(&msg::list()).await;
    assert_eq!(result_id(&list), "LIST_SUCCESSFUL", "{}", list.text());
    let desktops = listed(&list.text());
    assert_eq!(desktops.len(), 1, "{}", list.text());
    assert_eq!(desktops[0].0, CHANGERS_DESKTOP);
    let alloc = client.send(&msg::allocate(&desktops[0].1)).await;
    assert_eq!(result_id(&alloc), "ALLOC_SUCCESSFUL", "{}", alloc.text());
    let launch = agent.last().expect("the agent was called");
    assert_eq!(launch.username, "reset");
    assert_eq!(
        launch.password.expose(),
        new,
        "the agent gets the new password"
    );
    assert_eq!(launch.domain, "CORP");

    let (_, id) = login(broker.addr, "reset", new).await;
    assert_eq!(
        id, "AUTH_SUCCESSFUL_AND_COMPLETE",
        "a fresh login, new password"
    );
    let (_, id) = login(broker.addr, "reset", &old).await;
    assert_eq!(id, "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_directory_is_a_system_failure_never_a_wrong_password() {
    let mut slapd = Slapd::start().await;
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(settings(&slapd, agent.addr, 2)).await;
    let alice = password_of("alice");

    // The pool holds a service connection that dies with the server.
    let (_, id) = login(broker.addr, "alice", &alice).await;
    assert_eq!(id, "AUTH_SUCCESSFUL_AND_COMPLETE");
    // A session that logged in before the outage cannot list during it.
    let (mut before, id) = login(broker.addr, "alice", &alice).await;
    assert_eq!(id, "AUTH_SUCCESSFUL_AND_COMPLETE");

    slapd.stop();
    for password in [alice.as_str(), "not-alices-password"] {
        let (_, id) = login(broker.addr, "alice", password).await;
        assert_eq!(id, "ERR_BROKER_SYS_FAILED", "directory down, {password:?}");
    }
    let list = before.send(&msg::list()).await;
    assert_ne!(result_id(&list), "LIST_SUCCESSFUL", "{}", list.text());

    slapd.restart().await;
    let (_, id) = login(broker.addr, "alice", &alice).await;
    assert_eq!(id, "AUTH_SUCCESSFUL_AND_COMPLETE", "back after restart");
    let (_, id) = login(broker.addr, "alice", "not-alices-password").await;
    assert_eq!(id, "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_limits_audit_and_metrics_count_directory_logins() {
    let slapd = Slapd::start().await;
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let mut settings = settings(&slapd, agent.addr, 2);
    settings["security"] = json!({"auth_failures_per_user": 3, "auth_failures_per_address": 1000, "auth_window_s": 300});
    settings["logging"]["audit_file"] = Value::String(audit.display().to_string());
    let broker = TestBroker::start(settings).await;
    let stats = broker.running.broker.stats();
    let bob = password_of("bob");

    let (_, id) = login(broker.addr, "bob", &bob).await;
    assert_eq!(id, "AUTH_SUCCESSFUL_AND_COMPLETE");
    for _ in 0..3 {
        let (_, id) = login(broker.addr, "bob", "not-bobs-password").await;
        assert_eq!(id, "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD");
    }
    assert_eq!(stats.mapper_logins.load(Ordering::Relaxed), 4);
    assert_eq!(stats.rate_limited.load(Ordering::Relaxed), 0);

    // Past the cap even the right password is refused, uniformly, without the mapper (so
    // without slapd).
    let (_, id) = login(broker.addr, "Bob", &bob).await;
    assert_eq!(id, "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD");
    assert_eq!(stats.mapper_logins.load(Ordering::Relaxed), 4);
    assert_eq!(stats.rate_limited.load(Ordering::Relaxed), 1);
    assert!(slapd.whoami(&user_dn("bob"), &bob), "slapd still takes it");

    let records: Vec<Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let count = |event: &str| {
        records
            .iter()
            .filter(|r| r["event"] == event && r["user"].as_str() == Some("bob"))
            .count()
    };
    assert_eq!(count("authn_login_success"), 1, "{records:?}");
    assert_eq!(count("authn_login_fail"), 3, "{records:?}");
    assert!(
        records.iter().any(|r| r["event"] == "authn_login_fail_max"),
        "{records:?}"
    );
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(!text.contains(&bob), "no password in the audit log");

    let metrics = interstate::admin::metrics(&broker.running).await;
    let sample = |outcome: &str| {
        let prefix = format!("interstate_logins_total{{outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    assert_eq!(sample("success"), Some(1.0), "{metrics}");
    assert_eq!(sample("rejected"), Some(3.0), "{metrics}");
    assert_eq!(sample("rate_limited"), Some(1.0), "{metrics}");
    broker.stop().await;
}

/// Full broker logins (a new TLS connection, then hello + authenticate timed: the mapper's bind
/// and group search) against the local slapd: 8 clients, 200 logins, pool 4 vs none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn measure_directory_logins_with_and_without_the_pool() {
    const CLIENTS: usize = 8;
    const LOGINS: usize = 200;
    let slapd = Slapd::start().await;
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    for pool_size in [4, 0] {
        let broker = TestBroker::start(settings(&slapd, agent.addr, pool_size)).await;
        // Warm-up: the component compiled and instantiated once.
        let (_, id) = login(broker.addr, "alice", &password_of("alice")).await;
        assert_eq!(id, "AUTH_SUCCESSFUL_AND_COMPLETE");
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..CLIENTS {
            let next = next.clone();
            let addr = broker.addr;
            tasks.push(tokio::spawn(async move {
                let password = password_of("alice");
                let mut latencies = Vec::new();
                loop {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    if seq >= LOGINS {
                        break;
                    }
                    let mut client = TestClient::connect(addr).await;
                    let t = Instant::now();
                    client.send(&msg::hello()).await;
                    let auth = client
                        .send(&msg::authenticate("alice", &password, Some("CORP")))
                        .await;
                    latencies.push((t.elapsed(), seq));
                    assert_eq!(result_id(&auth), "AUTH_SUCCESSFUL_AND_COMPLETE");
                }
                latencies
            }));
        }
        let mut latencies: Vec<(Duration, usize)> = Vec::new();
        for task in tasks {
            latencies.extend(
                tokio::time::timeout(Duration::from_secs(120), task)
                    .await
                    .expect("bounded time")
                    .unwrap(),
            );
        }
        let elapsed = started.elapsed();
        assert_eq!(latencies.len(), LOGINS);
        latencies.sort_unstable();
        let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)].0;
        println!(
            "pool_size {pool_size}: {LOGINS} logins by {CLIENTS} clients in {elapsed:.2?}: {:.1} logins/s; hello+authenticate p50 {:.1?} p90 {:.1?} p99 {:.1?}",
            LOGINS as f64 / elapsed.as_secs_f64(),
            pct(50),
            pct(90),
            pct(99),
        );
        println!(
            "pool_size {pool_size}: slowest (latency, start order) {:.1?}",
            &latencies[latencies.len() - 5..]
        );
        broker.stop().await;
    }
}
