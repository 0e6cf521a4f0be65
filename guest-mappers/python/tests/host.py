"""A host for tests: the services the broker offers, implemented with the standard library."""

import hashlib
import hmac
import re
from pathlib import Path

from example_mapper.policy import Host

#: The example settings, read from the file the README points operators at.
EXAMPLE_SETTINGS = (Path(__file__).parent.parent / "example.settings.json").read_text()


def verify_ils_password(password: str, stored: str) -> bool:
    """The interstate_love_song hash check the broker implements: PBKDF2-HMAC-SHA256, salt
    ``IGNORED``, 100000 iterations, lowercase hex. Any other format is refused, as on the host."""
    if re.fullmatch(r"[0-9a-f]{64}", stored) is None:
        return False
    derived = hashlib.pbkdf2_hmac("sha256", password.encode(), b"IGNORED", 100000)
    return hmac.compare_digest(derived.hex(), stored)


class RecordingHost:
    """A host whose clock is ``now`` and which records every log line."""

    def __init__(self, now: float = 1_700_000_000) -> None:
        self.now = now
        self.lines: list[str] = []

    def host(self) -> Host:
        return Host(
            log=lambda level, message: self.lines.append(f"{level} {message}"),
            verify_password=verify_ils_password,
            now=lambda: self.now,
        )
