//! The operator feed across nodes: a [`FeedBus`] over a Redis Stream, chosen when sessions live
//! in Redis (`session.store: "redis"`), so every subscriber, on any node, sees every node's
//! events, and a node that starts late finds the recent history of all of them.
//!
//! # How
//!
//! - **Publishing** delivers to this node's feed at once (the `seq` it returns is this node's),
//!   then queues the envelope, without waiting, for a writer task that appends it to the stream
//!   `P{feed}:events` (`P` is `session.redis.key_prefix`) with `XADD … MAXLEN ~ `[`HISTORY_LEN`].
//!   The append runs as a script on the store's own connection, so it follows the store's
//!   topology (one server, a cluster, or the master the sentinels name). The queue is bounded
//!   ([`OUTBOX`]): while Redis is unreachable, events past it are dropped (counted) rather than
//!   kept.
//! - **Reading**: a reader task per node holds a **dedicated** connection (an `XREAD BLOCK` would
//!   stall every call multiplexed on the store's): a multiplexed connection of its own to the
//!   one server; its own cluster connection (the key's hash tag `{feed}` puts the stream in one
//!   slot, and the cluster client routes `XREAD` to that slot's master); or its own connection to
//!   the master the sentinels name, asked again after each failure. It hands every entry written
//!   by **another** bus to the local feed through its [`BusSink`]. Entries carry the publishing
//!   bus's random id, so a node never delivers its own events twice, even when two nodes were
//!   given the same `admin.node` name.
//! - **Numbering**: each node numbers what it delivers, so `seq` is the position in that node's
//!   feed and catch-up by `seq` stays exact on each node; `node` names where an event happened.
//! - **History**: when the reader starts it replays the newest [`REPLAY`] entries of the stream
//!   (every node's, this one's earlier life included) into the local feed's channel histories,
//!   then follows the stream from the last entry it read, so nothing written in between is
//!   missed.
//! - **Outages**: a failed read drops the connection and retries with a doubling backoff (up to
//!   [`MAX_BACKOFF`]), then resumes after the last entry read: what was appended meanwhile is
//!   delivered, as far as the stream still holds it. Nothing here panics on what Redis returns;
//!   an entry that does not parse is skipped and counted.
//!
//! Presence and `user_state_change` describe one node's own subscribers and stay local.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use interstate_config::{RedisConfig, RedisTopology};
use interstate_feed::{BusError, BusSink, Envelope, FeedBus};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, RedisError, Script, Value};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::store::RedisStore;
use crate::store::redis::{client_for, cluster_builder, tls_certificates};

/// Entries the stream keeps (approximately: `MAXLEN ~`): the shared history.
pub const HISTORY_LEN: usize = 10_000;

/// Entries a starting node replays from the stream into its feed.
pub const REPLAY: usize = 1_000;

/// Envelopes waiting for the writer at most; more are dropped while Redis lags.
pub const OUTBOX: usize = 4_096;

/// How long one `XREAD` blocks on the server.
pub const BLOCK: Duration = Duration::from_secs(5);

/// Entries one `XREAD` returns at most.
const READ_COUNT: usize = 256;

/// Longest wait between two attempts to reach Redis.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Largest entry delivered; a larger one is skipped (a node writes a few hundred bytes).
const MAX_ENTRY: usize = 256 * 1024;

/// Counters of a bus.
#[derive(Debug, Default)]
pub struct BusStats {
    /// Envelopes appended to the stream.
    pub published: AtomicU64,
    /// Envelopes dropped because the outbox was full.
    pub dropped: AtomicU64,
    /// Envelopes from other nodes delivered to this node's feed (replayed ones included).
    pub received: AtomicU64,
    /// Stream entries skipped because they did not parse.
    pub malformed: AtomicU64,
    /// Failed Redis calls (appends and reads).
    pub errors: AtomicU64,
}

