//! The `directory` interface of 0.2, linked to the runtime's [`Directory`] (the operator's
//! LDAP / Active Directory profiles).
//!
//! With no directory configured every call fails `unknown-profile`. Passwords become
//! [`Secret`]s, wiped when the call returns; each call counts against the call's deadline
//! (`unreachable` past it); answers are bounded like attributes before they reach the guest
//! (an answer over a bound fails `unreachable`, and a warning says why).

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use interstate_protocol::capability::{
    Directory, DirectoryFailure, DirectoryFailureKind, DirectoryGroup, DirectoryUser,
};
use interstate_protocol::policy::Secret;

use crate::bindings::v02::interstate::mapper::directory::{
    self, Failure, FailureKind, Group, User,
};
use crate::bindings::v02::wit::Attribute;
use crate::convert::limits;
use crate::state::CallState;

/// Most attribute values one user may carry to the guest.
const MAX_USER_ATTRIBUTES: usize = 1024;
/// Most groups one answer may carry to the guest.
const MAX_GROUPS: usize = 4096;
/// Most attribute names a `lookup` may ask for.
const MAX_ASKED_ATTRIBUTES: usize = 64;

fn failure(kind: DirectoryFailureKind, detail: impl Into<String>) -> DirectoryFailure {
    DirectoryFailure {
        kind,
        detail: detail.into(),
    }
}

fn to_wit(err: DirectoryFailure) -> Failure {
    Failure {
        kind: match err.kind {
            DirectoryFailureKind::WrongPassword => FailureKind::WrongPassword,
            DirectoryFailureKind::PasswordExpired => FailureKind::PasswordExpired,
            DirectoryFailureKind::MustChangePassword => FailureKind::MustChangePassword,
            DirectoryFailureKind::AccountDisabled => FailureKind::AccountDisabled,
            DirectoryFailureKind::AccountExpired => FailureKind::AccountExpired,
            DirectoryFailureKind::LockedOut => FailureKind::LockedOut,
            DirectoryFailureKind::OutsideLogonHours => FailureKind::OutsideLogonHours,
            DirectoryFailureKind::WeakPassword => FailureKind::WeakPassword,
            DirectoryFailureKind::Unreachable => FailureKind::Unreachable,
            DirectoryFailureKind::UnknownProfile => FailureKind::UnknownProfile,
        },
        detail: crate::convert::guest_message(err.detail),
    }
}

/// A string of the directory's answer within `max`, else an `unreachable` failure.
fn fits(what: &str, value: String, max: usize) -> Result<String, DirectoryFailure> {
    if value.len() > max {
        return Err(failure(
            DirectoryFailureKind::Unreachable,
            format!(
                "the directory answered {what} of {} bytes; at most {max} reach a mapper",
                value.len()
            ),
        ));
    }
    Ok(value)
}

fn at_most<T>(what: &str, items: Vec<T>, max: usize) -> Result<Vec<T>, DirectoryFailure> {
    if items.len() > max {
        return Err(failure(
            DirectoryFailureKind::Unreachable,
            format!(
                "the directory answered {} {what}; at most {max} reach a mapper",
                items.len()
            ),
        ));
    }
    Ok(items)
}

fn user(user: DirectoryUser) -> Result<User, DirectoryFailure> {
    Ok(User {
        dn: fits("a DN", user.dn, limits::TEXT)?,
        login: fits("a login", user.login, limits::NAME)?,
        attributes: at_most("attribute values", user.attributes, MAX_USER_ATTRIBUTES)?
            .into_iter()
            .map(|a| {
                Ok(Attribute {
                    key: fits("an attribute name", a.key, limits::NAME)?,
                    value: fits("an attribute value", a.value, limits::TEXT)?,
                })
            })
            .collect::<Result<_, DirectoryFailure>>()?,
    })
}

fn groups(groups: Vec<DirectoryGroup>) -> Result<Vec<Group>, DirectoryFailure> {
    at_most("groups", groups, MAX_GROUPS)?
        .into_iter()
        .map(|g| {
            Ok(Group {
                dn: fits("a group DN", g.dn, limits::TEXT)?,
                name: fits("a group name", g.name, limits::NAME)?,
            })
        })
        .collect()
}

