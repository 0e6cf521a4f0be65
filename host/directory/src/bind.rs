//! Binds as a user, on a connection of their own that is closed afterwards (a pooled connection
//! is never bound as a user), with the password-policy control requested.

use interstate_protocol::capability::{DirectoryFailure, DirectoryFailureKind};
use interstate_protocol::policy::Secret;
use ldap3::Ldap;

use crate::connect::{Counters, Servers, open};
use crate::diagnostic::{PolicyResponse, classify_bind, policy_request};
use crate::profile::Profile;
use crate::search::failure;

/// A connection bound as a user, and what the server said about their password.
#[derive(Debug)]
pub struct UserConn {
    /// The connection; close it with [`UserConn::close`].
    pub ldap: Ldap,
    /// `Some` when the bind succeeded but the password must be changed first (expired with
    /// grace logins left, or reset by an administrator).
    pub must_change: Option<DirectoryFailureKind>,
}

impl UserConn {
    /// Unbinds and closes.
    pub async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }
}

/// Binds as `dn` with `password` on a new connection. An empty password never reaches the server
/// (it would be an unauthenticated bind, which many servers accept).
pub async fn user_bind(
    profile: &Profile,
    servers: &Servers,
    counters: &Counters,
    dn: &str,
    password: &Secret,
) -> Result<UserConn, DirectoryFailure> {
    if password.is_empty() || dn.is_empty() {
        return Err(failure(
            DirectoryFailureKind::WrongPassword,
            "an empty password is refused without a bind",
        ));
    }
    let mut ldap = open(profile, servers, counters).await?;
    Counters::add(&counters.user_binds);
    let result = match ldap
        .with_controls(policy_request())
        .with_timeout(profile.timeout)
        .simple_bind(dn, password.expose())
        .await
    {
        Ok(result) => result,
        Err(e) => {
            return Err(failure(
                DirectoryFailureKind::Unreachable,
                format!("bind as {dn:?}: {e}"),
            ));
        }
    };
    let policy = PolicyResponse::from_controls(&result.ctrls);
    match classify_bind(result.rc, &result.text, policy) {
        Ok(must_change) => Ok(UserConn { ldap, must_change }),
        Err(kind) => {
            let _ = ldap.unbind().await;
            Err(failure(
                kind,
                format!(
                    "bind as {dn:?} refused: rc {} {:?}{}",
                    result.rc,
                    result.text,
                    policy
                        .and_then(|p| p.error)
                        .map(|e| format!(", password policy: {e:?}"))
                        .unwrap_or_default()
                ),
            ))
        }
    }
}
