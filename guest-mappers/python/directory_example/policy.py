"""The directory example policy, in plain Python values.

Users log in with their directory password (``directory.authenticate``); their groups, nested
ones included (``directory.groups``), decide their desktops through the settings::

    {"profile": "corp", "logon_domain": "CORP", "domains": ["CORP"],
     "groups": {"artists": [{"name": "Workstation 1", "hostname": "ws1.example.com"}]}}

``DirectoryPolicy`` receives the directory as a ``Directory`` of callables, so the same code runs
in the component and under ``python3 -m unittest`` with a fake directory.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class MapperFailure(Exception):
    """A failure of the mapper or of the directory (not a refusal): becomes the call's ``err``."""


class SettingsError(Exception):
    """The settings are invalid; the message names the key."""


class DirectoryFailure(Exception):
    """A directory call failed; ``kind`` is the WIT ``failure-kind`` case name."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class User:
    """A user the directory accepted."""

    dn: str
    login: str


@dataclass(frozen=True)
class Directory:
    """The host's ``directory`` interface, as callables that raise ``DirectoryFailure``."""

    authenticate: Callable[[str, str, str], User]
    groups: Callable[[str, str], list[str]]
    change_password: Callable[[str, str, str, str], None]


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
class PasswordRejected:
    """A refused password change; ``kind`` is the WIT ``password-rejection-kind`` case name."""

    kind: str
    reason: str


@dataclass(frozen=True)
class Desktop:
    """One desktop of the settings."""

    id: str
    name: str
    hostname: str
    agent_port: int | None


@dataclass(frozen=True)
class Launch:
    """Launch on the desktop's agent."""

    hostname: str
    agent_port: int | None


@dataclass(frozen=True)
class Refused:
    """The desktop id is not one of the user's."""

    reason: str


#: Directory failures of a correct password for an account that may not log in now.
_REJECTIONS = {
    "wrong-password": "bad-credentials",
    "password-expired": "expired-password",
    "must-change-password": "expired-password",
    "account-disabled": "access-denied",
    "account-expired": "access-denied",
    "locked-out": "access-denied",
    "outside-logon-hours": "access-denied",
}

#: Directory failures of a password change that the user can correct.
_PASSWORD_REJECTIONS = {"wrong-password": "wrong-password", "weak-password": "weak-password"}


def desktop_id(hostname: str) -> str:
    """The stable id of a desktop: its host name in lower case, other characters as ``-``."""
    return re.sub(r"[^a-z0-9-]", "-", hostname.lower())


class DirectoryPolicy:
    """The policy: configure once, then one call (the host makes a fresh instance per call)."""

    def __init__(self, directory: Directory, log: Callable[[str, str], None]) -> None:
        self._directory = directory
        self._log = log
        self._profile = ""
        self._logon_domain = ""
        self._domains: list[str] = []
        self._groups: dict[str, list[Desktop]] = {}

    def configure(self, settings_json: str) -> None:
        """Parses and validates ``mapper.settings``; raises ``SettingsError``."""
        try:
            settings = json.loads(settings_json)
        except ValueError as error:
            raise SettingsError(f"settings: not JSON ({error})") from None
        if not isinstance(settings, dict):
            raise SettingsError("settings: expected an object")
        unknown = sorted(set(settings) - {"profile", "logon_domain", "domains", "groups"})
        if unknown:
            raise SettingsError(f"{unknown[0]}: unknown key")
        self._profile = _string(settings, "profile", None)
        self._logon_domain = _string(settings, "logon_domain", "")
        domains = settings.get("domains", [])
        if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
            raise SettingsError("domains: expected a list of strings")
        self._domains = domains
        groups = settings.get("groups", {})
        if not isinstance(groups, dict):
            raise SettingsError("groups: expected an object of group name to desktops")
        self._groups = {
            name.lower(): _desktops(f"groups.{name}", entries) for name, entries in groups.items()
        }

    def domains(self) -> list[str]:
        """The logon domains offered in ``hello-resp``."""
        return self._domains

    def authenticate(self, username: str, password: str) -> Accepted | Rejected:
        """Checks the password with the directory, then that the user has a desktop."""
        try:
            user = self._directory.authenticate(self._profile, username, password)
        except DirectoryFailure as failure:
            kind = _REJECTIONS.get(failure.kind)
            if kind is None:
                raise MapperFailure(f"directory: {failure}") from None
            self._log("info", f"user {username!r}: {kind} ({failure.kind})")
            return Rejected(kind, failure.kind)
        if not self.list_desktops(user.login):
            self._log("info", f"user {user.login!r}: no desktops")
            return Rejected("no-resources", "no group of the user has desktops")
        self._log("info", f"user {user.login!r}: accepted")
        return Accepted(user.login, self._logon_domain, [("dn", user.dn)])

    def list_desktops(self, username: str) -> list[Desktop]:
        """The desktops of the user's groups (asked again: identities are not trusted)."""
        try:
            names = self._directory.groups(self._profile, username)
        except DirectoryFailure as failure:
            raise MapperFailure(f"directory groups: {failure}") from None
        desktops: dict[str, Desktop] = {}
        for name in names:
            for desktop in self._groups.get(name.lower(), []):
                desktops.setdefault(desktop.id, desktop)
        return list(desktops.values())

    def allocate(self, username: str, desktop: str) -> Launch | Refused:
        """Launches one of the user's desktops; refuses any other id."""
        for candidate in self.list_desktops(username):
            if candidate.id == desktop:
                self._log("info", f"user {username!r}: launch on {candidate.hostname}")
                return Launch(candidate.hostname, candidate.agent_port)
        return Refused(f"{desktop!r} is not a desktop of {username!r}")

    def change_password(
        self, username: str, old: str, new: str
    ) -> Accepted | Rejected | PasswordRejected:
        """Changes the password in the directory, then logs in with the new one."""
        try:
            self._directory.change_password(self._profile, username, old, new)
        except DirectoryFailure as failure:
            kind = _PASSWORD_REJECTIONS.get(failure.kind, "directory-error")
            self._log("info", f"user {username!r}: password not changed ({failure.kind})")
            return PasswordRejected(kind, failure.kind)
        self._log("info", f"user {username!r}: password changed")
        return self.authenticate(username, new)


def _string(settings: dict[str, Any], key: str, default: str | None) -> str:
    value = settings.get(key, default)
    if not isinstance(value, str) or (not value and default is None):
        raise SettingsError(f"{key}: expected a non-empty string")
    return value


def _desktops(path: str, entries: Any) -> list[Desktop]:
    if not isinstance(entries, list):
        raise SettingsError(f"{path}: expected a list of desktops")
    desktops = []
    for i, entry in enumerate(entries):
        where = f"{path}[{i}]"
        if not isinstance(entry, dict) or set(entry) - {"name", "hostname", "agent_port"}:
            raise SettingsError(f"{where}: expected {{name, hostname, agent_port?}}")
        name, hostname = entry.get("name"), entry.get("hostname")
        if not isinstance(name, str) or not name:
            raise SettingsError(f"{where}.name: expected a non-empty string")
        if not isinstance(hostname, str) or not hostname:
            raise SettingsError(f"{where}.hostname: expected a non-empty string")
        port = entry.get("agent_port")
        if port is not None and (type(port) is not int or not 1 <= port <= 65535):
            raise SettingsError(f"{where}.agent_port: expected 1-65535")
        desktops.append(Desktop(desktop_id(hostname), name, hostname, port))
    return desktops
