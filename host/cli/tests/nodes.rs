//! Several `interstate` processes acting as one broker on a shared Redis store: a client that
//! changes node at every request (with cookies, and with `--fallback-sessions`), 200 concurrent
//! flows spread over three nodes, a Redis outage in the middle of a load, and a Redis Cluster
//! losing a master while flows run.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use interstate_tests::guests::{self, Guest};
use interstate_tests::pcoip::result_id;
use interstate_tests::redis::{KEY_A, RedisCluster, RedisServer, key_file};
use interstate_tests::{AgentBehaviour, FakeAgent, TestClient, msg, totp};
use interstate_tools::xml::element_text;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_interstate");
/// alice's authenticator secret in the example settings.
const ALICE_SECRET: &str = "JBSWY3DPEHPK3PXP";
const ADMIN_TOKEN: &str = "nodes-test-admin-token";

/// One broker process; killed on drop.
struct Node {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    /// Starts `interstate serve` with `settings` and waits for the lines naming its listeners.
    fn start(dir: &Path, name: &str, settings: &Value, args: &[&str]) -> Self {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, settings.to_string()).unwrap();
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .args(args)
            .env("INTERSTATE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut addr = None;
        let admin = loop {
            let Some(Ok(line)) = lines.next() else {
                panic!("node {name} exited before serving")
            };
            if let Some(rest) = line.strip_prefix("interstate: serving PCoIP clients on https://") {
                addr = Some(rest.trim_end_matches("/pcoip-broker/xml").parse().unwrap());
            }
            if let Some(rest) = line.strip_prefix("interstate: admin listener on ") {
                let rest = rest.split_once("://").map_or(rest, |(_, r)| r);
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            child,
            addr: addr.expect("the serving line comes first"),
            admin,
        }
    }

    /// Still running?
    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// `GET /healthz` on the admin listener: status code and body.
    async fn health(&self) -> (u16, String) {
        let mut tcp = tokio::net::TcpStream::connect(self.admin).await.unwrap();
        let request = format!(
            "GET /healthz HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n",
            self.admin
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.unwrap();
        let code = answer
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (code, answer)
    }
}

/// The example policy (Rust build) with its desktops on the fake agent, on the Redis store.
fn settings(agent: SocketAddr, store: Value, dir: &Path) -> Value {
    let wasm = guests::build(Guest::ExampleRust).path.clone();
    let root = guests::repo_root().join("guest-mappers/example-rust/example.settings.json");
    let mut mapper: Value = serde_json::from_str(&std::fs::read_to_string(root).unwrap()).unwrap();
    mapper["groups"]["artists"][0]["hostname"] = json!(agent.ip().to_string());
    mapper["groups"]["render"][0]["hostname"] = json!(format!("::ffff:{}", agent.ip()));
    mapper["groups"]["render"][0]["agent_port"] = json!(agent.port());
    let mut session = store;
    session["key_file"] = json!(key_file(dir, &[KEY_A]).display().to_string());
    json!({
        "logging": {"level": "WARNING"},
        "mapper": {
            "plugin": wasm.display().to_string(),
            "settings": mapper,
            "cache_dir": interstate_tests::component_cache_dir().display().to_string(),
            // Three brokers, Redis and the clients share two cores here: generous deadlines.
            "limits": {"max_concurrent_calls": 100, "timeout_ms": 30000}
        },
        "agent": {"port": agent.port(), "timeout_ms": 5000},
        // Every simulated client connects from 127.0.0.1.
        "server": {"host": "127.0.0.1", "port": 0, "max_connections_per_address": 1000},
        "session": session,
        "security": {"auth_failures_per_user": 1000, "auth_failures_per_address": 100000},
        "admin": {"listen": "127.0.0.1:0", "token": ADMIN_TOKEN}
    })
}

fn on_server(server: &RedisServer) -> Value {
    json!({"store": "redis", "redis": {"url": server.url(), "timeout_ms": 1000}})
}

/// Starts `n` nodes, the first alone (it compiles the component into the shared cache).
fn start_nodes(dir: &Path, settings: &Value, n: usize, args: &[&str]) -> Vec<Node> {
    (0..n)
        .map(|i| Node::start(dir, &format!("node{i}"), settings, args))
        .collect()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

/// A client that sends each request to the next node in turn.
struct Hopper<'a> {
    nodes: &'a [Node],
    next: usize,
    cookie: Option<String>,
    fallback: bool,
    log_id: String,
}

impl<'a> Hopper<'a> {
    fn new(nodes: &'a [Node], start: usize, fallback: bool, serial: usize) -> Self {
        Self {
            nodes,
            next: start,
            cookie: None,
            fallback,
            log_id: format!("ddff1100-72e7-1039-8825-{serial:012x}"),
        }
    }

    /// Sends `message` to the next node; returns the result id (or element name) and text.
    async fn send(&mut self, message: &str) -> (String, String) {
        let node = &self.nodes[self.next % self.nodes.len()];
        self.next += 1;
        let mut client = TestClient::connect(node.addr).await;
        client.log_id = Some(self.log_id.clone());
        if self.fallback {
            client.send_cookie = false;
        } else {
            client.cookie.clone_from(&self.cookie);
        }
        let response = client.send(message).await;
        if client.cookie.is_some() {
            self.cookie = client.cookie;
        }
        let text = response.text();
        (result_id(&response), text)
    }
}

/// One whole flow, each request on the next node: probe, hello, authenticate (and the code
/// for alice), list, allocate, bye.
async fn hop_flow(
    nodes: &[Node],
    start: usize,
    user: &str,
    fallback: bool,
    serial: usize,
) -> Result<(), String> {
    let mut hopper = Hopper::new(nodes, start, fallback, serial);
    let expect = |(got, text): (String, String), wanted: &str| {
        if got == wanted || text.contains(wanted) {
            Ok(text)
        } else {
            Err(format!("expected {wanted}, got {got}: {text}"))
        }
    };
    expect(hopper.send(&msg::probe()).await, "<hello-resp>")?;
    expect(hopper.send(&msg::hello()).await, "<hello-resp>")?;
    let password = format!("{user}-pw");
    let auth = hopper
        .send(&msg::authenticate(user, &password, Some("EXAMPLE")))
        .await;
    // The example's disclaimer comes first, for every user.
    expect(auth, "AUTH_SUCCESSFUL_AND_INCOMPLETE")?;
    let accepted = hopper.send(&msg::disclaimer(true)).await;
    if user == "alice" {
        expect(accepted, "AUTH_SUCCESSFUL_AND_INCOMPLETE")?;
        // A code an earlier flow spent, on any node, is refused as replayed (the record is in
        // Redis); the next time step's code is fresh and within the drift the host allows.
        let key = totp::base32_decode(ALICE_SECRET).unwrap();
        let now = unix_now();
        let mut in_ = false;
        for offset in [0, 30, -30] {
            let answer = hopper
                .send(&msg::dialog("code", &totp::totp(&key, now + offset)))
                .await;
            if answer.0 == "AUTH_SUCCESSFUL_AND_COMPLETE" {
                in_ = true;
                break;
            }
            expect(answer, "That code was already used")?;
        }
        if !in_ {
            return Err("every code of the window was already spent".into());
        }
    } else {
        expect(accepted, "AUTH_SUCCESSFUL_AND_COMPLETE")?;
    }
    let list = expect(hopper.send(&msg::list()).await, "LIST_SUCCESSFUL")?;
    let id = element_text(&list, "resource-id").ok_or("no resource-id")?;
    expect(hopper.send(&msg::allocate(&id)).await, "ALLOC_SUCCESSFUL")?;
    expect(hopper.send(&msg::bye()).await, "<bye-resp")?;
    Ok(())
}

/// Runs `count` flows of `user`, `concurrency` at a time, spread over the nodes; returns the
/// failures and how long it took.
async fn many_flows(
    nodes: &Arc<Vec<Node>>,
    user: &'static str,
    count: usize,
    concurrency: usize,
) -> (Vec<String>, Duration) {
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let nodes = nodes.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break failures;
                }
                if let Err(e) = hop_flow(&nodes, i, user, false, i).await {
                    failures.push(e);
                }
            }
        }));
    }
    let mut failures = Vec::new();
    for worker in workers {
        failures.extend(worker.await.unwrap());
    }
    (failures, started.elapsed())
}

