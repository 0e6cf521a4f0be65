//! The service account's connections: a bounded pool of connections bound as the service account
//! (never as a user), reused across calls and checked with a round trip when they sat idle.
//! A profile with `pool_size: 0` opens, binds and closes a connection for every call.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use interstate_protocol::capability::{DirectoryFailure, DirectoryFailureKind};
use ldap3::Ldap;
use ldap3::exop::WhoAmI;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::connect::{Counters, Servers, open};
use crate::profile::Profile;

/// A connection idle longer than this is checked with a WhoAmI before it is used again.
pub const CHECK_AFTER_IDLE: Duration = Duration::from_secs(10);
/// A connection idle longer than this is closed rather than reused (servers drop idle ones).
pub const MAX_IDLE: Duration = Duration::from_secs(300);

/// The service account's connections of one profile.
#[derive(Debug)]
pub struct Pool {
    idle: Mutex<Vec<(Ldap, Instant)>>,
    /// One permit per connection in use; `None` when the profile keeps no pool.
    permits: Option<Arc<Semaphore>>,
}

/// A connection bound as the service account, taken from the pool or opened for one call.
#[derive(Debug)]
pub struct ServiceConn {
    /// The connection.
    pub ldap: Ldap,
    /// True when it came from the pool (a transport failure is then worth one retry).
    pub reused: bool,
    permit: Option<OwnedSemaphorePermit>,
}

impl Pool {
    /// An empty pool of at most `size` connections (0: no pool).
    pub fn new(size: usize) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            permits: (size > 0).then(|| Arc::new(Semaphore::new(size))),
        }
    }

    /// Connections idle in the pool now.
    pub fn idle_count(&self) -> usize {
        self.idle.lock().map(|idle| idle.len()).unwrap_or(0)
    }

    /// A connection bound as the service account (anonymous when the profile has none): an idle
    /// one if it is healthy, else a new one. Waits for a free slot at most the profile's timeout.
    pub async fn get(
        &self,
        profile: &Profile,
        servers: &Servers,
        counters: &Counters,
    ) -> Result<ServiceConn, DirectoryFailure> {
        let permit = match &self.permits {
            None => None,
            Some(permits) => Some(
                tokio::time::timeout(profile.timeout, permits.clone().acquire_owned())
                    .await
                    .map_err(|_| unreachable(profile, "every pooled connection is busy"))?
                    .map_err(|_| unreachable(profile, "the pool is closed"))?,
            ),
        };
        while let Some((mut ldap, since)) = self.pop() {
            let idle = since.elapsed();
            if ldap.is_closed() || idle > MAX_IDLE {
                continue;
            }
            if idle > CHECK_AFTER_IDLE {
                let alive = tokio::time::timeout(profile.timeout, ldap.extended(WhoAmI))
                    .await
                    .is_ok_and(|r| r.is_ok_and(|r| r.1.rc == 0));
                if !alive {
                    continue;
                }
            }
            Counters::add(&counters.pool_reuses);
            return Ok(ServiceConn {
                ldap,
                reused: true,
                permit,
            });
        }
        let mut ldap = open(profile, servers, counters).await?;
        if let Some(service) = &profile.service {
            Counters::add(&counters.service_binds);
            let result = ldap
                .with_timeout(profile.timeout)
                .simple_bind(&service.dn, service.password.expose())
                .await
                .map_err(|e| unreachable(profile, format!("service bind: {e}")))?;
            if result.rc != 0 {
                let _ = ldap.unbind().await;
                return Err(unreachable(
                    profile,
                    format!(
                        "the service account {:?} was refused: rc {} {}",
                        service.dn, result.rc, result.text
                    ),
                ));
            }
        }
        Ok(ServiceConn {
            ldap,
            reused: false,
            permit,
        })
    }

    /// Gives a connection back: kept when `healthy` and the profile has a pool, else closed.
    pub async fn put(&self, mut conn: ServiceConn, healthy: bool) {
        if healthy
            && conn.permit.is_some()
            && !conn.ldap.is_closed()
            && let Ok(mut idle) = self.idle.lock()
        {
            idle.push((conn.ldap, Instant::now()));
            return;
        }
        let _ = conn.ldap.unbind().await;
        drop(conn.permit.take());
    }

    fn pop(&self) -> Option<(Ldap, Instant)> {
        self.idle.lock().ok()?.pop()
    }
}

fn unreachable(profile: &Profile, detail: impl std::fmt::Display) -> DirectoryFailure {
    DirectoryFailure {
        kind: DirectoryFailureKind::Unreachable,
        detail: format!("profile {:?}: {detail}", profile.name),
    }
}
