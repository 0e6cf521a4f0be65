"""The example policy, in plain Python values.

``ExamplePolicy`` receives the host's services as callables and answers with the small
dataclasses below; ``app.py`` converts them to the WIT types. The same code therefore runs in
the component and under ``python3 -m unittest``.
"""

import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .power import (
    POWER_OPERATIONS,
    Http,
    OperationOutcome,
    Refused,
    Unsupported,
    power_operation,
)
from .settings import DesktopEntry, Settings, User, parse_settings

#: Wrong codes allowed before the login is refused.
MAX_CODE_ATTEMPTS = 3

#: The prompt of the one-time-code dialog.
CODE_PROMPT = "Enter the 6-digit code from your authenticator app"

#: The dialog error after a wrong code.
WRONG_CODE_TEXT = "Wrong code, try again"

#: The dialog error after a code that was already used.
REPLAYED_CODE_TEXT = "That code was already used, wait for the next one"

#: The buttons of the code dialog: (id, label, is-default).
CODE_BUTTONS = (("ok", "Verify", True), ("cancel", "Cancel", False))

#: How long the store remembers a user's last desktop: 30 days, in milliseconds.
LAST_DESKTOP_TTL_MS = 30 * 24 * 60 * 60 * 1000

#: The error of an answer that does not fit the pending step.
MISMATCHED_STEP = "step answer does not match the pending step"

# A well-formed ILS hash of a throw-away password, checked for unknown users so that a login
# with an unknown name costs the same host time as one with a wrong password.
_DECOY_HASH = "9f70564e7357585cee52b79fa889026721f9eef260bca0ac64a5a549039e919b"


def password_hash_key(username: str) -> str:
    """The store key of a user's changed password hash."""
    return f"password-hash:{username}"


def last_desktop_key(username: str) -> str:
    """The store key of the desktop a user last launched."""
    return f"last-desktop:{username}"


class MapperFailure(Exception):
    """A failure of the mapper itself (not a refusal): becomes the call's ``err``."""


class StoreError(Exception):
    """A failed store call; the message describes the WIT ``store.error`` for the log."""


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
    """The code dialog: one ``secret`` field ``code`` and the buttons of ``CODE_BUTTONS``."""

    prompt: str
    error_text: str
    state: str


@dataclass(frozen=True)
class Disclaimer:
    """A notice to accept first."""

    text: str
    state: str


Outcome = Accepted | Rejected | Challenge | Disclaimer

_NO_LONGER_ALLOWED = Rejected("access-denied", "user no longer allowed to log in")


@dataclass(frozen=True)
class DialogAnswer:
    """The user's answer to the code dialog: (id, value) pairs and the button pressed."""

    fields: Sequence[tuple[str, str]]
    button_id: str


@dataclass(frozen=True)
class DisclaimerAccepted:
    """The user accepted the disclaimer."""


StepAnswer = DialogAnswer | DisclaimerAccepted


@dataclass(frozen=True)
class Launch:
    """Launch on the desktop's agent."""

    hostname: str
    agent_port: int | None


@dataclass(frozen=True)
class DesktopRefused:
    """The desktop id is not one of the user's."""

    reason: str


@dataclass(frozen=True)
class PasswordChanged:
    """The password was changed; the login goes on with ``outcome``."""

    outcome: Outcome


@dataclass(frozen=True)
class PasswordRejected:
    """The password was not changed; ``kind`` is the WIT ``password-rejection-kind`` name."""

    kind: str
    reason: str


@dataclass(frozen=True)
class Host:
    """The services the broker offers, as plain callables."""

    #: ``log(level, message)`` with level a WIT ``level`` case name such as ``"info"``.
    log: Callable[[str, str], None]
    #: ``verify_password(password, hash)``, on the host.
    verify_password: Callable[[str, str], bool]
    #: ``hash_password(password)``: a PHC string for a later ``verify_password``.
    hash_password: Callable[[str], str]
    #: ``verify_totp(secret, code)``: ``"accepted"``, ``"rejected"`` or ``"replayed"``.
    verify_totp: Callable[[str, str], str]
    #: ``store_get(key)``: the value or None; raises ``StoreError``.
    store_get: Callable[[str], bytes | None]
    #: ``store_set(key, value, ttl_ms)``; raises ``StoreError``.
    store_set: Callable[[str, bytes, int | None], None]
    #: The transport to the power API.
    http: Http


