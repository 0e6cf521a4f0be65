//! The authentication steps: a password login and an answer to a dialog.

use super::reply::auth_reply;
use super::{Login, Session, State};
use crate::policy::{AuthOutcome, MapperError, PasswordLogin, RejectionKind, Secret, StepAnswer};
use crate::reply::{AuthenticateResp, BrokerReply, DialogParameters, NextAuthentication};
use crate::result_id::{AuthResult, ErrorId};

/// A password login waiting for the mapper's `authenticate`.
#[derive(Debug)]
pub struct PendingLogin {
    login: PasswordLogin,
    kept: Login,
}

impl PendingLogin {
    pub(super) fn new(login: PasswordLogin, kept: Login) -> Self {
        Self { login, kept }
    }

    /// What the mapper is asked.
    pub fn login(&self) -> &PasswordLogin {
        &self.login
    }

    /// The mapper's answer: the session moves on and this is the reply.
    pub fn finish(
        self,
        session: &mut Session,
        outcome: Result<AuthOutcome, MapperError>,
        now: u64,
    ) -> BrokerReply {
        match outcome {
            Ok(outcome) => outcome_reply(session, self.kept, Some("password"), outcome, now),
            Err(_) => {
                session.enter(State::Anonymous, now);
                BrokerReply::error(ErrorId::BrokerSysFailed, None)
            }
        }
    }
}

/// An answer to a dialog waiting for the mapper's `continue_authentication`.
#[derive(Debug)]
pub struct PendingDialog {
    kept: Login,
    state: Secret,
    answer: StepAnswer,
}

impl PendingDialog {
    pub(super) fn new(kept: Login, state: Secret, answer: StepAnswer) -> Self {
        Self {
            kept,
            state,
            answer,
        }
    }

    /// The dialog state the mapper returned with its challenge.
    pub fn state(&self) -> &Secret {
        &self.state
    }

    /// What the user did.
    pub fn answer(&self) -> &StepAnswer {
        &self.answer
    }

    /// The mapper's answer: the session moves on and this is the reply (which carries no
    /// `method` attribute, as after every dialog step). When the mapper failed, the dialog
    /// stays open: the user may answer again.
    pub fn finish(
        self,
        session: &mut Session,
        outcome: Result<AuthOutcome, MapperError>,
        now: u64,
    ) -> BrokerReply {
        match outcome {
            Ok(outcome) => outcome_reply(session, self.kept, None, outcome, now),
            Err(_) => {
                let challenged = State::Challenged {
                    login: self.kept,
                    challenge: self.state,
                };
                session.enter(challenged, now);
                BrokerReply::error(ErrorId::BrokerSysFailed, None)
            }
        }
    }
}

/// The session's next state and the reply for an authentication outcome. `method` is the
/// reply's `method` attribute: `Some("password")` after the password step, `None` after a
/// dialog.
fn outcome_reply(
    session: &mut Session,
    login: Login,
    method: Option<&str>,
    outcome: AuthOutcome,
    now: u64,
) -> BrokerReply {
    let method = method.map(str::to_owned);
    let dialog_step = method.is_none();
    match outcome {
        AuthOutcome::Accepted(identity) => {
            session.enter(
                State::Authenticated {
                    login,
                    identity,
                    listing: Vec::new(),
                },
                now,
            );
            auth_reply(method, AuthResult::SuccessfulAndComplete)
        }
        AuthOutcome::Rejected(rejection) => {
            session.enter(State::Anonymous, now);
            let id = match rejection.kind {
                // A wrong answer to a dialog (a one-time code) with no tries left: the client
                // says "Wrong code". While tries remain, a mapper re-prompts with a challenge.
                RejectionKind::BadCredentials if dialog_step => {
                    AuthResult::FailedDialogInvalidUserEntry
                }
                RejectionKind::BadCredentials => AuthResult::FailedUnknownUsernameOrPassword,
                RejectionKind::ExpiredPassword => AuthResult::FailedExpiredPassword,
                RejectionKind::AccessDenied => AuthResult::FailedAccessDenied,
                RejectionKind::NoResources => AuthResult::FailedUserHasNoResource,
            };
            auth_reply(method, id)
        }
        AuthOutcome::Disclaimer(_) => {
            // Placeholder until the disclaimer step lands: refuse cleanly.
            session.enter(State::Anonymous, now);
            auth_reply(method, AuthResult::FailedAccessDenied)
        }
        AuthOutcome::Challenge(dialog) => {
            if !session.can_show_dialogs() {
                session.enter(State::Anonymous, now);
                return BrokerReply::Authenticate(AuthenticateResp {
                    method,
                    result_id: AuthResult::FailedAccessDenied,
                    result_str: "A second authentication step is required, but this PCoIP \
                                 client cannot show it. Please use a newer PCoIP client."
                        .into(),
                    next: None,
                });
            }
            session.enter(
                State::Challenged {
                    login,
                    challenge: dialog.state,
                },
                now,
            );
            BrokerReply::Authenticate(AuthenticateResp {
                method,
                result_id: AuthResult::SuccessfulAndIncomplete,
                result_str: AuthResult::SuccessfulAndIncomplete.default_text().into(),
                next: Some(NextAuthentication::Dialog(DialogParameters {
                    prompt: dialog.prompt,
                    error_text: dialog.error_text,
                    fields: dialog.fields,
                    buttons: dialog.buttons,
                })),
            })
        }
    }
}
