//! The [`KeyValue`] contract as one test suite, played against every implementation: the
//! [`MemoryKv`](crate::MemoryKv) here, the broker's Redis one in `tests/store` (the `testing`
//! feature).

use std::time::Duration;

use interstate_protocol::capability::{KeyValue, KvError, KvLimits};

/// The bounds the suite writes under: three live keys, short TTLs.
pub const CONTRACT_LIMITS: KvLimits = KvLimits {
    max_key_bytes: 256,
    max_value_bytes: 64,
    max_keys: 3,
    max_ttl_ms: 60_000,
};

/// A TTL the suite waits out.
const SHORT_TTL_MS: u64 = 150;
/// Longer than [`SHORT_TTL_MS`], with slack for a loaded machine.
const PAST_SHORT_TTL: Duration = Duration::from_millis(400);
/// A TTL that outlives the suite.
const LONG_TTL_MS: u64 = 60_000;

/// Plays get, set, TTL expiry, delete, compare-and-swap, the key-count bound, namespace
/// isolation and `claim_once` against `kv`, in namespaces and claim keys that start with
/// `prefix` (which must be fresh: the suite expects them empty). Panics on any breach.
pub async fn key_value_contract(kv: &dyn KeyValue, prefix: &str) {
    let limits = &CONTRACT_LIMITS;
    let ns = format!("{prefix}-a");
    let other = format!("{prefix}-b");
    let ns = ns.as_str();
    let other = other.as_str();
    let value = |text: &str| Some(text.as_bytes().to_vec());

    // get, set, overwrite, namespaces.
    assert_eq!(kv.get(ns, "k").await, Ok(None), "an absent key");
    assert_eq!(
        kv.set(ns, "k", b"1".to_vec(), LONG_TTL_MS, limits).await,
        Ok(())
    );
    assert_eq!(kv.get(ns, "k").await, Ok(value("1")));
    assert_eq!(
        kv.set(ns, "k", b"2".to_vec(), LONG_TTL_MS, limits).await,
        Ok(())
    );
    assert_eq!(kv.get(ns, "k").await, Ok(value("2")), "a set overwrites");
    assert_eq!(kv.get(other, "k").await, Ok(None), "namespaces are apart");
    assert_eq!(kv.delete(other, "k").await, Ok(false));
    assert_eq!(kv.get(ns, "k").await, Ok(value("2")));

    // delete.
    assert_eq!(kv.delete(ns, "k").await, Ok(true));
    assert_eq!(kv.delete(ns, "k").await, Ok(false));
    assert_eq!(kv.get(ns, "k").await, Ok(None));

    // compare-and-swap.
    let cas = |key: &'static str, expected: Option<&str>, new: Option<&str>| {
        kv.compare_and_swap(
            ns,
            key,
            expected.map(|e| e.as_bytes().to_vec()),
            new.map(|n| n.as_bytes().to_vec()),
            LONG_TTL_MS,
            limits,
        )
    };
    assert_eq!(
        cas("c", None, Some("1")).await,
        Ok(true),
        "create if absent"
    );
    assert_eq!(
        cas("c", None, Some("x")).await,
        Ok(false),
        "present: no create"
    );
    assert_eq!(
        cas("c", Some("0"), Some("x")).await,
        Ok(false),
        "wrong value"
    );
    assert_eq!(kv.get(ns, "c").await, Ok(value("1")));
    assert_eq!(cas("c", Some("1"), Some("2")).await, Ok(true), "swap");
    assert_eq!(kv.get(ns, "c").await, Ok(value("2")));
    assert_eq!(cas("c", Some("2"), None).await, Ok(true), "swap to absent");
    assert_eq!(kv.get(ns, "c").await, Ok(None));
    assert_eq!(
        cas("c", Some("2"), None).await,
        Ok(false),
        "absent is not 2"
    );
    assert_eq!(cas("c", None, None).await, Ok(true), "absent stays absent");

    // TTL expiry.
    assert_eq!(
        kv.set(ns, "t", b"1".to_vec(), SHORT_TTL_MS, limits).await,
        Ok(())
    );
    assert_eq!(kv.get(ns, "t").await, Ok(value("1")));
    tokio::time::sleep(PAST_SHORT_TTL).await;
    assert_eq!(kv.get(ns, "t").await, Ok(None), "expired");
    assert_eq!(
        kv.delete(ns, "t").await,
        Ok(false),
        "an expired key is not deleted"
    );
    assert_eq!(
        cas("t", None, Some("again")).await,
        Ok(true),
        "an expired key is absent"
    );
    assert_eq!(kv.delete(ns, "t").await, Ok(true));

    // The key-count bound: three live keys; overwriting one is fine; a fourth is refused.
    for key in ["f1", "f2", "f3"] {
        assert_eq!(
            kv.set(ns, key, b"v".to_vec(), LONG_TTL_MS, limits).await,
            Ok(())
        );
    }
    assert_eq!(
        kv.set(ns, "f4", b"v".to_vec(), LONG_TTL_MS, limits).await,
        Err(KvError::Full)
    );
    assert_eq!(cas("f4", None, Some("v")).await, Err(KvError::Full));
    assert_eq!(
        kv.get(ns, "f4").await,
        Ok(None),
        "nothing was evicted or written"
    );
    for key in ["f1", "f2", "f3"] {
        assert_eq!(kv.get(ns, key).await, Ok(value("v")), "{key} survived");
    }
    assert_eq!(
        kv.set(ns, "f3", b"w".to_vec(), LONG_TTL_MS, limits).await,
        Ok(())
    );
    assert_eq!(cas("f3", Some("w"), Some("x")).await, Ok(true));
    assert_eq!(
        kv.set(other, "f4", b"v".to_vec(), LONG_TTL_MS, limits)
            .await,
        Ok(()),
        "another namespace has its own count"
    );
    assert_eq!(kv.delete(ns, "f1").await, Ok(true));
    assert_eq!(
        kv.set(ns, "f4", b"v".to_vec(), LONG_TTL_MS, limits).await,
        Ok(())
    );
    // An expired key does not count.
    assert_eq!(kv.delete(ns, "f4").await, Ok(true));
    assert_eq!(
        kv.set(ns, "e", b"v".to_vec(), SHORT_TTL_MS, limits).await,
        Ok(())
    );
    assert_eq!(
        kv.set(ns, "f5", b"v".to_vec(), LONG_TTL_MS, limits).await,
        Err(KvError::Full)
    );
    tokio::time::sleep(PAST_SHORT_TTL).await;
    assert_eq!(
        kv.set(ns, "f5", b"v".to_vec(), LONG_TTL_MS, limits).await,
        Ok(())
    );

    // claim_once: once per key while it lives.
    let claim = format!("{prefix}:claim");
    assert_eq!(kv.claim_once(&claim, LONG_TTL_MS).await, Ok(true));
    assert_eq!(kv.claim_once(&claim, LONG_TTL_MS).await, Ok(false));
    let short = format!("{prefix}:short-claim");
    assert_eq!(kv.claim_once(&short, SHORT_TTL_MS).await, Ok(true));
    tokio::time::sleep(PAST_SHORT_TTL).await;
    assert_eq!(
        kv.claim_once(&short, SHORT_TTL_MS).await,
        Ok(true),
        "expired"
    );
    assert_eq!(
        kv.get(ns, &claim).await,
        Ok(None),
        "claims live apart from any namespace"
    );
}
