//! The authentication steps: a password login, an answer to a dialog and an accepted
//! disclaimer, and where a mapper's [`AuthOutcome`] leaves the session.

use super::reply::auth_reply;
use super::{DialogShape, Login, Session, State};
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

/// The step a [`PendingDialog`] answers, taken out of the session.
#[derive(Debug)]
enum Answered {
    /// A dialog: its state and shape, to reopen it.
    Dialog {
        challenge: Secret,
        shape: DialogShape,
    },
    /// A disclaimer: its state.
    Disclaimer(Secret),
}

/// A dialog answer or an accepted disclaimer, waiting for the mapper's
/// `continue_authentication`.
#[derive(Debug)]
pub struct PendingDialog {
    kept: Login,
    answered: Answered,
    answer: StepAnswer,
}

impl PendingDialog {
    pub(super) fn dialog(
        kept: Login,
        challenge: Secret,
        shape: DialogShape,
        answer: StepAnswer,
    ) -> Self {
        Self {
            kept,
            answered: Answered::Dialog { challenge, shape },
            answer,
        }
    }

    pub(super) fn disclaimer(kept: Login, disclaimer: Secret) -> Self {
        Self {
            kept,
            answered: Answered::Disclaimer(disclaimer),
            answer: StepAnswer::DisclaimerAccepted,
        }
    }

    /// The state the mapper returned with its dialog or disclaimer.
    pub fn state(&self) -> &Secret {
        match &self.answered {
            Answered::Dialog { challenge, .. } => challenge,
            Answered::Disclaimer(state) => state,
        }
    }

    /// What the user did.
    pub fn answer(&self) -> &StepAnswer {
        &self.answer
    }

    /// True for an answer to a dialog (a code, which the failure limits count), false for an
    /// accepted disclaimer.
    pub fn is_dialog_answer(&self) -> bool {
        matches!(self.answered, Answered::Dialog { .. })
    }

    /// The user name typed at the password step.
    pub fn username(&self) -> &str {
        &self.kept.username
    }

    /// The failure limits refused the answer: the attempt ends (back to no user) without a
    /// mapper call, answered like a wrong code so that the lock-out is not told apart.
    pub fn refuse(self, session: &mut Session, now: u64) -> BrokerReply {
        session.enter(State::Anonymous, now);
        auth_reply(None, AuthResult::FailedDialogInvalidUserEntry)
    }

    /// The mapper's answer: the session moves on and this is the reply (which carries no
    /// `method` attribute, as after every dialog step). When the mapper failed, the dialog or
    /// disclaimer stays open: the user may answer again. A dialog answered
    /// `rejected(bad-credentials)` stays open too, with the same state: the client is told
    /// `AUTH_FAILED_DIALOG_INVALID_USER_ENTRY`, and the failure limits end the attempts.
    pub fn finish(
        self,
        session: &mut Session,
        outcome: Result<AuthOutcome, MapperError>,
        now: u64,
    ) -> BrokerReply {
        let reopen = |session: &mut Session, login: Login, answered: Answered| {
            let state = match answered {
                Answered::Dialog { challenge, shape } => State::Challenged {
                    login,
                    challenge,
                    shape,
                },
                Answered::Disclaimer(disclaimer) => State::Disclaimed { login, disclaimer },
            };
            session.enter(state, now);
        };
        match outcome {
            Err(_) => {
                reopen(session, self.kept, self.answered);
                BrokerReply::error(ErrorId::BrokerSysFailed, None)
            }
            Ok(AuthOutcome::Rejected(rejection))
                if rejection.kind == RejectionKind::BadCredentials
                    && matches!(self.answered, Answered::Dialog { .. }) =>
            {
                reopen(session, self.kept, self.answered);
                auth_reply(None, AuthResult::FailedDialogInvalidUserEntry)
            }
            Ok(outcome) => outcome_reply(session, self.kept, None, outcome, now),
        }
    }
}

