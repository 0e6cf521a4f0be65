//! `perform-operation`: restart or power a desktop of the last listing (reference §3.7, §11.1).
//!
//! The session checks everything it can before the mapper is asked: a user is in, the desktop
//! is one of the last listing, the mapper can operate and the desktop offers the operation.
//! An operation neither uses nor consumes the typed password, and works before and after an
//! allocation.

use super::Session;
use crate::client::{PerformOperation, RequestedOperation};
use crate::policy::{Capabilities, Identity, MapperError, Operation, OperationOutcome};
use crate::reply::{BrokerReply, OperationResp};
use crate::result_id::OperationResult;

use super::Step;

/// The text of `OP_FAILED_TO_EXECUTE` for a `try-again` outcome. \[I\]: the client library knows
/// no "pending" id for an operation (reference §11.1); `OP_FAILED_TO_EXECUTE` is the failure
/// after which it keeps the session, so the text tells the user to retry.
pub const OPERATION_TRY_AGAIN_TEXT: &str =
    "The desktop is not ready yet. Please try again in a moment.";

/// `perform-operation` in `session`.
pub(super) fn on_request(
    session: &Session,
    request: PerformOperation,
    capabilities: Capabilities,
) -> Step {
    let Some((identity, listing)) = session.user_and_listing() else {
        return Step::Reply(reply(OperationResult::FailedNoUser, None));
    };
    let Some(desktop) = listing.iter().find(|d| d.id == request.resource_id) else {
        return Step::Reply(reply(OperationResult::FailedInvalidParameter, None));
    };
    match request.operation {
        RequestedOperation::Known(operation)
            if capabilities.operate && desktop.operations.contains(&operation) =>
        {
            Step::Operate(PendingOperation {
                user: identity.clone(),
                desktop_id: desktop.id.clone(),
                operation,
            })
        }
        RequestedOperation::Known(_) | RequestedOperation::Unknown(_) => {
            Step::Reply(reply(OperationResult::FailedOperationNotSupported, None))
        }
    }
}

/// An operation waiting for the mapper's `operate`.
#[derive(Debug)]
pub struct PendingOperation {
    user: Identity,
    desktop_id: String,
    operation: Operation,
}

impl PendingOperation {
    /// Who asks.
    pub fn user(&self) -> &Identity {
        &self.user
    }

    /// The desktop, one of the last listing.
    pub fn desktop_id(&self) -> &str {
        &self.desktop_id
    }

    /// The operation, one the desktop offers.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// The mapper's answer. The session stays where it was.
    pub fn finish(
        self,
        session: &mut Session,
        outcome: Result<OperationOutcome, MapperError>,
        now: u64,
    ) -> BrokerReply {
        session.last_seen = now;
        match outcome {
            Ok(OperationOutcome::Done(_)) => reply(OperationResult::Successful, None),
            Ok(OperationOutcome::TryAgain(_)) => reply(
                OperationResult::FailedToExecute,
                Some(OPERATION_TRY_AGAIN_TEXT),
            ),
            Ok(OperationOutcome::Refused(_)) | Err(_) => {
                reply(OperationResult::FailedToExecute, None)
            }
            Ok(OperationOutcome::Unsupported) => {
                reply(OperationResult::FailedOperationNotSupported, None)
            }
        }
    }
}

fn reply(id: OperationResult, text: Option<&str>) -> BrokerReply {
    BrokerReply::Operation(OperationResp {
        result_id: id,
        result_str: text.unwrap_or(id.default_text()).to_owned(),
    })
}
