"""The directory example mapper: the component entry point.

Build with ``./build.sh --directory``. The policy lives in ``directory_example/`` and is tested
with ``python3 -m unittest``; this module only converts between it and the WIT bindings that
componentize-py generates for the world ``mapper`` (``interstate:mapper@0.2.0``).
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import directory, host, types

from directory_example.policy import (
    Accepted,
    Directory,
    DirectoryFailure,
    DirectoryPolicy,
    Launch,
    MapperFailure,
    PasswordRejected,
    SettingsError,
    User,
)

_LEVELS = {"info": host.Level.INFO, "warn": host.Level.WARN}


def _call(function, *args):
    """Calls a ``directory`` import; its ``Err(failure)`` becomes a ``DirectoryFailure``."""
    try:
        return function(*args)
    except Err as error:
        failure = error.value
        kind = failure.kind.name.lower().replace("_", "-")
        raise DirectoryFailure(kind, failure.detail) from None


def _authenticate(profile: str, username: str, password: str) -> User:
    user = _call(directory.authenticate, profile, username, password)
    return User(dn=user.dn, login=user.login)


def _groups(profile: str, username: str) -> list[str]:
    return [group.name for group in _call(directory.groups, profile, username)]


# The host makes a fresh instance for every call, so this lives for one configure + one call.
_POLICY = DirectoryPolicy(
    Directory(
        authenticate=_authenticate,
        groups=_groups,
        change_password=lambda *args: _call(directory.change_password, *args),
    ),
    log=lambda level, message: host.log(_LEVELS[level], message),
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
        raise Err("this mapper asks for no further step")

    def list_desktops(self, user: types.Identity, client: types.ClientInfo) -> list[types.Desktop]:
        return [
            types.Desktop(
                id=d.id,
                name=d.name,
                hostname=d.hostname,
                agent_port=d.agent_port,
                session_kind=types.SessionKind.VDI,
                state=types.DesktopState.UNKNOWN,
                operations=[],
            )
            for d in _guard(lambda: _POLICY.list_desktops(user.username))
        ]

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
        return types.OperationOutcome_Unsupported()

    def change_password(self, change: types.PasswordChange) -> types.PasswordChangeOutcome:
        outcome = _guard(
            lambda: _POLICY.change_password(
                change.username, change.old_password, change.new_password
            )
        )
        if isinstance(outcome, PasswordRejected):
            kind = types.PasswordRejectionKind[outcome.kind.upper().replace("-", "_")]
            return types.PasswordChangeOutcome_Rejected(
                types.PasswordRejection(kind=kind, reason=outcome.reason)
            )
        return types.PasswordChangeOutcome_Changed(_outcome(outcome))


def _guard(call):
    """Turns a mapper failure into the call's ``err`` instead of a trap."""
    try:
        return call()
    except MapperFailure as error:
        raise Err(str(error)) from None


def _outcome(outcome) -> types.AuthOutcome:
    if isinstance(outcome, Accepted):
        return types.AuthOutcome_Accepted(
            types.Identity(
                username=outcome.username,
                domain=outcome.domain,
                attributes=[types.Attribute(key=k, value=v) for k, v in outcome.attributes],
            )
        )
    kind = types.RejectionKind[outcome.kind.upper().replace("-", "_")]
    return types.AuthOutcome_Rejected(types.Rejection(kind=kind, reason=outcome.reason))
