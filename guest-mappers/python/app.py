"""The example Interstate mapper in Python: the component entry point.

Build with ``./build.sh``. The policy lives in ``example_mapper/`` and is tested with
``python3 -m unittest``; this module only converts between it and the WIT bindings that
componentize-py generates for the world ``mapper-py`` (``wit/world.wit``).
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host, store
from wit_world.imports import interstate_mapper_types as types

from example_mapper.policy import (
    CODE_BUTTONS,
    Accepted,
    Challenge,
    DialogAnswer,
    Disclaimer,
    DisclaimerAccepted,
    ExamplePolicy,
    Host,
    Launch,
    MapperFailure,
    Outcome,
    PasswordChanged,
    Rejected,
    StoreError,
)
from example_mapper.power import Done, Refused, TryAgain
from example_mapper.settings import SettingsError
from wasi_http import http_request

_LEVELS = {
    "trace": host.Level.TRACE,
    "debug": host.Level.DEBUG,
    "info": host.Level.INFO,
    "warn": host.Level.WARN,
    "error": host.Level.ERROR,
}

_VERDICTS = {
    host.TotpVerdict.ACCEPTED: "accepted",
    host.TotpVerdict.REJECTED: "rejected",
    host.TotpVerdict.REPLAYED: "replayed",
}

_REJECTIONS = {
    "bad-credentials": types.RejectionKind.BAD_CREDENTIALS,
    "expired-password": types.RejectionKind.EXPIRED_PASSWORD,
    "access-denied": types.RejectionKind.ACCESS_DENIED,
    "no-resources": types.RejectionKind.NO_RESOURCES,
}

_PASSWORD_REJECTIONS = {
    "wrong-password": types.PasswordRejectionKind.WRONG_PASSWORD,
    "weak-password": types.PasswordRejectionKind.WEAK_PASSWORD,
    "too-many-attempts": types.PasswordRejectionKind.TOO_MANY_ATTEMPTS,
    "directory-error": types.PasswordRejectionKind.DIRECTORY_ERROR,
}

_OPERATIONS = {
    types.Operation.RESTART: "restart",
    types.Operation.POWER_DOWN: "power-down",
    types.Operation.POWER_UP: "power-up",
}
_OPERATION_ENUMS = {name: op for op, name in _OPERATIONS.items()}

_CODE_FIELDS = [types.DialogField(id="code", label="Code", kind=types.FieldKind.SECRET)]
_CODE_BUTTONS = [
    types.DialogButton(id=id, label=label, is_default=is_default)
    for id, label, is_default in CODE_BUTTONS
]


def _store_error(error: Err) -> StoreError:
    """The WIT ``store.error`` carried by ``error`` as the policy's ``StoreError``."""
    value = error.value
    if isinstance(value, store.Error_TooLarge):
        return StoreError(f"too-large: {value.value}")
    if isinstance(value, store.Error_Unavailable):
        return StoreError(f"unavailable: {value.value}")
    return StoreError("full")


def _store_get(key: str) -> bytes | None:
    try:
        return store.get(key)
    except Err as error:
        raise _store_error(error) from None


def _store_set(key: str, value: bytes, ttl_ms: int | None) -> None:
    try:
        store.set(key, value, ttl_ms)
    except Err as error:
        raise _store_error(error) from None


# The host makes a fresh instance for every call, so this lives for one configure + one call.
_POLICY = ExamplePolicy(
    Host(
        log=lambda level, message: host.log(_LEVELS[level], message),
        verify_password=host.verify_password,
        hash_password=host.hash_password,
        verify_totp=lambda secret, code: _VERDICTS[host.verify_totp(secret, code)],
        store_get=_store_get,
        store_set=_store_set,
        http=http_request,
    )
)


