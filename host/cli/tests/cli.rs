//! The `interstate` binary: subcommands, ILS flags, reload by signal and by the admin listener,
//! and graceful shutdown with a request in flight.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use interstate_tools::wire::{Connection, Verify, tls_config};
use interstate_tools::xml::element_text;

const BIN: &str = env!("CARGO_BIN_EXE_interstate");
const PASSWORD: &str = "goodluck<&>";
/// `hashlib.pbkdf2_hmac('sha256', b'goodluck<&>', b'IGNORED', 100000).hex()`, by Python.
const ILS_HASH: &str = "23d405aab7add23c5b7b7bc74e7c7299a0e45ab47e3d8e2e34f6055a04d72cce";
const TIMEOUT: Duration = Duration::from_secs(20);

fn cache_dir() -> String {
    std::env::temp_dir()
        .join("interstate-test-components")
        .display()
        .to_string()
}

fn settings(broker_name: &str, agent_port: u16, extra: serde_json::Value) -> String {
    let mut s = serde_json::json!({
        "logging": {"level": "INFO"},
        "mapper": {
            "plugin": "SimpleMapper",
            "cache_dir": cache_dir(),
            "settings": {
                "username": "kolmogorov",
                "password_hash": ILS_HASH,
                "resources": [{"name": "Hang Desktop", "hostname": "127.0.0.3"}],
                "domains": ["EXAMPLE"]
            }
        },
        "agent": {"port": agent_port, "timeout_ms": 1500},
        "server": {"broker_name": broker_name, "shutdown_grace_ms": 5000}
    });
    if let serde_json::Value::Object(extra) = extra {
        for (k, v) in extra {
            s[k] = v;
        }
    }
    s.to_string()
}

