//! The websocket: `GET /ws?conn_id=<uuid>[&since=<seq>]` binds a socket to a connection minted by
//! `POST /connect` (study §4.1, §8.2).
//!
//! # Protocol
//!
//! - **Before the upgrade**, a missing or malformed `conn_id` or `since` is refused with 400, and a
//!   conn_id that is already bound with 409 (channelstream crashed after 101, or let two sockets
//!   share an id). A conn_id that does not exist upgrades and is closed at once with 1000, as in
//!   channelstream, so its clients see what they expect.
//! - **Catch-up first.** Events after `since` (default: the `seq` returned by `/connect`, so
//!   events published between minting and binding are not lost) are sent one per frame with
//!   `"catchup": true`, in `seq` order, exactly once. If a ring no longer holds all of them, a
//!   `{"type":"catchup_gap",...}` event comes first: re-read `/info`. Reconnecting clients mint a
//!   new conn_id and pass the last `seq` they saw as `since`.
//! - **Live frames** follow from a bounded queue. If the queue fills, the subscriber is closed with
//!   1008 "slow consumer"; publishing and other subscribers never wait for it.
//! - **Heartbeat:** `[]` and a websocket ping every `heartbeat` interval from the moment of binding,
//!   however late the socket binds (channelstream's heartbeat silently stopped then).
//! - **Client frames** of any content (and pongs) keep the connection alive; after
//!   `connection_timeout` without any, the garbage collector closes it (1000 "timed out").
//! - **Server closes** carry a reason: "disconnected", "timed out", "slow consumer",
//!   "unknown connection". The close frame is given `close_grace` to get out.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::sync::oneshot;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::feed::Feed;
use crate::ids::Uuid;
use crate::service::{FeedBody, json_response, query_param};
use crate::state::{BindError, Bound, CloseReason};

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Most live frames written before one flush.
const BATCH: usize = 64;

/// Read buffer chunk of a subscriber socket. Tungstenite zero-fills the free part of its read
/// buffer on every read attempt, and the socket's reader is polled on every wake of its task
/// (each live frame): with the default 128 KiB that was 128 MB of memset per event at 1,000
/// subscribers. Clients send only small frames (pongs, keep-alives); larger ones still fit, the
/// buffer grows as a frame needs.
const READ_BUFFER: usize = 4 * 1024;

