//! The broker's Prometheus metrics, kept with the `prometheus-client` crate and served by the
//! admin listener at `GET /metrics` (OpenMetrics text, which Prometheus scrapes natively).
//!
//! # Naming
//!
//! Prometheus conventions: an `interstate_` prefix, base units (`_seconds`), `_total` on
//! counters (the crate appends it), and labels from small closed sets only. No user name,
//! client address, session id or desktop ever becomes a label: each distinct value would be a
//! new time series, an unbounded memory cost and a privacy leak in the monitoring system.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `interstate_sessions` | gauge | (live sessions, every node sharing the store) |
//! | `interstate_sessions_created_total` | counter | |
//! | `interstate_sessions_ended_total` | counter | `reason`: bye, timeout, killed, replaced |
//! | `interstate_logins_total` | counter | `outcome`: success, rejected, challenge, rate_limited, error |
//! | `interstate_mapper_calls_total` | counter | `export`, `outcome`: ok, error |
//! | `interstate_mapper_call_duration_seconds` | histogram | `export`, `outcome` |
//! | `interstate_allocations_total` | counter | `result`: success, refused, agent_failed |
//! | `interstate_operations_total` | counter | `outcome`: done, try_again, refused, unsupported, error |
//! | `interstate_password_changes_total` | counter | `outcome`: changed, rejected, unsupported, rate_limited, error |
//! | `interstate_agent_latency_seconds` | histogram | `outcome`: ok, error |
//! | `interstate_store_errors_total` | counter | `kind`: busy, conflict, full, unavailable |
//! | `interstate_feed_connections` | gauge | |
//! | `interstate_reloads_total` | counter | `outcome`: applied, refused |
//! | `interstate_certificate_expiry_timestamp_seconds` | gauge | (the broker certificate's notAfter) |
//! | `interstate_agent_certificate_refused_total` | counter | |
//! | `interstate_build_info` | gauge (always 1) | `version` |
//!
//! `build_info` is a gauge set to 1 rather than an OpenMetrics `info` metric, so that parsers of
//! the older Prometheus text format read it too. The gauges that describe state kept elsewhere
//! (live sessions, feed connections) are set when `/metrics` is scraped.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A label set of one closed-vocabulary label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// The outcome.
    pub outcome: &'static str,
}

/// Labels of the mapper call metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MapperCall {
    /// The export called (`authenticate`, `list-desktops`, …).
    pub export: &'static str,
    /// `ok` or `error` (a trap, a timeout, a refusal to answer).
    pub outcome: &'static str,
}

/// Labels of the allocation counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AllocationResult {
    /// `success`, `refused` or `agent_failed`.
    pub result: &'static str,
}

/// Labels of the store error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreErrorKind {
    /// `busy`, `conflict`, `full` or `unavailable`.
    pub kind: &'static str,
}

/// Labels of the session end counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndReason {
    /// `bye`, `timeout`, `killed` or `replaced`.
    pub reason: &'static str,
}

