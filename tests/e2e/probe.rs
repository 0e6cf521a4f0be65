//! `interstate probe` and `interstate bench` as library calls: against the real broker (every check
//! passes), against deliberately broken servers (the probe names the fault), and a short bench.

use std::sync::Arc;
use std::time::Duration;

use interstate_protocol::Root;
use interstate_tests::broker::simple_settings;
use interstate_tests::{AgentBehaviour, FakeAgent, PASSWORD, TestBroker};
use interstate_tools::bench::{BenchError, BenchOptions, Mode};
use interstate_tools::probe::{ProbeOptions, ProbeReport, run};
use interstate_tools::target::Target;
use interstate_tools::wire::Verify;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn options(addr: std::net::SocketAddr, password: &str) -> ProbeOptions {
    let target = Target::parse(&format!("https://{addr}")).unwrap();
    let mut options = ProbeOptions::new(target, Verify::Insecure, "kolmogorov", password);
    options.timeout = Duration::from_secs(20);
    options
}

fn steps(report: &ProbeReport) -> Vec<&str> {
    report.steps.iter().map(|s| s.step).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_passes_every_check_against_the_broker() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(simple_settings(agent.addr)).await;

    let report = run(&options(broker.addr, PASSWORD)).await.unwrap();
    assert!(report.passed, "{}", report.to_text());
    assert_eq!(report.failure, None);
    assert_eq!(
        steps(&report),
        [
            "connect",
            "probe",
            "hello",
            "authenticate",
            "get-resource-list",
            "allocate-resource",
            "bye"
        ]
    );
    let names: Vec<&str> = report.checks().map(|(_, c)| c.name).collect();
    for wanted in [
        "tls",
        "tls-aes256-gcm-only",
        "http-1.1-200",
        "chunked",
        "root",
        "set-cookie",
        "probe-creates-no-session",
        "result-id",
        "resources",
        "connect-tag",
    ] {
        assert!(
            names.contains(&wanted),
            "{wanted} was not checked: {names:?}"
        );
    }
    assert!(report.checks().all(|(_, c)| c.passed));
    assert_eq!(report.domains, ["EXAMPLE", "LAB"]);
    assert_eq!(report.resources[0].name, "Elisabeth Taylor");
    assert_eq!(
        report.certificate_sha256.as_deref(),
        Some(broker.running.fingerprint.as_str()),
        "the fingerprint is shown as the broker prints it"
    );
    assert!(report.steps.iter().all(|s| s.elapsed_ms > 0.0));
    assert_eq!(agent.received.lock().unwrap().len(), 1, "one allocation");
    assert!(broker.live_sessions().await == 0, "bye ended the session");

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(
        json["steps"][3]["result_id"],
        "AUTH_SUCCESSFUL_AND_COMPLETE"
    );
    assert!(
        !json.to_string().contains(PASSWORD),
        "the password never reaches the report"
    );

    // The other root, no cookie (the broker must track the log id), a resource named, no
    // allocation: against a broker with fallback sessions.
    let mut settings = simple_settings(agent.addr);
    settings["server"] = serde_json::json!({"fallback_sessions": true});
    let fallback = TestBroker::start(settings).await;
    let mut opts = options(fallback.addr, PASSWORD);
    opts.root = Root::PcoipBroker;
    opts.fallback_sessions = true;
    opts.resource = Some("James Dean".into());
    opts.allocate = false;
    opts.domain = Some("LAB".into());
    let report = run(&opts).await.unwrap();
    assert!(report.passed, "{}", report.to_text());
    assert!(!steps(&report).contains(&"allocate-resource"));
    assert!(fallback.live_sessions().await == 0);
    assert_eq!(
        agent.received.lock().unwrap().len(),
        1,
        "no allocation this time"
    );
    fallback.stop().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_names_a_refused_login_a_missing_resource_and_a_wrong_pin() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(simple_settings(agent.addr)).await;

    let report = run(&options(broker.addr, "wrong")).await.unwrap();
    assert!(!report.passed);
    let failure = report.failure.clone().unwrap();
    assert!(
        failure.starts_with("authenticate: result-id: expected AUTH_SUCCESSFUL_AND_COMPLETE"),
        "{failure}"
    );
    assert_eq!(
        steps(&report).last(),
        Some(&"bye"),
        "the session is still ended"
    );

    let mut opts = options(broker.addr, PASSWORD);
    opts.resource = Some("Marilyn Monroe".into());
    let report = run(&opts).await.unwrap();
    let failure = report.failure.unwrap();
    assert!(
        failure.starts_with("get-resource-list: resources:") && failure.contains("James Dean"),
        "{failure}"
    );

    let mut opts = options(broker.addr, PASSWORD);
    opts.verify = Verify::Pin([7; 32]);
    let report = run(&opts).await.unwrap();
    let failure = report.failure.unwrap();
    assert!(
        failure.starts_with("connect: tls:") && failure.contains("--pin"),
        "{failure}"
    );
    assert!(broker.live_sessions().await == 0);
    broker.stop().await;
}

