//! The shared session store: Redis (or Valkey), one server, a Redis Cluster, or the master a set
//! of sentinels names. Any number of broker nodes pointed at the same store act as one broker: a
//! client's requests may land on any of them.
//!
//! ## Keys
//! `P` is `session.redis.key_prefix`. A session's keys share the hash tag `{s:ID}`, so one Lua
//! script can touch them all on a cluster; the indexes share `{idx}`; the failure counts `{rl}`.
//!
//! | key | what |
//! |---|---|
//! | `P{s:ID}` | hash: `v` (the version) and `blob` (the sealed [`SessionRecord`]); expires with the session |
//! | `P{s:ID}:pw` | the sealed password, while the session keeps one; expires on its own, deleted once the agent has it |
//! | `P{s:ID}:lease` | the token of the request holding the session; expires after `hold_ms` should its node die |
//! | `P{lg:LOGID}` | `ID ADDRESS` of a fallback session (`server.fallback_sessions`) |
//! | `P{idx}:live` | sorted set of live session ids by deadline: the count and its bound |
//! | `P{idx}:unauth` | sorted set of `ID|ADDRESS` of sessions nobody logged in to, by deadline |
//! | `P{idx}:ua:ADDRESS` | the same, per client address |
//! | `P{pins}` | hash of agent certificate pins |
//!
//! ## Transitions
//! A checkout takes the lease with `SET NX PX` inside a script that also reads the session, so a
//! second request for the same session (on any node) is answered [`StoreError::Busy`] at once
//! instead of calling the mapper or the agent a second time. A commit is a compare-and-set: the
//! script writes the new blob only if the version is still the one read and the lease is still
//! this request's (or has run out and nobody took it), then bumps the version. WATCH/MULTI is not
//! used: it does not work on a multiplexed connection.
//!
//! ## Secrets at rest
//! Every blob is sealed ([`SealKeys`]) with associated data naming the key prefix, the session
//! id, the part (`state` or `password`) and the version it was written at, so a blob copied to
//! another session, or an older blob written back, does not open: the session then ends.
//!
//! ## Time
//! Deadlines are computed from the broker's clock; expiry is Redis's (`PEXPIRE`), relative, so
//! clock skew between a node and Redis does not matter (nodes' clocks should agree within a
//! second, as for any cluster).

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use interstate_config::{RedisConfig, RedisTopology, redact_url};
use interstate_protocol::policy::Secret;
use interstate_protocol::{Session, SessionRecord};
use rand::RngCore;
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{Cmd, FromRedisValue, RedisError, Script, ScriptInvocation, Value};
use tracing::{debug, warn};
use zeroize::Zeroizing;

use super::pins::PinResult;
use super::seal::{OpenError, SealKeys};
use super::{
    Checkout, Lease, PinStore, SessionKey, SessionStore, StoreError, StoreLimits, new_session_id,
    usable_log_id,
};

/// Why the store could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisStoreError {
    /// The settings name servers the client cannot use.
    #[error("session.redis: {0}")]
    Config(String),
    /// The CA file could not be read.
    #[error("session.redis.ca_file {path}: {source}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// No server answered.
    #[error("the redis store at {0} could not be reached: {1}")]
    Connect(String, String),
}

/// Takes a session: the lease (`SET NX PX`) and the session's version, blob and password.
const CHECKOUT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 'BUSY' end
local f = redis.call('HMGET', KEYS[1], 'v', 'blob')
return {f[1] or '', f[2] or '', redis.call('GET', KEYS[3]) or ''}
";

/// Writes a session back: compare-and-set on the version and the lease; returns the new
/// version, or 0 when the session changed (or ended) under the request.
const COMMIT: &str = r"
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return 0 end
local v = redis.call('HGET', KEYS[1], 'v')
if v ~= ARGV[2] then return 0 end
local nv = tonumber(v) + 1
redis.call('HSET', KEYS[1], 'v', nv, 'blob', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if ARGV[5] == '' then
  redis.call('DEL', KEYS[3])
else
  redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[4])
end
redis.call('DEL', KEYS[2])
return nv
";

/// Ends a session held by a request: the same compare-and-set, then every key goes.
const END: &str = r"
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 1
";

/// Ends a session nobody holds: returns the index address and claimed log id kept beside it,
/// and deletes its keys.
const REMOVE: &str = r"
local f = redis.call('HMGET', KEYS[1], 'a', 'l')
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return {f[1] or '', f[2] or ''}
";

