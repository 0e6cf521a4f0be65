//! The bounded pool password hashes run on.
//!
//! A hash costs tens of milliseconds of CPU (ILS PBKDF2, argon2). Run inline, or on tokio's
//! blocking pool (up to 512 threads), a burst of logins would take every core and starve the
//! requests that need no hash. Here at most `workers` hashes run at once, each on a blocking
//! thread holding one of `workers` permits; the rest wait in line, and a hash whose call's
//! deadline passes while it waits gives up without hashing. A hash already running cannot be
//! interrupted, but [`password`](crate::password) refuses costs beyond its caps, so it is
//! bounded.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::password;

/// A fixed number of hashing slots, shared by every mapper of the process.
#[derive(Debug, Clone)]
pub struct HashPool {
    permits: Arc<Semaphore>,
    workers: usize,
}

impl HashPool {
    /// A pool running at most `workers` hashes at once; 0 means one per core.
    pub fn new(workers: usize) -> Self {
        let workers = if workers == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            workers
        };
        Self {
            permits: Arc::new(Semaphore::new(workers)),
            workers,
        }
    }

    /// How many hashes may run at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Runs `job` on a blocking thread once a slot is free, or gives up (`None`) if
    /// `deadline` passes first. The slot is held until `job` returns, even if the caller stops
    /// waiting, so the pool's bound holds.
    pub async fn run<T, F>(&self, deadline: Instant, job: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit =
            tokio::time::timeout_at(deadline.into(), Arc::clone(&self.permits).acquire_owned())
                .await
                .ok()?
                .ok()?;
        if Instant::now() >= deadline {
            return None;
        }
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .ok()
    }

    /// Whether `password` matches `hash`, checked on the pool; false when the deadline passed
    /// before a slot was free.
    pub async fn verify(
        &self,
        deadline: Instant,
        password: Zeroizing<String>,
        hash: String,
    ) -> bool {
        self.run(deadline, move || password::verify(&password, &hash))
            .await
            .unwrap_or(false)
    }

    /// A new PHC argon2id hash of `password` ([`password::hash_argon2id`]), computed on the
    /// pool; `None` when the deadline passed before a slot was free.
    pub async fn hash(&self, deadline: Instant, password: Zeroizing<String>) -> Option<String> {
        self.run(deadline, move || password::hash_argon2id(&password))
            .await
    }

    /// Spends what checking a wrong password against an ILS hash costs, on the same pool: a
    /// refusal that needs no hash (a rate-limited login) then takes as long as one that does.
    pub async fn spend_like_a_check(&self, deadline: Instant) {
        self.run(deadline, || password::hash_ils("interstate dummy password"))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[expect(
        clippy::disallowed_methods,
        reason = "the sleep stands for a hash, on the pool's blocking thread"
    )]
    async fn at_most_workers_hashes_run_at_once() {
        const WORKERS: usize = 2;
        let pool = HashPool::new(WORKERS);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let deadline = Instant::now() + Duration::from_secs(60);
        let jobs = (0..=WORKERS).map(|_| {
            let (running, most) = (Arc::clone(&running), Arc::clone(&most));
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(deadline, move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(100));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            })
        });
        for job in jobs.collect::<Vec<_>>() {
            assert!(job.await.unwrap().is_some(), "every job ran");
        }
        assert_eq!(most.load(Ordering::SeqCst), WORKERS);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[expect(
        clippy::disallowed_methods,
        reason = "the sleep stands for a hash, on the pool's blocking thread"
    )]
    async fn a_queued_hash_whose_deadline_passes_is_not_computed() {
        let pool = HashPool::new(1);
        let release = Arc::new(AtomicBool::new(false));
        let busy = {
            let (pool, release) = (pool.clone(), Arc::clone(&release));
            tokio::spawn(async move {
                pool.run(Instant::now() + Duration::from_secs(60), move || {
                    while !release.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                })
                .await
            })
        };
        // Let the busy job take the only slot.
        while pool.permits.available_permits() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let computed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&computed);
        let late = pool
            .run(Instant::now() + Duration::from_millis(50), move || {
                flag.store(true, Ordering::SeqCst);
            })
            .await;
        release.store(true, Ordering::SeqCst);
        assert!(busy.await.unwrap().is_some());
        assert!(late.is_none(), "the queued hash gave up at its deadline");
        assert!(!computed.load(Ordering::SeqCst), "and never ran");
        // A check that gives up is a non-match.
        let expired = Instant::now();
        assert!(
            !pool
                .verify(
                    expired,
                    Zeroizing::new("pw".into()),
                    password::hash_ils("pw")
                )
                .await
        );
    }

    #[test]
    fn zero_workers_means_one_per_core() {
        assert!(HashPool::new(0).workers() >= 1);
        assert_eq!(HashPool::new(3).workers(), 3);
    }
}
