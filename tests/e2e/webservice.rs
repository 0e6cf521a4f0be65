//! ILS's SimpleWebserviceMapper (`guest-mappers/webservice`) behind the real broker, talking
//! wasi:http to a real web service on 127.0.0.1, and the `mapper.allowed_hosts` fence. The
//! service is shared with [`ils_webservice`](super::ils_webservice), which runs the embedded
//! mapper from an ILS settings file.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use interstate_tests::guests::{self, Guest};
use interstate_tests::pcoip::result_id;
use interstate_tests::{AgentBehaviour, FakeAgent, PASSWORD, TestBroker, TestClient, msg};
use interstate_tools::xml::element_text;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub(crate) const USER: &str = "kolmogorov";
const TOKEN: &str = "c2Vzc2lvbi10b2tlbi0x";

/// One request the service saw.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: Option<String>,
    cookie: Option<String>,
}

/// How the service misbehaves; a test switches it while the broker runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Fault {
    /// It answers as documented.
    #[default]
    None,
    /// `/login` answers this status, whatever the credentials.
    LoginStatus(StatusCode),
    /// The listing answers this status, whatever the cookie.
    ListingStatus(StatusCode),
    /// The listing answers 200 with a body that is not JSON.
    ListingNotJson,
}

/// What the service expects and how it answers.
#[derive(Debug, Default)]
struct Behaviour {
    /// Appended to the user name in the Basic credentials (`auth_username_suffix`).
    suffix: String,
    fault: Fault,
}

/// The web service SimpleWebserviceMapper expects: `GET /login` with Basic credentials sets the
/// `session` cookie; `GET /api/user=<name>` with that cookie lists the user's hosts.
pub(crate) struct WebService {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// RFC 4648 base64, for the expected `Authorization` value.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn answer(
    request: &Request<hyper::body::Incoming>,
    agent: SocketAddr,
    behaviour: &Behaviour,
) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let status = |code: StatusCode| {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = code;
        response
    };
    let suffix = &behaviour.suffix;
    let good_basic = format!(
        "Basic {}",
        base64(format!("{USER}{suffix}:{PASSWORD}").as_bytes())
    );
    match (request.uri().path(), behaviour.fault) {
        ("/login", Fault::LoginStatus(code)) => status(code),
        ("/login", _) => {
            if header("authorization").as_deref() != Some(good_basic.as_str()) {
                return status(StatusCode::UNAUTHORIZED);
            }
            let mut response = status(StatusCode::OK);
            response.headers_mut().insert(
                "set-cookie",
                format!("session={TOKEN}; Path=/; HttpOnly")
                    .parse()
                    .unwrap(),
            );
            response
        }
        (path, Fault::ListingStatus(code)) if path == format!("/api/user={USER}") => status(code),
        (path, Fault::ListingNotJson) if path == format!("/api/user={USER}") => Response::new(
            Full::new(Bytes::from_static(b"<html>Service Unavailable</html>")),
        ),
        (path, _) if path == format!("/api/user={USER}") => {
            if header("cookie").as_deref() != Some(format!("session={TOKEN}").as_str()) {
                return status(StatusCode::UNAUTHORIZED);
            }
            let body = json!({"hosts": [
                {"name": "Elisabeth Taylor", "hostname": agent.ip().to_string()},
                {"name": "James Dean", "hostname": "james-dean.example.com", "extra": true}
            ]});
            let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
            response
                .headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            response
        }
        _ => status(StatusCode::NOT_FOUND),
    }
}