/// Gives a lease back (a checkout dropped without a commit).
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Admits a new session into the indexes, making room as the memory store does: the address's
/// oldest unauthenticated session gives way past its cap, and the oldest unauthenticated one
/// of all when the store is full. Returns `{'FULL'}`, or the ids it evicted.
const ADMIT: &str = r"
local now = tonumber(ARGV[1])
local id, deadline, max, per = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local unauth, addr, prefix = ARGV[6] == '1', ARGV[7], ARGV[8]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local evicted = {}
local function drop(victim, vaddr)
  redis.call('ZREM', KEYS[1], victim)
  redis.call('ZREM', KEYS[2], victim .. '|' .. vaddr)
  if vaddr ~= '' then redis.call('ZREM', prefix .. '{idx}:ua:' .. vaddr, victim) end
  table.insert(evicted, victim)
end
if unauth and addr ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  while redis.call('ZCARD', KEYS[3]) >= per do
    local oldest = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
    drop(oldest, addr)
  end
end
if redis.call('ZCARD', KEYS[1]) >= max then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if not oldest then return {'FULL'} end
  local bar = string.find(oldest, '|', 1, true)
  drop(string.sub(oldest, 1, bar - 1), string.sub(oldest, bar + 1))
end
redis.call('ZADD', KEYS[1], deadline, id)
if unauth then
  redis.call('ZADD', KEYS[2], deadline, id .. '|' .. addr)
  if addr ~= '' then
    redis.call('ZADD', KEYS[3], deadline, id)
    redis.call('PEXPIRE', KEYS[3], math.max(1, deadline - now))
  end
end
return evicted
";

/// After a commit: the session's new deadline, and out of the unauthenticated indexes once
/// somebody logged in. A session no longer indexed (evicted) stays out.
const REINDEX: &str = r"
local id, deadline, addr, unauth = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
if not redis.call('ZSCORE', KEYS[1], id) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', deadline, id)
if unauth then
  redis.call('ZADD', KEYS[2], 'XX', deadline, id .. '|' .. addr)
  if addr ~= '' then redis.call('ZADD', KEYS[3], 'XX', deadline, id) end
else
  redis.call('ZREM', KEYS[2], id .. '|' .. addr)
  if addr ~= '' then redis.call('ZREM', KEYS[3], id) end
end
return 1
";

/// Out of the indexes (an ended session).
const UNINDEX: &str = r"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1] .. '|' .. ARGV[2])
if ARGV[2] ~= '' then redis.call('ZREM', KEYS[3], ARGV[1]) end
return 1
";

/// Keys a log id to a new session unless another address holds it; returns the session it
/// keyed before (from the same address), `''` when none, or false when another address holds it.
const CLAIM_LOG_ID: &str = r"
local cur = redis.call('GET', KEYS[1])
local old = ''
if cur then
  local sp = string.find(cur, ' ', 1, true)
  if not sp or string.sub(cur, sp + 1) ~= ARGV[2] then return false end
  old = string.sub(cur, 1, sp - 1)
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'PX', ARGV[3])
return old
";

/// Forgets a log id if it still keys this session.
const FORGET_LOG_ID: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, #ARGV[1] + 1) == ARGV[1] .. ' ' then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Sets a pin unless there is one; returns the pin that was there (or false).
const PIN_IF_ABSENT: &str = r"
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then return false end
return redis.call('HGET', KEYS[1], ARGV[1])
";

/// Replaces or forgets a pin; returns the old one (or false).
const SET_PIN: &str = r"
local old = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return old
";

/// The compiled scripts (each is sent once per server, then called by its SHA-1).
struct Scripts {
    checkout: Script,
    commit: Script,
    end: Script,
    release: Script,
    remove: Script,
    admit: Script,
    reindex: Script,
    unindex: Script,
    claim_log_id: Script,
    forget_log_id: Script,
    pin_if_absent: Script,
    set_pin: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            checkout: Script::new(CHECKOUT),
            commit: Script::new(COMMIT),
            end: Script::new(END),
            release: Script::new(RELEASE),
            remove: Script::new(REMOVE),
            admit: Script::new(ADMIT),
            reindex: Script::new(REINDEX),
            unindex: Script::new(UNINDEX),
            claim_log_id: Script::new(CLAIM_LOG_ID),
            forget_log_id: Script::new(FORGET_LOG_ID),
            pin_if_absent: Script::new(PIN_IF_ABSENT),
            set_pin: Script::new(SET_PIN),
        }
    }
}

/// The connection to the servers.
enum Backend {
    /// One server: a multiplexed connection that reconnects by itself.
    Single(ConnectionManager),
    /// A Redis Cluster: routes by slot, follows MOVED/ASK, reconnects.
    Cluster(ClusterConnection),
    /// The master the sentinels name: asked again after a connection error (a failover).
    Sentinel(Box<SentinelBackend>),
}

