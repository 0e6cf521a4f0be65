//! The steps of a login after the password, and the requests of the 0.2 contract: a dialog
//! answer or an accepted disclaimer (`continue-authentication`), a password change and a desktop
//! operation. Each runs its mapper call like `authenticate` and `allocate` do: the failure
//! limits first where a secret is guessed, then the call (whose deadline the mapper host
//! enforces), `mapper_done`, then what the operator is told ([`super::report`]), then the
//! step's `finish`.

use std::time::Instant;

use interstate_protocol::policy::{
    AuthOutcome, MapperError, PasswordChangeOutcome, PasswordRejection, PasswordRejectionKind,
    RejectionKind,
};
use interstate_protocol::{
    BrokerReply, PendingDialog, PendingOperation, PendingPasswordChange, Session,
};
use tracing::debug;

use super::exchange::Exchange;
use super::report::OperationDone;
use crate::audit::loggable;
use crate::ratelimit::Outcome;
use crate::store::StoreError;

/// The user name a failure limit counts: none for an empty one (a session recorded before the
/// typed name was kept), which would otherwise pool every such user under one key.
fn counted(user: &str) -> Option<&str> {
    Some(user).filter(|user| !user.trim().is_empty())
}

impl Exchange<'_> {
    /// A dialog answer or an accepted disclaimer. A dialog answer is a guess at a code: it
    /// reserves against the user name and the address like a password, and a wrong one (a
    /// `rejected(bad-credentials)`, or the dialog again with an error text) counts as a
    /// failure. When the limits refuse it, the dialog ends without a mapper call.
    pub(super) async fn continue_authentication(
        &self,
        session: &mut Session,
        pending: PendingDialog,
        session_ref: &str,
    ) -> Result<BrokerReply, StoreError> {
        let user = pending.username().to_owned();
        let ticket = if pending.is_dialog_answer() {
            match self
                .broker
                .limiter
                .reserve(counted(&user), self.client_ip)
                .await?
            {
                Ok(ticket) => Some(ticket),
                Err(which) => {
                    debug!(user = %loggable(&user), limited = ?which, "dialog answer refused: too many failures");
                    self.report_rate_limited(session_ref, Some(&user), which);
                    return Ok(pending.refuse(session, self.now));
                }
            }
        } else {
            // Nothing is guessed in accepting a disclaimer.
            self.report_disclaimer(session_ref, &user, true);
            None
        };
        let started = Instant::now();
        let outcome = self
            .generation
            .mapper
            .continue_authentication(pending.state(), pending.answer(), session.client())
            .await;
        self.mapper_done("continue-authentication", &outcome, started);
        self.report_login(session_ref, &user, &outcome, started.elapsed());
        if let Some(ticket) = ticket {
            let settled = match &outcome {
                Ok(AuthOutcome::Rejected(r)) if r.kind == RejectionKind::BadCredentials => {
                    Outcome::Failed
                }
                // The dialog again with an error text: the mapper's own "wrong code, try again".
                Ok(AuthOutcome::Challenge(dialog)) if !dialog.error_text.is_empty() => {
                    Outcome::Failed
                }
                Ok(AuthOutcome::Accepted(_)) => Outcome::Succeeded,
                Ok(_) | Err(_) => Outcome::Undecided,
            };
            ticket.settle(settled).await?;
        }
        Ok(pending.finish(session, outcome, self.now))
    }

    /// `update-password`, reserved against the user name and the address like a password:
    /// a wrong current password counts as a failure, and a refused reservation is answered
    /// `PSWD_UPDATE_FAILED_MAX_RETRIES_EXCEEDED` after the time a wrong password costs.
    pub(super) async fn change_password(
        &self,
        session: &mut Session,
        pending: PendingPasswordChange,
        session_ref: &str,
    ) -> Result<BrokerReply, StoreError> {
        let user = pending.change().username.clone();
        let ticket = match self
            .broker
            .limiter
            .reserve(counted(&user), self.client_ip)
            .await?
        {
            Ok(ticket) => ticket,
            Err(which) => {
                debug!(user = %loggable(&user), limited = ?which, "password change refused: too many failures");
                self.report_password_change_limited(session_ref, &user, which);
                self.generation.mapper.spend_like_a_password_check().await;
                let refused = Ok(PasswordChangeOutcome::Rejected(PasswordRejection {
                    kind: PasswordRejectionKind::TooManyAttempts,
                    reason: format!("too many failed attempts ({which:?})"),
                }));
                return Ok(pending.finish(session, refused, self.now));
            }
        };
        let started = Instant::now();
        let outcome = self
            .generation
            .mapper
            .change_password(pending.change())
            .await;
        self.mapper_done("change-password", &outcome, started);
        self.report_password_change(session_ref, &user, &outcome, started.elapsed());
        let settled = match &outcome {
            Ok(PasswordChangeOutcome::Rejected(r))
                if r.kind == PasswordRejectionKind::WrongPassword =>
            {
                Outcome::Failed
            }
            Ok(PasswordChangeOutcome::Changed(AuthOutcome::Accepted(_))) => Outcome::Succeeded,
            Ok(_) | Err(_) => Outcome::Undecided,
        };
        ticket.settle(settled).await?;
        Ok(pending.finish(session, outcome, self.now))
    }

    /// `perform-operation` on a desktop the session checked: the mapper's `operate`.
    pub(super) async fn operate(
        &self,
        session: &mut Session,
        pending: PendingOperation,
        session_ref: &str,
    ) -> BrokerReply {
        let started = Instant::now();
        let outcome: Result<_, MapperError> = self
            .generation
            .mapper
            .operate(
                pending.user(),
                pending.desktop_id(),
                pending.operation(),
                session.client(),
            )
            .await;
        let elapsed = started.elapsed();
        self.mapper_done("operate", &outcome, started);
        let user = pending.user().username.clone();
        let desktop = pending.desktop_id().to_owned();
        let operation = pending.operation();
        let report = outcome.clone();
        let reply = pending.finish(session, outcome, self.now);
        self.report_operation(
            session_ref,
            &OperationDone {
                user: &user,
                desktop: &desktop,
                operation,
                outcome: &report,
                result: reply.result_id().unwrap_or(reply.name()),
                elapsed,
            },
        );
        reply
    }
}