/// Labels of the build info gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Build {
    version: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets from 1 ms to about 16 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// Every metric of one broker, and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Live sessions (set at scrape time).
    pub sessions: Gauge,
    /// Sessions created.
    pub sessions_created: Counter,
    /// Sessions ended, by reason.
    pub sessions_ended: Family<EndReason, Counter>,
    /// Logins by outcome.
    pub logins: Family<Outcome, Counter>,
    /// Mapper calls by export and outcome.
    pub mapper_calls: Family<MapperCall, Counter>,
    /// Mapper call durations by export and outcome.
    pub mapper_duration: Histograms<MapperCall>,
    /// Allocations by result.
    pub allocations: Family<AllocationResult, Counter>,
    /// Desktop operations the mapper was asked for, by outcome.
    pub operations: Family<Outcome, Counter>,
    /// Password changes, by outcome.
    pub password_changes: Family<Outcome, Counter>,
    /// Agent `launch-session` latency by outcome.
    pub agent_latency: Histograms<Outcome>,
    /// Store errors by kind.
    pub store_errors: Family<StoreErrorKind, Counter>,
    /// Open feed subscribers (set at scrape time).
    pub feed_connections: Gauge,
    /// Reloads by outcome.
    pub reloads: Family<Outcome, Counter>,
    /// The certificate's notAfter, in seconds since the epoch.
    pub certificate_expiry: Gauge,
    /// Launches refused because the agent's certificate differed from its pin.
    pub agent_certificate_refused: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("interstate");
        let sessions = Gauge::default();
        registry.register("sessions", "Live broker sessions", sessions.clone());
        let sessions_created = Counter::default();
        registry.register(
            "sessions_created",
            "Broker sessions created",
            sessions_created.clone(),
        );
        let sessions_ended = Family::default();
        registry.register(
            "sessions_ended",
            "Broker sessions ended, by reason",
            sessions_ended.clone(),
        );
        let logins = Family::default();
        registry.register("logins", "Login attempts by outcome", logins.clone());
        let mapper_calls = Family::default();
        registry.register(
            "mapper_calls",
            "Mapper calls by export and outcome",
            mapper_calls.clone(),
        );
        let mapper_duration: Histograms<MapperCall> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "mapper_call_duration",
            "Mapper call duration by export and outcome",
            Unit::Seconds,
            mapper_duration.clone(),
        );
        let allocations = Family::default();
        registry.register(
            "allocations",
            "Desktop allocations by result",
            allocations.clone(),
        );
        let operations = Family::default();
        registry.register(
            "operations",
            "Desktop operations (restart, power) by outcome",
            operations.clone(),
        );
        let password_changes = Family::default();
        registry.register(
            "password_changes",
            "Password changes by outcome",
            password_changes.clone(),
        );
        let agent_latency: Histograms<Outcome> = Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "agent_latency",
            "Latency of the agent's launch-session call",
            Unit::Seconds,
            agent_latency.clone(),
        );
        let store_errors = Family::default();
        registry.register(
            "store_errors",
            "Session store errors by kind",
            store_errors.clone(),
        );
        let feed_connections = Gauge::default();
        registry.register(
            "feed_connections",
            "Open operator feed connections",
            feed_connections.clone(),
        );
        let reloads = Family::default();
        registry.register(
            "reloads",
            "Configuration reloads by outcome",
            reloads.clone(),
        );
        let certificate_expiry = Gauge::default();
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "When the broker's TLS certificate expires (notAfter, Unix time)",
            certificate_expiry.clone(),
        );
        let agent_certificate_refused = Counter::default();
        registry.register(
            "agent_certificate_refused",
            "Launches refused because the agent's certificate differed from its pin",
            agent_certificate_refused.clone(),
        );
        let build: Family<Build, Gauge> = Family::default();
        build
            .get_or_create(&Build {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "The broker's version (always 1)", build);
        Self {
            registry,
            sessions,
            sessions_created,
            sessions_ended,
            logins,
            mapper_calls,
            mapper_duration,
            allocations,
            operations,
            password_changes,
            agent_latency,
            store_errors,
            feed_connections,
            reloads,
            certificate_expiry,
            agent_certificate_refused,
        }
    }

    /// Counts one mapper call of `export` that took `elapsed`.
    pub fn mapper_call(&self, export: &'static str, ok: bool, elapsed: Duration) {
        let labels = MapperCall {
            export,
            outcome: if ok { "ok" } else { "error" },
        };
        self.mapper_calls.get_or_create(&labels).inc();
        self.mapper_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a login with `outcome`.
    pub fn login(&self, outcome: &'static str) {
        self.logins.get_or_create(&Outcome { outcome }).inc();
    }

    /// Counts an allocation with `result`.
    pub fn allocation(&self, result: &'static str) {
        self.allocations
            .get_or_create(&AllocationResult { result })
            .inc();
    }

    /// Counts a desktop operation with `outcome`.
    pub fn operation(&self, outcome: &'static str) {
        self.operations.get_or_create(&Outcome { outcome }).inc();
    }

    /// Counts a password change with `outcome`.
    pub fn password_change(&self, outcome: &'static str) {
        self.password_changes
            .get_or_create(&Outcome { outcome })
            .inc();
    }

    /// Counts a session end for `reason`.
    pub fn session_ended(&self, reason: &'static str) {
        self.sessions_ended
            .get_or_create(&EndReason { reason })
            .inc();
    }

    /// Counts a store error.
    pub fn store_error(&self, e: &crate::store::StoreError) {
        use crate::store::StoreError;
        let kind = match e {
            StoreError::Busy => "busy",
            StoreError::Conflict => "conflict",
            StoreError::Full(_) => "full",
            StoreError::Unavailable(_) => "unavailable",
        };
        self.store_errors
            .get_or_create(&StoreErrorKind { kind })
            .inc();
    }

    /// Records the certificate's expiry from its DER; a certificate that does not parse leaves
    /// the gauge as it was.
    pub fn set_certificate(&self, der: &[u8]) {
        if let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) {
            self.certificate_expiry
                .set(cert.validity().not_after.timestamp());
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
