//! Logins per second and latency of authenticate + groups against the local slapd, pooled and
//! unpooled. Ignored by default (it measures, it does not check): run it with
//! `cargo test -p interstate-tests --test directory -- --ignored --nocapture bench`.

use std::time::{Duration, Instant};

use interstate_tests::slapd::{Slapd, password_of};
use serde_json::json;

use super::{directory, profile, secret};
use interstate_protocol::capability::Directory;

/// Logins per configuration, and the most time one configuration may take.
const LOGINS: usize = 400;
const CONCURRENCY: usize = 8;
const BUDGET: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn bench_logins_pooled_and_unpooled() {
    let slapd = Slapd::start().await;
    for pool_size in [4, 0] {
        let dir = directory(&slapd, profile(&slapd, json!({"pool_size": pool_size})));
        let password = secret(&password_of("alice"));
        // Warm up (first connection, TLS session setup on the server).
        dir.authenticate("corp", "alice", &password).await.unwrap();
        let started = Instant::now();
        let mut latencies = Vec::with_capacity(LOGINS);
        let mut done = 0;
        while done < LOGINS && started.elapsed() < BUDGET {
            let batch = (0..CONCURRENCY).map(|_| async {
                let t = Instant::now();
                let user = dir.authenticate("corp", "alice", &password).await.unwrap();
                let groups = dir.groups("corp", &user.login).await.unwrap();
                assert_eq!(groups.len(), 2);
                t.elapsed()
            });
            latencies.extend(futures_util::future::join_all(batch).await);
            done += CONCURRENCY;
        }
        let elapsed = started.elapsed();
        latencies.sort();
        let pct = |p: f64| {
            let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
            latencies[i].as_secs_f64() * 1000.0
        };
        let stats = dir.stats("corp").unwrap();
        println!(
            "pool_size {pool_size}: {n} logins (authenticate + groups, {CONCURRENCY} at once, LDAPS) in {s:.2} s = {rate:.0} logins/s; latency p50 {p50:.2} ms, p90 {p90:.2} ms, p99 {p99:.2} ms; {conns} connections, {binds} service binds",
            n = latencies.len(),
            s = elapsed.as_secs_f64(),
            rate = latencies.len() as f64 / elapsed.as_secs_f64(),
            p50 = pct(0.5),
            p90 = pct(0.9),
            p99 = pct(0.99),
            conns = stats.connections,
            binds = stats.service_binds,
        );
    }
}
