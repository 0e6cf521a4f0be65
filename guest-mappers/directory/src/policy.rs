//! The DirectoryMapper's decisions, given the host's directory through [`Host`] so that they
//! run (and are tested) natively.
//!
//! - **Login:** `directory.authenticate(profile, user, password)`; the directory's failure kinds
//!   become rejections: a wrong password is `bad-credentials`; an expired password or one that
//!   must be changed is `expired-password` (the client then asks for a new one and the broker
//!   calls `change-password`); a disabled, expired, locked-out account or one outside its logon
//!   hours is `access-denied` (the reason, for the log, names which). An unreachable directory
//!   fails the request (a clean protocol error), never reads as a wrong password.
//! - **Entitlement:** the user's groups (nested ones included, from the host) map to desktops
//!   through `groups`, plus every value of `desktop_attribute`; `allowed_groups` gates the login.
//!   Listing and allocation ask the directory again, so a group change applies at the next
//!   listing.
//! - **Password change:** `directory.change-password` as the user, then a fresh login with the
//!   new password.

use interstate_mapper_sdk::directory::{Failure, FailureKind, Group, User};
use interstate_mapper_sdk::host::Level;
use interstate_mapper_sdk::types::{
    Allocation, Attribute, AuthOutcome, Desktop, DesktopState, Identity, Launch, PasswordChange,
    PasswordChangeOutcome, PasswordRejection, PasswordRejectionKind, RefusalKind, Rejection,
    RejectionKind, SessionKind,
};

use crate::settings::{MAX_DESKTOPS, Settings, desktop_id};

/// The attribute value bound of the contract (4 KiB).
const MAX_ATTRIBUTE: usize = 4096;

/// What the policy needs from the host.
pub trait Host {
    /// One line in the broker's log (never a password).
    fn log(&self, level: Level, message: &str);
    /// `directory.authenticate`.
    ///
    /// # Errors
    /// The directory's typed failure.
    fn authenticate(&self, profile: &str, username: &str, password: &str) -> Result<User, Failure>;
    /// `directory.lookup`, asking for `attributes` beyond the profile's.
    ///
    /// # Errors
    /// The directory's typed failure.
    fn lookup(
        &self,
        profile: &str,
        username: &str,
        attributes: &[String],
    ) -> Result<Option<User>, Failure>;
    /// `directory.groups`.
    ///
    /// # Errors
    /// The directory's typed failure.
    fn groups(&self, profile: &str, username: &str) -> Result<Vec<Group>, Failure>;
    /// `directory.change-password`.
    ///
    /// # Errors
    /// The directory's typed failure.
    fn change_password(
        &self,
        profile: &str,
        username: &str,
        old: &str,
        new: &str,
    ) -> Result<(), Failure>;
}

/// One desktop the user is entitled to.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entitled {
    id: String,
    name: String,
    hostname: String,
    agent_port: Option<u16>,
}

/// The policy over validated settings.
#[derive(Debug, Clone)]
pub struct DirectoryPolicy {
    settings: Settings,
}

fn rejected(kind: RejectionKind, reason: impl Into<String>) -> AuthOutcome {
    AuthOutcome::Rejected(Rejection {
        kind,
        reason: reason.into(),
    })
}

fn failure_text(failure: &Failure) -> String {
    format!("{:?}: {}", failure.kind, failure.detail)
}

impl DirectoryPolicy {
    /// The policy for `settings`.
    pub fn new(settings: Settings) -> Self {
        Self { settings }
    }

    /// The validated settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// A password login.
    ///
    /// # Errors
    /// The directory is unreachable or the profile unknown: the request fails.
    pub fn authenticate(
        &self,
        host: &impl Host,
        username: &str,
        password: &str,
        typed_domain: &str,
    ) -> Result<AuthOutcome, String> {
        let profile = &self.settings.profile;
        let user = match host.authenticate(profile, username, password) {
            Ok(user) => user,
            Err(failure) => return self.refusal(host, username, &failure),
        };
        self.admit(host, user, typed_domain)
    }

