//! Opening connections: the profile's servers in order, a server that failed to connect skipped
//! for a short back-off, LDAPS or StartTLS with the profile's TLS configuration.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use interstate_protocol::capability::{DirectoryFailure, DirectoryFailureKind};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, StdStream};

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

/// `host:port` of an `ldap://` or `ldaps://` URL, with the scheme's port when none is given.
fn host_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default = match scheme.to_ascii_lowercase().as_str() {
        "ldap" => 389,
        "ldaps" => 636,
        _ => return None,
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return None;
    }
    let has_port = match authority.rfind(']') {
        Some(end) => authority[end..].contains(':'),
        None => authority.contains(':'),
    };
    Some(if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{default}")
    })
}

/// A TCP connection to `url`'s server with Nagle's algorithm off. ldap3 does not set
/// `TCP_NODELAY`, and an LDAP exchange over TLS writes small segments back to back: Nagle then
/// holds one until the server's delayed ACK, about 40 ms per operation even on loopback.
async fn tcp(url: &str, timeout: Duration) -> Result<std::net::TcpStream, LdapError> {
    let io = |kind, text: &str| LdapError::from(std::io::Error::new(kind, text.to_owned()));
    let target = host_port(url).ok_or_else(|| {
        io(
            std::io::ErrorKind::InvalidInput,
            "not an ldap:// or ldaps:// URL",
        )
    })?;
    let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(target))
        .await
        .map_err(|_| io(std::io::ErrorKind::TimedOut, "the TCP connection timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream.into_std()?)
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
        let mut settings =
            LdapConnSettings::new().set_starttls(profile.starttls && url.starts_with("ldap://"));
        if let Some(tls) = &profile.tls {
            settings = settings.set_config(tls.clone());
        }
        let attempt = async {
            let started = Instant::now();
            let stream = tcp(url, profile.timeout).await?;
            // One deadline for the whole connection: TLS gets what the TCP connect left.
            let left = profile
                .timeout
                .saturating_sub(started.elapsed())
                .max(Duration::from_millis(1));
            let settings = settings
                .set_conn_timeout(left)
                .set_std_stream(StdStream::Tcp(stream));
            LdapConnAsync::with_settings(settings, url).await
        };
        match attempt.await {
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

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn host_port_takes_the_url_port_or_the_schemes() {
        assert_eq!(
            host_port("ldaps://127.0.0.1:1636").as_deref(),
            Some("127.0.0.1:1636")
        );
        assert_eq!(
            host_port("ldap://dc1.corp.example/").as_deref(),
            Some("dc1.corp.example:389")
        );
        assert_eq!(
            host_port("LDAPS://dc1.corp.example").as_deref(),
            Some("dc1.corp.example:636")
        );
        assert_eq!(host_port("ldaps://[::1]").as_deref(), Some("[::1]:636"));
        assert_eq!(
            host_port("ldap://[::1]:1389/dc=x").as_deref(),
            Some("[::1]:1389")
        );
        assert_eq!(host_port("http://example.org"), None);
        assert_eq!(host_port("ldap://"), None);
    }
}
