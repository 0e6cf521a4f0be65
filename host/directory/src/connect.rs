//! Opening connections: the profile's servers in order, a server that failed to connect skipped
//! for a short back-off, LDAPS or StartTLS with the profile's TLS configuration.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use interstate_protocol::capability::{DirectoryFailure, DirectoryFailureKind};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};

use crate::profile::Profile;

/// How long a server that failed to connect is skipped (while another one answers).
pub const BACKOFF: Duration = Duration::from_secs(30);

/// Counters of one profile, for tests, benchmarks and metrics. Monotonic.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections opened (TCP, and TLS when used), service and user alike.
    pub connections: AtomicU64,
    /// Connection attempts that failed (a server down, a refused certificate, a timeout).
    pub connect_failures: AtomicU64,
    /// Binds as the service account.
    pub service_binds: AtomicU64,
    /// Binds as a user (authenticate, change password).
    pub user_binds: AtomicU64,
    /// Service-account connections taken from the pool rather than opened.
    pub pool_reuses: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections opened.
    pub connections: u64,
    /// Failed connection attempts.
    pub connect_failures: u64,
    /// Service-account binds.
    pub service_binds: u64,
    /// User binds.
    pub user_binds: u64,
    /// Pooled connections reused.
    pub pool_reuses: u64,
}

impl Counters {
    /// The current values.
    pub fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            connections: get(&self.connections),
            connect_failures: get(&self.connect_failures),
            service_binds: get(&self.service_binds),
            user_binds: get(&self.user_binds),
            pool_reuses: get(&self.pool_reuses),
        }
    }

    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The servers of a profile with their back-off state.
#[derive(Debug)]
pub struct Servers {
    /// Until when each server (same order as the profile's) is skipped.
    down_until: Mutex<Vec<Option<Instant>>>,
}

impl Servers {
    /// No server in back-off.
    pub fn new(count: usize) -> Self {
        Self {
            down_until: Mutex::new(vec![None; count]),
        }
    }

    /// The order to try servers in: those not in back-off first (in the profile's order), then
    /// those in back-off, so that a profile whose servers all failed recently still tries.
    fn order(&self) -> Vec<usize> {
        let now = Instant::now();
        let down = self
            .down_until
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default();
        let skipped = |i: &usize| down.get(*i).copied().flatten().is_some_and(|t| t > now);
        let count = down.len();
        let (mut up, later): (Vec<usize>, Vec<usize>) = (0..count).partition(|i| !skipped(i));
        up.extend(later);
        up
    }

    fn mark(&self, index: usize, down: bool) {
        if let Ok(mut state) = self.down_until.lock()
            && let Some(slot) = state.get_mut(index)
        {
            *slot = down.then(|| Instant::now() + BACKOFF);
        }
    }
}

/// Opens a connection to the first server of `profile` that answers, spawning its driver.
pub async fn open(
    profile: &Profile,
    servers: &Servers,
    counters: &Counters,
) -> Result<Ldap, DirectoryFailure> {
    let mut errors = Vec::new();
    for index in servers.order() {
        let Some(url) = profile.servers.get(index) else {
            continue;
        };
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(profile.timeout)
            .set_starttls(profile.starttls && url.starts_with("ldap://"));
        if let Some(tls) = &profile.tls {
            settings = settings.set_config(tls.clone());
        }
        match LdapConnAsync::with_settings(settings, url).await {
            Ok((conn, ldap)) => {
                servers.mark(index, false);
                Counters::add(&counters.connections);
                let url = url.clone();
                tokio::spawn(async move {
                    if let Err(e) = conn.drive().await {
                        tracing::debug!(server = %url, error = %e, "directory connection ended");
                    }
                });
                return Ok(ldap);
            }
            Err(e) => {
                servers.mark(index, true);
                Counters::add(&counters.connect_failures);
                tracing::warn!(profile = %profile.name, server = %url, error = %e,
                    "directory server unreachable; trying the next one");
                errors.push(format!("{url}: {e}"));
            }
        }
    }
    Err(DirectoryFailure {
        kind: DirectoryFailureKind::Unreachable,
        detail: format!(
            "no server of profile {:?} answered: {}",
            profile.name,
            errors.join("; ")
        ),
    })
}
