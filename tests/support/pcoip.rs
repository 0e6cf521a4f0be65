//! A PCoIP client for tests, on the tools' wire client and message builders: a connection that
//! keeps the cookie and asserts the wire rules on every answer.

use std::net::SocketAddr;
use std::time::Duration;

use interstate_tools::wire::{Connection, Verify, WireResponse, tls_config};
use interstate_tools::xml::element_text;

/// How long a test waits for any one answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// Message bodies, without the root element: the tools' builders, as the 19.11 client on
/// `euler.leonhard.gov` sends them (with the dialog capability).
pub mod msg {
    use interstate_tools::messages::{self, ClientIdentity};

    pub use interstate_tools::messages::{
        bye, dialog, dialog_answer, disclaimer, escape, list, perform_operation, update_password,
    };

    /// Who the test client says it is.
    pub const TEST_CLIENT: ClientIdentity<'static> = ClientIdentity {
        hostname: "euler.leonhard.gov",
        platform: "CentOS Linux 7 (Core) linux x86_64",
        caps: &[
            "CAP_DISCLAIMER_AUTHENTICATION",
            "CAP_NO_AUTHENTICATION",
            "CAP_DIALOG_AUTHENTICATION",
            "CAP_ALTERNATE_PROVISIONING",
        ],
        server_address: Some(("127.0.0.1", "broker.example.com")),
        time_zone: Some("Pacific Standard Time"),
        ip_address: "192.168.114.8",
        mac_address: "00:67:a8:2d:84:7e",
    };

    /// The `QueryBrokerClient` probe (client 19.11 capture).
    pub fn probe() -> String {
        messages::probe_hello(&TEST_CLIENT)
    }

    /// A real client's hello (client 19.11 capture), with the dialog capability.
    pub fn hello() -> String {
        messages::hello(&TEST_CLIENT)
    }

    /// `authenticate method="password"`; `domain: None` leaves the element out.
    pub fn authenticate(username: &str, password: &str, domain: Option<&str>) -> String {
        messages::authenticate(username, password, domain)
    }

    /// `allocate-resource` for `id`.
    pub fn allocate(id: &str) -> String {
        messages::allocate(id, &TEST_CLIENT)
    }
}

/// A client connection with a cookie jar of one.
#[derive(Debug)]
pub struct TestClient {
    conn: Connection,
    addr: SocketAddr,
    /// The `JSESSIONID` to send, if any.
    pub cookie: Option<String>,
    /// Whether to send the cookie back (false imitates clients that drop it).
    pub send_cookie: bool,
    /// The `Client-Log-Id` header, if any.
    pub log_id: Option<String>,
    /// The root element to use.
    pub root: &'static str,
}

impl TestClient {
    /// Connects to a broker, accepting its self-signed certificate.
    pub async fn connect(addr: SocketAddr) -> Self {
        let conn = Self::open(addr).await;
        Self {
            conn,
            addr,
            cookie: None,
            send_cookie: true,
            log_id: Some("ddff1100-72e7-1039-8825-0123456789ab".into()),
            root: "pcoip-client",
        }
    }

    async fn open(addr: SocketAddr) -> Connection {
        let tls = tls_config(&Verify::Insecure).unwrap();
        Connection::connect(&addr.to_string(), "localhost", tls, ANSWER_TIMEOUT)
            .await
            .expect("connect to broker")
    }

    /// Opens a new connection (keeping the cookie), as clients do after a close.
    pub async fn reconnect(&mut self) {
        self.conn = Self::open(self.addr).await;
    }