/// How the broken server misbehaves.
#[derive(Debug, Clone, Copy)]
enum Broken {
    /// Sized bodies instead of chunked ones.
    ContentLength,
    /// Chunked, but `set-cookie` in lower case on the hello.
    LowercaseCookie,
    /// Chunked, but the probe starts a session (as ILS does).
    ProbeSession,
}

const HELLO_RESP: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><pcoip-client version=\"2.1\"><hello-resp>\
    <brokers-info><broker-info><product-name>broken</product-name></broker-info></brokers-info>\
    <next-authentication><authentication-methods><method>AUTHENTICATE_VIA_PASSWORD</method>\
    </authentication-methods></next-authentication></hello-resp></pcoip-client>";
const BYE_RESP: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><pcoip-client version=\"2.1\"><bye-resp/></pcoip-client>";
const COOKIE: &str = "JSESSIONID=0123456789abcdef0123456789abcdef; Path=/; Secure; HttpOnly";

/// A real TLS server on 127.0.0.1 that answers every hello with a hello-resp and anything else
/// with a bye-resp, broken as told.
async fn broken_server(how: Broken) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let task = tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buffer = Vec::new();
                loop {
                    let Some(body) = read_request(&mut tls, &mut buffer).await else {
                        return;
                    };
                    let body = String::from_utf8_lossy(&body).into_owned();
                    let is_probe = body.contains("QueryBrokerClient");
                    let (text, cookie) = if body.contains("<hello>") {
                        let cookie = match how {
                            Broken::ContentLength if !is_probe => Some("Set-Cookie"),
                            Broken::LowercaseCookie if !is_probe => Some("set-cookie"),
                            Broken::ProbeSession => Some("Set-Cookie"),
                            _ => None,
                        };
                        (HELLO_RESP, cookie)
                    } else {
                        (BYE_RESP, None)
                    };
                    let mut head =
                        String::from("HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n");
                    if let Some(name) = cookie {
                        head.push_str(&format!("{name}: {COOKIE}\r\n"));
                    }
                    let response = match how {
                        Broken::ContentLength => {
                            format!("{head}Content-Length: {}\r\n\r\n{text}", text.len())
                        }
                        _ => format!(
                            "{head}Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{text}\r\n0\r\n\r\n",
                            text.len()
                        ),
                    };
                    if tls.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, task)
}

