//! One profile, ready to use: its settings, the service account's password (read once, wiped
//! when dropped, never printed) and the TLS configuration its connections share.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use interstate_config::{
    DirectoryKind, DirectoryProfileConfig, DirectoryTrust, GroupMode, PasswordSource,
};
use interstate_protocol::policy::Secret;
use interstate_tls::Verification;

use crate::error::BuildError;

/// The service account: its DN and password.
#[derive(Clone)]
pub struct ServiceAccount {
    /// The bind DN.
    pub dn: String,
    /// The password (wiped on drop).
    pub password: Secret,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("dn", &self.dn)
            .field("password", &"***")
            .finish()
    }
}

/// A profile with its secrets and TLS configuration resolved.
#[derive(Clone)]
pub struct Profile {
    /// The name mappers use.
    pub name: String,
    /// Active Directory or another server.
    pub kind: DirectoryKind,
    /// Server URLs, in failover order.
    pub servers: Vec<String>,
    /// Where users are searched.
    pub base_dn: String,
    /// `None` for anonymous searches.
    pub service: Option<ServiceAccount>,
    /// Attributes a login may match.
    pub login_attributes: Vec<String>,
    /// Extra filter users must match.
    pub user_filter: Option<String>,
    /// Direct-bind pattern (`{username}` once), if any.
    pub bind_pattern: Option<String>,
    /// Attributes returned with a user.
    pub attributes: Vec<String>,
    /// Group lookup mode.
    pub group_mode: GroupMode,
    /// Where groups are searched.
    pub group_base_dn: String,
    /// Upgrade `ldap://` with StartTLS.
    pub starttls: bool,
    /// The TLS configuration; `None` for plaintext profiles.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Deadline of one connection or operation.
    pub timeout: Duration,
    /// Service-account connections kept; 0 for none.
    pub pool_size: usize,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("servers", &self.servers)
            .field("base_dn", &self.base_dn)
            .field("service", &self.service)
            .field("login_attributes", &self.login_attributes)
            .field("bind_pattern", &self.bind_pattern)
            .field("group_mode", &self.group_mode)
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl Profile {
    /// Resolves `config`: reads the service password (file or environment) and builds the TLS
    /// configuration (CA file or pins).
    pub fn build(name: &str, config: &DirectoryProfileConfig) -> Result<Self, BuildError> {
        let service = match &config.service_account {
            None => None,
            Some((dn, source)) => Some(ServiceAccount {
                dn: dn.clone(),
                password: read_password(name, source)?,
            }),
        };
        let tls = match &config.trust {
            DirectoryTrust::Plaintext => None,
            DirectoryTrust::CaFile(path) => Some(Verification::CaFile(path.clone())),
            DirectoryTrust::Pinned(pins) => Some(Verification::Pinned(pins.clone())),
        }
        .map(|verification| {
            interstate_tls::client_config(&verification)
                .map(Arc::new)
                .map_err(|source| BuildError::Tls {
                    profile: name.to_owned(),
                    source,
                })
        })
        .transpose()?;
        Ok(Self {
            name: name.to_owned(),
            kind: config.kind,
            servers: config.servers.clone(),
            base_dn: config.base_dn.clone(),
            service,
            login_attributes: config.login_attributes.clone(),
            user_filter: config.user_filter.clone(),
            bind_pattern: config.bind_pattern.clone(),
            attributes: config.attributes.clone(),
            group_mode: config.group_mode,
            group_base_dn: config.group_base_dn.clone(),
            starttls: config.starttls,
            tls,
            timeout: config.timeout,
            pool_size: config.pool_size,
        })
    }

    /// True when connections are encrypted (LDAPS or StartTLS).
    pub fn encrypted(&self) -> bool {
        self.tls.is_some()
    }
}

/// The service password from its file (first line, without the line ending) or variable.
fn read_password(profile: &str, source: &PasswordSource) -> Result<Secret, BuildError> {
    let value = match source {
        PasswordSource::File(path) => {
            let text =
                zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
                    BuildError::PasswordFile {
                        profile: profile.to_owned(),
                        path: path.clone(),
                        source,
                    }
                })?);
            let line = text.lines().next().unwrap_or_default();
            Secret::new(line.to_owned())
        }
        PasswordSource::Env(var) => {
            Secret::new(std::env::var(var).map_err(|_| BuildError::PasswordEnv {
                profile: profile.to_owned(),
                var: var.clone(),
            })?)
        }
    };
    if value.is_empty() {
        return Err(BuildError::EmptyPassword {
            profile: profile.to_owned(),
        });
    }
    Ok(value)
}
