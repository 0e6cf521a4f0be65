//! One simulated PCoIP client: a kept-alive connection, a cookie jar of one, a `Client-Log-Id`.

use std::sync::Arc;
use std::time::Duration;

use interstate_protocol::Root;
use rustls::ClientConfig;

use crate::messages::{new_log_id, wrap};
use crate::target::Target;
use crate::wire::{ClientError, Connection, WireResponse};

/// A client's side of a broker conversation.
#[derive(Debug)]
pub struct Conversation {
    connection: Option<Connection>,
    authority: String,
    server_name: String,
    path: String,
    tls: Arc<ClientConfig>,
    timeout: Duration,
    /// The root element requests use.
    pub root: Root,
    /// The `JSESSIONID` the broker handed out, if any.
    pub cookie: Option<String>,
    /// Whether the cookie is sent back (false imitates clients that drop it).
    pub send_cookie: bool,
    /// The `Client-Log-Id` header.
    pub log_id: String,
}

impl Conversation {
    /// A conversation with `target`; nothing is connected until the first request.
    pub fn new(target: &Target, tls: Arc<ClientConfig>, root: Root, timeout: Duration) -> Self {
        Self {
            connection: None,
            authority: target.authority(),
            server_name: target.host.clone(),
            path: target.path.clone(),
            tls,
            timeout,
            root,
            cookie: None,
            send_cookie: true,
            log_id: new_log_id(),
        }
    }

    /// True when a connection is open.
    pub fn is_connected(&self) -> bool {
        self.connection.is_some()
    }

    /// Opens a new connection (TCP and TLS), replacing any open one.
    pub async fn connect(&mut self) -> Result<&Connection, ClientError> {
        self.connection = None;
        let connection = Connection::connect(
            &self.authority,
            &self.server_name,
            self.tls.clone(),
            self.timeout,
        )
        .await?;
        Ok(self.connection.insert(connection))
    }

    /// Closes the connection; the next request opens a new one.
    pub fn disconnect(&mut self) {
        self.connection = None;
    }

    /// Starts over as a new client: no cookie, a new log id.
    pub fn forget_session(&mut self) {
        self.cookie = None;
        self.log_id = new_log_id();
    }

    /// Sends `message` wrapped in the root, with the cookie (when kept and sent) and the log id,
    /// and reads the answer. A `Set-Cookie: JSESSIONID` in the answer (any spelling) fills the jar.
    /// After a failure or a `Connection: close` the next request reconnects.
    pub async fn send(&mut self, message: &str) -> Result<WireResponse, ClientError> {
        let body = wrap(self.root, message);
        let cookie = match (&self.cookie, self.send_cookie) {
            (Some(id), true) => Some(format!("JSESSIONID={id}")),
            _ => None,
        };
        if self.connection.is_none() {
            self.connect().await?;
        }
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(2);
        if let Some(cookie) = &cookie {
            headers.push(("Cookie", cookie));
        }
        headers.push(("Client-Log-Id", &self.log_id));
        let Some(connection) = self.connection.as_mut() else {
            return Err(ClientError::Io(std::io::ErrorKind::NotConnected.into()));
        };
        let result = connection
            .post(&self.path, &headers, body.as_bytes(), self.timeout)
            .await;
        match &result {
            Ok(response) => {
                if response.close {
                    self.connection = None;
                }
                if let Some(id) = session_cookie(response) {
                    self.cookie = Some(id);
                }
            }
            Err(_) => self.connection = None,
        }
        result
    }
}

/// The `JSESSIONID` value a response sets, whatever the header's spelling.
pub fn session_cookie(response: &WireResponse) -> Option<String> {
    response
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, value)| {
            let pair = value.split(';').next()?.trim();
            let (name, id) = pair.split_once('=')?;
            name.eq_ignore_ascii_case("JSESSIONID")
                .then(|| id.trim_matches('"').to_owned())
        })
        .next()
}
