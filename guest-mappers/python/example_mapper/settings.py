"""Parsing and validation of the example mapper's settings.

The operator's ``mapper.settings`` object arrives as JSON text. Every mistake is reported with
the path of the offending key, because a ``configure`` error at start-up is all the operator
sees.
"""

import json
import re
from dataclasses import dataclass
from typing import Any

#: The longest desktop id the contract allows, in bytes.
MAX_ID_BYTES = 128

#: The longest disclaimer the contract allows, in bytes (UTF-8).
MAX_DISCLAIMER_BYTES = 4096

#: The default and the bounds of ``min_password_length``.
DEFAULT_MIN_PASSWORD_LENGTH = 12
_MIN_PASSWORD_LENGTH_RANGE = (8, 128)

_HOSTNAME = re.compile(r"[A-Za-z0-9._:-]+")
_POWER_API = re.compile(r"https?://[^/?#\s@]+(/[^?#\s]*)?")
_BASE32 = re.compile(r"[A-Z2-7]+")

# Tells an absent key from an explicit JSON null.
_MISSING = object()


class SettingsError(ValueError):
    """A settings mistake: ``path`` names the key, the message says what was expected."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclass(frozen=True)
class DesktopEntry:
    """One desktop of a group."""

    id: str
    name: str
    hostname: str
    agent_port: int | None


@dataclass(frozen=True)
class User:
    """One user of the settings."""

    username: str
    password_hash: str
    groups: tuple[str, ...]
    mfa: bool
    #: The base32 secret, checked by the host's ``verify-totp``.
    totp_secret: str | None
    disabled: bool
    #: The password is right but must be changed.
    password_expired: bool


@dataclass(frozen=True)
class Settings:
    """The validated settings."""

    users: dict[str, User]
    groups: dict[str, tuple[DesktopEntry, ...]]
    domains: list[str]
    logon_domain: str
    #: Shown after every correct password, when set.
    disclaimer: str | None = None
    #: The power API's base URL, without a trailing slash.
    power_api: str | None = None
    #: The shortest new password ``change-password`` accepts.
    min_password_length: int = DEFAULT_MIN_PASSWORD_LENGTH

    def desktops_of(self, user: User) -> list[DesktopEntry]:
        """The union of the user's groups' desktops, in group order, without duplicates."""
        seen: set[str] = set()
        result = []
        for group in user.groups:
            for desktop in self.groups.get(group, ()):
                if desktop.id not in seen:
                    seen.add(desktop.id)
                    result.append(desktop)
        return result


def desktop_id(hostname: str) -> str:
    """The stable desktop id: the host name in lower case, every character other than a
    letter, a digit or ``-`` replaced by ``-`` (``ws-art-1.example.com`` ->
    ``ws-art-1-example-com``).

    Zero clients remember desktops by id, so it must not depend on list order.
    """
    return re.sub(r"[^a-z0-9-]", "-", hostname.lower())


def is_base32(text: str) -> bool:
    """Whether ``text`` is a base32 secret as authenticator apps show it (case, spaces and ``=``
    padding forgiven), in the same terms as the host's ``verify-totp``."""
    clean = re.sub(r"\s", "", text).rstrip("=").upper()
    # Lengths 1, 3 and 6 (mod 8) cannot come from whole bytes.
    return _BASE32.fullmatch(clean) is not None and len(clean) % 8 not in (1, 3, 6)


def parse_settings(text: str) -> Settings:
    """Parses and validates the settings JSON.

    Raises:
        SettingsError: naming the first offending key.
    """
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise SettingsError("settings", f"not valid JSON ({error})") from None
    top = _object(raw, "settings")
    _allow_keys(
        top,
        "",
        (
            "users",
            "groups",
            "domains",
            "logon_domain",
            "disclaimer",
            "power_api",
            "min_password_length",
        ),
    )

    groups = _parse_groups(top.get("groups", {}))
    domains = _string_list(top.get("domains", []), "domains")
    logon_domain = _string(top.get("logon_domain", ""), "logon_domain")
    disclaimer = _parse_disclaimer(top["disclaimer"]) if "disclaimer" in top else None
    power_api = _parse_power_api(top["power_api"]) if "power_api" in top else None
    min_password_length = (
        _parse_min_password_length(top["min_password_length"])
        if "min_password_length" in top
        else DEFAULT_MIN_PASSWORD_LENGTH
    )

    if "users" not in top:
        raise SettingsError("users", "missing (expected a list of users)")
    if not isinstance(top["users"], list):
        raise SettingsError("users", "expected a list of users")
    users: dict[str, User] = {}
    for index, entry in enumerate(top["users"]):
        user = _parse_user(entry, f"users[{index}]", groups)
        if user.username in users:
            raise SettingsError(f"users[{index}].username", f'duplicate user "{user.username}"')
        users[user.username] = user
    return Settings(
        users=users,
        groups=groups,
        domains=domains,
        logon_domain=logon_domain,
        disclaimer=disclaimer,
        power_api=power_api,
        min_password_length=min_password_length,
    )


def _parse_disclaimer(value: Any) -> str:
    text = _non_empty_string(value, "disclaimer")
    if len(text.encode()) > MAX_DISCLAIMER_BYTES:
        raise SettingsError("disclaimer", f"longer than {MAX_DISCLAIMER_BYTES} bytes")
    return text