/// Flows of bob, one after another, until `stop` (at most 5,000 flows or 90 s): a flow may
/// only fail with a clean protocol error. Returns the flows that succeeded and failed.
fn background_load(
    nodes: &Arc<Vec<Node>>,
    stop: &Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, usize)> {
    let (nodes, stop) = (nodes.clone(), stop.clone());
    tokio::spawn(async move {
        let (mut ok, mut failed) = (0, 0);
        let deadline = Instant::now() + Duration::from_secs(90);
        for i in 0..5_000 {
            if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                break;
            }
            match hop_flow(&nodes, i, "bob", false, i).await {
                Ok(()) => ok += 1,
                Err(e) => {
                    assert!(
                        e.contains("ERR_BROKER_SYS_FAILED") || e.contains("ERR_INVALID_SESSION"),
                        "{e}"
                    );
                    failed += 1;
                }
            }
        }
        (ok, failed)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_hop_three_broker_processes() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let server = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(agent.addr, on_server(&server), dir.path());
    let nodes = start_nodes(dir.path(), &settings, 3, &[]);

    // With cookies: the MFA step and every other request on another node than the last.
    hop_flow(&nodes, 0, "alice", false, 1).await.unwrap();
    let launch = agent.last().expect("the agent was called");
    assert_eq!(launch.username, "alice");
    assert_eq!(launch.password.expose(), "alice-pw");

    // Clients that drop the cookie, on nodes started with --fallback-sessions.
    let fallback_nodes = start_nodes(dir.path(), &settings, 3, &["--fallback-sessions"]);
    hop_flow(&fallback_nodes, 1, "alice", true, 2)
        .await
        .unwrap();
    hop_flow(&fallback_nodes, 2, "bob", true, 3).await.unwrap();
    drop(fallback_nodes);

    // 200 concurrent flows over the three nodes, each request on the next node.
    let nodes = Arc::new(nodes);
    let (failures, took) = many_flows(&nodes, "bob", 200, 200).await;
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    println!(
        "200 concurrent hopping flows on 3 nodes + redis: {:.1} s, {:.1} flows/s",
        took.as_secs_f64(),
        200.0 / took.as_secs_f64()
    );
    let mut nodes = Arc::try_unwrap(nodes).ok().unwrap();
    assert!(nodes.iter_mut().all(Node::alive));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_is_a_clean_error_and_the_broker_heals_by_itself() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut server = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(agent.addr, on_server(&server), dir.path());
    let nodes = Arc::new(start_nodes(dir.path(), &settings, 2, &[]));
    assert_eq!(nodes[0].health().await.0, 200);

    // A load runs; Redis dies under it.
    let stop = Arc::new(AtomicBool::new(false));
    let load = background_load(&nodes, &stop);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.stop();
    let mut client = TestClient::connect(nodes[1].addr).await;
    let hello = client.send(&msg::hello()).await;
    assert_eq!(
        result_id(&hello),
        "ERR_BROKER_SYS_FAILED",
        "{}",
        hello.text()
    );
    assert!(hello.text().contains("session store"), "{}", hello.text());
    let (code, body) = nodes[0].health().await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("not ready"), "{body}");

    tokio::time::sleep(Duration::from_secs(1)).await;
    server.restart().await;
    // Back by itself: no restart of the brokers.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if hop_flow(&nodes, 0, "bob", false, 99_999).await.is_ok()
            && nodes[1].health().await.0 == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "the brokers did not come back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = load.await.unwrap();
    println!("outage: {ok} flows succeeded, {failed} answered a clean error");
    assert!(ok > 0 && failed > 0, "ok {ok}, failed {failed}");
    let mut nodes = Arc::try_unwrap(nodes).ok().unwrap();
    assert!(nodes.iter_mut().all(Node::alive), "nothing panicked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_run_across_a_redis_cluster_failover() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut cluster = RedisCluster::start(3, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let store = json!({"store": "redis", "redis": {"cluster": cluster.urls(), "timeout_ms": 1000}});
    let settings = settings(agent.addr, store, dir.path());
    let nodes = Arc::new(start_nodes(dir.path(), &settings, 3, &[]));
    hop_flow(&nodes, 0, "alice", false, 1).await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let load = background_load(&nodes, &stop);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The master of the indexes' slot (every hello writes there) goes away; its replica takes
    // over after the cluster's node timeout.
    let killed_at = Instant::now();
    let victim = cluster.fail_over("interstate:{idx}:live").await;
    println!(
        "cluster failover: node {victim}'s replica serves its slots {:.1} s after it died",
        killed_at.elapsed().as_secs_f64()
    );
    let mut consecutive = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while consecutive < 10 {
        match hop_flow(&nodes, consecutive, "bob", false, 50_000 + consecutive).await {
            Ok(()) => consecutive += 1,
            Err(_) => consecutive = 0,
        }
        assert!(
            Instant::now() < deadline,
            "flows did not recover after the failover"
        );
    }
    println!(
        "cluster failover: flows serve again {:.1} s after the master died",
        killed_at.elapsed().as_secs_f64()
    );
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = load.await.unwrap();
    println!("during the failover: {ok} flows succeeded, {failed} answered a clean error");
    assert!(ok > 0);
    let mut nodes = Arc::try_unwrap(nodes).ok().unwrap();
    assert!(nodes.iter_mut().all(Node::alive), "nothing panicked");
}