struct SentinelBackend {
    client: tokio::sync::Mutex<SentinelClient>,
    current: RwLock<Option<MultiplexedConnection>>,
}

impl SentinelBackend {
    async fn connection(&self) -> Result<MultiplexedConnection, RedisError> {
        if let Some(conn) = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Ok(conn);
        }
        let conn = self.client.lock().await.get_async_connection().await?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(conn.clone());
        Ok(conn)
    }

    fn forget(&self) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// The shared store.
pub struct RedisStore {
    backend: Backend,
    scripts: Scripts,
    prefix: String,
    timeout: Duration,
    keys: RwLock<Arc<SealKeys>>,
    limits: Mutex<StoreLimits>,
    /// Where the servers are, for messages (no password).
    describe: String,
    /// This node's name (`admin.node`), kept in clear beside each session it creates so that
    /// an operator's listing says where a session started.
    node: RwLock<String>,
    /// A handle to this store for the lease releases that checkouts dropped without a commit
    /// run in the background.
    this: std::sync::Weak<RedisStore>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("servers", &self.describe)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The CA of `session.redis.ca_file` as the client takes it; `None`: the system's roots.
pub(crate) fn tls_certificates(
    config: &RedisConfig,
) -> Result<Option<redis::TlsCertificates>, RedisStoreError> {
    let Some(path) = &config.ca_file else {
        return Ok(None);
    };
    let root = std::fs::read(path).map_err(|source| RedisStoreError::CaFile {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Some(redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(root),
    }))
}

/// A client for one server (`redis://` or `rediss://`), trusting `certs` when given.
pub(crate) fn client_for(
    url: &str,
    certs: Option<&redis::TlsCertificates>,
) -> Result<redis::Client, RedisError> {
    match certs {
        Some(certs) => redis::Client::build_with_tls(url, certs.clone()),
        None => redis::Client::open(url),
    }
}

/// A cluster client for the seed nodes `urls`, with its deadlines, trusting `certs` when given.
pub(crate) fn cluster_builder(
    urls: &[String],
    certs: Option<&redis::TlsCertificates>,
    connection_timeout: Duration,
    response_timeout: Duration,
) -> redis::cluster::ClusterClientBuilder {
    let builder = redis::cluster::ClusterClient::builder(urls.to_vec())
        .connection_timeout(connection_timeout)
        .response_timeout(response_timeout);
    match certs {
        Some(certs) => builder.certs(certs.clone()),
        None => builder,
    }
}

/// Milliseconds from `now` to `deadline`, at least 1 (Redis refuses a zero expiry).
fn ttl_ms(deadline: u64, now: u64) -> u64 {
    deadline.saturating_sub(now).max(1)
}

impl RedisStore {
    /// Connects to the servers `config` names; fails when none answers `PING` within the
    /// timeout (a broker must not start on a store it cannot use).
    pub async fn connect(
        config: &RedisConfig,
        keys: SealKeys,
        limits: StoreLimits,
    ) -> Result<Arc<Self>, RedisStoreError> {
        let bad = |e: RedisError| RedisStoreError::Config(e.to_string());
        let certs = tls_certificates(config)?;
        let client = |url: &str| client_for(url, certs.as_ref()).map_err(bad);
        let (backend, describe) = match &config.topology {
            RedisTopology::Single(url) => {
                let manager_config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(config.timeout))
                    .set_response_timeout(Some(config.timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(2));
                let manager = tokio::time::timeout(
                    config.timeout,
                    ConnectionManager::new_with_config(client(url)?, manager_config),
                )
                .await
                .map_err(|_| RedisStoreError::Connect(redact_url(url), "timed out".into()))?
                .map_err(|e| RedisStoreError::Connect(redact_url(url), e.to_string()))?;
                (Backend::Single(manager), redact_url(url))
            }
            RedisTopology::Cluster(urls) => {
                let builder = cluster_builder(urls, certs.as_ref(), config.timeout, config.timeout)
                    .retries(2);
                let describe = urls
                    .iter()
                    .map(|u| redact_url(u))
                    .collect::<Vec<_>>()
                    .join(",");
                let cluster = builder.build().map_err(bad)?;
                let conn = tokio::time::timeout(config.timeout * 2, cluster.get_async_connection())
                    .await
                    .map_err(|_| RedisStoreError::Connect(describe.clone(), "timed out".into()))?
                    .map_err(|e| RedisStoreError::Connect(describe.clone(), e.to_string()))?;
                (Backend::Cluster(conn), describe)
            }
            RedisTopology::Sentinel { urls, master_name } => {
                let client = SentinelClient::build(
                    urls.clone(),
                    master_name.as_str(),
                    None,
                    SentinelServerType::Master,
                )
                .map_err(bad)?;
                let describe = format!(
                    "{master_name} via {}",
                    urls.iter()
                        .map(|u| redact_url(u))
                        .collect::<Vec<_>>()
                        .join(",")
                );
                (
                    Backend::Sentinel(Box::new(SentinelBackend {
                        client: tokio::sync::Mutex::new(client),
                        current: RwLock::new(None),
                    })),
                    describe,
                )
            }
        };
        let store = Arc::new_cyclic(|this| Self {
            backend,
            scripts: Scripts::new(),
            prefix: config.key_prefix.clone(),
            timeout: config.timeout,
            keys: RwLock::new(Arc::new(keys)),
            limits: Mutex::new(limits),
            describe: describe.clone(),
            node: RwLock::new(String::new()),
            this: this.clone(),
        });
        store
            .ready()
            .await
            .map_err(|e| RedisStoreError::Connect(describe, e.to_string()))?;
        Ok(store)
    }

