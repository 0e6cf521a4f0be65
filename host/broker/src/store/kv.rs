//! The mappers' key-value store (0.2 `store`, and `verify-totp`'s replay record) in the Redis
//! session store, so that every broker node sharing the Redis sees the same values.
//!
//! ## Keys
//! `P` is `session.redis.key_prefix`. All keys of one namespace share the hash tag `{kv:NS}`,
//! so one Lua script can check the namespace's count and write atomically on a Redis Cluster.
//!
//! | key | what |
//! |---|---|
//! | `P{kv:NS}:v:KEY` | the value, expiring with `PX` |
//! | `P{kv:NS}:idx` | sorted set of the live keys by expiry (Redis time, ms): the count and its bound; expired members are purged by every write's script |
//! | `P{c:KEY}` | a `claim_once` record (`SET NX PX`), each under its own tag |
//!
//! Values are kept as the mapper wrote them (not sealed: a mapper stores no plaintext password;
//! the contract's `hash-password` is there for that).

use std::sync::Arc;

use interstate_protocol::capability::{KeyValue, KvError, KvLimits};
use interstate_protocol::policy::BoxFuture;
use redis::Script;

use super::{RedisStore, StoreError};

/// The Lua function both writes share: purge the expired members of the index, refuse a new
/// key in a full namespace (returns -1), else write the value with its TTL and index it.
/// KEYS[1] value, KEYS[2] index; `member`, `value`, `ttl` and `max` are its arguments, and
/// ARGV[`index_ttl`] the index's own TTL (the namespace's longest TTL).
macro_rules! put_lua {
    () => {
        r"
local function put(member, value, ttl, max, index_ttl)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if not redis.call('ZSCORE', KEYS[2], member) and redis.call('ZCARD', KEYS[2]) >= tonumber(max) then
    return -1
  end
  redis.call('SET', KEYS[1], value, 'PX', ttl)
  redis.call('ZADD', KEYS[2], now + tonumber(ttl), member)
  if redis.call('PTTL', KEYS[2]) < tonumber(index_ttl) then
    redis.call('PEXPIRE', KEYS[2], index_ttl)
  end
  return 1
end
"
    };
}

/// `set`: ARGV member, value, ttl, max keys, index TTL. 1 written, -1 full.
const SET: &str = concat!(
    put_lua!(),
    "return put(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])\n"
);

/// `compare-and-swap`: ARGV member, expected present (`1`/`0`), expected, new present, new,
/// ttl, max keys, index TTL. 1 swapped, 0 not, -1 full.
const CAS: &str = concat!(
    put_lua!(),
    r"
local cur = redis.call('GET', KEYS[1])
if ARGV[2] == '1' then
  if cur ~= ARGV[3] then return 0 end
elseif cur then
  return 0
end
if ARGV[4] == '0' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
return put(ARGV[1], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
"
);

/// `delete`: ARGV member. 1 when the value existed.
const DELETE: &str = r"
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return n
";

/// The [`KeyValue`] of a [`RedisStore`]: its connections, deadline and key prefix.
pub struct RedisKv {
    store: Arc<RedisStore>,
    set: Script,
    cas: Script,
    delete: Script,
}

impl std::fmt::Debug for RedisKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKv")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

fn unavailable(err: StoreError) -> KvError {
    match err {
        StoreError::Unavailable(why) => KvError::Unavailable(why),
        other => KvError::Unavailable(other.to_string()),
    }
}

/// A write script's answer.
fn written(answer: i64) -> Result<bool, KvError> {
    match answer {
        1 => Ok(true),
        0 => Ok(false),
        _ => Err(KvError::Full),
    }
}

impl RedisKv {
    /// The key-value store in `store`'s Redis, under its key prefix.
    pub fn new(store: Arc<RedisStore>) -> Self {
        Self {
            store,
            set: Script::new(SET),
            cas: Script::new(CAS),
            delete: Script::new(DELETE),
        }
    }

    fn value_key(&self, namespace: &str, key: &str) -> String {
        format!("{}{{kv:{namespace}}}:v:{key}", self.store.prefix())
    }

    fn index_key(&self, namespace: &str) -> String {
        format!("{}{{kv:{namespace}}}:idx", self.store.prefix())
    }

    fn claim_key(&self, key: &str) -> String {
        format!("{}{{c:{key}}}", self.store.prefix())
    }
}

impl KeyValue for RedisKv {
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, KvError>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("GET");
            cmd.arg(self.value_key(namespace, key));
            self.store.query(&cmd).await.map_err(unavailable)
        })
    }

    fn set<'a>(
        &'a self,
        namespace: &'a str,
        key: &'a str,
        value: Vec<u8>,
        ttl_ms: u64,
        limits: &'a KvLimits,
    ) -> BoxFuture<'a, Result<(), KvError>> {
        Box::pin(async move {
            let mut call = self.set.prepare_invoke();
            call.key(self.value_key(namespace, key))
                .key(self.index_key(namespace))
                .arg(key)
                .arg(value)
                .arg(ttl_ms)
                .arg(limits.max_keys)
                .arg(limits.max_ttl_ms.max(ttl_ms));
            let answer: i64 = self.store.invoke(&call).await.map_err(unavailable)?;
            written(answer).map(drop)
        })
    }

    fn delete<'a>(
        &'a self,
        namespace: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, KvError>> {
        Box::pin(async move {
            let mut call = self.delete.prepare_invoke();
            call.key(self.value_key(namespace, key))
                .key(self.index_key(namespace))
                .arg(key);
            let deleted: i64 = self.store.invoke(&call).await.map_err(unavailable)?;
            Ok(deleted > 0)
        })
    }

    fn compare_and_swap<'a>(
        &'a self,
        namespace: &'a str,
        key: &'a str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        ttl_ms: u64,
        limits: &'a KvLimits,
    ) -> BoxFuture<'a, Result<bool, KvError>> {
        Box::pin(async move {
            let present = |value: &Option<Vec<u8>>| if value.is_some() { "1" } else { "0" };
            let mut call = self.cas.prepare_invoke();
            call.key(self.value_key(namespace, key))
                .key(self.index_key(namespace))
                .arg(key)
                .arg(present(&expected))
                .arg(expected.unwrap_or_default())
                .arg(present(&new))
                .arg(new.unwrap_or_default())
                .arg(ttl_ms)
                .arg(limits.max_keys)
                .arg(limits.max_ttl_ms.max(ttl_ms));
            let answer: i64 = self.store.invoke(&call).await.map_err(unavailable)?;
            written(answer)
        })
    }

    fn claim_once<'a>(&'a self, key: &'a str, ttl_ms: u64) -> BoxFuture<'a, Result<bool, KvError>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(self.claim_key(key))
                .arg("1")
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms.max(1));
            let answer: Option<String> = self.store.query(&cmd).await.map_err(unavailable)?;
            Ok(answer.is_some())
        })
    }
}
