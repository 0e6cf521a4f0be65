//! The studio's directory as a host capability: [`LdapDirectory`] implements
//! [`interstate_protocol::capability::Directory`] (the seam behind the WIT `directory`
//! interface) on `ldap3`, for the profiles of the settings' `directory` section.
//!
//! Build it once at start with [`LdapDirectory::from_settings`]; every call names a profile.
//! The service account's password stays here (read once from its file or variable, wiped when
//! dropped, never printed), and no mapper ever sees a connection.
//!
//! # Layout
//! - `profile`: a profile with its secret and TLS configuration resolved.
//! - `connect`: failover across a profile's servers with a back-off; [`Stats`] counters.
//! - `pool`: the service account's bounded, health-checked connection pool.
//! - `bind`: binds as a user, on a connection of their own, with the password-policy control.
//! - `search`: finding a user's entry (escaped filters) and shaping answers.
//! - `groups`: nested groups (in-chain on AD, a bounded breadth-first walk elsewhere).
//! - `password`: Password Modify (RFC 3062) and AD's `unicodePwd`.
//! - [`diagnostic`]: AD bind sub-codes, AD change codes, the ppolicy response control.
//! - [`escape`]: RFC 4515 filter values and RFC 4514 DN values.
//! - `error`: [`BuildError`].

mod bind;
mod connect;
pub mod diagnostic;
mod error;
pub mod escape;
mod groups;
mod password;
mod pool;
mod profile;
mod search;

use std::collections::BTreeMap;
use std::future::Future;

use interstate_config::{DirectoryConfig, DirectoryKind};
use interstate_protocol::capability::{
    Directory, DirectoryFailure, DirectoryFailureKind as Kind, DirectoryGroup, DirectoryUser,
};
use interstate_protocol::policy::{BoxFuture, Secret};
use ldap3::Ldap;

pub use crate::connect::{BACKOFF, Stats};
pub use crate::error::BuildError;
pub use crate::groups::{MAX_DEPTH, MAX_GROUPS};
pub use crate::pool::{CHECK_AFTER_IDLE, MAX_IDLE};
pub use crate::profile::Profile;

use crate::connect::{Counters, Servers};
use crate::pool::Pool;
use crate::search::{failure, find_user, requested_attributes, to_user};

/// One profile and its live state.
#[derive(Debug)]
struct Live {
    profile: Profile,
    servers: Servers,
    pool: Pool,
    counters: Counters,
}

/// LDAP and Active Directory profiles, by name.
#[derive(Debug, Default)]
pub struct LdapDirectory {
    profiles: BTreeMap<String, Live>,
}