    /// Names this node in the sessions it creates.
    pub fn set_node(&self, node: &str) {
        *self.node.write().unwrap_or_else(PoisonError::into_inner) = node.to_owned();
    }

    /// Replaces the sealing keys (a reload read the key file again: rotation).
    pub fn set_keys(&self, keys: SealKeys) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
    }

    fn seal_keys(&self) -> Arc<SealKeys> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Where the servers are (no password).
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn session_key(&self, id: &str) -> String {
        format!("{}{{s:{id}}}", self.prefix)
    }

    fn lease_key(&self, id: &str) -> String {
        format!("{}{{s:{id}}}:lease", self.prefix)
    }

    fn password_key(&self, id: &str) -> String {
        format!("{}{{s:{id}}}:pw", self.prefix)
    }

    fn log_key(&self, log_id: &str) -> String {
        format!("{}{{lg:{log_id}}}", self.prefix)
    }

    fn index_keys(&self, address: &str) -> [String; 3] {
        [
            format!("{}{{idx}}:live", self.prefix),
            format!("{}{{idx}}:unauth", self.prefix),
            format!("{}{{idx}}:ua:{address}", self.prefix),
        ]
    }

    fn pins_key(&self) -> String {
        format!("{}{{pins}}", self.prefix)
    }

    /// The associated data of a blob: where it belongs and at which version.
    fn aad(&self, id: &str, part: &str, version: u64) -> Vec<u8> {
        format!(
            "interstate/session/1\0{}\0{id}\0{part}\0{version}",
            self.prefix
        )
        .into_bytes()
    }

    /// Runs a script with the store's deadline.
    pub(crate) async fn invoke<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.with_connection(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await
    }