/// What the tasks share with the bus.
struct Shared {
    /// This bus's random id: entries carrying it are our own.
    origin: String,
    stream: String,
    sink: RwLock<Option<Weak<dyn BusSink>>>,
    stats: BusStats,
    /// True once the history has been replayed into the feed.
    replayed: watch::Sender<bool>,
}

impl Shared {
    fn sink(&self) -> Option<Arc<dyn BusSink>> {
        self.sink
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(Weak::upgrade)
    }
}

/// A [`FeedBus`] over a Redis Stream (see the module documentation).
pub struct RedisBus {
    shared: Arc<Shared>,
    outbox: mpsc::Sender<Envelope>,
    /// Taken by [`RedisBus::start`].
    pending: std::sync::Mutex<Option<Tasks>>,
    /// Dropped with the bus: the tasks stop.
    _stop: watch::Sender<()>,
}

/// What [`RedisBus::start`] spawns.
struct Tasks {
    store: Arc<RedisStore>,
    config: RedisConfig,
    outbox: mpsc::Receiver<Envelope>,
    stop: watch::Receiver<()>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("stream", &self.shared.stream)
            .finish_non_exhaustive()
    }
}

impl RedisBus {
    /// A bus on the stream under `store`'s prefix; `config` says how the reader connects. Nothing
    /// runs until [`RedisBus::start`].
    pub fn new(store: Arc<RedisStore>, config: RedisConfig) -> Arc<Self> {
        let (outbox, outbox_rx) = mpsc::channel(OUTBOX);
        let (stop, stop_rx) = watch::channel(());
        let mut origin = [0u8; 12];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut origin);
        Arc::new(Self {
            shared: Arc::new(Shared {
                origin: hex::encode(origin),
                stream: stream_key(store.prefix()),
                sink: RwLock::new(None),
                stats: BusStats::default(),
                replayed: watch::Sender::new(false),
            }),
            outbox,
            pending: std::sync::Mutex::new(Some(Tasks {
                store,
                config,
                outbox: outbox_rx,
                stop: stop_rx,
            })),
            _stop: stop,
        })
    }

    /// Starts the writer and the reader (once; later calls do nothing). Call it after the feed
    /// is attached and its channels exist, so the replayed history lands in them. Needs a tokio
    /// runtime; without one nothing starts.
    pub fn start(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            warn!("the feed bus needs a tokio runtime; events stay on this node");
            return;
        };
        let Some(tasks) = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        runtime.spawn(write(
            self.shared.clone(),
            tasks.store,
            tasks.outbox,
            tasks.stop.clone(),
        ));
        runtime.spawn(read(self.shared.clone(), tasks.config, tasks.stop));
    }

    /// Waits (at most `within`) until the shared history has been replayed into this node's
    /// feed, so that a subscriber arriving after it gets that history as catch-up. False when
    /// Redis did not answer in time (the history then arrives as it is read).
    pub async fn replayed(&self, within: Duration) -> bool {
        let mut done = self.shared.replayed.subscribe();
        tokio::time::timeout(within, done.wait_for(|replayed| *replayed))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The stream's key.
    pub fn stream(&self) -> &str {
        &self.shared.stream
    }

    /// The bus's counters.
    pub fn stats(&self) -> &BusStats {
        &self.shared.stats
    }
}

impl FeedBus for RedisBus {
    fn publish(&self, envelope: Envelope) -> Result<Option<u64>, BusError> {
        let sink = self.shared.sink().ok_or(BusError::Detached)?;
        let seq = sink.deliver(envelope.clone());
        if self.outbox.try_send(envelope).is_err() {
            let dropped = self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                warn!(
                    dropped,
                    "feed events not sent to other nodes: Redis is not keeping up"
                );
            }
        }
        Ok(seq)
    }

    fn attach(&self, sink: Weak<dyn BusSink>) {
        *self
            .shared
            .sink
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(sink);
    }
}

/// The stream's key under `prefix` (hash tag `{feed}`: one cluster slot).
pub fn stream_key(prefix: &str) -> String {
    format!("{prefix}{{feed}}:events")
}