impl LdapDirectory {
    /// Builds every profile of the validated `directory` section: reads the service passwords
    /// and the CA files. Connections are opened on first use, so a directory that is down at
    /// start does not stop the broker.
    pub fn from_settings(config: &DirectoryConfig) -> Result<Self, BuildError> {
        let profiles = config
            .profiles
            .iter()
            .map(|(name, config)| Profile::build(name, config))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_profiles(profiles))
    }

    /// A directory of already resolved profiles.
    pub fn from_profiles(profiles: impl IntoIterator<Item = Profile>) -> Self {
        Self {
            profiles: profiles
                .into_iter()
                .map(|profile| {
                    let live = Live {
                        servers: Servers::new(profile.servers.len()),
                        pool: Pool::new(profile.pool_size),
                        counters: Counters::default(),
                        profile,
                    };
                    (live.profile.name.clone(), live)
                })
                .collect(),
        }
    }

    /// The profile names.
    pub fn profile_names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }

    /// A profile's counters (connections, binds, pool reuses); `None` for an unknown profile.
    pub fn stats(&self, profile: &str) -> Option<Stats> {
        self.profiles.get(profile).map(|p| p.counters.snapshot())
    }

    /// Service-account connections idle in a profile's pool.
    pub fn idle_connections(&self, profile: &str) -> Option<usize> {
        self.profiles.get(profile).map(|p| p.pool.idle_count())
    }

    fn live(&self, profile: &str) -> Result<&Live, DirectoryFailure> {
        self.profiles.get(profile).ok_or_else(|| {
            failure(
                Kind::UnknownProfile,
                format!("no directory profile is named {profile:?}"),
            )
        })
    }

    /// Runs `op` on a service-account connection; a pooled connection that fails in transport
    /// is dropped and the call tried once more on a new one.
    async fn with_service<T, F, Fut>(&self, live: &Live, op: F) -> Result<T, DirectoryFailure>
    where
        F: Fn(Ldap) -> Fut,
        Fut: Future<Output = Result<T, DirectoryFailure>>,
    {
        loop {
            let conn = live
                .pool
                .get(&live.profile, &live.servers, &live.counters)
                .await?;
            let reused = conn.reused;
            let result = op(conn.ldap.clone()).await;
            let transport_failed = matches!(&result, Err(f) if f.kind == Kind::Unreachable);
            live.pool.put(conn, !transport_failed).await;
            if transport_failed && reused {
                tracing::debug!(profile = %live.profile.name, "a pooled connection failed; retrying on a new one");
                continue;
            }
            return result;
        }
    }

    /// Finds `username`'s entry with the service account, with `attributes`.
    async fn find(
        &self,
        live: &Live,
        username: &str,
        attributes: &[String],
    ) -> Result<Option<ldap3::SearchEntry>, DirectoryFailure> {
        self.with_service(live, |mut ldap| async move {
            find_user(&mut ldap, &live.profile, username, attributes).await
        })
        .await
    }

    async fn authenticate_inner(
        &self,
        profile: &str,
        username: &str,
        password: &Secret,
    ) -> Result<DirectoryUser, DirectoryFailure> {
        let live = self.live(profile)?;
        if password.is_empty() {
            return Err(failure(
                Kind::WrongPassword,
                "an empty password is refused without a bind",
            ));
        }
        let requested = requested_attributes(&live.profile, &[], &[]);
        if let Some(pattern) = &live.profile.bind_pattern {
            return self
                .direct_bind(live, pattern, username, password, &requested)
                .await;
        }
        let entry = self
            .find(live, username, &requested)
            .await?
            .ok_or_else(|| failure(Kind::WrongPassword, "no such user"))?;
        let conn = bind::user_bind(
            &live.profile,
            &live.servers,
            &live.counters,
            &entry.dn,
            password,
        )
        .await?;
        let must_change = conn.must_change;
        conn.close().await;
        if let Some(kind) = must_change {
            return Err(failure(
                kind,
                format!("{:?} must change the password before logging in", entry.dn),
            ));
        }
        Ok(to_user(&live.profile, &entry, &requested))
    }

    /// Binds as the name the profile's pattern makes of `username` (escaped as one DN value),
    /// then reads the entry as the user.
    async fn direct_bind(
        &self,
        live: &Live,
        pattern: &str,
        username: &str,
        password: &Secret,
        requested: &[String],
    ) -> Result<DirectoryUser, DirectoryFailure> {
        if username.is_empty() || username.len() > search::MAX_LOGIN_BYTES {
            return Err(failure(Kind::WrongPassword, "no such user"));
        }
        let dn = pattern.replace("{username}", &escape::dn_value(username));
        let mut conn =
            bind::user_bind(&live.profile, &live.servers, &live.counters, &dn, password).await?;
        if let Some(kind) = conn.must_change {
            conn.close().await;
            return Err(failure(
                kind,
                format!("{dn:?} must change the password before logging in"),
            ));
        }
        let entry = search::search(
            &mut conn.ldap,
            &live.profile,
            &dn,
            ldap3::Scope::Base,
            "(objectClass=*)",
            requested,
            1,
        )
        .await;
        conn.close().await;
        Ok(match entry.ok().and_then(|mut entries| entries.pop()) {
            Some(entry) => to_user(&live.profile, &entry, requested),
            // A bind name that is not a DN (an AD `user@realm` pattern): nothing to read.
            None => DirectoryUser {
                dn,
                login: username.to_owned(),
                attributes: Vec::new(),
            },
        })
    }

    async fn lookup_inner(
        &self,
        profile: &str,
        username: &str,
        attributes: &[String],
    ) -> Result<Option<DirectoryUser>, DirectoryFailure> {
        let live = self.live(profile)?;
        let requested = requested_attributes(&live.profile, attributes, &[]);
        Ok(self
            .find(live, username, &requested)
            .await?
            .map(|entry| to_user(&live.profile, &entry, &requested)))
    }

    async fn groups_inner(
        &self,
        profile: &str,
        username: &str,
    ) -> Result<Vec<DirectoryGroup>, DirectoryFailure> {
        let live = self.live(profile)?;
        let requested = vec!["memberOf".to_owned()];
        self.with_service(live, |mut ldap| {
            let requested = &requested;
            async move {
                let Some(entry) = find_user(&mut ldap, &live.profile, username, requested).await?
                else {
                    return Ok(Vec::new());
                };
                groups::groups(&mut ldap, &live.profile, &entry).await
            }
        })
        .await
    }

    async fn change_password_inner(
        &self,
        profile: &str,
        username: &str,
        old: &Secret,
        new: &Secret,
    ) -> Result<(), DirectoryFailure> {
        let live = self.live(profile)?;
        let p = &live.profile;
        if old.is_empty() {
            return Err(failure(
                Kind::WrongPassword,
                "an empty password is refused without a bind",
            ));
        }
        if new.is_empty() {
            return Err(failure(Kind::WeakPassword, "the new password is empty"));
        }
        if p.kind == DirectoryKind::Ad && !p.encrypted() {
            return Err(failure(
                Kind::Unreachable,
                format!(
                    "profile {:?}: Active Directory changes passwords only over LDAPS or StartTLS",
                    p.name
                ),
            ));
        }
        let entry = self
            .find(live, username, &[])
            .await?
            .ok_or_else(|| failure(Kind::WrongPassword, "no such user"))?;
        let dn = entry.dn;
        match bind::user_bind(p, &live.servers, &live.counters, &dn, old).await {
            Ok(mut conn) => {
                let result =
                    password::change(&mut conn.ldap, p.kind, p.timeout, &dn, old, new).await;
                conn.close().await;
                result
            }
            // AD refuses the bind of an expired or must-change password, but lets any account
            // make a user change (delete old, add new), which checks the old password itself.
            Err(e)
                if p.kind == DirectoryKind::Ad
                    && matches!(e.kind, Kind::PasswordExpired | Kind::MustChangePassword) =>
            {
                self.with_service(live, |mut ldap| {
                    let dn = &dn;
                    async move { password::change(&mut ldap, p.kind, p.timeout, dn, old, new).await }
                })
                .await
            }
            Err(e) => Err(e),
        }
    }
}

impl Directory for LdapDirectory {
    fn authenticate<'a>(
        &'a self,
        profile: &'a str,
        username: &'a str,
        password: &'a Secret,
    ) -> BoxFuture<'a, Result<DirectoryUser, DirectoryFailure>> {
        Box::pin(self.authenticate_inner(profile, username, password))
    }

    fn lookup<'a>(
        &'a self,
        profile: &'a str,
        username: &'a str,
        attributes: &'a [String],
    ) -> BoxFuture<'a, Result<Option<DirectoryUser>, DirectoryFailure>> {
        Box::pin(self.lookup_inner(profile, username, attributes))
    }

    fn groups<'a>(
        &'a self,
        profile: &'a str,
        username: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DirectoryGroup>, DirectoryFailure>> {
        Box::pin(self.groups_inner(profile, username))
    }

    fn change_password<'a>(
        &'a self,
        profile: &'a str,
        username: &'a str,
        old_password: &'a Secret,
        new_password: &'a Secret,
    ) -> BoxFuture<'a, Result<(), DirectoryFailure>> {
        Box::pin(self.change_password_inner(profile, username, old_password, new_password))
    }
}