/// `answer` within the call's deadline (`unreachable` past it).
async fn within<T>(
    deadline: Instant,
    answer: impl Future<Output = Result<T, DirectoryFailure>>,
) -> Result<T, DirectoryFailure> {
    match tokio::time::timeout_at(deadline.into(), answer).await {
        Ok(answer) => answer,
        Err(_elapsed) => Err(failure(
            DirectoryFailureKind::Unreachable,
            "the directory did not answer before the call's deadline",
        )),
    }
}

impl CallState {
    /// The configured directory, or the `unknown-profile` failure every call answers without.
    fn directory(&self) -> Result<Arc<dyn Directory>, Failure> {
        self.services.directory.clone().ok_or_else(|| {
            to_wit(failure(
                DirectoryFailureKind::UnknownProfile,
                "no directory profiles are configured",
            ))
        })
    }

    /// The directory's answer converted for the guest; an answer over a bound is logged.
    fn finish<T, U>(
        &self,
        answer: Result<T, DirectoryFailure>,
        convert: impl FnOnce(T) -> Result<U, DirectoryFailure>,
    ) -> Result<U, Failure> {
        let converted = answer.and_then(convert);
        if let Err(err) = &converted
            && err.kind == DirectoryFailureKind::Unreachable
            && err.detail.contains("reach a mapper")
        {
            tracing::warn!(target: "interstate::mapper", mapper = %self.mapper, "{}", err.detail);
        }
        converted.map_err(to_wit)
    }
}

impl directory::Host for CallState {
    async fn authenticate(
        &mut self,
        profile: String,
        username: String,
        password: String,
    ) -> wasmtime::Result<Result<User, Failure>> {
        let password = Secret::new(password);
        let directory = match self.directory() {
            Ok(directory) => directory,
            Err(err) => return Ok(Err(err)),
        };
        let answer = within(
            self.deadline,
            directory.authenticate(&profile, &username, &password),
        )
        .await;
        Ok(self.finish(answer, user))
    }

    async fn lookup(
        &mut self,
        profile: String,
        username: String,
        attributes: Vec<String>,
    ) -> wasmtime::Result<Result<Option<User>, Failure>> {
        let directory = match self.directory() {
            Ok(directory) => directory,
            Err(err) => return Ok(Err(err)),
        };
        if attributes.len() > MAX_ASKED_ATTRIBUTES
            || attributes.iter().any(|name| name.len() > limits::NAME)
        {
            return Ok(Err(to_wit(failure(
                DirectoryFailureKind::Unreachable,
                format!(
                    "a lookup may ask for at most {MAX_ASKED_ATTRIBUTES} attributes of at most {} bytes",
                    limits::NAME
                ),
            ))));
        }
        let answer = within(
            self.deadline,
            directory.lookup(&profile, &username, &attributes),
        )
        .await;
        Ok(self.finish(answer, |found| found.map(user).transpose()))
    }

    async fn groups(
        &mut self,
        profile: String,
        username: String,
    ) -> wasmtime::Result<Result<Vec<Group>, Failure>> {
        let directory = match self.directory() {
            Ok(directory) => directory,
            Err(err) => return Ok(Err(err)),
        };
        let answer = within(self.deadline, directory.groups(&profile, &username)).await;
        Ok(self.finish(answer, groups))
    }

    async fn change_password(
        &mut self,
        profile: String,
        username: String,
        old_password: String,
        new_password: String,
    ) -> wasmtime::Result<Result<(), Failure>> {
        let old_password = Secret::new(old_password);
        let new_password = Secret::new(new_password);
        let directory = match self.directory() {
            Ok(directory) => directory,
            Err(err) => return Ok(Err(err)),
        };
        let answer = within(
            self.deadline,
            directory.change_password(&profile, &username, &old_password, &new_password),
        )
        .await;
        Ok(self.finish(answer, Ok))
    }
}