/// Checks the handshake, binds the connection and answers 101; the socket runs on its own task.
pub(crate) fn upgrade<B>(feed: &Arc<Feed>, mut request: Request<B>) -> Response<FeedBody> {
    let query = request.uri().query();
    let conn_id = match query_param(query, "conn_id") {
        None => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"conn_id": ["Missing data for required field."]}),
            );
        }
        Some(text) => match Uuid::parse(&text) {
            Some(id) => id,
            None => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"conn_id": ["Not a valid UUID."]}),
                );
            }
        },
    };
    let since = match query_param(query, "since") {
        None => None,
        Some(text) => match text.parse::<u64>() {
            Ok(seq) => Some(seq),
            Err(_) => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"since": ["Not a valid integer."]}),
                );
            }
        },
    };
    let Some(accept) = accept_key(&request) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"request": "Not a websocket handshake"}),
        );
    };
    let binding = feed.lock().bind(conn_id, since, feed.now());
    let bound = match binding {
        Ok(bound) => Some(bound),
        Err(BindError::Unknown) => None,
        Err(BindError::AlreadyBound) => {
            return json_response(
                StatusCode::CONFLICT,
                &json!({"conn_id": ["Connection already bound."]}),
            );
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let feed = Arc::clone(feed);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "feed websocket upgrade failed");
                if bound.is_some() {
                    feed.lock().release(conn_id, feed.now());
                }
                return;
            }
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(feed.limits.max_client_frame_bytes))
            .max_frame_size(Some(feed.limits.max_client_frame_bytes));
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        match bound {
            Some(bound) => serve(feed, conn_id, socket, bound).await,
            None => {
                let (mut sink, stream) = socket.split();
                close(&feed, &mut sink, stream, CloseReason::UnknownConnection).await;
            }
        }
    });
    let mut response = Response::new(FeedBody::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// The `Sec-WebSocket-Accept` value, if this is a valid version-13 websocket handshake.
fn accept_key<B>(request: &Request<B>) -> Option<String> {
    let headers = request.headers();
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value
                    .split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if !has_token(header::UPGRADE, "websocket") || !has_token(header::CONNECTION, "upgrade") {
        return None;
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION)?.as_bytes() != b"13" {
        return None;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    Some(tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

/// How the writer side ended.
enum Ended {
    /// The server closed the connection for this reason.
    Server(CloseReason),
    /// The socket failed while writing.
    Broken,
}

async fn serve(feed: Arc<Feed>, conn_id: Uuid, socket: Socket, bound: Bound) {
    let (mut sink, mut stream) = socket.split();
    let Bound {
        catchup,
        mut frames,
        close: mut close_rx,
    } = bound;
    let ended = {
        let reader = async {
            while let Some(message) = stream.next().await {
                match message {
                    Ok(Message::Close(_)) | Err(_) => break,
                    Ok(_) => feed.lock().touch(conn_id, feed.now()),
                }
            }
        };
        let writer = write_frames(&feed, &mut sink, catchup, &mut frames, &mut close_rx);
        tokio::select! {
            () = reader => None,
            ended = writer => Some(ended),
        }
    };
    match ended {
        Some(Ended::Server(reason)) => close(&feed, &mut sink, stream, reason).await,
        Some(Ended::Broken) | None => feed.lock().release(conn_id, feed.now()),
    }
}

/// Sends catch-up, then live frames and heartbeats, until the server ends the connection or the
/// socket breaks. Every send also watches `close`, so a blocked socket cannot delay a close.
async fn write_frames(
    feed: &Feed,
    sink: &mut SplitSink<Socket, Message>,
    catchup: Vec<Utf8Bytes>,
    frames: &mut tokio::sync::mpsc::Receiver<Utf8Bytes>,
    close: &mut oneshot::Receiver<CloseReason>,
) -> Ended {
    let send = async |sink: &mut SplitSink<Socket, Message>,
                      close: &mut oneshot::Receiver<CloseReason>,
                      message: Message| {
        tokio::select! {
            biased;
            reason = close => Err(Ended::Server(reason.unwrap_or(CloseReason::Disconnected))),
            sent = sink.send(message) => sent.map_err(|_| Ended::Broken),
        }
    };
    for frame in catchup {
        if let Err(ended) = send(sink, close, Message::Text(frame)).await {
            return ended;
        }
    }
    let period = feed.timing.heartbeat;
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let message = tokio::select! {
            biased;
            reason = &mut *close => return Ended::Server(reason.unwrap_or(CloseReason::Disconnected)),
            frame = frames.recv() => match frame {
                Some(frame) => Message::Text(frame),
                None => return Ended::Server(CloseReason::Disconnected),
            },
            _ = heartbeat.tick() => {
                if let Err(ended) = send(sink, close, Message::Ping(Bytes::new())).await {
                    return ended;
                }
                Message::Text(Utf8Bytes::from_static("[]"))
            }
        };
        let written = tokio::select! {
            biased;
            reason = &mut *close => return Ended::Server(reason.unwrap_or(CloseReason::Disconnected)),
            written = write_batch(sink, frames, message) => written,
        };
        if written.is_err() {
            return Ended::Broken;
        }
    }
}

/// Writes `first` and every live frame already queued behind it (at most [`BATCH`]), then
/// flushes once: a subscriber that fell behind costs one write per batch, not one per frame.
async fn write_batch(
    sink: &mut SplitSink<Socket, Message>,
    frames: &mut tokio::sync::mpsc::Receiver<Utf8Bytes>,
    first: Message,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    sink.feed(first).await?;
    for _ in 1..BATCH {
        match frames.try_recv() {
            Ok(frame) => sink.feed(Message::Text(frame)).await?,
            Err(_) => break,
        }
    }
    sink.flush().await
}

/// Sends a close frame for `reason` and waits (bounded) for the client's answer.
async fn close(
    feed: &Feed,
    sink: &mut SplitSink<Socket, Message>,
    mut stream: SplitStream<Socket>,
    reason: CloseReason,
) {
    if reason == CloseReason::ClientGone {
        return;
    }
    let frame = CloseFrame {
        code: CloseCode::from(reason.code()),
        reason: Utf8Bytes::from_static(reason.text()),
    };
    let handshake = async {
        if sink.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        while let Some(Ok(_)) = stream.next().await {}
    };
    if tokio::time::timeout(feed.timing.close_grace, handshake)
        .await
        .is_err()
    {
        tracing::debug!(
            reason = reason.text(),
            "feed websocket close not acknowledged in time"
        );
    }
}