    /// Runs a command with a deadline.
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        self.with_connection(|mut conn| async move { cmd.query_async(&mut conn).await })
            .await
    }

    /// Runs a pipeline with the store's deadline.
    async fn pipeline<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, StoreError> {
        self.with_connection(|mut conn| async move { pipe.query_async(&mut conn).await })
            .await
    }

    async fn with_connection<T, F, Fut>(&self, call: F) -> Result<T, StoreError>
    where
        F: FnOnce(AnyConnection) -> Fut,
        Fut: std::future::Future<Output = Result<T, RedisError>>,
    {
        let attempt = async {
            let conn = match &self.backend {
                Backend::Single(manager) => AnyConnection::Single(manager.clone()),
                Backend::Cluster(cluster) => AnyConnection::Cluster(cluster.clone()),
                Backend::Sentinel(sentinel) => AnyConnection::Plain(sentinel.connection().await?),
            };
            call(conn).await
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                // A lost connection, or a master that was demoted (READONLY): ask the sentinels
                // again on the next call.
                let stale = e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || matches!(
                        e.kind(),
                        redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
                    );
                if stale && let Backend::Sentinel(sentinel) = &self.backend {
                    sentinel.forget();
                }
                Err(StoreError::Unavailable(format!("{}: {e}", self.describe)))
            }
            Err(_) => {
                if let Backend::Sentinel(sentinel) = &self.backend {
                    sentinel.forget();
                }
                Err(StoreError::Unavailable(format!(
                    "{}: no answer within {} ms",
                    self.describe,
                    self.timeout.as_millis()
                )))
            }
        }
    }

    fn limits_now(&self) -> StoreLimits {
        *self.limits.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Deletes an evicted or replaced session's keys (its index entries are already gone).
    async fn drop_session_keys(&self, id: &str) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.session_key(id))
            .arg(self.lease_key(id))
            .arg(self.password_key(id));
        self.query::<i64>(&cmd).await.map(drop)
    }

    /// Reads a checked-out session: opens the blob and the password at `version`.
    fn open_session(
        &self,
        id: &str,
        version: u64,
        blob: &[u8],
        password: &[u8],
    ) -> Result<Session, String> {
        let keys = self.seal_keys();
        let state = keys
            .open(&self.aad(id, "state", version), blob)
            .map_err(|e: OpenError| format!("state: {e}"))?;
        let record: SessionRecord =
            serde_json::from_slice(&state).map_err(|e| format!("state: {e}"))?;
        let password = if password.is_empty() {
            None
        } else {
            let plain = keys
                .open(&self.aad(id, "password", version), password)
                .map_err(|e| format!("password: {e}"))?;
            let text = std::str::from_utf8(&plain).map_err(|_| "password: not UTF-8".to_owned())?;
            Some(Secret::new(text))
        };
        Session::from_record(record, password).map_err(|e| e.to_string())
    }

    /// Seals a session for `version`: the state blob and the password blob (empty when none).
    fn seal_session(&self, id: &str, version: u64, session: &Session) -> (Vec<u8>, Vec<u8>) {
        let keys = self.seal_keys();
        let (record, password) = session.to_record();
        let mut plain = Zeroizing::new(Vec::with_capacity(1024));
        // Writing to a Vec cannot fail, and every field serializes.
        if serde_json::to_writer(&mut *plain, &record).is_err() {
            plain.clear();
        }
        let state = keys.seal(&self.aad(id, "state", version), &plain);
        let password = password
            .map(|p| keys.seal(&self.aad(id, "password", version), p.expose().as_bytes()))
            .unwrap_or_default();
        (state, password)
    }

    /// Finds the session id a key names.
    async fn resolve(
        &self,
        key: SessionKey<'_>,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        match key {
            SessionKey::Id(id) => {
                if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Ok(None);
                }
                Ok(Some((id.to_owned(), None)))
            }
            SessionKey::LogId(log_id, addr) => {
                if !usable_log_id(log_id) {
                    return Ok(None);
                }
                let mut cmd = redis::cmd("GET");
                cmd.arg(self.log_key(log_id));
                let value: Option<String> = self.query(&cmd).await?;
                let Some((id, bound)) = value.as_deref().and_then(|v| v.split_once(' ')) else {
                    return Ok(None);
                };
                if bound != addr.to_string() {
                    return Ok(None);
                }
                Ok(Some((id.to_owned(), Some(log_id.to_owned()))))
            }
        }
    }

    async fn insert_session(
        &self,
        session: Session,
        fallback: Option<(&str, IpAddr)>,
        now_ms: u64,
    ) -> Result<String, StoreError> {
        let limits = self.limits_now();
        let id = new_session_id();
        let address = index_address(&session.client().address);
        let deadline = session.expires_at(&limits.lifetimes);
        let unauthenticated = session.is_unauthenticated();
        let [live, unauth, per_address] = self.index_keys(&address);
        let mut admit = self.scripts.admit.prepare_invoke();
        admit
            .key(&live)
            .key(&unauth)
            .key(&per_address)
            .arg(now_ms)
            .arg(&id)
            .arg(deadline)
            .arg(limits.max_sessions)
            .arg(limits.max_unauthenticated_per_address)
            .arg(if unauthenticated { "1" } else { "0" })
            .arg(&address)
            .arg(&self.prefix);
        let evicted: Vec<String> = self.invoke(&admit).await?;
        if evicted.first().map(String::as_str) == Some("FULL") {
            return Err(StoreError::Full(limits.max_sessions));
        }
        for victim in &evicted {
            self.drop_session_keys(victim).await?;
        }
        let ttl = ttl_ms(deadline, now_ms);
        // The log id first, so that the session records whether it holds one.
        let mut claimed = "";
        if let Some((log_id, addr)) = fallback.filter(|(log_id, _)| usable_log_id(log_id)) {
            let mut claim = self.scripts.claim_log_id.prepare_invoke();
            claim
                .key(self.log_key(log_id))
                .arg(&id)
                .arg(addr.to_string())
                .arg(limits.lifetimes.absolute_ms.max(1));
            let old: Option<String> = self.invoke(&claim).await?;
            match old.as_deref() {
                None => {
                    debug!("a hello from another address reused a live fallback log id; not keyed")
                }
                Some("") => claimed = log_id,
                Some(old) => {
                    claimed = log_id;
                    self.remove_session(old).await?;
                }
            }
        }
        let (blob, password) = self.seal_session(&id, 1, &session);
        let node = self
            .node
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        // One slot ({s:ID}), so one atomic pipeline on a cluster too. Beside the sealed blob, in
        // clear: the node, the index address and the claimed log id (what removal needs; the
        // address is in the index keys anyway, the log id in its own key's name).
        let mut write = redis::pipe();
        write.atomic();
        write
            .cmd("HSET")
            .arg(self.session_key(&id))
            .arg("v")
            .arg(1)
            .arg("blob")
            .arg(blob)
            .arg("n")
            .arg(node)
            .arg("a")
            .arg(&address)
            .arg("l")
            .arg(claimed)
            .ignore()
            .cmd("PEXPIRE")
            .arg(self.session_key(&id))
            .arg(ttl)
            .ignore();
        if !password.is_empty() {
            write
                .cmd("SET")
                .arg(self.password_key(&id))
                .arg(password)
                .arg("PX")
                .arg(ttl)
                .ignore();
        }
        self.pipeline::<()>(&write).await?;
        Ok(id)
    }

    /// Ends a session no request holds: its keys, its index entries and its log id, in one
    /// script on the session's slot (which returns the address and log id kept beside the blob)
    /// and one on the indexes.
    async fn remove_session(&self, id: &str) -> Result<(), StoreError> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(());
        }
        let mut remove = self.scripts.remove.prepare_invoke();
        remove
            .key(self.session_key(id))
            .key(self.lease_key(id))
            .key(self.password_key(id));
        let (address, log_id): (String, String) = self.invoke(&remove).await?;
        self.unindex(id, &address).await?;
        if usable_log_id(&log_id) {
            self.forget_log_id(&log_id, id).await?;
        }
        Ok(())
    }

    async fn unindex(&self, id: &str, address: &str) -> Result<(), StoreError> {
        let [live, unauth, per_address] = self.index_keys(address);
        let mut unindex = self.scripts.unindex.prepare_invoke();
        unindex
            .key(&live)
            .key(&unauth)
            .key(&per_address)
            .arg(id)
            .arg(address);
        self.invoke::<i64>(&unindex).await.map(drop)
    }

    async fn forget_log_id(&self, log_id: &str, id: &str) -> Result<(), StoreError> {
        let mut forget = self.scripts.forget_log_id.prepare_invoke();
        forget.key(self.log_key(log_id)).arg(id);
        self.invoke::<i64>(&forget).await.map(drop)
    }

    async fn checkout_session(&self, key: SessionKey<'_>) -> Result<Option<Checkout>, StoreError> {
        let Some((id, log_id)) = self.resolve(key).await? else {
            return Ok(None);
        };
        let mut token_bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut token_bytes);
        let token = hex::encode(token_bytes);
        let hold = self.limits_now().hold_ms.max(1);
        let mut checkout = self.scripts.checkout.prepare_invoke();
        checkout
            .key(self.session_key(&id))
            .key(self.lease_key(&id))
            .key(self.password_key(&id))
            .arg(&token)
            .arg(hold);
        let value: Value = self.invoke(&checkout).await?;
        let fields = match value {
            Value::Nil => return Ok(None),
            Value::BulkString(b) if b == b"BUSY" => return Err(StoreError::Busy),
            Value::SimpleString(s) if s == "BUSY" => return Err(StoreError::Busy),
            Value::Array(fields) if fields.len() == 3 => fields,
            other => {
                return Err(StoreError::Unavailable(format!(
                    "unexpected checkout answer {other:?}"
                )));
            }
        };
        let bytes = |v: &Value| match v {
            Value::BulkString(b) => b.clone(),
            _ => Vec::new(),
        };
        let version = String::from_utf8_lossy(&bytes(&fields[0]))
            .parse::<u64>()
            .ok();
        let blob = bytes(&fields[1]);
        let password = Zeroizing::new(bytes(&fields[2]));
        let release = self.releaser(&id, &token);
        let Some(version) = version else {
            drop(release);
            return Ok(None);
        };
        match self.open_session(&id, version, &blob, &password) {
            Ok(session) => {
                let mut lease = Lease::new(version, token, release);
                lease.log_id = log_id;
                Ok(Some(Checkout::leased(id, session, lease)))
            }
            Err(reason) => {
                // A blob that does not open was moved, rolled back, sealed under a key this node
                // lacks, or its password expired: the session cannot go on.
                warn!(session = %hash_id(&id), %reason, "a stored session does not open; ending it");
                drop(release);
                self.remove_session(&id).await?;
                Ok(None)
            }
        }
    }

    /// What gives a lease back when a checkout is dropped without a commit.
    fn releaser(&self, id: &str, token: &str) -> impl FnOnce() + Send + Sync + 'static {
        let store = self.this.clone();
        let key = self.lease_key(id);
        let token = token.to_owned();
        move || {
            let Some(store) = store.upgrade() else { return };
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return;
            };
            runtime.spawn(async move {
                let mut release = store.scripts.release.prepare_invoke();
                release.key(&key).arg(&token);
                if let Err(e) = store.invoke::<i64>(&release).await {
                    debug!(error = %e, "a lease could not be given back; it runs out by itself");
                }
            });
        }
    }

    async fn commit_session(&self, checkout: Checkout, keep: bool) -> Result<(), StoreError> {
        let (id, session, mut lease) = match checkout.into_leased() {
            Ok(parts) => parts,
            Err(_) => {
                return Err(StoreError::Unavailable(
                    "a checkout of another store was committed here".into(),
                ));
            }
        };
        lease.disarm();
        let address = index_address(&session.client().address);
        if !keep {
            let mut end = self.scripts.end.prepare_invoke();
            end.key(self.session_key(&id))
                .key(self.lease_key(&id))
                .key(self.password_key(&id))
                .arg(&lease.token)
                .arg(lease.version);
            let ended: i64 = self.invoke(&end).await?;
            if ended == 0 {
                return Err(StoreError::Conflict);
            }
            self.unindex(&id, &address).await?;
            let log_id = lease
                .log_id
                .clone()
                .unwrap_or_else(|| session.client().log_id.clone());
            if usable_log_id(&log_id) {
                self.forget_log_id(&log_id, &id).await?;
            }
            return Ok(());
        }
        let limits = self.limits_now();
        let now = session.last_seen();
        let deadline = session.expires_at(&limits.lifetimes);
        let next = lease.version + 1;
        let (blob, password) = self.seal_session(&id, next, &session);
        let mut commit = self.scripts.commit.prepare_invoke();
        commit
            .key(self.session_key(&id))
            .key(self.lease_key(&id))
            .key(self.password_key(&id))
            .arg(&lease.token)
            .arg(lease.version)
            .arg(blob)
            .arg(ttl_ms(deadline, now))
            .arg(password);
        let written: u64 = self.invoke(&commit).await?;
        if written == 0 {
            return Err(StoreError::Conflict);
        }
        let [live, unauth, per_address] = self.index_keys(&address);
        let mut reindex = self.scripts.reindex.prepare_invoke();
        reindex
            .key(&live)
            .key(&unauth)
            .key(&per_address)
            .arg(&id)
            .arg(deadline)
            .arg(&address)
            .arg(if session.is_unauthenticated() {
                "1"
            } else {
                "0"
            });
        self.invoke::<i64>(&reindex).await.map(drop)
    }

    async fn trim(&self, now_ms: u64) -> Result<usize, StoreError> {
        let [live, unauth, _] = self.index_keys("");
        let mut pipe = redis::pipe();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(&live)
            .arg("-inf")
            .arg(now_ms)
            .cmd("ZREMRANGEBYSCORE")
            .arg(&unauth)
            .arg("-inf")
            .arg(now_ms)
            .ignore();
        let (trimmed,): (usize,) = self.pipeline(&pipe).await?;
        Ok(trimmed)
    }
}

