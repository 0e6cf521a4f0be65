//! Conversions for `interstate:mapper@0.2.x` components: the shared records, plus dialog
//! buttons, the disclaimer, step answers, operations and password changes.

use interstate_protocol::policy::{
    AuthOutcome, DialogButton, OperationOutcome, PasswordChange, PasswordChangeOutcome,
    PasswordRejection, PasswordRejectionKind, StepAnswer,
};

use crate::bindings::v02::wit;

crate::convert::shared_records!();

/// A 0.2 outcome: dialogs with their buttons, and disclaimers.
pub(crate) fn auth_outcome(outcome: wit::AuthOutcome) -> Checked<AuthOutcome> {
    Ok(match outcome {
        wit::AuthOutcome::Accepted(identity) => AuthOutcome::Accepted(self::identity(identity)?),
        wit::AuthOutcome::Rejected(rejection) => AuthOutcome::Rejected(self::rejection(rejection)?),
        wit::AuthOutcome::Challenge(dialog) => {
            let buttons = count("dialog buttons", dialog.buttons, limits::DIALOG_BUTTONS)?
                .into_iter()
                .map(|b| DialogButton {
                    id: b.id,
                    label: b.label,
                    is_default: b.is_default,
                })
                .collect();
            AuthOutcome::Challenge(crate::convert::dialog(
                dialog.prompt,
                dialog.error_text,
                dialog_fields(dialog.fields)?,
                buttons,
                dialog.state,
            )?)
        }
        wit::AuthOutcome::Disclaimer(disclaimer) => AuthOutcome::Disclaimer(
            crate::convert::disclaimer(disclaimer.text, disclaimer.state)?,
        ),
    })
}

/// The step answer with its field values copied in: wipe them after the call.
pub(crate) fn step_answer_to_wit(answer: &StepAnswer) -> wit::StepAnswer {
    match answer {
        StepAnswer::Dialog { fields, button_id } => wit::StepAnswer::Dialog(wit::DialogAnswer {
            fields: answers_to_wit(fields),
            button_id: button_id.clone(),
        }),
        StepAnswer::DisclaimerAccepted => wit::StepAnswer::DisclaimerAccepted,
    }
}

/// The change with both passwords copied in: wipe them after the call.
pub(crate) fn password_change_to_wit(change: &PasswordChange) -> wit::PasswordChange {
    wit::PasswordChange {
        username: change.username.clone(),
        domain: change.domain.clone(),
        old_password: change.old_password.expose().to_owned(),
        new_password: change.new_password.expose().to_owned(),
        client: client_to_wit(&change.client),
    }
}

/// An `operate` outcome, its texts bounded like reasons.
pub(crate) fn operation_outcome(outcome: wit::OperationOutcome) -> Checked<OperationOutcome> {
    Ok(match outcome {
        wit::OperationOutcome::Done(text) => {
            OperationOutcome::Done(bounded("the operation outcome", text, limits::TEXT)?)
        }
        wit::OperationOutcome::TryAgain(text) => {
            OperationOutcome::TryAgain(bounded("the operation outcome", text, limits::TEXT)?)
        }
        wit::OperationOutcome::Refused(text) => {
            OperationOutcome::Refused(bounded("the operation outcome", text, limits::TEXT)?)
        }
        wit::OperationOutcome::Unsupported => OperationOutcome::Unsupported,
    })
}

