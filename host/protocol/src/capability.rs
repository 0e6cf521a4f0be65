//! What the host offers mappers beyond the protocol: the seams behind the WIT `store` and
//! `directory` interfaces (and the replay record of `verify-totp`).
//!
//! `interstate-mapper` links these traits to the guest's imports; the broker implements
//! [`KeyValue`] on its session store (memory or Redis), and `interstate-directory` implements
//! [`Directory`] on LDAP. Like [`crate::policy::Mapper`], the traits return boxed futures so they
//! stay object-safe (`Arc<dyn KeyValue>`).

use crate::policy::{Attribute, BoxFuture, Secret};

/// Bounds of one mapper's namespace in the key-value store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvLimits {
    /// Longest key, in bytes.
    pub max_key_bytes: usize,
    /// Longest value, in bytes.
    pub max_value_bytes: usize,
    /// Most live keys in the namespace.
    pub max_keys: u64,
    /// Longest time to live, in milliseconds; also the TTL of a write that names none.
    pub max_ttl_ms: u64,
}

impl Default for KvLimits {
    fn default() -> Self {
        Self {
            max_key_bytes: 256,
            max_value_bytes: 64 * 1024,
            max_keys: 10_000,
            max_ttl_ms: 30 * 24 * 3_600_000,
        }
    }
}

/// Why a key-value call failed (WIT `store.error`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// A key or value over its bound, or an empty key.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The namespace holds its maximum of live keys.
    #[error("the mapper's store is full")]
    Full,
    /// The backend could not be reached.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// A namespaced key-value store with expiry, shared by every node that shares the session
/// store. Implementations check [`KvLimits`] atomically with the write (a write past a bound is
/// refused, nothing is evicted) and expire keys by themselves.
pub trait KeyValue: Send + Sync + 'static {
    /// The value of `key` in `namespace`.
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, KvError>>;

    /// Sets `key` for `ttl_ms` (already clamped to `limits.max_ttl_ms` by the caller).
    fn set<'a>(
        &'a self,
        namespace: &'a str,
        key: &'a str,
        value: Vec<u8>,
        ttl_ms: u64,
        limits: &'a KvLimits,
    ) -> BoxFuture<'a, Result<(), KvError>>;

    /// Deletes `key`; true when it existed.
    fn delete<'a>(
        &'a self,
        namespace: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, KvError>>;

    /// Replaces the value of `key` with `new` (`None` deletes) if it is `expected` (`None`:
    /// absent); true when swapped. Atomic across nodes.
    fn compare_and_swap<'a>(
        &'a self,
        namespace: &'a str,
        key: &'a str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        ttl_ms: u64,
        limits: &'a KvLimits,
    ) -> BoxFuture<'a, Result<bool, KvError>>;

    /// Records `key` once in the host's own namespace (not a mapper's, not counted against any
    /// limit) for `ttl_ms`: true the first time, false while it is recorded. `verify-totp`
    /// spends a time step with it.
    fn claim_once<'a>(&'a self, key: &'a str, ttl_ms: u64) -> BoxFuture<'a, Result<bool, KvError>>;
}

/// Why a directory call failed (WIT `directory.failure-kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DirectoryFailureKind {
    /// Unknown user or wrong password (AD 52e).
    WrongPassword,
    /// The password has expired (AD 532).
    PasswordExpired,
    /// The password must be changed first (AD 773).
    MustChangePassword,
    /// The account is disabled (AD 533).
    AccountDisabled,
    /// The account has expired (AD 701).
    AccountExpired,
    /// The account is locked out (AD 775).
    LockedOut,
    /// Not allowed to log on now (AD 530).
    OutsideLogonHours,
    /// A new password breaks the policy.
    WeakPassword,
    /// No server answered, or the service account was refused.
    Unreachable,
    /// No such profile.
    UnknownProfile,
}

/// A failed directory call: the kind and a detail for the log (never a password).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {detail}")]
pub struct DirectoryFailure {
    /// What failed.
    pub kind: DirectoryFailureKind,
    /// For the log.
    pub detail: String,
}

/// A user found in the directory (WIT `directory.user`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The distinguished name.
    pub dn: String,
    /// The login name as the directory spells it.
    pub login: String,
    /// Attributes, one entry per value.
    pub attributes: Vec<Attribute>,
}

/// A group of a user (WIT `directory.group`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectoryGroup {
    /// The distinguished name.
    pub dn: String,
    /// The `cn`.
    pub name: String,
}

/// The studio's directory, by operator-configured profile name.
pub trait Directory: Send + Sync + 'static {
    /// Checks a login (search then bind, or a direct bind).
    fn authenticate<'a>(
        &'a self,
        profile: &'a str,
        username: &'a str,
        password: &'a Secret,
    ) -> BoxFuture<'a, Result<DirectoryUser, DirectoryFailure>>;

    /// Looks a user up with the service account.
    fn lookup<'a>(
        &'a self,
        profile: &'a str,
        username: &'a str,
        attributes: &'a [String],
    ) -> BoxFuture<'a, Result<Option<DirectoryUser>, DirectoryFailure>>;

    /// The user's groups, nested ones included.
    fn groups<'a>(
        &'a self,
        profile: &'a str,
        username: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DirectoryGroup>, DirectoryFailure>>;

    /// Changes the user's password, as the user.
    fn change_password<'a>(
        &'a self,
        profile: &'a str,
        username: &'a str,
        old_password: &'a Secret,
        new_password: &'a Secret,
    ) -> BoxFuture<'a, Result<(), DirectoryFailure>>;
}