/// Where an authentication outcome left the session.
pub(super) enum Entered {
    /// The user is in.
    Accepted,
    /// Refused; no user.
    Rejected(RejectionKind),
    /// Another step is open; the client is asked for it.
    Next(NextAuthentication),
    /// Another step is needed that this client cannot show; no user. The text says so.
    CannotShow(&'static str),
}

const CANNOT_SHOW_DIALOG: &str = "A second authentication step is required, but this PCoIP \
                                  client cannot show it. Please use a newer PCoIP client.";

const CANNOT_SHOW_DISCLAIMER: &str = "A notice must be accepted before logging in, but this \
                                      PCoIP client cannot show it. Please use a newer PCoIP \
                                      client.";

/// Puts the session where `outcome` says, with `login` kept for the agent logon while the
/// login goes on.
pub(super) fn enter_outcome(
    session: &mut Session,
    login: Login,
    outcome: AuthOutcome,
    now: u64,
) -> Entered {
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
            Entered::Accepted
        }
        AuthOutcome::Rejected(rejection) => {
            session.enter(State::Anonymous, now);
            Entered::Rejected(rejection.kind)
        }
        AuthOutcome::Challenge(_) if !session.can_show_dialogs() => {
            session.enter(State::Anonymous, now);
            Entered::CannotShow(CANNOT_SHOW_DIALOG)
        }
        AuthOutcome::Challenge(dialog) => {
            let shape = DialogShape::of(&dialog);
            session.enter(
                State::Challenged {
                    login,
                    challenge: dialog.state,
                    shape,
                },
                now,
            );
            Entered::Next(NextAuthentication::Dialog(DialogParameters {
                prompt: dialog.prompt,
                error_text: dialog.error_text,
                fields: dialog.fields,
                buttons: dialog.buttons,
            }))
        }
        AuthOutcome::Disclaimer(_) if !session.can_show_disclaimers() => {
            session.enter(State::Anonymous, now);
            Entered::CannotShow(CANNOT_SHOW_DISCLAIMER)
        }
        AuthOutcome::Disclaimer(disclaimer) => {
            session.enter(
                State::Disclaimed {
                    login,
                    disclaimer: disclaimer.state,
                },
                now,
            );
            Entered::Next(NextAuthentication::Disclaimer(disclaimer.text))
        }
    }
}

/// The session's next state and the reply for an authentication outcome. `method` is the
/// reply's `method` attribute: `Some("password")` after the password step, `None` after a
/// dialog or a disclaimer.
fn outcome_reply(
    session: &mut Session,
    login: Login,
    method: Option<&str>,
    outcome: AuthOutcome,
    now: u64,
) -> BrokerReply {
    let method = method.map(str::to_owned);
    let (result_id, result_str, next) = match enter_outcome(session, login, outcome, now) {
        Entered::Accepted => return auth_reply(method, AuthResult::SuccessfulAndComplete),
        Entered::Rejected(kind) => {
            let id = match kind {
                // At the password step or after a disclaimer: a wrong dialog answer keeps its
                // dialog open instead (`PendingDialog::finish`).
                RejectionKind::BadCredentials => AuthResult::FailedUnknownUsernameOrPassword,
                RejectionKind::ExpiredPassword => AuthResult::FailedExpiredPassword,
                RejectionKind::AccessDenied => AuthResult::FailedAccessDenied,
                RejectionKind::NoResources => AuthResult::FailedUserHasNoResource,
            };
            return auth_reply(method, id);
        }
        Entered::CannotShow(text) => (AuthResult::FailedAccessDenied, text.to_owned(), None),
        Entered::Next(next) => (
            AuthResult::SuccessfulAndIncomplete,
            AuthResult::SuccessfulAndIncomplete
                .default_text()
                .to_owned(),
            Some(next),
        ),
    };
    BrokerReply::Authenticate(AuthenticateResp {
        method,
        result_id,
        result_str,
        next,
    })
}
