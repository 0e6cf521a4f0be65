//! The `store` interface of 0.2: the mapper's namespace of the host's [`KeyValue`].
//!
//! The host checks every call before the backend sees it: an empty key, a key or value over
//! the mapper's [`KvLimits`], and the TTL, clamped to `1..=max_ttl_ms` (none means the
//! maximum). Each backend call counts against the call's deadline.

use std::future::Future;
use std::time::Instant;

use interstate_protocol::capability::{KvError, KvLimits};

use crate::bindings::v02::interstate::mapper::store::{self, Error};
use crate::state::CallState;

/// The key, if it is not empty and within the bound.
fn check_key(key: &str, limits: &KvLimits) -> Result<(), KvError> {
    if key.is_empty() {
        return Err(KvError::TooLarge("the key is empty".to_owned()));
    }
    if key.len() > limits.max_key_bytes {
        return Err(KvError::TooLarge(format!(
            "the key is {} bytes long; at most {} are allowed",
            key.len(),
            limits.max_key_bytes
        )));
    }
    Ok(())
}

fn check_value(value: &[u8], limits: &KvLimits) -> Result<(), KvError> {
    if value.len() > limits.max_value_bytes {
        return Err(KvError::TooLarge(format!(
            "the value is {} bytes long; at most {} are allowed",
            value.len(),
            limits.max_value_bytes
        )));
    }
    Ok(())
}

/// The TTL to write with: none or more than the maximum is the maximum; at least 1 ms.
pub(crate) fn clamp_ttl(ttl_ms: Option<u64>, limits: &KvLimits) -> u64 {
    ttl_ms
        .unwrap_or(limits.max_ttl_ms)
        .min(limits.max_ttl_ms)
        .max(1)
}

fn to_wit(err: KvError) -> Error {
    match err {
        KvError::TooLarge(what) => Error::TooLarge(what),
        KvError::Full => Error::Full,
        KvError::Unavailable(why) => Error::Unavailable(why),
    }
}

/// `backend` within the call's deadline.
async fn before<T>(
    deadline: Instant,
    backend: impl Future<Output = Result<T, KvError>>,
) -> Result<T, KvError> {
    match tokio::time::timeout_at(deadline.into(), backend).await {
        Ok(result) => result,
        Err(_elapsed) => Err(KvError::Unavailable(
            "the store did not answer before the call's deadline".to_owned(),
        )),
    }
}

impl store::Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let deadline = self.deadline;
        let services = &self.services;
        let result = async {
            check_key(&key, &services.kv_limits)?;
            before(deadline, services.kv.get(&services.namespace, &key)).await
        }
        .await;
        Ok(result.map_err(to_wit))
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let deadline = self.deadline;
        let services = &self.services;
        let limits = &services.kv_limits;
        let result = async {
            check_key(&key, limits)?;
            check_value(&value, limits)?;
            let ttl = clamp_ttl(ttl_ms, limits);
            before(
                deadline,
                services
                    .kv
                    .set(&services.namespace, &key, value, ttl, limits),
            )
            .await
        }
        .await;
        Ok(result.map_err(to_wit))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<bool, Error>> {
        let deadline = self.deadline;
        let services = &self.services;
        let result = async {
            check_key(&key, &services.kv_limits)?;
            before(deadline, services.kv.delete(&services.namespace, &key)).await
        }
        .await;
        Ok(result.map_err(to_wit))
    }

    async fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let deadline = self.deadline;
        let services = &self.services;
        let limits = &services.kv_limits;
        let result = async {
            check_key(&key, limits)?;
            if let Some(value) = &new {
                check_value(value, limits)?;
            }
            let ttl = clamp_ttl(ttl_ms, limits);
            before(
                deadline,
                services
                    .kv
                    .compare_and_swap(&services.namespace, &key, expected, new, ttl, limits),
            )
            .await
        }
        .await;
        Ok(result.map_err(to_wit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_values_and_ttls_are_checked() {
        let limits = KvLimits {
            max_key_bytes: 4,
            max_value_bytes: 2,
            max_keys: 1,
            max_ttl_ms: 1000,
        };
        assert!(check_key("abcd", &limits).is_ok());
        assert!(matches!(check_key("", &limits), Err(KvError::TooLarge(_))));
        assert!(matches!(
            check_key("abcde", &limits),
            Err(KvError::TooLarge(_))
        ));
        assert!(check_value(b"ab", &limits).is_ok());
        assert!(matches!(
            check_value(b"abc", &limits),
            Err(KvError::TooLarge(_))
        ));
        assert_eq!(clamp_ttl(None, &limits), 1000);
        assert_eq!(clamp_ttl(Some(5000), &limits), 1000);
        assert_eq!(clamp_ttl(Some(10), &limits), 10);
        assert_eq!(clamp_ttl(Some(0), &limits), 1);
    }
}
