//! The mapper's key-value store (`interstate:mapper/store`), kept by the broker's session store:
//! in memory on one node, in Redis when the brokers share one, so every node sees the same
//! values. Each mapper has its own namespace; every key expires.
//!
//! The WIT functions ([`get`], [`set`], [`delete`], [`compare_and_swap`]) take bytes and TTLs
//! in milliseconds. The helpers below take strings or serde values and a [`Duration`]:
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use interstate_mapper_sdk::store;
//!
//! # fn main() -> Result<(), store::StoreError> {
//! // Remember the desktop a user last launched, for 30 days.
//! store::set_string("last-desktop:bob", "ws-7", Some(Duration::from_secs(30 * 24 * 3600)))?;
//! assert_eq!(store::get_string("last-desktop:bob")?.as_deref(), Some("ws-7"));
//!
//! // Claim a machine for alice unless someone holds it: atomic across every node.
//! let hold = Some(Duration::from_secs(30 * 60));
//! let claimed = store::compare_and_swap_string("machine:pool-1", None, Some("alice"), hold)?;
//!
//! // Any serde value, stored as JSON.
//! store::set_json("visits:bob", &vec![1_u32, 2, 3], None)?;
//! let visits: Option<Vec<u32>> = store::get_json("visits:bob")?;
//! # let _ = (claimed, visits);
//! # Ok(())
//! # }
//! ```
//!
//! A TTL of `None`, or one over the operator's maximum (30 days by default), means that
//! maximum. These are the component's imports: from a native build they panic.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

#[doc(inline)]
pub use crate::bindings::interstate::mapper::store::{Error, compare_and_swap, delete, get, set};

/// A failed typed store call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store refused or could not be reached.
    #[error("store: {}", describe(.0))]
    Store(#[source] Error),
    /// The value under `key` is not UTF-8 text.
    #[error("store: the value of {key:?} is not UTF-8 text")]
    NotText {
        /// The key read.
        key: String,
    },
    /// The value under `key` is not the JSON of the type asked for (or a value did not
    /// serialise).
    #[error("store: the value of {key:?} is not the expected JSON: {source}")]
    Json {
        /// The key read or written.
        key: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

impl From<Error> for StoreError {
    fn from(error: Error) -> Self {
        Self::Store(error)
    }
}

/// A store [`Error`] in words, for logs and messages (its `Display` is wit-bindgen's `Debug`).
pub fn describe(error: &Error) -> String {
    match error {
        Error::TooLarge(detail) => format!("too large ({detail})"),
        Error::Full => "the mapper's namespace is full".to_owned(),
        Error::Unavailable(detail) => format!("unavailable ({detail})"),
    }
}

/// A TTL as the WIT's milliseconds (saturating; `None` stays `None`, the maximum).
pub fn ttl_ms(ttl: Option<Duration>) -> Option<u64> {
    ttl.map(|ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
}

/// The text under `key`, or `None`.
///
/// # Errors
/// [`StoreError::Store`] when the store fails, [`StoreError::NotText`] for bytes that are not
/// UTF-8.
pub fn get_string(key: &str) -> Result<Option<String>, StoreError> {
    match get(key)? {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| StoreError::NotText {
                key: key.to_owned(),
            }),
    }
}

/// Sets `key` to the text `value` for `ttl`.
///
/// # Errors
/// The store's [`Error`].
pub fn set_string(key: &str, value: &str, ttl: Option<Duration>) -> Result<(), Error> {
    set(key, value.as_bytes(), ttl_ms(ttl))
}

/// [`compare_and_swap`] on text: replaces `expected` (`None`: only if absent) by `new` (`None`
/// deletes), atomically across every node. True when swapped.
///
/// # Errors
/// The store's [`Error`].
pub fn compare_and_swap_string(
    key: &str,
    expected: Option<&str>,
    new: Option<&str>,
    ttl: Option<Duration>,
) -> Result<bool, Error> {
    compare_and_swap(
        key,
        expected.map(str::as_bytes),
        new.map(str::as_bytes),
        ttl_ms(ttl),
    )
}

/// The JSON value under `key`, deserialised into `T`, or `None`.
///
/// # Errors
/// [`StoreError::Store`] when the store fails, [`StoreError::Json`] when the value is not
/// `T`'s JSON.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, StoreError> {
    match get(key)? {
        None => Ok(None),
        Some(bytes) => decode_json(key, &bytes).map(Some),
    }
}

/// Sets `key` to the JSON of `value` for `ttl`.
///
/// # Errors
/// [`StoreError::Json`] when `value` does not serialise, [`StoreError::Store`] when the store
/// fails.
pub fn set_json<T: Serialize + ?Sized>(
    key: &str,
    value: &T,
    ttl: Option<Duration>,
) -> Result<(), StoreError> {
    let bytes = encode_json(key, value)?;
    Ok(set(key, &bytes, ttl_ms(ttl))?)
}

fn decode_json<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Json {
        key: key.to_owned(),
        source,
    })
}

fn encode_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|source| StoreError::Json {
        key: key.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    #[test]
    fn ttls_become_milliseconds() {
        assert_eq!(ttl_ms(None), None);
        assert_eq!(ttl_ms(Some(Duration::from_secs(90))), Some(90_000));
        assert_eq!(ttl_ms(Some(Duration::MAX)), Some(u64::MAX));
    }

    #[test]
    fn json_round_trips_and_names_the_key() {
        let bytes = encode_json("k", &vec!["a", "b"]).unwrap();
        assert_eq!(bytes, br#"["a","b"]"#);
        let back: Vec<String> = decode_json("k", &bytes).unwrap();
        assert_eq!(back, ["a", "b"]);
        let err = decode_json::<u32>("visits:bob", b"\"x\"").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("store: the value of \"visits:bob\" is not the expected JSON"),
            "{err}"
        );
    }

    #[test]
    fn store_errors_read_well() {
        assert_eq!(
            StoreError::from(Error::Unavailable("redis down".into())).to_string(),
            "store: unavailable (redis down)"
        );
        assert_eq!(describe(&Error::Full), "the mapper's namespace is full");
    }
}
