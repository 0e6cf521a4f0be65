//! The operator's view: the admin listener's hardening (token for every state change, Host and
//! Origin, TLS), `/metrics` read by a Prometheus parser, the audit log, the broker's events on
//! the feed over TLS and a websocket, and the admin API ending a session.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use interstate::app::Reloader;
use interstate_feed::signer::SigningKey;
use interstate_tests::broker::simple_settings;
use interstate_tests::pcoip::{flow, result_id};
use interstate_tests::{AgentBehaviour, FakeAgent, PASSWORD, TestBroker, TestClient, msg};
use interstate_tools::wire::{Verify, tls_config};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The admin token of these tests.
pub const TOKEN: &str = "operator-token-for-tests";

/// An admin listener of a test broker.
pub struct Admin {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Whether it speaks TLS.
    pub tls: bool,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Admin {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Admin {
    /// Serves the admin listener of `broker` on 127.0.0.1:0 with `token`.
    pub async fn start(broker: &TestBroker, token: Option<&str>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reloader = Reloader::new(Arc::new(|| Err("no settings source in this test".into())));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(interstate::admin::run(
            listener,
            broker.running.clone(),
            reloader,
            token.map(str::to_owned),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            tls: broker.running.broker.current().settings.admin_tls,
            stop: Some(stop),
        }
    }

    /// Opens a connection (TLS when the listener speaks it, accepting the broker's certificate).
    pub async fn connect(&self) -> Box<dyn Io> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        if !self.tls {
            return Box::new(tcp);
        }
        let config = tls_config(&Verify::Insecure).unwrap();
        let connector = tokio_rustls::TlsConnector::from(config);
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        Box::new(connector.connect(name, tcp).await.unwrap())
    }

    /// One request with `headers` (a `Host` naming the listener is added unless given) and
    /// `body`; returns the status, the head and the body.
    pub async fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String, String) {
        let mut head = format!("{method} {target} HTTP/1.1\r\n");
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: {}\r\n", self.addr));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        let mut io = self.connect().await;
        io.write_all(head.as_bytes()).await.unwrap();
        io.write_all(body).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), io.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, head.to_owned(), body.to_owned())
    }

    /// A request signed the feed's strict way with [`TOKEN`].
    pub async fn signed(&self, method: &str, target: &str, body: &[u8]) -> (u16, String) {
        let signature = sign(method, target, body);
        let (status, _, body) = self
            .request(
                method,
                target,
                &[
                    ("X-Channelstream-Secret", &signature),
                    ("Content-Type", "application/json"),
                ],
                body,
            )
            .await;
        (status, body)
    }

    /// Mints a feed connection on `channels` and opens its websocket.
    pub async fn subscribe(&self, user: &str, channels: &[&str]) -> Subscriber {
        let body = json!({"username": user, "channels": channels}).to_string();
        let (status, answer) = self.signed("POST", "/feed/connect", body.as_bytes()).await;
        assert_eq!(status, 200, "{answer}");
        let conn_id = serde_json::from_str::<Value>(&answer).unwrap()["conn_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let io = self.connect().await;
        let scheme = if self.tls { "wss" } else { "ws" };
        let url = format!("{scheme}://{}/feed/ws?conn_id={conn_id}", self.addr);
        let (socket, _) = tokio_tungstenite::client_async(url, io).await.unwrap();
        Subscriber { socket }
    }
}

/// Anything a connection to the admin listener can be.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A websocket subscriber of the feed.
pub struct Subscriber {
    socket: tokio_tungstenite::WebSocketStream<Box<dyn Io>>,
}

impl Subscriber {
    /// The websocket itself.
    pub fn socket_mut(&mut self) -> &mut tokio_tungstenite::WebSocketStream<Box<dyn Io>> {
        &mut self.socket
    }