/// A `change-password` outcome: the login step it goes on with, or a bounded refusal.
pub(crate) fn password_change_outcome(
    outcome: wit::PasswordChangeOutcome,
) -> Checked<PasswordChangeOutcome> {
    Ok(match outcome {
        wit::PasswordChangeOutcome::Changed(next) => {
            PasswordChangeOutcome::Changed(auth_outcome(next)?)
        }
        wit::PasswordChangeOutcome::Rejected(rejection) => {
            PasswordChangeOutcome::Rejected(PasswordRejection {
                kind: match rejection.kind {
                    wit::PasswordRejectionKind::WrongPassword => {
                        PasswordRejectionKind::WrongPassword
                    }
                    wit::PasswordRejectionKind::WeakPassword => PasswordRejectionKind::WeakPassword,
                    wit::PasswordRejectionKind::TooManyAttempts => {
                        PasswordRejectionKind::TooManyAttempts
                    }
                    wit::PasswordRejectionKind::DirectoryError => {
                        PasswordRejectionKind::DirectoryError
                    }
                },
                reason: bounded(
                    "the password rejection reason",
                    rejection.reason,
                    limits::TEXT,
                )?,
            })
        }
        wit::PasswordChangeOutcome::Unsupported => PasswordChangeOutcome::Unsupported,
    })
}

#[cfg(test)]
mod tests {
    use interstate_protocol::policy::MapperError;

    use super::*;

    fn button(id: &str, label: &str) -> wit::DialogButton {
        wit::DialogButton {
            id: id.to_owned(),
            label: label.to_owned(),
            is_default: false,
        }
    }

    fn challenge(buttons: Vec<wit::DialogButton>) -> wit::AuthOutcome {
        wit::AuthOutcome::Challenge(wit::Dialog {
            prompt: "p".to_owned(),
            error_text: String::new(),
            fields: Vec::new(),
            buttons,
            state: "s".to_owned(),
        })
    }

    fn invalid<T: std::fmt::Debug>(result: Checked<T>, what: &str) {
        match result {
            Err(MapperError::InvalidOutput(message)) => {
                assert!(message.contains(what), "{message}");
            }
            other => panic!("expected an invalid output naming {what:?}, got {other:?}"),
        }
    }

    #[test]
    fn buttons_are_bounded() {
        let eight = (0..8).map(|i| button(&i.to_string(), "l")).collect();
        let AuthOutcome::Challenge(dialog) = auth_outcome(challenge(eight)).unwrap() else {
            panic!("not a challenge");
        };
        assert_eq!(dialog.buttons.len(), 8);
        let nine = (0..9).map(|i| button(&i.to_string(), "l")).collect();
        invalid(auth_outcome(challenge(nine)), "dialog buttons");
        invalid(
            auth_outcome(challenge(vec![button(&"i".repeat(129), "l")])),
            "button id",
        );
        invalid(
            auth_outcome(challenge(vec![button("ok", &"l".repeat(257))])),
            "button label",
        );
    }

    #[test]
    fn disclaimers_are_bounded_and_their_state_secret() {
        let disclaimer = |text: usize, state: usize| {
            auth_outcome(wit::AuthOutcome::Disclaimer(wit::Disclaimer {
                text: "t".repeat(text),
                state: "s".repeat(state),
            }))
        };
        let Ok(AuthOutcome::Disclaimer(ok)) = disclaimer(4096, 16 * 1024) else {
            panic!("not a disclaimer");
        };
        assert_eq!(format!("{:?}", ok.state), "Secret(***)");
        invalid(disclaimer(4097, 1), "disclaimer text");
        invalid(disclaimer(1, 16 * 1024 + 1), "disclaimer state");
    }

    #[test]
    fn outcome_texts_are_bounded() {
        assert_eq!(
            operation_outcome(wit::OperationOutcome::TryAgain("x".repeat(4096))).unwrap(),
            OperationOutcome::TryAgain("x".repeat(4096))
        );
        invalid(
            operation_outcome(wit::OperationOutcome::Refused("x".repeat(4097))),
            "operation outcome",
        );
        invalid(
            password_change_outcome(wit::PasswordChangeOutcome::Rejected(
                wit::PasswordRejection {
                    kind: wit::PasswordRejectionKind::WeakPassword,
                    reason: "x".repeat(4097),
                },
            )),
            "password rejection reason",
        );
        // The step a change goes on with is bounded like any authentication outcome.
        invalid(
            password_change_outcome(wit::PasswordChangeOutcome::Changed(challenge(
                (0..9).map(|i| button(&i.to_string(), "l")).collect(),
            ))),
            "dialog buttons",
        );
    }
}
