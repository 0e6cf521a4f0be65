//! `update-password`: the password change a client asks for after `AUTH_FAILED_EXPIRED_PASSWORD`
//! (reference §3.5, §11.1).
//!
//! A change is a fresh login: it starts over from no user, and when the mapper says the
//! password changed, the login goes on as the outcome it gave (with the *new* password kept for
//! the agent logon). Failures keep the client on its password-change step.

use super::auth::{Entered, enter_outcome};
use super::{Login, Session, State, Step};
use crate::client::UpdatePassword;
use crate::policy::{
    Capabilities, MapperError, PasswordChange, PasswordChangeOutcome, PasswordRejectionKind,
};
use crate::reply::{BrokerReply, NextAuthentication, UpdatePasswordResp};
use crate::result_id::PasswordResult;

/// `update-password` in `session`.
pub(super) fn on_request(
    session: &mut Session,
    request: UpdatePassword,
    capabilities: Capabilities,
) -> Step {
    if session.identity().is_some() {
        return Step::Reply(reply(PasswordResult::FailedAlreadyAuthenticated, None));
    }
    if !capabilities.change_password {
        return Step::Reply(reply(PasswordResult::FailedNotSupported, None));
    }
    // The client sends the user name it typed; should it not, the login in progress names it.
    let username = if request.username.is_empty() {
        session.typed_username().unwrap_or_default().to_owned()
    } else {
        request.username
    };
    session.state = State::Anonymous;
    Step::ChangePassword(PendingPasswordChange {
        change: PasswordChange {
            username,
            domain: request.domain,
            old_password: request.old_password,
            new_password: request.new_password,
            client: session.client().clone(),
        },
    })
}

/// A password change waiting for the mapper's `change_password`.
#[derive(Debug)]
pub struct PendingPasswordChange {
    change: PasswordChange,
}

impl PendingPasswordChange {
    /// What the mapper is asked.
    pub fn change(&self) -> &PasswordChange {
        &self.change
    }

    /// The mapper's answer: the session moves on and this is the reply.
    ///
    /// A mapper failure is answered `PSWD_UPDATE_FAILED_DC_ERROR`, not an `error-resp`: the
    /// client then keeps the user on the password-change step with a "try again later" text
    /// (reference §11.1), while an `error-resp` would end its flow; the failure itself is in
    /// the broker's log and metrics. The failure limits refusing the change are answered by
    /// passing `rejected(too-many-attempts)`.
    pub fn finish(
        self,
        session: &mut Session,
        outcome: Result<PasswordChangeOutcome, MapperError>,
        now: u64,
    ) -> BrokerReply {
        let failed = |session: &mut Session, id| {
            session.enter(State::Anonymous, now);
            reply(id, None)
        };
        let outcome = match outcome {
            Err(_) => return failed(session, PasswordResult::FailedDcError),
            Ok(PasswordChangeOutcome::Unsupported) => {
                return failed(session, PasswordResult::FailedNotSupported);
            }
            Ok(PasswordChangeOutcome::Rejected(rejection)) => {
                let id = match rejection.kind {
                    PasswordRejectionKind::WrongPassword => {
                        PasswordResult::FailedUnknownUsernameOrPassword
                    }
                    PasswordRejectionKind::WeakPassword => PasswordResult::FailedWeakPassword,
                    PasswordRejectionKind::TooManyAttempts => {
                        PasswordResult::FailedMaxRetriesExceeded
                    }
                    PasswordRejectionKind::DirectoryError => PasswordResult::FailedDcError,
                };
                return failed(session, id);
            }
            Ok(PasswordChangeOutcome::Changed(outcome)) => outcome,
        };
        let PasswordChange {
            username,
            domain,
            new_password,
            ..
        } = self.change;
        let login = Login {
            username,
            password: new_password,
            domain: domain.clone(),
        };
        match enter_outcome(session, login, outcome, now) {
            Entered::Accepted => reply(PasswordResult::SuccessfulAuthComplete, None),
            Entered::Next(next) => reply(PasswordResult::SuccessfulAuthIncomplete, Some(next)),
            // Changed, but the login does not go on here: the user logs in again with the new
            // password (and, for a step this client cannot show, is told so then).
            Entered::Rejected(_) | Entered::CannotShow(_) => {
                BrokerReply::UpdatePassword(UpdatePasswordResp {
                    result_id: PasswordResult::SuccessfulAuthIncomplete,
                    result_str: LOG_IN_AGAIN.to_owned(),
                    next: Some(NextAuthentication::Password(vec![domain])),
                })
            }
        }
    }
}

/// What the user reads when the password changed but the login does not go on by itself.
const LOG_IN_AGAIN: &str = "Your password was changed. Please log in with the new password.";

fn reply(id: PasswordResult, next: Option<NextAuthentication>) -> BrokerReply {
    BrokerReply::UpdatePassword(UpdatePasswordResp {
        result_id: id,
        result_str: id.default_text().to_owned(),
        next,
    })
}