/// The append: `XADD KEY MAXLEN ~ LEN * o ORIGIN e JSON`.
const APPEND: &str =
    "return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'o', ARGV[2], 'e', ARGV[3])";

/// The writer: appends queued envelopes, retrying one with backoff while Redis is unreachable.
async fn write(
    shared: Arc<Shared>,
    store: Arc<RedisStore>,
    mut outbox: mpsc::Receiver<Envelope>,
    mut stop: watch::Receiver<()>,
) {
    let script = Script::new(APPEND);
    let mut backoff = Backoff::default();
    loop {
        let envelope = tokio::select! {
            envelope = outbox.recv() => envelope,
            _ = stop.changed() => None,
        };
        let Some(envelope) = envelope else { return };
        let json = match serde_json::to_string(&envelope) {
            Ok(json) => json,
            Err(e) => {
                debug!(error = %e, "feed event not serialisable");
                continue;
            }
        };
        loop {
            let mut call = script.prepare_invoke();
            call.key(&shared.stream)
                .arg(HISTORY_LEN)
                .arg(&shared.origin)
                .arg(&json);
            match store.invoke::<Value>(&call).await {
                Ok(_) => {
                    shared.stats.published.fetch_add(1, Ordering::Relaxed);
                    backoff.reset();
                    break;
                }
                Err(e) => {
                    shared.stats.errors.fetch_add(1, Ordering::Relaxed);
                    if backoff.is_first() {
                        warn!(error = %e, "cannot append to the feed stream; retrying");
                    }
                    let wait = backoff.next();
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
    }
}

/// Doubling waits from 100 ms up to [`MAX_BACKOFF`].
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn is_first(&self) -> bool {
        self.failures == 0
    }

    fn next(&mut self) -> Duration {
        let wait = Duration::from_millis(100)
            .saturating_mul(1 << self.failures.min(6))
            .min(MAX_BACKOFF);
        self.failures = self.failures.saturating_add(1);
        wait
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

/// The reader's own connection.
enum ReadConnection {
    Plain(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ReadConnection {
    async fn query(&mut self, cmd: &Cmd) -> Result<Value, RedisError> {
        match self {
            Self::Plain(c) => c.req_packed_command(cmd).await,
            Self::Cluster(c) => c.req_packed_command(cmd).await,
        }
    }
}

/// Opens a dedicated connection for the reader, as `config` describes the servers.
async fn connect(config: &RedisConfig) -> Result<ReadConnection, String> {
    let certs = tls_certificates(config).map_err(|e| e.to_string())?;
    let response = BLOCK + config.timeout;
    let attempt = async {
        match &config.topology {
            RedisTopology::Single(url) => {
                let client = client_for(url, certs.as_ref())?;
                let options = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(config.timeout))
                    .set_response_timeout(Some(response));
                Ok(ReadConnection::Plain(
                    client
                        .get_multiplexed_async_connection_with_config(&options)
                        .await?,
                ))
            }
            RedisTopology::Cluster(urls) => {
                let builder =
                    cluster_builder(urls, certs.as_ref(), config.timeout, response).retries(1);
                Ok(ReadConnection::Cluster(
                    builder.build()?.get_async_connection().await?,
                ))
            }
            RedisTopology::Sentinel { urls, master_name } => {
                let mut client = redis::sentinel::SentinelClient::build(
                    urls.clone(),
                    master_name.as_str(),
                    None,
                    redis::sentinel::SentinelServerType::Master,
                )?;
                Ok(ReadConnection::Plain(client.get_async_connection().await?))
            }
        }
    };
    match tokio::time::timeout(config.timeout * 2, attempt).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(RedisError::to_string(&e)),
        Err(_) => Err("no connection within the timeout".into()),
    }
}

/// The reader: replays the recent history once, then follows the stream, reconnecting with
/// backoff. Ends when the bus is dropped.
async fn read(shared: Arc<Shared>, config: RedisConfig, mut stop: watch::Receiver<()>) {
    let mut backoff = Backoff::default();
    // `None` until the history has been replayed.
    let mut last_id: Option<String> = None;
    loop {
        let step = follow(&shared, &config, &mut last_id, &mut backoff);
        let failure = tokio::select! {
            Err(failure) = step => failure,
            _ = stop.changed() => return,
        };
        shared.stats.errors.fetch_add(1, Ordering::Relaxed);
        if backoff.is_first() {
            warn!(error = %failure, stream = %shared.stream, "feed stream unreadable; reconnecting");
        } else {
            debug!(error = %failure, "feed stream still unreadable");
        }
        let wait = backoff.next();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Connects, replays the history if not done yet, then follows the stream until a call fails.
async fn follow(
    shared: &Shared,
    config: &RedisConfig,
    last_id: &mut Option<String>,
    backoff: &mut Backoff,
) -> Result<std::convert::Infallible, String> {
    let mut conn = connect(config).await?;
    let mut from = match last_id.clone() {
        Some(from) => from,
        None => {
            let replay = Cmd::new()
                .arg("XREVRANGE")
                .arg(&shared.stream)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(REPLAY)
                .to_owned();
            let answer = query(&mut conn, &replay, config.timeout).await?;
            let mut entries = entries_of(answer);
            entries.reverse();
            // An empty stream: everything appended from now on is new.
            let newest = entries
                .last()
                .map_or_else(|| "0-0".to_owned(), |entry| entry.id.clone());
            let replayed = deliver(shared, entries, true);
            if replayed > 0 {
                info!(replayed, stream = %shared.stream, "feed history replayed from redis");
            }
            shared.replayed.send_replace(true);
            *last_id = Some(newest.clone());
            newest
        }
    };
    backoff.reset();
    loop {
        let xread = Cmd::new()
            .arg("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(u64::try_from(BLOCK.as_millis()).unwrap_or(u64::MAX))
            .arg("STREAMS")
            .arg(&shared.stream)
            .arg(&from)
            .to_owned();
        let answer = query(&mut conn, &xread, BLOCK + config.timeout).await?;
        let entries = entries_of(answer);
        if let Some(newest) = entries.last() {
            from.clone_from(&newest.id);
            *last_id = Some(from.clone());
        }
        deliver(shared, entries, false);
    }
}

async fn query(conn: &mut ReadConnection, cmd: &Cmd, within: Duration) -> Result<Value, String> {
    match tokio::time::timeout(within, conn.query(cmd)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", within.as_millis())),
    }
}

/// Hands `entries` to the local feed: another bus's always; this bus's own only when
/// `replaying` (an earlier life of this node). Returns how many were delivered.
fn deliver(shared: &Shared, entries: Vec<Entry>, replaying: bool) -> usize {
    let Some(sink) = shared.sink() else {
        return 0;
    };
    let mut delivered = 0;
    for entry in entries {
        if !replaying && entry.origin.as_deref() == Some(shared.origin.as_str()) {
            continue;
        }
        let envelope = entry
            .event
            .filter(|json| json.len() <= MAX_ENTRY)
            .and_then(|json| serde_json::from_slice::<Envelope>(&json).ok());
        let Some(envelope) = envelope else {
            shared.stats.malformed.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        if replaying && envelope.no_history {
            continue;
        }
        sink.deliver(envelope);
        delivered += 1;
        shared.stats.received.fetch_add(1, Ordering::Relaxed);
    }
    delivered
}

/// One stream entry, as far as it could be read.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    id: String,
    origin: Option<String>,
    event: Option<Vec<u8>>,
}

/// The entries of an `XREAD` answer (RESP2 array or RESP3 map of streams) or of an
/// `XRANGE`/`XREVRANGE` answer (an array of entries). Anything else yields nothing.
fn entries_of(answer: Value) -> Vec<Entry> {
    match answer {
        Value::Map(streams) => streams
            .into_iter()
            .flat_map(|(_, entries)| entry_list(entries))
            .collect(),
        // An XREAD answer is [[key, [entries…]], …]; an XRANGE answer is [[id, fields], …].
        Value::Array(items) => items
            .into_iter()
            .flat_map(|item| {
                if is_stream(&item) {
                    match item {
                        Value::Array(mut pair) => pair.pop().map(entry_list).unwrap_or_default(),
                        _ => Vec::new(),
                    }
                } else {
                    entry(item).into_iter().collect()
                }
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// True for `[key, [entry, …]]`: a stream of an `XREAD` answer (its entries are arrays, where
/// an entry's fields are strings).
fn is_stream(value: &Value) -> bool {
    match value {
        Value::Array(pair) if pair.len() == 2 => matches!(
            &pair[1],
            Value::Array(inner) if !inner.is_empty() && inner.iter().all(|e| matches!(e, Value::Array(_)))
        ),
        _ => false,
    }
}

fn entry_list(entries: Value) -> Vec<Entry> {
    match entries {
        Value::Array(entries) => entries.into_iter().filter_map(entry).collect(),
        _ => Vec::new(),
    }
}

fn entry(value: Value) -> Option<Entry> {
    let Value::Array(mut pair) = value else {
        return None;
    };
    if pair.len() != 2 {
        return None;
    }
    let fields = pair.pop()?;
    let id = text(&pair.pop()?)?;
    let fields: Vec<(Value, Value)> = match fields {
        Value::Map(map) => map,
        Value::Array(flat) => {
            let mut flat = flat.into_iter();
            let mut pairs = Vec::new();
            while let (Some(key), Some(value)) = (flat.next(), flat.next()) {
                pairs.push((key, value));
            }
            pairs
        }
        _ => {
            return Some(Entry {
                id,
                origin: None,
                event: None,
            });
        }
    };
    let mut entry = Entry {
        id,
        origin: None,
        event: None,
    };
    for (key, value) in fields {
        match text(&key).as_deref() {
            Some("o") => entry.origin = text(&value),
            Some("e") => entry.event = bytes(value),
            _ => {}
        }
    }
    Some(entry)
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn raw_entry(id: &str, origin: &str, event: &str) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(vec![bulk("o"), bulk(origin), bulk("e"), bulk(event)]),
        ])
    }

    #[test]
    fn xread_answers_parse_in_resp2_and_resp3() {
        let entries = vec![raw_entry("1-0", "a", "{}"), raw_entry("2-0", "b", "[]")];
        let resp2 = Value::Array(vec![Value::Array(vec![
            bulk("p{feed}:events"),
            Value::Array(entries.clone()),
        ])]);
        let resp3 = Value::Map(vec![(
            bulk("p{feed}:events"),
            Value::Array(entries.clone()),
        )]);
        let range = Value::Array(entries);
        for answer in [resp2, resp3, range] {
            let parsed = entries_of(answer);
            assert_eq!(parsed.len(), 2, "{parsed:?}");
            assert_eq!(parsed[0].id, "1-0");
            assert_eq!(parsed[0].origin.as_deref(), Some("a"));
            assert_eq!(parsed[1].event.as_deref(), Some(&b"[]"[..]));
        }
        assert!(entries_of(Value::Nil).is_empty());
        assert!(entries_of(Value::Int(3)).is_empty());
        assert!(entries_of(Value::Array(vec![Value::Int(1), Value::Nil])).is_empty());
    }

    #[test]
    fn backoff_doubles_up_to_its_bound_and_resets() {
        let mut backoff = Backoff::default();
        assert!(backoff.is_first());
        assert_eq!(backoff.next(), Duration::from_millis(100));
        assert_eq!(backoff.next(), Duration::from_millis(200));
        for _ in 0..20 {
            assert!(backoff.next() <= MAX_BACKOFF);
        }
        assert_eq!(backoff.next(), MAX_BACKOFF);
        backoff.reset();
        assert!(backoff.is_first());
    }

    #[test]
    fn the_stream_key_sits_in_one_cluster_slot_under_the_prefix() {
        assert_eq!(stream_key("is:"), "is:{feed}:events");
    }
}