/// One of the connection kinds, for a call.
enum AnyConnection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Plain(MultiplexedConnection),
}

impl ConnectionLike for AnyConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> redis::RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
            Self::Plain(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            Self::Plain(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
            Self::Plain(c) => c.get_db(),
        }
    }
}

impl SessionStore for RedisStore {
    fn insert<'a>(
        &'a self,
        session: Session,
        fallback: Option<(&'a str, IpAddr)>,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<String, StoreError>> {
        Box::pin(self.insert_session(session, fallback, now_ms))
    }

    fn checkout<'a>(
        &'a self,
        key: SessionKey<'a>,
    ) -> BoxFuture<'a, Result<Option<Checkout>, StoreError>> {
        Box::pin(self.checkout_session(key))
    }

    fn commit(&self, checkout: Checkout, keep: bool) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.commit_session(checkout, keep))
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.remove_session(id))
    }

    fn sweep(&self, now_ms: u64) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(self.trim(now_ms))
    }

    fn live_sessions(&self) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(async move {
            let [live, _, _] = self.index_keys("");
            let mut cmd = redis::cmd("ZCOUNT");
            // Sessions past their deadline are gone already (their keys expired).
            cmd.arg(&live)
                .arg(format!("({}", unix_now_ms()))
                .arg("+inf");
            self.query(&cmd).await
        })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let answer: String = self.query(&redis::cmd("PING")).await?;
            if answer == "PONG" {
                Ok(())
            } else {
                Err(StoreError::Unavailable(format!("PING answered {answer:?}")))
            }
        })
    }

    fn limits(&self) -> StoreLimits {
        self.limits_now()
    }

    fn set_limits(&self, limits: StoreLimits) {
        *self.limits.lock().unwrap_or_else(PoisonError::into_inner) = limits;
    }
}

