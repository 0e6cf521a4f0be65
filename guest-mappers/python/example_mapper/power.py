"""The power API behind ``operate``: a small HTTP service that restarts, powers down and powers
up machines. The transport is injected (``wasi:http`` in the component, a fake in the tests).
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import quote

#: The operations every desktop offers when ``power_api`` is set, in this order (WIT names).
POWER_OPERATIONS = ("restart", "power-down", "power-up")


@dataclass(frozen=True)
class HttpResponse:
    """A whole HTTP response."""

    status: int
    #: The body as text (UTF-8).
    body: str


class HttpError(Exception):
    """A transport failure (no response); the message is for the log."""


#: ``http(method, url)`` sends one request with an empty body and waits for the whole response;
#: it raises ``HttpError`` on a transport failure.
Http = Callable[[str, str], HttpResponse]


@dataclass(frozen=True)
class Done:
    """Done, or accepted by the power API."""

    #: The WIT ``operation-outcome`` case.
    TAG: ClassVar[str] = "done"

    detail: str


@dataclass(frozen=True)
class TryAgain:
    """Started but not finished: the user retries in a moment."""

    #: The WIT ``operation-outcome`` case.
    TAG: ClassVar[str] = "try-again"

    detail: str


@dataclass(frozen=True)
class Refused:
    """Refused, or the power API failed."""

    #: The WIT ``operation-outcome`` case.
    TAG: ClassVar[str] = "refused"

    detail: str


@dataclass(frozen=True)
class Unsupported:
    """This mapper cannot perform the operation."""

    #: The WIT ``operation-outcome`` case.
    TAG: ClassVar[str] = "unsupported"


OperationOutcome = Done | TryAgain | Refused | Unsupported


class _PowerApiError(Exception):
    """A failure of the power API, with the detail for the log."""


def machine_segment(hostname: str) -> str:
    """The path segment of a machine: its host name, percent-encoded (RFC 3986: every byte other
    than a letter, a digit or ``-._~``)."""
    return quote(hostname, safe="")


def power_operation(http: Http, base: str, hostname: str, op: str) -> OperationOutcome:
    """Performs ``op`` (a WIT operation name) on the machine ``hostname`` through the power API at
    ``base``. Every failure of the API is ``Refused("power API: ...")``, never an exception: the
    user gets a clean "could not" and the session goes on."""
    machine = f"{base}/machines/{machine_segment(hostname)}"
    try:
        if op != "power-up":
            _send(http, "POST", f"{machine}/{op}")
            return Done("requested")
        state = _machine_state(http, machine)
        if state == "running":
            return Done("running")
        if state == "starting":
            return TryAgain("starting")
        _send(http, "POST", f"{machine}/power-up")
        return TryAgain("powering on")
    except _PowerApiError as error:
        return Refused(f"power API: {error}")


def _send(http: Http, method: str, url: str) -> HttpResponse:
    try:
        response = http(method, url)
    except HttpError as error:
        raise _PowerApiError(f"{method} {url}: {error}") from None
    if not 200 <= response.status <= 299:
        raise _PowerApiError(f"{method} {url} answered {response.status}")
    return response


def _machine_state(http: Http, url: str) -> str:
    response = _send(http, "GET", url)
    try:
        parsed = json.loads(response.body)
    except ValueError:
        raise _PowerApiError(f"GET {url}: the body is not JSON") from None
    state = parsed.get("state") if isinstance(parsed, dict) else None
    if state not in ("running", "starting", "stopped"):
        raise _PowerApiError(f'GET {url}: expected {{"state": "running" | "starting" | "stopped"}}')
    return state
