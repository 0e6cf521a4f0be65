//! Latencies per step (HDR histograms, microseconds) and errors by kind, kept per client task and
//! merged at the end so that clients never contend on a lock.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The longest latency recorded exactly (longer ones are clamped): 10 minutes.
const MAX_MICROS: u64 = 600_000_000;

/// One client task's figures.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    steps: BTreeMap<&'static str, Histogram<u64>>,
    /// Failures, keyed `step: kind`.
    pub errors: BTreeMap<String, u64>,
    /// Requests sent (answered or not).
    pub requests: u64,
}

/// Latency figures of one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepStats {
    /// The step (`hello`, `authenticate`, ...; `flow` is a whole flow).
    pub step: String,
    /// How many were timed.
    pub count: u64,
    /// Median, in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile, in milliseconds.
    pub p90_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// Slowest, in milliseconds.
    pub max_ms: f64,
}

impl Stats {
    /// Records a successful step's latency.
    pub fn record(&mut self, step: &'static str, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros())
            .unwrap_or(MAX_MICROS)
            .clamp(1, MAX_MICROS);
        let histogram = self.steps.entry(step).or_insert_with(new_histogram);
        histogram.saturating_record(micros);
    }

    /// Counts a failure of `step`.
    pub fn error(&mut self, step: &str, kind: &str) {
        *self.errors.entry(format!("{step}: {kind}")).or_default() += 1;
    }

    /// Adds another task's figures to these.
    pub fn merge(&mut self, other: Stats) {
        for (step, histogram) in other.steps {
            let mine = self.steps.entry(step).or_insert_with(new_histogram);
            // Same bounds on both sides, so adding cannot fail.
            let _ = mine.add(&histogram);
        }
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        self.requests += other.requests;
    }

    /// Total failures.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The figures of every step, in `order` first, then any others.
    pub fn summary(&self, order: &[&str]) -> Vec<StepStats> {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let mut names: Vec<&'static str> = Vec::new();
        for wanted in order {
            if let Some((name, _)) = self.steps.get_key_value(*wanted) {
                names.push(*name);
            }
        }
        for name in self.steps.keys().copied() {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
            .into_iter()
            .filter_map(|name| {
                let h = self.steps.get(name)?;
                Some(StepStats {
                    step: name.to_owned(),
                    count: h.len(),
                    p50_ms: ms(h.value_at_quantile(0.50)),
                    p90_ms: ms(h.value_at_quantile(0.90)),
                    p99_ms: ms(h.value_at_quantile(0.99)),
                    max_ms: ms(h.max()),
                })
            })
            .collect()
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3)
        .expect("1 µs to MAX_MICROS with 3 significant digits are valid constant bounds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_figures_add_up() {
        let mut a = Stats::default();
        let mut b = Stats::default();
        for ms in 1..=100 {
            a.record("hello", Duration::from_millis(ms));
        }
        b.record("hello", Duration::from_secs(2));
        b.record("bye", Duration::from_micros(0));
        b.error("hello", "timeout");
        b.error("hello", "timeout");
        a.merge(b);
        let summary = a.summary(&["hello"]);
        assert_eq!(summary[0].step, "hello");
        assert_eq!(summary[0].count, 101);
        assert!((summary[0].p50_ms - 51.0).abs() < 0.2, "{:?}", summary[0]);
        assert!((summary[0].max_ms - 2000.0).abs() < 2.0);
        assert_eq!(summary[1].step, "bye");
        assert_eq!(a.error_count(), 2);
        assert_eq!(a.errors["hello: timeout"], 2);
    }
}
