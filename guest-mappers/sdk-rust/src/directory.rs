//! The studio's directory (`interstate:mapper/directory`): LDAP and Active Directory, through
//! the profiles the operator configured in the broker's `directory.profiles`. The host holds
//! the connections and the service account; the mapper names a profile.
//!
//! ```no_run
//! use interstate_mapper_sdk::directory::{self, FailureKind};
//!
//! match directory::authenticate("corp", "alice", "her password") {
//!     Ok(user) => {
//!         let groups = directory::groups("corp", &user.login).unwrap_or_default();
//!         let _names: Vec<String> = groups.into_iter().map(|g| g.name).collect();
//!     }
//!     // The AD sub-codes arrive as kinds: an expired password asks the client for a change.
//!     Err(failure) if failure.kind == FailureKind::PasswordExpired => {}
//!     Err(failure) => {
//!         // `detail` is for the log; it never holds a password.
//!         let _ = failure.detail;
//!     }
//! }
//! ```
//!
//! These are the component's imports: from a native build they panic.

#[doc(inline)]
pub use crate::bindings::interstate::mapper::directory::{
    Failure, FailureKind, Group, User, authenticate, change_password, groups, lookup,
};