def _parse_power_api(value: Any) -> str:
    url = _string(value, "power_api")
    if _POWER_API.fullmatch(url) is None or url.endswith("/"):
        raise SettingsError(
            "power_api", "expected an http:// or https:// base URL without a trailing slash"
        )
    return url


def _parse_min_password_length(value: Any) -> int:
    low, high = _MIN_PASSWORD_LENGTH_RANGE
    # bool is an int subclass in Python; JSON true is not a length.
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise SettingsError("min_password_length", f"expected an integer between {low} and {high}")
    return value


def _parse_groups(value: Any) -> dict[str, tuple[DesktopEntry, ...]]:
    groups_object = _object(value, "groups")
    groups = {}
    # Which desktop claimed each id, so that two different desktops cannot share one.
    owners: dict[str, tuple[str, DesktopEntry]] = {}
    for group_name, desktops in groups_object.items():
        group_path = f"groups.{group_name}"
        if not isinstance(desktops, list):
            raise SettingsError(group_path, "expected a list of desktops")
        entries = []
        for index, item in enumerate(desktops):
            path = f"{group_path}[{index}]"
            desktop = _parse_desktop(item, path)
            owner = owners.setdefault(desktop.id, (path, desktop))
            if (owner[1].name, owner[1].agent_port) != (desktop.name, desktop.agent_port):
                raise SettingsError(
                    f"{path}.hostname",
                    f'desktop id "{desktop.id}" is already used by {owner[0]} '
                    "with a different name or agent_port",
                )
            entries.append(desktop)
        groups[group_name] = tuple(entries)
    return groups


def _parse_desktop(value: Any, path: str) -> DesktopEntry:
    desktop = _object(value, path)
    _allow_keys(desktop, path, ("name", "hostname", "agent_port"))
    name = _non_empty_string(desktop.get("name", _MISSING), f"{path}.name")
    hostname = _non_empty_string(desktop.get("hostname", _MISSING), f"{path}.hostname")
    if _HOSTNAME.fullmatch(hostname) is None:
        raise SettingsError(f"{path}.hostname", "expected a host name or an IP address")
    identifier = desktop_id(hostname)
    if len(identifier.encode()) > MAX_ID_BYTES:
        raise SettingsError(f"{path}.hostname", f"longer than {MAX_ID_BYTES} characters")
    agent_port = desktop.get("agent_port")
    if "agent_port" in desktop:
        # bool is an int subclass in Python; JSON true is not a port.
        if (
            not isinstance(agent_port, int)
            or isinstance(agent_port, bool)
            or not 1 <= agent_port <= 65535
        ):
            raise SettingsError(f"{path}.agent_port", "expected a port number between 1 and 65535")
    return DesktopEntry(id=identifier, name=name, hostname=hostname, agent_port=agent_port)


def _parse_user(value: Any, path: str, groups: dict[str, Any]) -> User:
    user = _object(value, path)
    _allow_keys(
        user,
        path,
        (
            "username",
            "password_hash",
            "groups",
            "mfa",
            "totp_secret",
            "disabled",
            "password_expired",
        ),
    )
    username = _non_empty_string(user.get("username", _MISSING), f"{path}.username")
    password_hash = _non_empty_string(user.get("password_hash", _MISSING), f"{path}.password_hash")
    user_groups = _string_list(user.get("groups", []), f"{path}.groups")
    for index, group in enumerate(user_groups):
        if group not in groups:
            raise SettingsError(f"{path}.groups[{index}]", f'unknown group "{group}"')
    mfa = _boolean(user.get("mfa", False), f"{path}.mfa")
    disabled = _boolean(user.get("disabled", False), f"{path}.disabled")
    password_expired = _boolean(user.get("password_expired", False), f"{path}.password_expired")
    totp_secret = None
    if "totp_secret" in user:
        totp_secret = _non_empty_string(user["totp_secret"], f"{path}.totp_secret")
        if not is_base32(totp_secret):
            raise SettingsError(f"{path}.totp_secret", "expected a base32 secret")
    if mfa and totp_secret is None:
        raise SettingsError(f"{path}.totp_secret", "missing (required when mfa is true)")
    return User(
        username=username,
        password_hash=password_hash,
        groups=tuple(user_groups),
        mfa=mfa,
        totp_secret=totp_secret,
        disabled=disabled,
        password_expired=password_expired,
    )


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SettingsError(path, "expected an object")
    return value


def _allow_keys(value: dict[str, Any], path: str, allowed: tuple[str, ...]) -> None:
    for key in value:
        if key not in allowed:
            raise SettingsError(
                key if path == "" else f"{path}.{key}",
                f"unknown key (expected one of: {', '.join(allowed)})",
            )


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise SettingsError(path, "expected a string")
    return value


def _non_empty_string(value: Any, path: str) -> str:
    if value is _MISSING:
        raise SettingsError(path, "missing (expected a non-empty string)")
    if not isinstance(value, str) or value == "":
        raise SettingsError(path, "expected a non-empty string")
    return value


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(path, "expected true or false")
    return value


def _string_list(value: Any, path: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SettingsError(path, "expected a list of strings")
    return value