class Policy(exports.Policy):
    """The WIT export ``interstate:mapper/policy@0.2.0``."""

    def configure(self, settings_json: str) -> None:
        try:
            _POLICY.configure(settings_json)
        except SettingsError as error:
            raise Err(str(error)) from None

    def domains(self) -> list[str]:
        return _POLICY.domains()

    def authenticate(self, login: types.PasswordLogin) -> types.AuthOutcome:
        return _guard(lambda: _outcome(_POLICY.authenticate(login.username, login.password)))

    def continue_authentication(
        self, state: str, answer: types.StepAnswer, client: types.ClientInfo
    ) -> types.AuthOutcome:
        if isinstance(answer, types.StepAnswer_Dialog):
            step: DialogAnswer | DisclaimerAccepted = DialogAnswer(
                fields=[(field.id, field.value) for field in answer.value.fields],
                button_id=answer.value.button_id,
            )
        else:
            step = DisclaimerAccepted()
        return _guard(lambda: _outcome(_POLICY.continue_authentication(state, step)))

    def list_desktops(self, user: types.Identity, client: types.ClientInfo) -> list[types.Desktop]:
        def listed() -> list[types.Desktop]:
            operations = [_OPERATION_ENUMS[name] for name in _POLICY.operations()]
            return [
                types.Desktop(
                    id=d.id,
                    name=d.name,
                    hostname=d.hostname,
                    agent_port=d.agent_port,
                    session_kind=types.SessionKind.VDI,
                    state=types.DesktopState.UNKNOWN,
                    operations=list(operations),
                )
                for d in _POLICY.list_desktops(user.username)
            ]

        return _guard(listed)

    def allocate(
        self, user: types.Identity, desktop_id: str, client: types.ClientInfo
    ) -> types.Allocation:
        decision = _guard(lambda: _POLICY.allocate(user.username, desktop_id))
        if isinstance(decision, Launch):
            return types.Allocation_Launch(
                types.Launch(
                    hostname=decision.hostname,
                    agent_port=decision.agent_port,
                    username=None,
                    domain=None,
                )
            )
        return types.Allocation_Refused((types.RefusalKind.UNKNOWN_DESKTOP, decision.reason))

    def operate(
        self,
        user: types.Identity,
        desktop_id: str,
        op: types.Operation,
        client: types.ClientInfo,
    ) -> types.OperationOutcome:
        outcome = _guard(lambda: _POLICY.operate(user.username, desktop_id, _OPERATIONS[op]))
        if isinstance(outcome, Done):
            return types.OperationOutcome_Done(outcome.detail)
        if isinstance(outcome, TryAgain):
            return types.OperationOutcome_TryAgain(outcome.detail)
        if isinstance(outcome, Refused):
            return types.OperationOutcome_Refused(outcome.detail)
        return types.OperationOutcome_Unsupported()

    def change_password(self, change: types.PasswordChange) -> types.PasswordChangeOutcome:
        result = _guard(
            lambda: _POLICY.change_password(
                change.username, change.old_password, change.new_password
            )
        )
        if isinstance(result, PasswordChanged):
            return types.PasswordChangeOutcome_Changed(_outcome(result.outcome))
        return types.PasswordChangeOutcome_Rejected(
            types.PasswordRejection(kind=_PASSWORD_REJECTIONS[result.kind], reason=result.reason)
        )


def _guard(call):
    """Turns a mapper failure into the call's ``err`` instead of a trap."""
    try:
        return call()
    except MapperFailure as error:
        raise Err(str(error)) from None


def _outcome(outcome: Outcome) -> types.AuthOutcome:
    if isinstance(outcome, Accepted):
        return types.AuthOutcome_Accepted(
            types.Identity(
                username=outcome.username,
                domain=outcome.domain,
                attributes=[types.Attribute(key=k, value=v) for k, v in outcome.attributes],
            )
        )
    if isinstance(outcome, Rejected):
        return types.AuthOutcome_Rejected(
            types.Rejection(kind=_REJECTIONS[outcome.kind], reason=outcome.reason)
        )
    if isinstance(outcome, Challenge):
        return types.AuthOutcome_Challenge(
            types.Dialog(
                prompt=outcome.prompt,
                error_text=outcome.error_text,
                fields=list(_CODE_FIELDS),
                buttons=list(_CODE_BUTTONS),
                state=outcome.state,
            )
        )
    if isinstance(outcome, Disclaimer):
        return types.AuthOutcome_Disclaimer(types.Disclaimer(text=outcome.text, state=outcome.state))
    raise Err(f"unexpected outcome {outcome!r}")