/// Unix time in milliseconds, for the live count (the broker's clock is not at hand here).
fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl PinStore for RedisStore {
    fn pin<'a>(&'a self, agent: &'a str) -> BoxFuture<'a, PinResult> {
        Box::pin(async move {
            let mut cmd = redis::cmd("HGET");
            cmd.arg(self.pins_key()).arg(agent);
            let pin: Option<String> = self.query(&cmd).await?;
            Ok(pin.as_deref().and_then(decode_pin))
        })
    }

    fn pin_if_absent<'a>(
        &'a self,
        agent: &'a str,
        fingerprint: [u8; 32],
    ) -> BoxFuture<'a, PinResult> {
        Box::pin(async move {
            let mut call = self.scripts.pin_if_absent.prepare_invoke();
            call.key(self.pins_key())
                .arg(agent)
                .arg(hex::encode(fingerprint));
            let existing: Option<String> = self.invoke(&call).await?;
            match existing {
                None => Ok(None),
                // A pin that does not parse is a pin nobody can match: refuse rather than re-pin.
                Some(text) => Ok(Some(decode_pin(&text).unwrap_or([0; 32]))),
            }
        })
    }

    fn set_pin<'a>(
        &'a self,
        agent: &'a str,
        fingerprint: Option<[u8; 32]>,
    ) -> BoxFuture<'a, PinResult> {
        Box::pin(async move {
            let mut call = self.scripts.set_pin.prepare_invoke();
            call.key(self.pins_key())
                .arg(agent)
                .arg(fingerprint.map(hex::encode).unwrap_or_default());
            let old: Option<String> = self.invoke(&call).await?;
            Ok(old.as_deref().and_then(decode_pin))
        })
    }
}

