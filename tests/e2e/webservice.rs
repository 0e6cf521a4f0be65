//! ILS's SimpleWebserviceMapper (`guest-mappers/webservice`) behind the real broker, talking
//! wasi:http to a real web service on 127.0.0.1, and the `mapper.allowed_hosts` fence. The
//! service is shared with [`ils_webservice`](super::ils_webservice), which runs the embedded
//! mapper from an ILS settings file. At 0.2 the mapper also forwards `operate` and
//! `change-password` to the service (`POST {base_url}/operate`, `/change-password`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
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
    method: String,
    path: String,
    authorization: Option<String>,
    cookie: Option<String>,
    /// The body as JSON (`null` when empty or not JSON).
    body: Value,
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
#[derive(Debug)]
struct Behaviour {
    /// Appended to the user name in the Basic credentials (`auth_username_suffix`).
    suffix: String,
    fault: Fault,
    /// The user's password (a change replaces it).
    password: String,
    /// The login answers 401 `{"result": "expired-password"}` to the right password.
    expired: bool,
    /// The listing offers operations on the first host, and `/api/operate` and
    /// `/api/change-password` exist (404 otherwise, as for an ILS service).
    v02: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            suffix: String::new(),
            fault: Fault::None,
            password: PASSWORD.to_owned(),
            expired: false,
            v02: false,
        }
    }
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

