//! What the host offers every mapper (`interstate:mapper/host`): the broker's log, password
//! hashes checked and made on the broker's hash pool, and TOTP codes checked with replay
//! protection across every node.
//!
//! ```no_run
//! use interstate_mapper_sdk::host::{self, Level, TotpVerdict};
//!
//! // A password against a hash from the settings (or from the store, after a change).
//! let hash = "8ff41da5ef01bf7ddb6aef29749422ebad97fb879df33126aed850aeb22325e8";
//! if host::verify_password("bob-pw", hash) {
//!     host::log(Level::Info, "user \"bob\": accepted");
//! }
//!
//! // A new password, hashed for a later `verify_password` (keep the hash, never the password).
//! let stored: String = host::hash_password("a new passphrase");
//! assert!(stored.starts_with("$argon2id$"));
//!
//! // A one-time code: `Replayed` is a right code already used once, so treat it as wrong.
//! match host::verify_totp("JBSWY3DPEHPK3PXP", "123456") {
//!     TotpVerdict::Accepted => { /* in */ }
//!     TotpVerdict::Rejected | TotpVerdict::Replayed => { /* ask again */ }
//! }
//! ```
//!
//! These are the component's imports: from a native build (`cargo test`) they panic, so pass
//! them to the policy through a trait of your own and fake them in tests.

#[doc(inline)]
pub use crate::bindings::interstate::mapper::host::{
    Level, TotpVerdict, hash_password, log, verify_password, verify_totp,
};
