"""The example policy, in plain Python values.

``ExamplePolicy`` receives the host's services as callables and answers with the small
dataclasses below; ``app.py`` converts them to the WIT types. The same code therefore runs in
the component and under ``python3 -m unittest``.
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .settings import DesktopEntry, Settings, User, parse_settings
from .totp import verify_totp

#: Wrong codes allowed before the login is refused.
MAX_CODE_ATTEMPTS = 3

#: The prompt of the one-time-code dialog.
CODE_PROMPT = "Enter the 6-digit code from your authenticator app"

#: The dialog error after a wrong code.
WRONG_CODE_TEXT = "Wrong code, try again"

# A well-formed ILS hash of a throw-away password, checked for unknown users so that a login
# with an unknown name costs the same host time as one with a wrong password.
_DECOY_HASH = "9f70564e7357585cee52b79fa889026721f9eef260bca0ac64a5a549039e919b"


class MapperFailure(Exception):
    """A failure of the mapper itself (not a refusal): becomes the call's ``err``."""


@dataclass(frozen=True)
class Accepted:
    """The user is in."""

    username: str
    domain: str
    attributes: list[tuple[str, str]]


@dataclass(frozen=True)
class Rejected:
    """The user is refused; ``kind`` is the WIT ``rejection-kind`` case name."""

    kind: str
    reason: str


@dataclass(frozen=True)
class Challenge:
    """Ask for a one-time code (one ``secret`` field with id ``code``)."""

    prompt: str
    error_text: str
    state: str


@dataclass(frozen=True)
class Launch:
    """Launch on the desktop's agent."""

    hostname: str
    agent_port: int | None


@dataclass(frozen=True)
class Refused:
    """The desktop id is not one of the user's."""

    reason: str


Outcome = Accepted | Rejected | Challenge


@dataclass(frozen=True)
class Host:
    """The services the broker offers, as plain callables."""

    #: ``log(level, message)`` with level a WIT ``level`` case name such as ``"info"``.
    log: Callable[[str, str], None]
    #: ``verify_password(password, hash)``, on the host.
    verify_password: Callable[[str, str], bool]
    #: Unix time in seconds, from the wall clock.
    now: Callable[[], float]


class ExamplePolicy:
    """The example policy: users and groups from the settings, optional TOTP."""

    def __init__(self, host: Host) -> None:
        self._host = host
        self._settings: Settings | None = None

    def configure(self, settings_json: str) -> None:
        """Parses and validates the settings.

        Raises:
            SettingsError: naming the offending key.
        """
        self._settings = parse_settings(settings_json)

    def domains(self) -> list[str]:
        """The logon domains to offer."""
        return list(self._current().domains)

    def authenticate(self, username: str, password: str) -> Outcome:
        """Checks a password login."""
        settings = self._current()
        user = settings.users.get(username)
        if user is None:
            self._host.verify_password(password, _DECOY_HASH)
            return self._decide(Rejected("bad-credentials", "unknown user"), username)
        if not self._host.verify_password(password, user.password_hash):
            return self._decide(Rejected("bad-credentials", "wrong password"), username)
        if user.disabled:
            return self._decide(Rejected("access-denied", "account disabled"), username)
        if not settings.desktops_of(user):
            return self._decide(
                Rejected("no-resources", "no desktops in the user's groups"), username
            )
        if user.mfa:
            return self._decide(_challenge(username, 0, ""), username)
        return self._decide(self._accept(user), username)

    def continue_authentication(self, state: str, answers: Sequence[tuple[str, str]]) -> Outcome:
        """Checks the one-time code of a challenged login; ``answers`` are (id, value) pairs.

        Raises:
            MapperFailure: when ``state`` is not one this mapper wrote.
        """
        settings = self._current()
        pending_user, attempts = _parse_state(state)
        user = settings.users.get(pending_user)
        if user is None or user.disabled or not user.mfa or user.totp_key is None:
            return self._decide(
                Rejected("access-denied", "user no longer allowed to log in"), pending_user
            )
        code = next((value for field_id, value in answers if field_id == "code"), "")
        if verify_totp(user.totp_key, code, self._host.now()):
            return self._decide(self._accept(user), user.username)
        attempts += 1
        if attempts >= MAX_CODE_ATTEMPTS:
            return self._decide(Rejected("bad-credentials", f"{attempts} wrong codes"), user.username)
        self._host.log(
            "info",
            f"user {json.dumps(user.username)}: wrong code "
            f"(attempt {attempts} of {MAX_CODE_ATTEMPTS})",
        )
        return _challenge(user.username, attempts, WRONG_CODE_TEXT)

    def list_desktops(self, username: str) -> list[DesktopEntry]:
        """The desktops of a user, looked up again in the settings.

        The identity's attributes are not trusted: the settings may have changed since login.
        """
        user = self._user(username)
        desktops = [] if user is None else self._current().desktops_of(user)
        self._host.log("info", f"user {json.dumps(username)}: {len(desktops)} desktop(s)")
        return desktops

    def allocate(self, username: str, desktop_id: str) -> Launch | Refused:
        """Launches the user's desktop with that id, or refuses."""
        user = self._user(username)
        desktops = [] if user is None else self._current().desktops_of(user)
        desktop = next((d for d in desktops if d.id == desktop_id), None)
        if desktop is None:
            self._host.log(
                "info",
                f"user {json.dumps(username)}: refused desktop {json.dumps(desktop_id)}",
            )
            return Refused(f"{json.dumps(desktop_id)} is not one of the user's desktops")
        self._host.log("info", f"user {json.dumps(username)}: launch on {desktop.hostname}")
        return Launch(hostname=desktop.hostname, agent_port=desktop.agent_port)

    def _current(self) -> Settings:
        if self._settings is None:
            raise MapperFailure("configure was not called")
        return self._settings

    def _user(self, username: str) -> User | None:
        user = self._current().users.get(username)
        return None if user is None or user.disabled else user

    def _accept(self, user: User) -> Accepted:
        return Accepted(
            username=user.username,
            domain=self._current().logon_domain,
            attributes=[("groups", ",".join(user.groups))],
        )

    def _decide(self, outcome: Outcome, username: str) -> Outcome:
        name = type(outcome).__name__.lower()
        detail = f" ({outcome.kind}: {outcome.reason})" if isinstance(outcome, Rejected) else ""
        self._host.log("info", f"user {json.dumps(username)}: {name}{detail}")
        return outcome


def _challenge(username: str, attempts: int, error_text: str) -> Challenge:
    state = json.dumps({"user": username, "attempts": attempts}, separators=(",", ":"))
    return Challenge(prompt=CODE_PROMPT, error_text=error_text, state=state)


def _parse_state(state: str) -> tuple[str, int]:
    try:
        parsed = json.loads(state)
    except ValueError:
        raise MapperFailure("challenge state is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise MapperFailure("challenge state is malformed")
    user = parsed.get("user")
    attempts = parsed.get("attempts")
    if (
        not isinstance(user, str)
        or not isinstance(attempts, int)
        or isinstance(attempts, bool)
        or attempts < 0
    ):
        raise MapperFailure("challenge state is malformed")
    return user, attempts