fn json_response(code: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

fn answer(
    request: &http::request::Parts,
    body: &Value,
    agent: SocketAddr,
    behaviour: &mut Behaviour,
) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        request
            .headers
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
        base64(format!("{USER}{suffix}:{}", behaviour.password).as_bytes())
    );
    let good_cookie = format!("session={TOKEN}");
    match (request.uri.path(), behaviour.fault) {
        ("/login", Fault::LoginStatus(code)) => status(code),
        ("/login", _) => {
            if header("authorization").as_deref() != Some(good_basic.as_str()) {
                return status(StatusCode::UNAUTHORIZED);
            }
            if behaviour.expired {
                return json_response(
                    StatusCode::UNAUTHORIZED,
                    &json!({"result": "expired-password"}),
                );
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
            if header("cookie").as_deref() != Some(good_cookie.as_str()) {
                return status(StatusCode::UNAUTHORIZED);
            }
            let mut first = json!({"name": "Elisabeth Taylor", "hostname": agent.ip().to_string()});
            if behaviour.v02 {
                first["operations"] = json!(["restart", "power-up"]);
            }
            json_response(
                StatusCode::OK,
                &json!({"hosts": [
                    first,
                    {"name": "James Dean", "hostname": "james-dean.example.com", "extra": true}
                ]}),
            )
        }
        ("/api/operate", _) if behaviour.v02 && request.method == http::Method::POST => {
            if header("cookie").as_deref() != Some(good_cookie.as_str()) {
                return status(StatusCode::UNAUTHORIZED);
            }
            let verdict = match body["operation"].as_str() {
                Some("restart") => json!({"result": "done", "detail": "restarting"}),
                Some("power-up") => json!({"result": "try-again", "detail": "booting"}),
                _ => json!({"result": "unsupported"}),
            };
            json_response(StatusCode::OK, &verdict)
        }
        ("/api/change-password", _) if behaviour.v02 && request.method == http::Method::POST => {
            let old = body["old_password"].as_str().unwrap_or_default();
            let new = body["new_password"].as_str().unwrap_or_default();
            let verdict = if body["username"] != USER || old != behaviour.password {
                "wrong-password"
            } else if new.chars().count() < 10 {
                "weak-password"
            } else {
                behaviour.password = new.to_owned();
                behaviour.expired = false;
                "changed"
            };
            json_response(StatusCode::OK, &json!({"result": verdict}))
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
            ..Behaviour::default()
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
                            let seen = seen.clone();
                            let behaviour = behaviour.clone();
                            async move {
                                let (parts, body) = request.into_parts();
                                let bytes = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let body: Value =
                                    serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                                let header = |name: &str| {
                                    parts
                                        .headers
                                        .get(name)
                                        .and_then(|v| v.to_str().ok())
                                        .map(str::to_owned)
                                };
                                seen.lock().unwrap().push(Seen {
                                    method: parts.method.to_string(),
                                    path: parts.uri.path().to_owned(),
                                    authorization: header("authorization"),
                                    cookie: header("cookie"),
                                    body: body.clone(),
                                });
                                let response =
                                    answer(&parts, &body, agent, &mut behaviour.lock().unwrap());
                                Ok::<_, Infallible>(response)
                            }
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

    /// Serves the 0.2 endpoints (`/api/operate`, `/api/change-password`, operations in the
    /// listing); `expired`: the right password answers "expired-password".
    fn serve_v02(&self, expired: bool) {
        let mut behaviour = self.behaviour.lock().unwrap();
        behaviour.v02 = true;
        behaviour.expired = expired;
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

/// The `supported-operation`s of each resource, in listing order.
fn operations_of(text: &str) -> Vec<Vec<String>> {
    let elements = |text: &str, tag: &str| -> Vec<String> {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        text.split(&open)
            .skip(1)
            .filter_map(|rest| rest.split_once(&close).map(|(value, _)| value.to_owned()))
            .collect()
    };
    elements(text, "resource")
        .iter()
        .map(|resource| elements(resource, "supported-operation"))
        .collect()
}

/// 0.2: the service's listing offers operations on a host; the mapper forwards them to
/// `POST {base_url}/operate` with the session cookie and answers as the service says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webservice_forwards_operations_to_the_service() {
    guests::build(Guest::Webservice);
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let service = WebService::start(agent.addr).await;
    service.serve_v02(false);
    let allowed = json!([format!("http://{}", service.addr)]);
    let broker = TestBroker::start(settings(&service, agent.addr, allowed)).await;

    let mut client = TestClient::connect(broker.addr).await;
    let text = log_in_and_list(&mut client).await;
    assert_eq!(
        operations_of(&text),
        [
            vec!["CMD_OS_RESTART".to_owned(), "CMD_PWR_UP".to_owned()],
            Vec::new()
        ],
        "{text}"
    );
    let id = agent.addr.ip().to_string();

    let restart = client
        .send(&msg::perform_operation(&id, "CMD_OS_RESTART"))
        .await;
    assert_eq!(result_id(&restart), "OP_SUCCESSFUL", "{}", restart.text());
    let seen = service.seen();
    let operate = seen.last().unwrap();
    assert_eq!(
        (operate.method.as_str(), operate.path.as_str()),
        ("POST", "/api/operate")
    );
    assert_eq!(
        operate.cookie.as_deref(),
        Some(format!("session={TOKEN}").as_str())
    );
    assert_eq!(
        operate.body,
        json!({"username": USER, "desktop_id": id, "hostname": id, "operation": "restart"})
    );
    assert_eq!(
        seen[seen.len() - 2].path,
        format!("/api/user={USER}"),
        "the listing is asked again first: the service stays the judge"
    );

    let power_up = client
        .send(&msg::perform_operation(&id, "CMD_PWR_UP"))
        .await;
    assert_eq!(
        result_id(&power_up),
        "OP_FAILED_TO_EXECUTE",
        "{}",
        power_up.text()
    );
    assert!(
        power_up.text().contains("try again"),
        "try-again keeps the session: {}",
        power_up.text()
    );

    // Not offered for this host: the broker refuses without asking the mapper.
    let before = service.seen().len();
    let down = client
        .send(&msg::perform_operation(&id, "CMD_PWR_DOWN"))
        .await;
    assert_eq!(
        result_id(&down),
        "OP_FAILED_OPERATION_NOT_SUPPORTED",
        "{}",
        down.text()
    );
    assert_eq!(service.seen().len(), before);

    // The session goes on.
    let alloc = client.send(&msg::allocate(&id)).await;
    assert_eq!(result_id(&alloc), "ALLOC_SUCCESSFUL", "{}", alloc.text());
    broker.stop().await;
}

/// 0.2: the service's login says the password expired; the change goes to
/// `POST {base_url}/change-password`, and the mapper then logs in with the new password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webservice_changes_an_expired_password_through_the_service() {
    const NEW_PASSWORD: &str = "a new & longer one";
    guests::build(Guest::Webservice);
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let service = WebService::start(agent.addr).await;
    service.serve_v02(true);
    let allowed = json!([format!("http://{}", service.addr)]);
    let broker = TestBroker::start(settings(&service, agent.addr, allowed)).await;

    let mut client = TestClient::connect(broker.addr).await;
    client.send(&msg::hello()).await;
    let auth = client
        .send(&msg::authenticate(USER, PASSWORD, Some("EXAMPLE")))
        .await;
    assert_eq!(
        result_id(&auth),
        "AUTH_FAILED_EXPIRED_PASSWORD",
        "{}",
        auth.text()
    );

    for (old, new, expected) in [
        (
            "not the password",
            NEW_PASSWORD,
            "PSWD_UPDATE_FAILED_UNKNOWN_USERNAME_OR_PASSWORD",
        ),
        (PASSWORD, "short", "PSWD_UPDATE_FAILED_WEAK_PASSWORD"),
        (
            PASSWORD,
            NEW_PASSWORD,
            "PSWD_UPDATE_SUCCESSFUL_AUTH_COMPLETE",
        ),
    ] {
        let answer = client
            .send(&msg::update_password(USER, old, new, "EXAMPLE"))
            .await;
        assert_eq!(result_id(&answer), expected, "{}", answer.text());
    }
    let changes: Vec<Seen> = service
        .seen()
        .into_iter()
        .filter(|s| s.path == "/api/change-password")
        .collect();
    assert_eq!(changes.len(), 3);
    assert_eq!(
        changes[2].body,
        json!({"username": USER, "domain": "EXAMPLE", "old_password": PASSWORD, "new_password": NEW_PASSWORD})
    );
    assert!(
        changes.iter().all(|s| s.cookie.is_none()),
        "no session cookie before the login completes"
    );
    let logins: Vec<Seen> = service
        .seen()
        .into_iter()
        .filter(|s| s.path == "/login")
        .collect();
    assert_eq!(
        logins.last().unwrap().authorization,
        Some(format!(
            "Basic {}",
            base64(format!("{USER}:{NEW_PASSWORD}").as_bytes())
        )),
        "after the change, the mapper logs in with the new password"
    );

    let list = client.send(&msg::list()).await;
    assert_eq!(result_id(&list), "LIST_SUCCESSFUL", "{}", list.text());
    let alloc = client
        .send(&msg::allocate(&agent.addr.ip().to_string()))
        .await;
    assert_eq!(result_id(&alloc), "ALLOC_SUCCESSFUL", "{}", alloc.text());
    assert_eq!(
        agent.last().unwrap().password.expose(),
        NEW_PASSWORD,
        "the agent logs the user on with the new password"
    );
    broker.stop().await;
}