    /// What a directory failure at login means for the client.
    fn refusal(
        &self,
        host: &impl Host,
        username: &str,
        failure: &Failure,
    ) -> Result<AuthOutcome, String> {
        let text = failure_text(failure);
        let outcome = match failure.kind {
            FailureKind::WrongPassword | FailureKind::WeakPassword => {
                rejected(RejectionKind::BadCredentials, text.clone())
            }
            FailureKind::PasswordExpired | FailureKind::MustChangePassword
                if self.settings.password_change =>
            {
                rejected(RejectionKind::ExpiredPassword, text.clone())
            }
            FailureKind::PasswordExpired
            | FailureKind::MustChangePassword
            | FailureKind::AccountDisabled
            | FailureKind::AccountExpired
            | FailureKind::LockedOut
            | FailureKind::OutsideLogonHours => rejected(RejectionKind::AccessDenied, text.clone()),
            FailureKind::Unreachable | FailureKind::UnknownProfile => {
                host.log(
                    Level::Error,
                    &format!("directory profile {:?}: {text}", self.settings.profile),
                );
                return Err(format!("the directory could not check the login: {text}"));
            }
        };
        host.log(Level::Info, &format!("user {username:?}: refused ({text})"));
        Ok(outcome)
    }

    /// A user the directory accepted: gate on groups, find desktops, build the identity.
    fn admit(
        &self,
        host: &impl Host,
        user: User,
        typed_domain: &str,
    ) -> Result<AuthOutcome, String> {
        let groups = self.groups_of(host, &user.login)?;
        if !self.settings.allowed_groups.is_empty()
            && !groups.iter().any(|g| {
                self.settings
                    .allowed_groups
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(&g.name))
            })
        {
            host.log(
                Level::Info,
                &format!("user {:?}: in none of the allowed groups", user.login),
            );
            return Ok(rejected(
                RejectionKind::AccessDenied,
                "in none of the allowed groups",
            ));
        }
        let desktops = self.desktops(&user, &groups);
        if desktops.is_empty() {
            host.log(Level::Info, &format!("user {:?}: no desktops", user.login));
            return Ok(rejected(
                RejectionKind::NoResources,
                "no desktop for the user's groups",
            ));
        }
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        let mut joined = names.join(",");
        if joined.len() > MAX_ATTRIBUTE {
            let mut cut = MAX_ATTRIBUTE;
            while !joined.is_char_boundary(cut) {
                cut -= 1;
            }
            joined.truncate(cut);
        }
        host.log(
            Level::Info,
            &format!(
                "user {:?}: accepted, {} group(s), {} desktop(s)",
                user.login,
                groups.len(),
                desktops.len()
            ),
        );
        Ok(AuthOutcome::Accepted(Identity {
            username: user.login,
            domain: self
                .settings
                .logon_domain
                .clone()
                .unwrap_or_else(|| typed_domain.to_owned()),
            attributes: vec![
                Attribute {
                    key: "dn".into(),
                    value: user.dn,
                },
                Attribute {
                    key: "groups".into(),
                    value: joined,
                },
            ],
        }))
    }

    fn groups_of(&self, host: &impl Host, login: &str) -> Result<Vec<Group>, String> {
        host.groups(&self.settings.profile, login)
            .map_err(|failure| {
                format!(
                    "the directory could not list the groups: {}",
                    failure_text(&failure)
                )
            })
    }

    /// The desktops of `groups` (in settings order) and of the desktop attribute, without
    /// duplicate ids.
    fn desktops(&self, user: &User, groups: &[Group]) -> Vec<Entitled> {
        let mut out: Vec<Entitled> = Vec::new();
        let mut push = |entitled: Entitled| {
            if out.len() < MAX_DESKTOPS && !out.iter().any(|seen| seen.id == entitled.id) {
                out.push(entitled);
            }
        };
        for (group, desktops) in &self.settings.groups {
            if !groups.iter().any(|g| g.name.eq_ignore_ascii_case(group)) {
                continue;
            }
            for desktop in desktops {
                push(Entitled {
                    id: desktop_id(&desktop.hostname),
                    name: desktop.name.clone(),
                    hostname: desktop.hostname.clone(),
                    agent_port: desktop.agent_port,
                });
            }
        }
        if let Some(attribute) = &self.settings.desktop_attribute {
            for value in user
                .attributes
                .iter()
                .filter(|a| a.key.eq_ignore_ascii_case(attribute))
            {
                let hostname = value.value.trim();
                if !hostname.is_empty() && hostname.len() <= 256 {
                    push(Entitled {
                        id: desktop_id(hostname),
                        name: hostname.to_owned(),
                        hostname: hostname.to_owned(),
                        agent_port: None,
                    });
                }
            }
        }
        out
    }

    /// The user's desktops now (groups and attribute asked again).
    fn entitled(&self, host: &impl Host, identity: &Identity) -> Result<Vec<Entitled>, String> {
        let extra: Vec<String> = self.settings.desktop_attribute.iter().cloned().collect();
        let user = host
            .lookup(&self.settings.profile, &identity.username, &extra)
            .map_err(|failure| {
                format!(
                    "the directory could not look the user up: {}",
                    failure_text(&failure)
                )
            })?;
        let Some(user) = user else {
            host.log(
                Level::Warn,
                &format!("user {:?}: no longer in the directory", identity.username),
            );
            return Ok(Vec::new());
        };
        let groups = self.groups_of(host, &user.login)?;
        Ok(self.desktops(&user, &groups))
    }

    /// The desktops of an accepted user.
    ///
    /// # Errors
    /// The directory failed.
    pub fn list_desktops(
        &self,
        host: &impl Host,
        identity: &Identity,
    ) -> Result<Vec<Desktop>, String> {
        Ok(self
            .entitled(host, identity)?
            .into_iter()
            .map(|d| Desktop {
                id: d.id,
                name: d.name,
                hostname: d.hostname,
                agent_port: d.agent_port,
                session_kind: SessionKind::Vdi,
                state: DesktopState::Unknown,
                operations: Vec::new(),
            })
            .collect())
    }

    /// An allocation: a launch on the desktop's agent, if the user still has it.
    ///
    /// # Errors
    /// The directory failed.
    pub fn allocate(
        &self,
        host: &impl Host,
        identity: &Identity,
        desktop_id: &str,
    ) -> Result<Allocation, String> {
        let chosen = self
            .entitled(host, identity)?
            .into_iter()
            .find(|d| d.id == desktop_id);
        Ok(match chosen {
            Some(desktop) => Allocation::Launch(Launch {
                hostname: desktop.hostname,
                agent_port: desktop.agent_port,
                username: None,
                domain: None,
            }),
            None => Allocation::Refused((
                RefusalKind::UnknownDesktop,
                format!("{desktop_id:?} is not one of the user's desktops"),
            )),
        })
    }

    /// A password change after an expired password.
    ///
    /// # Errors
    /// The directory is unreachable after the change (the login cannot go on).
    pub fn change_password(
        &self,
        host: &impl Host,
        change: &PasswordChange,
    ) -> Result<PasswordChangeOutcome, String> {
        if !self.settings.password_change {
            return Ok(PasswordChangeOutcome::Unsupported);
        }
        let profile = &self.settings.profile;
        let refused = |kind, failure: &Failure| {
            host.log(
                Level::Info,
                &format!(
                    "user {:?}: password not changed ({})",
                    change.username,
                    failure_text(failure)
                ),
            );
            Ok(PasswordChangeOutcome::Rejected(PasswordRejection {
                kind,
                reason: failure_text(failure),
            }))
        };
        if let Err(failure) = host.change_password(
            profile,
            &change.username,
            &change.old_password,
            &change.new_password,
        ) {
            return match failure.kind {
                FailureKind::WrongPassword => {
                    refused(PasswordRejectionKind::WrongPassword, &failure)
                }
                FailureKind::WeakPassword => refused(PasswordRejectionKind::WeakPassword, &failure),
                FailureKind::LockedOut => refused(PasswordRejectionKind::TooManyAttempts, &failure),
                _ => refused(PasswordRejectionKind::DirectoryError, &failure),
            };
        }
        host.log(
            Level::Info,
            &format!("user {:?}: password changed", change.username),
        );
        let next =
            self.authenticate(host, &change.username, &change.new_password, &change.domain)?;
        Ok(PasswordChangeOutcome::Changed(next))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::*;

    /// One user of the fake: password, group names, attributes.
    type Entry = (String, Vec<&'static str>, Vec<(&'static str, &'static str)>);

    /// A directory in memory: user → entry, and a failure to force.
    #[derive(Default)]
    struct FakeDirectory {
        users: HashMap<String, Entry>,
        force: Option<FailureKind>,
        changes: RefCell<Vec<(String, String)>>,
    }

    fn failure(kind: FailureKind) -> Failure {
        Failure {
            kind,
            detail: "test".into(),
        }
    }

    impl Host for FakeDirectory {
        fn log(&self, _: Level, message: &str) {
            assert!(
                !message.contains("secret-pw"),
                "a password in the log: {message}"
            );
        }
        fn authenticate(&self, _: &str, username: &str, password: &str) -> Result<User, Failure> {
            if let Some(kind) = self.force {
                return Err(failure(kind));
            }
            match self.users.get(username) {
                Some((pw, _, attributes)) if pw == password => Ok(User {
                    dn: format!("uid={username},ou=people,dc=example"),
                    login: username.into(),
                    attributes: attributes
                        .iter()
                        .map(|(k, v)| Attribute {
                            key: (*k).into(),
                            value: (*v).into(),
                        })
                        .collect(),
                }),
                _ => Err(failure(FailureKind::WrongPassword)),
            }
        }
        fn lookup(&self, _: &str, username: &str, _: &[String]) -> Result<Option<User>, Failure> {
            Ok(self.users.get(username).map(|(_, _, attributes)| User {
                dn: format!("uid={username},ou=people,dc=example"),
                login: username.into(),
                attributes: attributes
                    .iter()
                    .map(|(k, v)| Attribute {
                        key: (*k).into(),
                        value: (*v).into(),
                    })
                    .collect(),
            }))
        }
        fn groups(&self, _: &str, username: &str) -> Result<Vec<Group>, Failure> {
            Ok(self
                .users
                .get(username)
                .map(|(_, groups, _)| {
                    groups
                        .iter()
                        .map(|g| Group {
                            dn: format!("cn={g}"),
                            name: (*g).into(),
                        })
                        .collect()
                })
                .unwrap_or_default())
        }
        fn change_password(
            &self,
            _: &str,
            username: &str,
            old: &str,
            new: &str,
        ) -> Result<(), Failure> {
            if new.len() < 8 {
                return Err(failure(FailureKind::WeakPassword));
            }
            match self.users.get(username) {
                Some((pw, _, _)) if pw == old => {
                    self.changes
                        .borrow_mut()
                        .push((username.into(), new.into()));
                    Ok(())
                }
                _ => Err(failure(FailureKind::WrongPassword)),
            }
        }
    }

    fn policy(extra: &str) -> DirectoryPolicy {
        DirectoryPolicy::new(
            Settings::parse(&format!(
                r#"{{"profile": "corp", "logon_domain": "CORP",
                    "groups": {{"artists": [{{"name": "WS 1", "hostname": "ws-1.corp"}}],
                               "Render": [{{"name": "Render 7", "hostname": "render-7.corp", "agent_port": 60444}}]}}{extra}}}"#
            ))
            .unwrap(),
        )
    }

    fn directory() -> FakeDirectory {
        let mut d = FakeDirectory::default();
        d.users.insert(
            "alice".into(),
            (
                "secret-pw".into(),
                vec!["Artists", "staff"],
                vec![("pcoipDesktop", "ws-9.corp")],
            ),
        );
        d.users
            .insert("bob".into(), ("bob-pw".into(), vec!["staff"], vec![]));
        d
    }

    #[test]
    fn groups_give_desktops_and_the_identity_carries_the_logon_domain() {
        let d = directory();
        let AuthOutcome::Accepted(identity) = policy("")
            .authenticate(&d, "alice", "secret-pw", "typed")
            .unwrap()
        else {
            panic!("alice is in");
        };
        assert_eq!(
            (identity.username.as_str(), identity.domain.as_str()),
            ("alice", "CORP")
        );
        let desktops = policy("").list_desktops(&d, &identity).unwrap();
        let ids: Vec<&str> = desktops.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["ws-1-corp"], "groups match without case");
        let with_attribute = policy(r#", "desktop_attribute": "pcoipDesktop""#);
        let ids: Vec<String> = with_attribute
            .list_desktops(&d, &identity)
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(ids, ["ws-1-corp", "ws-9-corp"]);
        let Allocation::Launch(launch) = policy("").allocate(&d, &identity, "ws-1-corp").unwrap()
        else {
            panic!("a launch");
        };
        assert_eq!(launch.hostname, "ws-1.corp");
        assert!(matches!(
            policy("").allocate(&d, &identity, "render-7-corp").unwrap(),
            Allocation::Refused(_)
        ));
    }

    #[test]
    fn failures_map_onto_the_clients_answers() {
        let kind_of = |outcome: AuthOutcome| match outcome {
            AuthOutcome::Rejected(r) => r.kind,
            other => panic!("not a rejection: {other:?}"),
        };
        let d = directory();
        assert_eq!(
            kind_of(policy("").authenticate(&d, "alice", "wrong", "").unwrap()),
            RejectionKind::BadCredentials
        );
        assert_eq!(
            kind_of(policy("").authenticate(&d, "bob", "bob-pw", "").unwrap()),
            RejectionKind::NoResources
        );
        let gated = policy(r#", "allowed_groups": ["PCoIP Users"]"#);
        assert_eq!(
            kind_of(gated.authenticate(&d, "alice", "secret-pw", "").unwrap()),
            RejectionKind::AccessDenied
        );
        for (kind, expected) in [
            (FailureKind::PasswordExpired, RejectionKind::ExpiredPassword),
            (
                FailureKind::MustChangePassword,
                RejectionKind::ExpiredPassword,
            ),
            (FailureKind::AccountDisabled, RejectionKind::AccessDenied),
            (FailureKind::AccountExpired, RejectionKind::AccessDenied),
            (FailureKind::LockedOut, RejectionKind::AccessDenied),
            (FailureKind::OutsideLogonHours, RejectionKind::AccessDenied),
        ] {
            let mut d = directory();
            d.force = Some(kind);
            assert_eq!(
                kind_of(
                    policy("")
                        .authenticate(&d, "alice", "secret-pw", "")
                        .unwrap()
                ),
                expected,
                "{kind:?}"
            );
        }
        let mut d = directory();
        d.force = Some(FailureKind::PasswordExpired);
        let no_change = policy(r#", "password_change": false"#);
        assert_eq!(
            kind_of(
                no_change
                    .authenticate(&d, "alice", "secret-pw", "")
                    .unwrap()
            ),
            RejectionKind::AccessDenied
        );
        d.force = Some(FailureKind::Unreachable);
        assert!(
            policy("")
                .authenticate(&d, "alice", "secret-pw", "")
                .is_err(),
            "an unreachable directory fails the request"
        );
    }

    #[test]
    fn a_password_change_goes_through_the_directory_then_logs_in() {
        let d = directory();
        let change = |old: &str, new: &str| PasswordChange {
            username: "alice".into(),
            domain: String::new(),
            old_password: old.into(),
            new_password: new.into(),
            client: interstate_mapper_sdk::types::ClientInfo {
                address: String::new(),
                hostname: String::new(),
                product_name: String::new(),
                product_version: String::new(),
                platform: String::new(),
                locale: String::new(),
                log_id: String::new(),
            },
        };
        let rejected_kind = |outcome| match outcome {
            PasswordChangeOutcome::Rejected(r) => r.kind,
            other => panic!("not a rejection: {other:?}"),
        };
        assert_eq!(
            rejected_kind(
                policy("")
                    .change_password(&d, &change("wrong", "long-enough-1"))
                    .unwrap()
            ),
            PasswordRejectionKind::WrongPassword
        );
        assert_eq!(
            rejected_kind(
                policy("")
                    .change_password(&d, &change("secret-pw", "short"))
                    .unwrap()
            ),
            PasswordRejectionKind::WeakPassword
        );
        // The fake keeps the old password, so the login after the change is refused: the
        // outcome is what a login with the new password gets.
        let outcome = policy("")
            .change_password(&d, &change("secret-pw", "long-enough-1"))
            .unwrap();
        assert!(
            matches!(
                outcome,
                PasswordChangeOutcome::Changed(AuthOutcome::Rejected(_))
            ),
            "{outcome:?}"
        );
        assert_eq!(
            d.changes.borrow().as_slice(),
            [("alice".to_owned(), "long-enough-1".to_owned())]
        );
        assert_eq!(
            policy(r#", "password_change": false"#)
                .change_password(&d, &change("secret-pw", "long-enough-1"))
                .unwrap(),
            PasswordChangeOutcome::Unsupported
        );
    }
}
