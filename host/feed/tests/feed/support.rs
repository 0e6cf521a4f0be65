//! A feed served by hyper on 127.0.0.1, an HTTP client that signs, and websocket helpers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use interstate_feed::signer::SigningKey;
use interstate_feed::{AuthMode, Feed, FeedConfig, ManualClock, Mount, Timestamp};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const SECRET: &[u8] = b"secret";

/// How long any single expected event may take to arrive before the test fails.
pub const PROMPT: Duration = Duration::from_secs(10);

pub struct Harness {
    pub addr: SocketAddr,
    pub feed: Arc<Feed>,
    pub clock: Arc<ManualClock>,
    key: SigningKey,
    issued: std::sync::atomic::AtomicU64,
}

/// A config with the feed at `/feed` (compat) and `/admin/api` (strict), on a manual clock.
pub fn config() -> (FeedConfig, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_700_000_000)));
    let mut config = FeedConfig::new("test-node", vec![b"rotated-in".to_vec(), SECRET.to_vec()]);
    config.mounts = vec![
        Mount::new("/feed", AuthMode::Compat),
        Mount::new("/admin/api/", AuthMode::Strict),
    ];
    config.clock = clock.clone();
    (config, clock)
}

pub async fn start() -> Harness {
    let (config, clock) = config();
    start_with(config, clock).await
}

pub async fn start_with(config: FeedConfig, clock: Arc<ManualClock>) -> Harness {
    let feed = Feed::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::clone(&feed);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let feed = Arc::clone(&served);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let feed = Arc::clone(&feed);
                    async move { Ok::<_, std::convert::Infallible>(feed.handle(request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Harness {
        addr,
        feed,
        clock,
        key: SigningKey::derive(SECRET),
        issued: std::sync::atomic::AtomicU64::new(0),
    }
}

impl Harness {
    pub fn now_secs(&self) -> u64 {
        u64::try_from(interstate_feed::Clock::now(&*self.clock).secs()).unwrap()
    }

    /// A compat token for `endpoint`. Each call dates its token a different number of seconds
    /// back (within the maximum age), so identical requests made at one instant of the manual
    /// clock are distinct requests rather than replays.
    pub fn token(&self, endpoint: &str) -> String {
        self.key.sign(endpoint, self.now_secs() - self.backdate())
    }

    fn backdate(&self) -> u64 {
        self.issued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % 50
    }

    /// A compat-signed call to `/feed{endpoint}`.
    pub async fn call(&self, endpoint: &str, body: &Value) -> (StatusCode, Value) {
        let token = self.token(endpoint);
        self.raw(
            Method::POST,
            &format!("/feed{endpoint}"),
            &body.to_string(),
            Some(&token),
        )
        .await
    }

    /// A strict-signed call to `/admin/api{endpoint}`.
    pub async fn call_strict(
        &self,
        method: Method,
        endpoint: &str,
        body: &str,
    ) -> (StatusCode, Value) {
        let target = format!("/admin/api{endpoint}");
        let value = format!(
            "{} {} {}",
            method,
            target,
            hex::encode(Sha256::digest(body.as_bytes()))
        );
        let token = self.key.sign(&value, self.now_secs() - self.backdate());
        self.raw(method, &target, body, Some(&token)).await
    }

    pub async fn raw(
        &self,
        method: Method,
        target: &str,
        body: &str,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(target)
            .header("host", "127.0.0.1")
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("x-channelstream-secret", token);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    /// Mints a connection for `user` in `channels`; returns its conn_id.
    pub async fn mint(&self, user: &str, channels: &[&str]) -> String {
        let (status, body) = self
            .call(
                "/connect",
                &serde_json::json!({"username": user, "channels": channels}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["conn_id"].as_str().unwrap().to_owned()
    }

    pub async fn socket(&self, query: &str) -> Socket {
        let url = format!("ws://{}/feed/ws?{query}", self.addr);
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        socket
    }

    /// Mints and binds a socket for `user` in `channels`.
    pub async fn subscriber(&self, user: &str, channels: &[&str]) -> (String, Socket) {
        let conn_id = self.mint(user, channels).await;
        let socket = self.socket(&format!("conn_id={conn_id}")).await;
        (conn_id, socket)
    }

    /// Publishes a channelstream message to `channel` with text `text`.
    pub async fn say(&self, channel: &str, text: &str) {
        let (status, body) = self
            .call(
                "/message",
                &serde_json::json!([{"user": "system", "channel": channel, "message": {"text": text}}]),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// The next event object (heartbeats skipped), or `None` on close.
pub async fn next_event(socket: &mut Socket) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(PROMPT, socket.next())
            .await
            .expect("no frame in time")?;
        match message.ok()? {
            Message::Text(text) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                let events = frame.as_array().unwrap();
                if events.is_empty() {
                    continue;
                }
                assert_eq!(events.len(), 1, "one event per frame");
                return Some(events[0].clone());
            }
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

/// Reads until the socket closes; returns the close code and reason.
pub async fn close_of(socket: &mut Socket) -> (u16, String) {
    loop {
        let message = tokio::time::timeout(PROMPT, socket.next())
            .await
            .expect("no close in time");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.to_string());
            }
            Some(Ok(Message::Close(None))) => return (1005, String::new()),
            Some(Ok(_)) => continue,
            Some(Err(error)) => panic!("socket error before close: {error}"),
            None => panic!("socket ended without a close frame"),
        }
    }
}

/// Proves nothing more is queued for `socket`: a marker sent afterwards arrives first.
pub async fn assert_next_is_marker(harness: &Harness, socket: &mut Socket, channel: &str) {
    harness.say(channel, "marker").await;
    let event = next_event(socket).await.unwrap();
    assert_eq!(
        event["message"]["text"], "marker",
        "unexpected event {event}"
    );
}