    /// The underlying connection.
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Sends a message wrapped in the client's root and checks the wire rules every answer must
    /// follow (HTTP/1.1 200, chunked, exact `Set-Cookie` spelling).
    pub async fn send(&mut self, message: &str) -> WireResponse {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} version=\"2.1\">{message}</{root}>",
            root = self.root
        );
        self.send_body(body.as_bytes()).await
    }

    /// Sends a raw body (for malformed input) and checks the wire rules.
    pub async fn send_body(&mut self, body: &[u8]) -> WireResponse {
        let mut headers: Vec<(&str, String)> = Vec::new();
        if let (Some(cookie), true) = (&self.cookie, self.send_cookie) {
            headers.push(("Cookie", format!("JSESSIONID={cookie}")));
        }
        if let Some(log_id) = &self.log_id {
            headers.push(("Client-Log-Id", log_id.clone()));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let response = self
            .conn
            .post("/pcoip-broker/xml", &headers, body, ANSWER_TIMEOUT)
            .await
            .expect("broker answered");
        check_wire(&response);
        if let Some(cookie) = response.header_exact("Set-Cookie") {
            let value = cookie
                .strip_prefix("JSESSIONID=")
                .expect("cookie is JSESSIONID");
            self.cookie = Some(value.split(';').next().unwrap().to_owned());
        }
        response
    }
}

impl TestClient {
    /// hello and a successful password login (domain `EXAMPLE`), then a listing; returns the first
    /// listed desktop id. Panics with the broker's answer when a step fails.
    pub async fn log_in(&mut self, user: &str, password: &str) -> String {
        let hello = self.send(&msg::hello()).await;
        assert!(hello.text().contains("<hello-resp>"), "{}", hello.text());
        let auth = self
            .send(&msg::authenticate(user, password, Some("EXAMPLE")))
            .await;
        assert_eq!(
            result_id(&auth),
            "AUTH_SUCCESSFUL_AND_COMPLETE",
            "{}",
            auth.text()
        );
        let list = self.send(&msg::list()).await;
        assert_eq!(result_id(&list), "LIST_SUCCESSFUL", "{}", list.text());
        element_text(&list.text(), "resource-id").expect("a listed resource id")
    }
}

/// The rules every broker answer follows on the wire.
pub fn check_wire(response: &WireResponse) {
    assert_eq!(
        response.status_line, "HTTP/1.1 200 OK",
        "every answer is HTTP/1.1 200"
    );
    assert!(
        response.chunked,
        "every answer is chunked: {:?}",
        response.headers
    );
    assert_eq!(response.header_exact("Transfer-Encoding"), Some("chunked"));
    assert!(
        response.header("content-length").is_none(),
        "no Content-Length with chunked"
    );
    for (name, value) in &response.headers {
        if name.eq_ignore_ascii_case("set-cookie") {
            assert_eq!(name, "Set-Cookie", "exact header spelling");
            let (id, attributes) = value.split_once("; ").expect("cookie attributes");
            let id = id.strip_prefix("JSESSIONID=").expect("JSESSIONID cookie");
            assert_eq!(id.len(), 32, "128-bit session id");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert_eq!(attributes, "Path=/; Secure; HttpOnly");
        }
    }
}

/// The `result-id` of an answer.
pub fn result_id(response: &WireResponse) -> String {
    element_text(&response.text(), "result-id").unwrap_or_default()
}

/// Plays hello, authenticate, list, allocate (first desktop) and bye on a new connection, and
/// returns the connect tag, or what went wrong.
pub async fn flow(addr: SocketAddr, user: &str, password: &str) -> Result<String, String> {
    let mut client = TestClient::connect(addr).await;
    client.send(&msg::hello()).await;
    let expect = |response: &WireResponse, wanted: &str| {
        let got = result_id(response);
        if got == wanted {
            Ok(())
        } else {
            Err(format!("expected {wanted}, got {got}: {}", response.text()))
        }
    };
    let auth = client
        .send(&msg::authenticate(user, password, Some("EXAMPLE")))
        .await;
    expect(&auth, "AUTH_SUCCESSFUL_AND_COMPLETE")?;
    let list = client.send(&msg::list()).await;
    expect(&list, "LIST_SUCCESSFUL")?;
    let id = element_text(&list.text(), "resource-id").ok_or("no resource-id")?;
    let alloc = client.send(&msg::allocate(&id)).await;
    expect(&alloc, "ALLOC_SUCCESSFUL")?;
    let tag = element_text(&alloc.text(), "connect-tag").ok_or("no connect-tag")?;
    let bye = client.send(&msg::bye()).await;
    if !bye.text().contains("<bye-resp") {
        return Err(format!("bad bye answer: {}", bye.text()));
    }
    Ok(tag)
}
