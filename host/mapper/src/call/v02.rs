//! Calls into an `interstate:mapper@0.2.x` component.

use wasmtime::Store;

use super::{CallError, Reply, Request, call_policy};
use crate::bindings::v02::MapperPre;
use crate::state::CallState;

/// Runs `request` in a fresh instance of a 0.2 component.
pub(super) async fn run(
    pre: &MapperPre<CallState>,
    store: &mut Store<CallState>,
    settings_json: &str,
    request: Request<'_>,
) -> wasmtime::Result<Result<Reply, CallError>> {
    call_policy!(pre, store, settings_json, request, crate::convert::v02, policy, {
        Request::Continue {
            state,
            answer,
            client,
        } => {
            let mut state = state.expose().to_owned();
            let mut answer = to::step_answer_to_wit(answer);
            let outcome = policy
                .call_continue_authentication(
                    &mut *store,
                    &state,
                    &answer,
                    &to::client_to_wit(client),
                )
                .await;
            state.zeroize();
            if let crate::bindings::v02::wit::StepAnswer::Dialog(dialog) = &mut answer {
                for field in &mut dialog.fields {
                    field.value.zeroize();
                }
            }
            reply(outcome?, to::auth_outcome, Reply::Auth)
        }
        Request::Operate {
            user,
            desktop_id,
            op,
            client,
        } => {
            let answer = policy
                .call_operate(
                    &mut *store,
                    &to::identity_to_wit(user),
                    desktop_id,
                    to::operation_to_wit(op),
                    &to::client_to_wit(client),
                )
                .await?;
            reply(answer, to::operation_outcome, Reply::Operation)
        }
        Request::ChangePassword(change) => {
            let mut change = to::password_change_to_wit(change);
            let answer = policy.call_change_password(&mut *store, &change).await;
            change.old_password.zeroize();
            change.new_password.zeroize();
            reply(answer?, to::password_change_outcome, Reply::PasswordChange)
        }
    })
}