class ExamplePolicy:
    """The example policy: users and groups from the settings, a disclaimer, TOTP through the
    host, password changes kept in the store, power operations through a web API."""

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
        """Checks a password login.

        Raises:
            MapperFailure: when the store cannot say whether the password was changed.
        """
        settings = self._current()
        user = settings.users.get(username)
        if user is None:
            self._host.verify_password(password, _DECOY_HASH)
            return self._decide(Rejected("bad-credentials", "unknown user"), username)
        try:
            changed = self._stored_hash(username)
        except StoreError as error:
            raise MapperFailure(f"store: {error}") from None
        stored = user.password_hash if changed is None else changed
        if not self._host.verify_password(password, stored):
            return self._decide(Rejected("bad-credentials", "wrong password"), username)
        refused = self._refusal(user)
        if refused is not None:
            return self._decide(refused, username)
        if user.password_expired and changed is None:
            return self._decide(Rejected("expired-password", "password expired"), username)
        return self._decide(self._after_password(user), username)

    def continue_authentication(self, state: str, answer: StepAnswer) -> Outcome:
        """Continues after the disclaimer or the code dialog.

        Raises:
            MapperFailure: when ``state`` is not one this mapper wrote, or does not match the
                answer.
        """
        pending_user, stage, attempts = _parse_state(state)
        expected = "disclaimer" if isinstance(answer, DisclaimerAccepted) else "code"
        if stage != expected:
            raise MapperFailure(MISMATCHED_STEP)
        user = self._user(pending_user)
        if user is None:
            return self._decide(_NO_LONGER_ALLOWED, pending_user)
        if isinstance(answer, DisclaimerAccepted):
            return self._decide(self._after_disclaimer(user), user.username)
        if not user.mfa or user.totp_secret is None:
            return self._decide(_NO_LONGER_ALLOWED, pending_user)
        if answer.button_id == "cancel":
            return self._decide(Rejected("access-denied", "code dialog cancelled"), user.username)
        code = next((value for field_id, value in answer.fields if field_id == "code"), "")
        verdict = self._host.verify_totp(user.totp_secret, code)
        if verdict == "accepted":
            return self._decide(self._accept(user), user.username)
        attempts += 1
        if attempts >= MAX_CODE_ATTEMPTS:
            return self._decide(
                Rejected("bad-credentials", f"{attempts} wrong codes"), user.username
            )
        replayed = verdict == "replayed"
        self._host.log(
            "info",
            f"user {json.dumps(user.username)}: {'replayed' if replayed else 'wrong'} code "
            f"(attempt {attempts} of {MAX_CODE_ATTEMPTS})",
        )
        return _challenge(
            user.username, attempts, REPLAYED_CODE_TEXT if replayed else WRONG_CODE_TEXT
        )

    def list_desktops(self, username: str) -> list[DesktopEntry]:
        """The desktops of a user, looked up again in the settings, the one launched last first.

        The identity's attributes are not trusted: the settings may have changed since login.
        """
        user = self._user(username)
        desktops = [] if user is None else self._current().desktops_of(user)
        last = self._last_desktop(username)
        first = next((d for d in desktops if d.id == last), None)
        if first is not None:
            desktops = [first] + [d for d in desktops if d is not first]
        self._host.log("info", f"user {json.dumps(username)}: {len(desktops)} desktop(s)")
        return desktops

    def operations(self) -> tuple[str, ...]:
        """The operations every listed desktop offers (WIT names)."""
        return POWER_OPERATIONS if self._current().power_api is not None else ()

    def allocate(self, username: str, desktop_id: str) -> Launch | DesktopRefused:
        """Launches the user's desktop with that id and remembers it, or refuses."""
        desktop = self._desktop(username, desktop_id)
        if desktop is None:
            self._host.log(
                "info",
                f"user {json.dumps(username)}: refused desktop {json.dumps(desktop_id)}",
            )
            return DesktopRefused(f"{json.dumps(desktop_id)} is not one of the user's desktops")
        try:
            self._host.store_set(
                last_desktop_key(username), desktop.id.encode(), LAST_DESKTOP_TTL_MS
            )
        except StoreError as error:
            self._host.log(
                "warn", f"user {json.dumps(username)}: last desktop not kept: {error}"
            )
        self._host.log("info", f"user {json.dumps(username)}: launch on {desktop.hostname}")
        return Launch(hostname=desktop.hostname, agent_port=desktop.agent_port)

    def operate(self, username: str, desktop_id: str, op: str) -> OperationOutcome:
        """Performs ``op`` (a WIT operation name) on the user's desktop through the power API."""
        who = f"user {json.dumps(username)}"
        power_api = self._current().power_api
        if power_api is None:
            self._host.log("info", f"{who}: {op} unsupported (no power_api)")
            return Unsupported()
        desktop = self._desktop(username, desktop_id)
        if desktop is None:
            self._host.log(
                "info", f"{who}: {op} refused on unknown desktop {json.dumps(desktop_id)}"
            )
            return Refused("unknown desktop")
        outcome = power_operation(self._host.http, power_api, desktop.hostname, op)
        detail = getattr(outcome, "detail", "")
        self._host.log("info", f"{who}: {op} on {desktop.hostname}: {outcome.TAG} ({detail})")
        return outcome

    def change_password(
        self, username: str, old_password: str, new_password: str
    ) -> PasswordChanged | PasswordRejected:
        """Changes a password: the old one is checked as at login, the new one must be long
        enough and different, and its host hash goes to the store. Neither is ever logged."""
        settings = self._current()
        user = settings.users.get(username)

        who = f"user {json.dumps(username)}"

        def refuse(kind: str, reason: str) -> PasswordRejected:
            self._host.log("info", f"{who}: password change rejected ({kind}: {reason})")
            return PasswordRejected(kind, reason)

        if user is None:
            self._host.verify_password(old_password, _DECOY_HASH)
            return refuse("wrong-password", "unknown user")
        try:
            changed = self._stored_hash(username)
        except StoreError as error:
            return refuse("directory-error", f"store: {error}")
        stored = user.password_hash if changed is None else changed
        if not self._host.verify_password(old_password, stored):
            return refuse("wrong-password", "wrong password")
        minimum = settings.min_password_length
        if len(new_password) < minimum:
            return refuse(
                "weak-password", f"the new password is shorter than {minimum} characters"
            )
        if hmac.compare_digest(new_password.encode(), old_password.encode()):
            return refuse("weak-password", "the new password is the old one")
        try:
            self._host.store_set(
                password_hash_key(username), self._host.hash_password(new_password).encode(), None
            )
        except StoreError as error:
            return refuse("directory-error", f"store: {error}")
        # What a login answers after a right password: a disabled user or one without desktops
        # is still refused, as the login would.
        following = self._refusal(user) or self._after_password(user)
        self._host.log("info", f"{who}: password changed, then {_verdict(following)}")
        return PasswordChanged(following)

    def _current(self) -> Settings:
        if self._settings is None:
            raise MapperFailure("configure was not called")
        return self._settings

    def _user(self, username: str) -> User | None:
        user = self._current().users.get(username)
        return None if user is None or user.disabled else user

    def _desktop(self, username: str, desktop_id: str) -> DesktopEntry | None:
        user = self._user(username)
        desktops = [] if user is None else self._current().desktops_of(user)
        return next((d for d in desktops if d.id == desktop_id), None)

    def _stored_hash(self, username: str) -> str | None:
        value = self._host.store_get(password_hash_key(username))
        if value is None:
            return None
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise StoreError(
                f"the value of {json.dumps(password_hash_key(username))} is not UTF-8"
            ) from None

    def _last_desktop(self, username: str) -> str | None:
        try:
            value = self._host.store_get(last_desktop_key(username))
        except StoreError as error:
            self._host.log(
                "warn", f"user {json.dumps(username)}: last desktop not read: {error}"
            )
            return None
        return None if value is None else value.decode(errors="replace")

    def _after_password(self, user: User) -> Outcome:
        disclaimer = self._current().disclaimer
        if disclaimer is not None:
            state = json.dumps({"user": user.username, "stage": "disclaimer"}, separators=(",", ":"))
            return Disclaimer(text=disclaimer, state=state)
        return self._after_disclaimer(user)

    def _after_disclaimer(self, user: User) -> Outcome:
        return _challenge(user.username, 0, "") if user.mfa else self._accept(user)

    def _accept(self, user: User) -> Accepted:
        return Accepted(
            username=user.username,
            domain=self._current().logon_domain,
            attributes=[("groups", ",".join(user.groups))],
        )

    def _refusal(self, user: User) -> Rejected | None:
        """Step 3, once the password is right: a disabled user or one without desktops."""
        if user.disabled:
            return Rejected("access-denied", "account disabled")
        if not self._current().desktops_of(user):
            return Rejected("no-resources", "no desktops in the user's groups")
        return None

    def _decide(self, outcome: Outcome, username: str) -> Outcome:
        self._host.log("info", f"user {json.dumps(username)}: {_verdict(outcome)}")
        return outcome


def _verdict(outcome: Outcome) -> str:
    """An auth outcome as the log names it."""
    if isinstance(outcome, Rejected):
        return f"rejected ({outcome.kind}: {outcome.reason})"
    return type(outcome).__name__.lower()


def _challenge(username: str, attempts: int, error_text: str) -> Challenge:
    state = json.dumps(
        {"user": username, "stage": "code", "attempts": attempts}, separators=(",", ":")
    )
    return Challenge(prompt=CODE_PROMPT, error_text=error_text, state=state)


def _parse_state(state: str) -> tuple[str, str, int]:
    """(user, stage, attempts) of a step state this mapper wrote."""
    try:
        parsed = json.loads(state)
    except ValueError:
        raise MapperFailure("step state is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise MapperFailure("step state is malformed")
    user = parsed.get("user")
    stage = parsed.get("stage")
    attempts = parsed.get("attempts", 0) if stage == "disclaimer" else parsed.get("attempts")
    if (
        not isinstance(user, str)
        or stage not in ("disclaimer", "code")
        or not isinstance(attempts, int)
        or isinstance(attempts, bool)
        or attempts < 0
    ):
        raise MapperFailure("step state is malformed")
    return user, stage, attempts