    /// Every event received until `done` holds for one of them or `within` passes, with the
    /// raw text of every frame.
    pub async fn until(
        &mut self,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> (Vec<Value>, String) {
        let mut events = Vec::new();
        let mut raw = String::new();
        let deadline = tokio::time::Instant::now() + within;
        while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, self.socket.next()).await
        {
            let Ok(text) = frame.to_text() else { continue };
            raw.push_str(text);
            raw.push('\n');
            let Ok(Value::Array(batch)) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            let mut finished = false;
            for event in batch {
                finished |= done(&event);
                events.push(event);
            }
            if finished {
                break;
            }
        }
        (events, raw)
    }
}

/// The strict-mode token for a request, signed with [`TOKEN`] now.
pub fn sign(method: &str, target: &str, body: &[u8]) -> String {
    let value = format!("{method} {target} {}", hex::encode(Sha256::digest(body)));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    SigningKey::derive(TOKEN.as_bytes()).sign(&value, now)
}

/// Test settings with the admin token, TLS on the loopback admin listener, and the audit log in
/// `audit`.
pub fn operator_settings(agent: SocketAddr, audit: &Path, tls: bool) -> Value {
    let mut settings = simple_settings(agent);
    settings["admin"] = json!({"token": TOKEN, "tls": tls, "node": "node-a"});
    settings["logging"]["audit_file"] = Value::String(audit.display().to_string());
    settings
}

