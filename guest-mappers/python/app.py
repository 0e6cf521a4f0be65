"""The example Interstate mapper in Python: the component entry point.

Build with ``./build.sh``. The policy lives in ``example_mapper/`` and is tested with
``python3 -m unittest``; this module only converts between it and the WIT bindings that
componentize-py generates for the world ``mapper``.
"""

import time

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host, types

from example_mapper.policy import (
    Accepted,
    Challenge,
    ExamplePolicy,
    Host,
    Launch,
    MapperFailure,
    Outcome,
    Rejected,
)
from example_mapper.settings import SettingsError
from example_mapper.totp import hotp

_LEVELS = {
    "trace": host.Level.TRACE,
    "debug": host.Level.DEBUG,
    "info": host.Level.INFO,
    "warn": host.Level.WARN,
    "error": host.Level.ERROR,
}

_REJECTIONS = {
    "bad-credentials": types.RejectionKind.BAD_CREDENTIALS,
    "expired-password": types.RejectionKind.EXPIRED_PASSWORD,
    "access-denied": types.RejectionKind.ACCESS_DENIED,
    "no-resources": types.RejectionKind.NO_RESOURCES,
}

# componentize-py bundles only the modules imported while it snapshots this module. Without
# OpenSSL, hmac falls back to pure Python and imports `warnings` on first use, so run the TOTP
# path once now; otherwise the first code check fails with ModuleNotFoundError.
hotp(b"pre-init", 0)

# The host makes a fresh instance for every call, so this lives for one configure + one call.
_POLICY = ExamplePolicy(
    Host(
        log=lambda level, message: host.log(_LEVELS[level], message),
        verify_password=host.verify_password,
        # time.time() reads the WASI wall clock, which the TOTP window depends on.
        now=time.time,
    )
)


class Policy(exports.Policy):
    """The WIT export ``interstate:mapper/policy@0.1.0``."""

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
        self, state: str, answers: list[types.FieldAnswer], client: types.ClientInfo
    ) -> types.AuthOutcome:
        pairs = [(answer.id, answer.value) for answer in answers]
        return _guard(lambda: _outcome(_POLICY.continue_authentication(state, pairs)))

    def list_desktops(self, user: types.Identity, client: types.ClientInfo) -> list[types.Desktop]:
        return _guard(
            lambda: [
                types.Desktop(
                    id=d.id,
                    name=d.name,
                    hostname=d.hostname,
                    agent_port=d.agent_port,
                    session_kind=types.SessionKind.VDI,
                    state=types.DesktopState.UNKNOWN,
                    operations=[],
                )
                for d in _POLICY.list_desktops(user.username)
            ]
        )

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
                fields=[types.DialogField(id="code", label="Code", kind=types.FieldKind.SECRET)],
                state=outcome.state,
            )
        )
    raise Err(f"unexpected outcome {outcome!r}")
