//! Calls into an `interstate:mapper@0.1.x` component.

use interstate_protocol::policy::{
    MapperError, OperationOutcome, PasswordChangeOutcome, StepAnswer,
};
use wasmtime::Store;

use super::{CallError, Reply, Request, call_policy};
use crate::bindings::v01::MapperPre;
use crate::state::CallState;

/// What a 0.1 mapper is told when asked to continue past a disclaimer it cannot have shown.
pub(crate) fn no_disclaimer_in_0_1() -> MapperError {
    MapperError::InvalidOutput(
        "a disclaimer answer cannot reach a 0.1 mapper, which cannot ask for a disclaimer"
            .to_owned(),
    )
}

/// Runs `request` in a fresh instance of a 0.1 component. `operate` and `change-password` do
/// not exist in 0.1: they answer `unsupported` without a call (the broker never asks, since
/// the capabilities say so).
pub(super) async fn run(
    pre: &MapperPre<CallState>,
    store: &mut Store<CallState>,
    settings_json: &str,
    request: Request<'_>,
) -> wasmtime::Result<Result<Reply, CallError>> {
    if let Request::Continue {
        answer: StepAnswer::DisclaimerAccepted,
        ..
    } = request
    {
        return Ok(Err(CallError::Mapper(no_disclaimer_in_0_1())));
    }
    call_policy!(pre, store, settings_json, request, crate::convert::v01, policy, {
        Request::Continue {
            state,
            answer,
            client,
        } => {
            let fields = match answer {
                StepAnswer::Dialog { fields, .. } => fields.as_slice(),
                StepAnswer::DisclaimerAccepted => &[],
            };
            let mut state = state.expose().to_owned();
            let mut answers = to::answers_to_wit(fields);
            let answer = policy
                .call_continue_authentication(
                    &mut *store,
                    &state,
                    &answers,
                    &to::client_to_wit(client),
                )
                .await;
            state.zeroize();
            for answer in &mut answers {
                answer.value.zeroize();
            }
            reply(answer?, to::auth_outcome, Reply::Auth)
        }
        Request::Operate { .. } => Ok(Reply::Operation(OperationOutcome::Unsupported)),
        Request::ChangePassword(_) => {
            Ok(Reply::PasswordChange(PasswordChangeOutcome::Unsupported))
        }
    })
}