/// The audit records written so far.
pub fn audit_records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per audit line"))
        .collect()
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_refuses_state_changes_without_a_token_and_foreign_origins() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(simple_settings(agent.addr)).await;

    // No token, loopback: reads are open, every state change is refused.
    let open = Admin::start(&broker, None).await;
    let (status, _, _) = open.request("GET", "/healthz", &[], b"").await;
    assert_eq!(status, 200);
    let evil = [
        ("Host", "evil.example:80"),
        ("Origin", "http://evil.example"),
    ];
    let (status, _, body) = open.request("POST", "/reload", &evil, b"").await;
    assert_ne!(status, 200, "{body}");
    let (status, _, body) = open.request("POST", "/reload", &[], b"").await;
    assert_eq!(status, 403, "a loopback listener without a token: {body}");
    assert!(body.contains("admin.token"), "{body}");
    let (status, _, _) = open
        .request("POST", "/agents/forget?agent=127.0.0.2", &[], b"")
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = open.request("GET", "/admin/api/sessions", &[], b"").await;
    assert_eq!(status, 403);

    // With a token: a foreign Host or Origin is refused even with the right token.
    let guarded = Admin::start(&broker, Some(TOKEN)).await;
    let bearer = format!("Bearer {TOKEN}");
    let (status, _, _) = guarded
        .request(
            "GET",
            "/metrics",
            &[("Authorization", &bearer), ("Host", "attacker.example")],
            b"",
        )
        .await;
    assert_eq!(status, 421, "DNS rebinding: a foreign Host");
    let (status, _, _) = guarded
        .request(
            "GET",
            "/metrics",
            &[
                ("Authorization", &bearer),
                ("Origin", "http://attacker.example"),
            ],
            b"",
        )
        .await;
    assert_eq!(status, 403, "a cross-site request");
    let (status, _, _) = guarded.request("GET", "/metrics", &[], b"").await;
    assert_eq!(status, 401, "reads need the token once one is set");
    let origin = format!("http://{}", guarded.addr);
    let (status, _, _) = guarded
        .request(
            "GET",
            "/healthz",
            &[("Authorization", &bearer), ("Origin", &origin)],
            b"",
        )
        .await;
    assert_eq!(status, 200, "this listener's own origin");
    let localhost = format!("localhost:{}", guarded.addr.port());
    let (status, _, _) = guarded
        .request(
            "GET",
            "/healthz",
            &[("Authorization", &bearer), ("Host", &localhost)],
            b"",
        )
        .await;
    assert_eq!(status, 200, "localhost names a loopback listener");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_and_count_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(operator_settings(
        agent.addr,
        &dir.path().join("audit.jsonl"),
        false,
    ))
    .await;
    let admin = Admin::start(&broker, Some(TOKEN)).await;
    flow(broker.addr, "kolmogorov", PASSWORD).await.unwrap();
    let mut client = TestClient::connect(broker.addr).await;
    client.send(&msg::hello()).await;
    let refused = client
        .send(&msg::authenticate("kolmogorov", "wrong", None))
        .await;
    assert_eq!(
        result_id(&refused),
        "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD"
    );

    let bearer = format!("Bearer {TOKEN}");
    let (status, head, body) = admin
        .request("GET", "/metrics", &[("Authorization", &bearer)], b"")
        .await;
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("openmetrics-text"), "{head}");
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    let value = |name: &str, label: Option<(&str, &str)>| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    assert_eq!(value("interstate_sessions_created_total", None), 2.0);
    assert_eq!(
        value("interstate_logins_total", Some(("outcome", "success"))),
        1.0
    );
    assert_eq!(
        value("interstate_logins_total", Some(("outcome", "rejected"))),
        1.0
    );
    assert_eq!(
        value("interstate_allocations_total", Some(("result", "success"))),
        1.0
    );
    assert_eq!(
        value("interstate_sessions_ended_total", Some(("reason", "bye"))),
        1.0
    );
    assert_eq!(
        value(
            "interstate_mapper_calls_total",
            Some(("export", "authenticate"))
        ),
        2.0
    );
    assert_eq!(value("interstate_sessions", None), 1.0, "one live session");
    assert_eq!(value("interstate_build_info", None), 1.0);
    assert!(
        value("interstate_certificate_expiry_timestamp_seconds", None) > 1.7e9,
        "the certificate's notAfter"
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric.starts_with("interstate_agent_latency_seconds")),
        "agent latency histogram"
    );
    // Nothing personal becomes a label.
    for sample in &scrape.samples {
        for (key, value) in sample.labels.iter() {
            assert!(
                !value.contains("kolmogorov") && !value.contains("127.0.0.1"),
                "{} {key}={value}",
                sample.metric
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_escapes_names_and_sums_a_locked_out_address() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut settings = operator_settings(agent.addr, &audit, false);
    settings["security"] = json!({"auth_failures_per_address": 3, "auth_failures_per_user": 100});
    let broker = TestBroker::start(settings).await;
    flow(broker.addr, "kolmogorov", PASSWORD).await.unwrap();

    // A name whose XML entity decodes to a line feed, followed by a forged record.
    let forged = "eve&#10;{\"event\":\"authn_login_success\",\"user\":\"root\"}";
    let mut client = TestClient::connect(broker.addr).await;
    client.send(&msg::hello()).await;
    for _ in 0..3 {
        client.send(&msg::authenticate(forged, "wrong", None)).await;
    }
    // Locked out now: a flood of refusals, bounded in count.
    let long = "x".repeat(3_000);
    for _ in 0..200 {
        client.send(&msg::authenticate(&long, "wrong", None)).await;
    }
    let records = audit_records(&audit);
    let events: Vec<&str> = records
        .iter()
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == "authn_login_success")
            .count(),
        1,
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| **e == "authn_login_fail").count(),
        3
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == "authn_login_fail_max")
            .count(),
        1,
        "200 refusals, one record until the window closes: {events:?}"
    );
    for record in &records {
        assert_eq!(record["node"], "node-a");
        if let Some(user) = record["user"].as_str() {
            assert!(!user.contains('\n'), "{user}");
            assert!(user.chars().count() <= 257, "cut: {}", user.len());
        }
    }
    let size = std::fs::metadata(&audit).unwrap().len();
    assert!(size < 8 * 1024, "{size} bytes of audit for 200 refusals");
    let success = records
        .iter()
        .find(|r| r["event"] == "authn_login_success")
        .unwrap();
    assert_eq!(success["user"], "kolmogorov");
    assert_eq!(success["source_ip"], "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_over_tls_and_an_operator_ends_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(operator_settings(agent.addr, &audit, true)).await;
    let admin = Admin::start(&broker, Some(TOKEN)).await;
    assert!(admin.tls);
    // Plain HTTP to a TLS listener gets nothing.
    let plain = TcpStream::connect(admin.addr).await.unwrap();
    drop(plain);

    let mut feed = admin
        .subscribe("watcher", &["sessions", "auth", "allocations", "admin"])
        .await;

    // A failed login, then a whole flow.
    let mut failing = TestClient::connect(broker.addr).await;
    failing.send(&msg::hello()).await;
    failing
        .send(&msg::authenticate("kolmogorov", "not-the-password", None))
        .await;
    let tag = flow(broker.addr, "kolmogorov", PASSWORD).await.unwrap();
    let login = failing
        .send(&msg::authenticate("kolmogorov", PASSWORD, Some("EXAMPLE")))
        .await;
    assert_eq!(result_id(&login), "AUTH_SUCCESSFUL_AND_COMPLETE");
    let (events, raw) = feed
        .until(Duration::from_secs(10), |e| {
            e["type"] == "session.ended" && e["message"]["reason"] == "bye"
        })
        .await;
    for kind in [
        "session.created",
        "session.auth_failed",
        "session.authenticated",
        "session.resources_listed",
        "session.allocated",
        "session.ended",
    ] {
        assert!(!of_type(&events, kind).is_empty(), "{kind} in {raw}");
    }
    for event in &events {
        assert_eq!(event["node"], "node-a");
        assert!(event["seq"].as_u64().is_some(), "{event}");
    }
    let authenticated = of_type(&events, "session.authenticated")[0];
    assert_eq!(authenticated["user"], "kolmogorov");
    let failed = of_type(&events, "session.auth_failed")[0];
    assert_eq!(failed["message"]["reason"], "invalid_credentials");
    assert!(!raw.contains(PASSWORD), "no password in {raw}");
    assert!(!raw.contains("not-the-password"), "no password in {raw}");
    assert!(!raw.contains(&tag), "no connect tag in {raw}");
    if let Some(cookie) = &failing.cookie {
        assert!(!raw.contains(cookie.as_str()), "no raw session id in {raw}");
        assert!(raw.contains(&interstate::events::session_ref(cookie)));
    }

    // The admin API lists the failing client's session and ends it.
    let (status, list) = admin.signed("GET", "/admin/api/sessions", b"").await;
    assert_eq!(status, 200, "{list}");
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["node"], "node-a");
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{list}");
    let target = sessions[0]["session_id"].as_str().unwrap().to_owned();
    assert_eq!(sessions[0]["client_address"], "127.0.0.1");
    assert_eq!(sessions[0]["state"], "authenticated");
    assert_eq!(sessions[0]["user"], "kolmogorov");
    assert!(
        !list
            .to_string()
            .contains(failing.cookie.as_deref().unwrap())
    );

    // A replayed or unsigned call is refused.
    let body = json!({"session_id": target}).to_string();
    let signature = sign("POST", "/admin/api/sessions/end", body.as_bytes());
    let (status, _, _) = admin
        .request(
            "POST",
            "/admin/api/sessions/end",
            &[("X-Channelstream-Secret", &signature)],
            b"{\"session_id\": \"000000000000\"}",
        )
        .await;
    assert_eq!(status, 401, "the signature binds the body");
    let (status, _, answer) = admin
        .request(
            "POST",
            "/admin/api/sessions/end",
            &[("X-Channelstream-Secret", &signature)],
            body.as_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, _, _) = admin
        .request(
            "POST",
            "/admin/api/sessions/end",
            &[("X-Channelstream-Secret", &signature)],
            body.as_bytes(),
        )
        .await;
    assert_eq!(status, 401, "a token is used once");

    let (events, raw) = feed
        .until(Duration::from_secs(10), |e| e["type"] == "admin.action")
        .await;
    let ended = of_type(&events, "session.ended");
    assert!(
        ended
            .iter()
            .any(|e| e["message"]["reason"] == "killed" && e["message"]["session_id"] == *target),
        "{raw}"
    );
    // The broker session really ended.
    let after = failing.send(&msg::list()).await;
    assert_ne!(result_id(&after), "LIST_SUCCESSFUL", "{}", after.text());
    assert!(after.text().contains("expired"), "{}", after.text());
    let audit = audit_records(&audit);
    assert!(
        audit
            .iter()
            .any(|r| r["event"] == "admin_session_end" && r["target"] == *target)
    );
}
