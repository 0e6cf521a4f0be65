//! The figures of a run: for people ([`BenchReport::to_text`]) and as one JSON line.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::Mode;
use super::stats::StepStats;

/// The server's resource use over the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerUsage {
    /// The processes measured.
    pub pids: Vec<u32>,
    /// CPU seconds (user + system) they used during the run.
    pub cpu_s: f64,
    /// CPU seconds per 1000 successful flows.
    pub cpu_s_per_1000_flows: f64,
    /// Resident memory before the run, MiB.
    pub rss_before_mib: f64,
    /// Resident memory after the run, MiB.
    pub rss_after_mib: f64,
}

/// The figures of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// The broker's name, when given.
    pub label: Option<String>,
    /// The URL.
    pub url: String,
    /// The loop.
    pub mode: Mode,
    /// Simulated clients.
    pub concurrency: usize,
    /// Whether every flow opened a new connection.
    pub new_connection_per_flow: bool,
    /// Wall time of the run, seconds.
    pub elapsed_s: f64,
    /// Flows that succeeded.
    pub flows_ok: u64,
    /// Flows that failed.
    pub flows_failed: u64,
    /// Successful flows per second.
    pub flows_per_s: f64,
    /// Requests sent.
    pub requests: u64,
    /// Requests per second.
    pub requests_per_s: f64,
    /// Latency per step; `flow` is the whole iteration.
    pub steps: Vec<StepStats>,
    /// Failures by `step: kind`.
    pub errors: BTreeMap<String, u64>,
    /// The server's CPU and memory, when its pids were given.
    pub server: Option<ServerUsage>,
    /// The cost of one ILS password hash (PBKDF2-SHA256, 100,000 rounds) in milliseconds,
    /// measured in this process with the broker's own code: the floor of a flow's CPU.
    pub pbkdf2_ms: Option<f64>,
}

impl BenchReport {
    /// The figures of `step`.
    pub fn step(&self, step: &str) -> Option<&StepStats> {
        self.steps.iter().find(|s| s.step == step)
    }

    /// The report for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}{} mode={} clients={} {}: {} ok, {} failed in {:.2} s",
            self.label
                .as_deref()
                .map(|l| format!("[{l}] "))
                .unwrap_or_default(),
            self.url,
            self.mode.as_str(),
            self.concurrency,
            if self.new_connection_per_flow {
                "new connection per flow"
            } else {
                "kept-alive connections"
            },
            self.flows_ok,
            self.flows_failed,
            self.elapsed_s
        );
        let _ = writeln!(
            out,
            "  {:.1} flows/s, {:.1} requests/s",
            self.flows_per_s, self.requests_per_s
        );
        let _ = writeln!(
            out,
            "  {:<18} {:>8} {:>10} {:>10} {:>10} {:>10}",
            "step", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        for s in &self.steps {
            let _ = writeln!(
                out,
                "  {:<18} {:>8} {:>10.3} {:>10.3} {:>10.3} {:>10.3}",
                s.step, s.count, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
            );
        }
        if let Some(server) = &self.server {
            let _ = writeln!(
                out,
                "  server: {:.2} CPU s ({:.3} CPU s per 1000 flows), RSS {:.1} -> {:.1} MiB",
                server.cpu_s,
                server.cpu_s_per_1000_flows,
                server.rss_before_mib,
                server.rss_after_mib
            );
        }
        if let Some(ms) = self.pbkdf2_ms {
            let _ = writeln!(out, "  one PBKDF2 password hash here: {ms:.2} ms");
        }
        if self.errors.is_empty() {
            let _ = writeln!(out, "  no errors");
        } else {
            let _ = writeln!(out, "  errors:");
            for (kind, count) in &self.errors {
                let _ = writeln!(out, "    {count:>8}  {kind}");
            }
        }
        out
    }
}