/// A client address as the indexes key it: canonical, or empty when it does not parse.
fn index_address(address: &str) -> String {
    address
        .parse::<IpAddr>()
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// A session id as logs name it: a hash, since the id is the client's credential.
pub fn hash_id(id: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(id.as_bytes())[..6])
}

fn decode_pin(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok()?.try_into().ok()
}

impl super::ListSessions for RedisStore {
    /// Reads the live index (`{idx}:live`, sessions whose deadline has not passed), then each
    /// session's sealed state, opened with the current keys. A session that expired or ended
    /// between the two reads, or whose blob does not open (sealed under a retired key), is left
    /// out.
    fn list(&self, limit: usize) -> BoxFuture<'_, Result<Vec<super::SessionSummary>, StoreError>> {
        Box::pin(async move {
            let [live, _, _] = self.index_keys("");
            let mut range = redis::cmd("ZRANGEBYSCORE");
            range
                .arg(&live)
                .arg(format!("({}", unix_now_ms()))
                .arg("+inf")
                .arg("LIMIT")
                .arg(0)
                .arg(limit);
            let ids: Vec<String> = self.query(&range).await?;
            let mut list = Vec::with_capacity(ids.len());
            for id in ids {
                let mut read = redis::cmd("HMGET");
                read.arg(self.session_key(&id))
                    .arg("v")
                    .arg("blob")
                    .arg("n");
                let (version, blob, node): (Option<u64>, Option<Vec<u8>>, Option<String>) =
                    self.query(&read).await?;
                let (Some(version), Some(blob)) = (version, blob) else {
                    continue;
                };
                // Only the state: a listing never opens a password.
                let record = self
                    .seal_keys()
                    .open(&self.aad(&id, "state", version), &blob)
                    .map_err(|e| e.to_string())
                    .and_then(|plain| {
                        serde_json::from_slice::<SessionRecord>(&plain).map_err(|e| e.to_string())
                    });
                match record {
                    Ok(record) => {
                        let mut summary = super::SessionSummary::of_record(&id, &record);
                        summary.node = node.filter(|n| !n.is_empty());
                        list.push(summary);
                    }
                    Err(e) => {
                        debug!(session = %hash_id(&id), error = %e, "a listed session did not open")
                    }
                }
            }
            Ok(list)
        })
    }
}
