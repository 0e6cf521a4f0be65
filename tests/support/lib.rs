//! Shared helpers for the end-to-end tests: a real TLS broker on 127.0.0.1:0, a fake PCoIP agent
//! that is a real HTTPS server on 127.0.0.2, and a client that keeps the raw response bytes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: failing loudly is the point"
)]

pub mod agent;
pub mod broker;
pub mod guests;
pub mod pcoip;
pub mod power;
pub mod redis;
pub mod totp;

pub use agent::{AgentBehaviour, FakeAgent};
pub use broker::TestBroker;
pub use pcoip::{TestClient, msg};

/// `kolmogorov`'s password in the fixtures; note the XML special characters.
pub const PASSWORD: &str = "goodluck<&>";

/// `hashlib.pbkdf2_hmac('sha256', b'goodluck<&>', b'IGNORED', 100000).hex()`, computed by
/// Python: the hash format interstate_love_song's SimpleMapper stores.
pub const PASSWORD_ILS_HASH: &str =
    "23d405aab7add23c5b7b7bc74e7c7299a0e45ab47e3d8e2e34f6055a04d72cce";

/// Installs a test log subscriber once (`RUST_LOG` / `INTERSTATE_LOG` to see it).
pub fn init_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = std::env::var("INTERSTATE_LOG").unwrap_or_else(|_| "warn".into());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// The shared compile cache for mapper components in tests.
pub fn component_cache_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("interstate-test-components")
}
