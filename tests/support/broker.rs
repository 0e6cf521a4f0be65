//! A real broker on 127.0.0.1:0, in this process, with real TLS.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use interstate::app::Running;
use interstate::settings::Settings;
use serde_json::Value;
use tokio::sync::oneshot;

/// A broker serving until stopped or dropped.
#[derive(Debug)]
pub struct TestBroker {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The running broker (sessions, reload).
    pub running: Arc<Running>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestBroker {
    /// Starts a broker with `settings` (a settings.json document). The component cache is shared
    /// between tests unless the settings name one.
    pub async fn start(mut settings: Value) -> Self {
        crate::init_logging();
        with_test_dirs(&mut settings);
        let settings = Settings::parse(&settings.to_string(), Path::new("test-settings.json"))
            .unwrap_or_else(|e| panic!("test settings are invalid: {e}"));
        Self::start_with(settings)
            .await
            .unwrap_or_else(|e| panic!("broker did not start: {e}"))
    }

    /// Starts a broker, returning the start error instead of panicking.
    pub async fn start_with(settings: Settings) -> Result<Self, interstate::app::StartError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let (tx, rx) = oneshot::channel::<()>();
        let running = interstate::app::start(settings, listener, async move {
            let _ = rx.await;
        })
        .await?;
        Ok(Self {
            addr: running.local_addr,
            running: Arc::new(running),
            shutdown: Some(tx),
        })
    }

    /// Live sessions in the broker's store.
    pub async fn live_sessions(&self) -> usize {
        self.running
            .broker
            .store()
            .live_sessions()
            .await
            .expect("the session store answers")
    }

    /// Stops accepting, drains, and waits until the server is done.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.running.stopped().await;
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Points the folders the broker writes to (`mapper.cache_dir`, `server.generated_cert_dir`) at
/// the tests' own, unless the settings name them; reloads must use it too, or the reload reports
/// the folders as restart-only changes.
pub fn with_test_dirs(settings: &mut Value) {
    if settings["mapper"]["cache_dir"].is_null() {
        settings["mapper"]["cache_dir"] =
            Value::String(crate::component_cache_dir().display().to_string());
    }
    // The audit log (stderr when unset) goes to a file of the tests' own, so that test output
    // stays readable; tests that read the audit log name their own file.
    if settings["logging"]["audit_file"].is_null() {
        settings["logging"]["audit_file"] = Value::String(
            std::env::temp_dir()
                .join(format!(
                    "interstate-test-audit-{}.jsonl",
                    std::process::id()
                ))
                .display()
                .to_string(),
        );
    }
    if settings["server"]["generated_cert_dir"].is_null() {
        settings["server"]["generated_cert_dir"] = Value::String(
            std::env::temp_dir()
                .join(format!("interstate-test-tls-{}", std::process::id()))
                .display()
                .to_string(),
        );
    }
}

/// Validated settings from a settings.json document, with the tests' own folders (what a reload
/// reads).
pub fn parse_settings(settings: &Value) -> Settings {
    let mut settings = settings.clone();
    with_test_dirs(&mut settings);
    Settings::parse(&settings.to_string(), Path::new("reload.json"))
        .unwrap_or_else(|e| panic!("test settings are invalid: {e}"))
}

/// Settings for the embedded SimpleMapper with user `kolmogorov` and two desktops on the fake
/// agent's address, whose port becomes the default agent port.
pub fn simple_settings(agent: SocketAddr) -> Value {
    serde_json::json!({
        "logging": {"level": "INFO"},
        "beaker": {"type": "file", "data_dir": "/tmp"},
        "mapper": {
            "plugin": "SimpleMapper",
            "settings": {
                "username": "kolmogorov",
                "password_hash": crate::PASSWORD_ILS_HASH,
                "resources": [
                    {"name": "Elisabeth Taylor", "hostname": agent.ip().to_string()},
                    {"name": "James Dean", "hostname": agent.ip().to_string()}
                ],
                "domains": ["EXAMPLE", "LAB"]
            }
        },
        "agent": {"port": agent.port(), "timeout_ms": 2000}
    })
}