impl WebService {
    async fn start(agent: SocketAddr) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), agent, "").await
    }

    /// Serves on `addr` (port 0 for any), expecting `suffix` after the user name in the Basic
    /// credentials.
    pub(crate) async fn start_on(addr: SocketAddr, agent: SocketAddr, suffix: &str) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Mutex::new(Behaviour {
            suffix: suffix.to_owned(),
            fault: Fault::None,
        }));
        let task = {
            let seen = seen.clone();
            let behaviour = behaviour.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let seen = seen.clone();
                    let behaviour = behaviour.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                            let header = |name: &str| {
                                request
                                    .headers()
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_owned)
                            };
                            seen.lock().unwrap().push(Seen {
                                path: request.uri().path().to_owned(),
                                authorization: header("authorization"),
                                cookie: header("cookie"),
                            });
                            let response = answer(&request, agent, &behaviour.lock().unwrap());
                            async move { Ok::<_, Infallible>(response) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tcp), service)
                            .await;
                    });
                }
            })
        };
        Self {
            addr,
            seen,
            behaviour,
            task,
        }
    }

    /// The paths of the requests it saw, in order.
    pub(crate) fn paths(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.path).collect()
    }

    /// Stops listening; returns once the port refuses connections.
    pub(crate) async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    /// Makes it misbehave (or stop misbehaving) from the next request on.
    pub(crate) fn set_fault(&self, fault: Fault) {
        self.behaviour.lock().unwrap().fault = fault;
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// hello (offering `EXAMPLE`), the service's user logged in, and a successful listing; returns
/// the listing's XML.
pub(crate) async fn log_in_and_list(client: &mut TestClient) -> String {
    let hello = client.send(&msg::hello()).await;
    assert!(
        hello.text().contains("<domain>EXAMPLE</domain>"),
        "{}",
        hello.text()
    );
    let auth = client
        .send(&msg::authenticate(USER, PASSWORD, Some("EXAMPLE")))
        .await;
    assert_eq!(
        result_id(&auth),
        "AUTH_SUCCESSFUL_AND_COMPLETE",
        "{}",
        auth.text()
    );
    let list = client.send(&msg::list()).await;
    let text = list.text();
    assert_eq!(result_id(&list), "LIST_SUCCESSFUL", "{text}");
    text
}

fn settings(service: &WebService, agent: SocketAddr, allowed_hosts: Value) -> Value {
    let base = format!("http://{}", service.addr);
    json!({
        "mapper": {
            "plugin": guests::build(Guest::Webservice).path.display().to_string(),
            "allowed_hosts": allowed_hosts,
            "settings": {
                "base_url": format!("{base}/api/"),
                "cookie_auth_url": format!("{base}/login"),
                "cookie_name": "session",
                "domains": ["EXAMPLE"],
                "timeout_ms": 3000
            }
        },
        "agent": {"port": agent.port(), "timeout_ms": 5000}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webservice_mapper_full_flow() {
    guests::build(Guest::Webservice);
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let service = WebService::start(agent.addr).await;
    let allowed = json!([format!("http://{}", service.addr)]);
    let broker = TestBroker::start(settings(&service, agent.addr, allowed)).await;

    let mut client = TestClient::connect(broker.addr).await;
    let text = log_in_and_list(&mut client).await;
    assert!(
        text.contains("<resource-name>Elisabeth Taylor</resource-name>"),
        "{text}"
    );
    assert!(
        text.contains("<resource-name>James Dean</resource-name>"),
        "{text}"
    );
    let id = element_text(&text, "resource-id").unwrap();
    assert_eq!(id, agent.addr.ip().to_string(), "the id is the host name");
    let alloc = client.send(&msg::allocate(&id)).await;
    assert_eq!(result_id(&alloc), "ALLOC_SUCCESSFUL", "{}", alloc.text());
    let launch = agent.last().expect("the agent was called");
    assert_eq!(launch.username, USER);
    assert_eq!(launch.password.expose(), PASSWORD);
    assert_eq!(launch.domain, "EXAMPLE");

    let seen = service.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/login", "/api/user=kolmogorov", "/api/user=kolmogorov"],
        "login, listing, and the listing again to check the allocation"
    );
    assert!(
        seen[0]
            .authorization
            .as_deref()
            .unwrap()
            .starts_with("Basic ")
    );
    assert_eq!(
        seen[1].cookie.as_deref(),
        Some(format!("session={TOKEN}").as_str())
    );

    let mut other = TestClient::connect(broker.addr).await;
    other.send(&msg::hello()).await;
    let wrong = other
        .send(&msg::authenticate(
            USER,
            "not the password",
            Some("EXAMPLE"),
        ))
        .await;
    assert_eq!(
        result_id(&wrong),
        "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD",
        "{}",
        wrong.text()
    );
    assert_eq!(
        service.seen().len(),
        4,
        "the wrong password was checked by the service"
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webservice_outside_allowed_hosts_is_never_reached() {
    guests::build(Guest::Webservice);
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let service = WebService::start(agent.addr).await;
    // The right host on another port, another host, and the service's own host and port
    // without a scheme (https only, while the service speaks plain HTTP): none is the service.
    let elsewhere = json!([
        "http://127.0.0.1:1",
        "hosts.example.com",
        service.addr.to_string(),
        "127.0.0.1"
    ]);
    let broker = TestBroker::start(settings(&service, agent.addr, elsewhere)).await;

    for _ in 0..2 {
        let mut client = TestClient::connect(broker.addr).await;
        let hello = client.send(&msg::hello()).await;
        assert!(hello.text().contains("<hello-resp>"), "{}", hello.text());
        let auth = client
            .send(&msg::authenticate(USER, PASSWORD, Some("EXAMPLE")))
            .await;
        let text = auth.text();
        assert!(
            text.contains("<error-resp>"),
            "a mapper error is an error-resp: {text}"
        );
        assert_eq!(result_id(&auth), "ERR_BROKER_SYS_FAILED", "{text}");
        assert!(
            !text.contains(PASSWORD) && !text.contains("allowed_hosts"),
            "{text}"
        );
    }
    assert!(
        service.seen().is_empty(),
        "the service saw no request: {:?}",
        service.seen()
    );

    // The broker keeps serving: a new session still gets through hello.
    let mut client = TestClient::connect(broker.addr).await;
    let hello = client.send(&msg::hello()).await;
    assert!(
        hello.text().contains("<domain>EXAMPLE</domain>"),
        "{}",
        hello.text()
    );
    broker.stop().await;
}