/// Reads one request with a Content-Length body.
async fn read_request<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    buffer: &mut Vec<u8>,
) -> Option<Vec<u8>> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buffer.len() >= end + 4 + length {
                let body = buffer[end + 4..end + 4 + length].to_vec();
                buffer.drain(..end + 4 + length);
                return Some(body);
            }
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_fails_with_the_right_reason_against_broken_servers() {
    let (addr, task) = broken_server(Broken::ContentLength).await;
    let report = run(&options(addr, PASSWORD)).await.unwrap();
    let failure = report.failure.clone().unwrap();
    assert!(
        failure.starts_with("probe: chunked:") && failure.contains("Content-Length"),
        "{}",
        report.to_text()
    );
    assert_eq!(steps(&report), ["connect", "probe"], "the flow stops there");
    task.abort();

    let (addr, task) = broken_server(Broken::LowercaseCookie).await;
    let report = run(&options(addr, PASSWORD)).await.unwrap();
    let failure = report.failure.clone().unwrap();
    assert!(
        failure.starts_with("hello: set-cookie:") && failure.contains("\"set-cookie\""),
        "{}",
        report.to_text()
    );
    assert_eq!(
        steps(&report),
        ["connect", "probe", "hello", "bye"],
        "a bye still ends the session"
    );
    task.abort();

    let (addr, task) = broken_server(Broken::ProbeSession).await;
    let report = run(&options(addr, PASSWORD)).await.unwrap();
    let failure = report.failure.clone().unwrap();
    assert!(
        failure.starts_with("probe: probe-creates-no-session:"),
        "{}",
        report.to_text()
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_bench_of_whole_flows_has_no_errors_and_sane_figures() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut settings = simple_settings(agent.addr);
    // The sessions mode below leaves 300 unauthenticated sessions from one address.
    settings["session"] = serde_json::json!({"max_unauthenticated_per_address": 1000});
    let broker = TestBroker::start(settings).await;
    let target = Target::parse(&format!("https://{}", broker.addr)).unwrap();

    let mut options =
        BenchOptions::new(target.clone()).with_login("kolmogorov", PASSWORD, "EXAMPLE");
    options.mode = Mode::Flow;
    options.concurrency = 2;
    options.max_flows = 50;
    options.duration = Duration::from_secs(5);
    options.server_pids = vec![std::process::id()];
    options.label = Some("interstate".into());
    let report = interstate_tools::bench::run(&options).await.unwrap();
    assert!(report.errors.is_empty(), "{}", report.to_text());
    assert_eq!(report.flows_failed, 0);
    assert!(
        report.flows_ok >= 1 && report.flows_ok <= 50,
        "{}",
        report.to_text()
    );
    assert!(
        report.flows_ok == 50 || report.elapsed_s >= 5.0,
        "only the 5 s cap may stop the run early: {}",
        report.to_text()
    );
    assert!(
        report.elapsed_s < 5.0 + 25.0,
        "flows in progress finish within their timeout"
    );
    assert_eq!(
        report.requests,
        report.flows_ok * 6,
        "six requests per flow"
    );
    assert!(report.flows_per_s > 0.0 && report.requests_per_s > report.flows_per_s);
    for step in [
        "flow",
        "probe",
        "hello",
        "authenticate",
        "get-resource-list",
        "allocate-resource",
        "bye",
    ] {
        let s = report
            .step(step)
            .unwrap_or_else(|| panic!("no {step} figures"));
        assert_eq!(s.count, report.flows_ok, "{step}");
        assert!(
            0.0 < s.p50_ms && s.p50_ms <= s.p90_ms && s.p90_ms <= s.p99_ms && s.p99_ms <= s.max_ms,
            "{s:?}"
        );
    }
    assert_eq!(
        report.step("connect").unwrap().count,
        2,
        "kept-alive: one per client"
    );
    let flow = report.step("flow").unwrap();
    let auth = report.step("authenticate").unwrap();
    assert!(
        flow.p50_ms >= auth.p50_ms,
        "a flow contains its authenticate"
    );
    let server = report.server.clone().unwrap();
    assert!(server.cpu_s > 0.0 && server.rss_after_mib > 1.0);
    assert!(report.pbkdf2_ms.unwrap() > 0.0);
    assert_eq!(
        agent.received.lock().unwrap().len() as u64,
        report.flows_ok,
        "one launch per flow"
    );
    assert!(broker.live_sessions().await == 0, "every flow said bye");
    let line = serde_json::to_string(&report).unwrap();
    assert!(line.contains("\"p99_ms\"") && !line.contains('\n'));

    // The hello loop on kept-alive connections replaces each client's session.
    let mut hello = BenchOptions::new(target.clone());
    hello.concurrency = 2;
    hello.max_flows = 200;
    hello.duration = Duration::from_secs(5);
    let report = interstate_tools::bench::run(&hello).await.unwrap();
    assert_eq!(
        (report.flows_ok, report.flows_failed),
        (200, 0),
        "{}",
        report.to_text()
    );
    assert_eq!(
        broker.live_sessions().await,
        2,
        "one live session per client"
    );

    // Sessions mode leaves one session per hello.
    let mut sessions = BenchOptions::new(target);
    sessions.mode = Mode::Sessions;
    sessions.concurrency = 2;
    sessions.max_flows = 300;
    sessions.duration = Duration::from_secs(5);
    let report = interstate_tools::bench::run(&sessions).await.unwrap();
    assert_eq!(report.flows_ok, 300, "{}", report.to_text());
    assert_eq!(broker.live_sessions().await, 302);

    // Load goes to loopback only, unless asked.
    let remote = BenchOptions::new(Target::parse("https://192.0.2.1:60443").unwrap());
    assert!(matches!(
        interstate_tools::bench::run(&remote).await,
        Err(BenchError::Remote(_))
    ));
    broker.stop().await;
}