/// A broker process; killed on drop.
struct Broker {
    child: Child,
    addr: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary and waits for the line that says where it serves.
fn spawn(args: &[&str]) -> Broker {
    let mut child = Command::new(BIN)
        .args(args)
        .env("INTERSTATE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("the broker exited before serving")
        };
        if let Some(rest) = line.strip_prefix("interstate: serving PCoIP clients on https://") {
            break rest.trim_end_matches("/pcoip-broker/xml").to_owned();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    Broker { child, addr }
}

fn write_settings(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("settings.json");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

async fn connect(addr: &str) -> Connection {
    Connection::connect(
        addr,
        "localhost",
        tls_config(&Verify::Insecure).unwrap(),
        TIMEOUT,
    )
    .await
    .unwrap()
}

fn wrap(message: &str) -> Vec<u8> {
    format!("<pcoip-client version=\"2.1\">{message}</pcoip-client>").into_bytes()
}

const HELLO: &str = "<hello><client-info><product-name>Teradici PCoIP Desktop Client</product-name>\
    <hostname>euler</hostname></client-info><caps></caps></hello>";

async fn broker_name(addr: &str) -> String {
    let mut conn = connect(addr).await;
    let hello = conn
        .post("/pcoip-broker/xml", &[], &wrap(HELLO), TIMEOUT)
        .await
        .unwrap();
    element_text(&hello.text(), "product-name").unwrap()
}

/// A new connection with a session: the hello's `JSESSIONID=...` pair, ready for a Cookie header.
async fn session(addr: &str) -> (Connection, String) {
    let mut conn = connect(addr).await;
    let hello = conn
        .post("/pcoip-broker/xml", &[], &wrap(HELLO), TIMEOUT)
        .await
        .unwrap();
    let set_cookie = hello
        .header_exact("Set-Cookie")
        .expect("hello sets the cookie");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    (conn, cookie)
}

fn kill(broker: &Broker, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_child(&broker.child);
    rustix::process::kill_process(pid, signal).unwrap();
}

#[test]
fn settings_prints_defaults_that_load_back() {
    let out = Command::new(BIN).arg("settings").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let parsed =
        interstate::settings::Settings::parse(&text, std::path::Path::new("printed.json")).unwrap();
    assert_eq!(parsed.server.port, 60443);
}

#[test]
/// Issue #13 item 9: the default is argon2id (salted), the ILS format only with `--ils`.
fn hash_password_defaults_to_argon2id_and_ils_matches_python() {
    let run = |args: &[&str]| {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let argon = run(&["hash-password"]);
    assert!(argon.starts_with("$argon2id$"), "{argon}");
    assert!(interstate_mapper::password::verify(PASSWORD, &argon));
    assert!(!interstate_mapper::password::verify("wrong", &argon));
    assert_ne!(run(&["hash-password"]), argon, "salted: two hashes differ");
    assert!(run(&["hash-password", "--argon2"]).starts_with("$argon2id$"));
    assert_eq!(
        run(&["hash-password", "--ils"]),
        ILS_HASH,
        "same as ILS's hasher"
    );
}

#[test]
fn mapper_check_logs_in_and_fails_loudly() {
    let settings = serde_json::json!({
        "username": "kolmogorov", "password_hash": ILS_HASH,
        "resources": [{"name": "A", "hostname": "a.example.com"}], "domains": ["EXAMPLE"]
    })
    .to_string();
    let ok = Command::new(BIN)
        .args([
            "mapper",
            "check",
            "SimpleMapper",
            "--settings",
            &settings,
            "--user",
            "kolmogorov",
            "--password",
            "-",
        ])
        .env("INTERSTATE_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(text.contains("0.2"), "reports the world version: {text}");
    assert!(
        text.contains("a.example.com") || text.contains('A'),
        "{text}"
    );

    let wrong = Command::new(BIN)
        .args([
            "mapper",
            "check",
            "SimpleMapper",
            "--settings",
            &settings,
            "--user",
            "kolmogorov",
            "--password",
            "no",
        ])
        .output()
        .unwrap();
    assert!(!wrong.status.success());

    let bad = Command::new(BIN)
        .args([
            "mapper",
            "check",
            "SimpleMapper",
            "--settings",
            "{\"bogus\": 1}",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("bogus"),
        "the mapper's own message"
    );

    let missing = Command::new(BIN)
        .args(["mapper", "check", "/nonexistent/x.wasm"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/x.wasm"));
}

#[test]
fn mapper_check_runs_the_embedded_webservice_mapper_with_its_default_hosts() {
    // A port nobody listens on: the login reaches the network (the default allow-list has the
    // URLs' origin) and fails there, unless --allow-host names something else.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let settings = serde_json::json!({
        "base_url": format!("http://{addr}/api"), "cookie_auth_url": format!("http://{addr}/login"),
        "cookie_name": "session", "auth_username_suffix": "@example.com", "domains": ["EXAMPLE"]
    })
    .to_string();
    let check = |extra: &[&str]| {
        let mut args = vec![
            "mapper",
            "check",
            "SimpleWebserviceMapper",
            "--settings",
            &settings,
        ];
        args.extend_from_slice(extra);
        let out = Command::new(BIN).args(&args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = check(&[]);
    assert!(ok, "{text}");
    assert!(text.contains("EXAMPLE"), "{text}");

    let login = ["--user", "kolmogorov", "--password", "pw"];
    let (ok, text) = check(&login);
    assert!(!ok, "{text}");
    assert!(
        text.contains("request to 127.0.0.1") && !text.contains("refused by the broker"),
        "the request was allowed and found nobody: {text}"
    );
    let mut elsewhere = login.to_vec();
    elsewhere.extend(["--allow-host", "hosts.example.com"]);
    let (ok, text) = check(&elsewhere);
    assert!(!ok, "{text}");
    assert!(text.contains("refused by the broker"), "{text}");
}

#[test]
fn config_errors_name_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_settings(&dir, r#"{"server": {"port": "many"}}"#);
    let out = Command::new(BIN)
        .args(["serve", "--config", &path])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&path) && err.contains("server.port"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ils_flags_sighup_and_admin_reload() {
    let dir = tempfile::tempdir().unwrap();
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let admin = serde_json::json!({"admin": {"listen": format!("127.0.0.1:{admin_port}"), "token": "s3cret"}});
    let path = write_settings(&dir, &settings("First", 9, admin.clone()));
    let pid_file = dir.path().join("interstate.pid").display().to_string();
    // interstate_love_song's command line, with no subcommand.
    let broker = spawn(&[
        "--host",
        "127.0.0.1",
        "-p",
        "0",
        "--config",
        &path,
        "--fallback_sessions",
        "-s",
        "gunicorn",
        "--pid-file",
        &pid_file,
    ]);
    assert_eq!(broker_name(&broker.addr).await, "First");

    // A session made before the reloads must survive them.
    let (mut conn, cookie) = session(&broker.addr).await;

    // SIGHUP through `interstate reload --pid-file`.
    write_settings(&dir, &settings("Second", 9, admin.clone()));
    let out = Command::new(BIN)
        .args(["reload", "--pid-file", &pid_file])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while broker_name(&broker.addr).await != "Second" {
        assert!(
            Instant::now() < deadline,
            "SIGHUP reload did not take effect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A bad configuration is refused with the reason and the old one keeps serving.
    write_settings(
        &dir,
        r#"{"mapper": {"plugin": "SimpleMapper", "settings": {"bogus": 1}}}"#,
    );
    let url = format!("http://127.0.0.1:{admin_port}");
    let out = Command::new(BIN)
        .args(["reload", "--admin", &url, "--token", "s3cret"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("bogus"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(broker_name(&broker.addr).await, "Second");

    // A wrong token is refused.
    let out = Command::new(BIN)
        .args(["reload", "--admin", &url, "--token", "guess"])
        .output()
        .unwrap();
    assert!(!out.status.success());

    // A good one through the admin listener is applied before the command returns.
    write_settings(&dir, &settings("Third", 9, admin));
    let out = Command::new(BIN)
        .args(["reload", "--admin", &url])
        .env("INTERSTATE_ADMIN_TOKEN", "s3cret")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(broker_name(&broker.addr).await, "Third");

    // The operator's word on agent certificate pins: `interstate agent trust|forget`.
    let agent = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("agent")
            .args(args)
            .args(["--admin", &url, "--token", "s3cret"])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let fingerprint = "ab".repeat(32);
    let (ok, out) = agent(&[
        "trust",
        "WS1.example.com:4172",
        "--fingerprint",
        &fingerprint,
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("ws1.example.com:4172 now pinned to {fingerprint}")),
        "{out}"
    );
    let (ok, out) = agent(&["forget", "ws1.example.com:4172"]);
    assert!(
        ok && out.contains("forgot the pin of ws1.example.com:4172"),
        "{out}"
    );
    let (ok, out) = agent(&["forget", "ws1.example.com:4172"]);
    assert!(ok && out.contains("had no pin"), "{out}");
    let (ok, out) = agent(&["forget", "[::1]:4172"]);
    assert!(ok && out.contains("[::1]:4172 had no pin"), "{out}");
    let (ok, out) = agent(&["trust", "ws1", "--fingerprint", "not-hex"]);
    assert!(!ok, "{out}");

    let auth = format!(
        "<authenticate method=\"password\"><username>kolmogorov</username><password>{}</password><domain/></authenticate>",
        "goodluck&lt;&amp;&gt;"
    );
    let resp = conn
        .post(
            "/pcoip-broker/xml",
            &[("Cookie", &cookie)],
            &wrap(&auth),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(
        element_text(&resp.text(), "result-id").unwrap(),
        "AUTH_SUCCESSFUL_AND_COMPLETE",
        "the session survived"
    );

    // Metrics count what happened.
    let metrics = reqwest_like_get(&format!("127.0.0.1:{admin_port}"), "/metrics", "s3cret").await;
    assert!(
        metrics.contains("interstate_reloads_total{outcome=\"applied\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("interstate_mapper_calls_total{export=\"authenticate\",outcome=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE interstate_sessions gauge"),
        "{metrics}"
    );
}

/// A bare HTTP/1.1 GET over TCP with a bearer token.
async fn reqwest_like_get(authority: &str, path: &str, token: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(authority).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_request_in_flight_then_exits_zero() {
    // An "agent" that accepts TCP and never answers: the allocate waits for the agent deadline.
    let hang = std::net::TcpListener::bind("127.0.0.3:0").unwrap();
    let agent_port = hang.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let path = write_settings(&dir, &settings("Drain", agent_port, serde_json::json!({})));
    let mut broker = spawn(&["serve", "--host", "127.0.0.1", "-p", "0", "--config", &path]);

    let (mut conn, cookie) = session(&broker.addr).await;
    let headers = [("Cookie", cookie.as_str())];
    let auth = "<authenticate method=\"password\"><username>kolmogorov</username>\
        <password>goodluck&lt;&amp;&gt;</password></authenticate>";
    let resp = conn
        .post("/pcoip-broker/xml", &headers, &wrap(auth), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        element_text(&resp.text(), "result-id").unwrap(),
        "AUTH_SUCCESSFUL_AND_COMPLETE"
    );
    let list = conn
        .post(
            "/pcoip-broker/xml",
            &headers,
            &wrap("<get-resource-list/>"),
            TIMEOUT,
        )
        .await
        .unwrap();
    let id = element_text(&list.text(), "resource-id").unwrap();

    let alloc = wrap(&format!(
        "<allocate-resource><resource-id>{id}</resource-id></allocate-resource>"
    ));
    conn.send_raw(
        format!(
            "POST /pcoip-broker/xml HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nContent-Length: {}\r\n\r\n",
            alloc.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    conn.send_raw(&alloc).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill(&broker, rustix::process::Signal::TERM);

    let answer = conn
        .read_response(TIMEOUT)
        .await
        .expect("the request in flight is answered");
    assert_eq!(
        element_text(&answer.text(), "result-id").unwrap(),
        "ALLOC_FAILED_TO_ALLOCATE_AGENT"
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = broker.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the broker did not exit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status:?}");
    // New connections are refused once it has stopped.
    assert!(tokio::net::TcpStream::connect(&broker.addr).await.is_err());
    drop(hang);
}
