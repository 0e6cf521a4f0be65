"""A host for tests: the services the broker offers, implemented with the standard library, a
dict for the store, a TOTP check that knows one good code, and a scripted power API."""

import hashlib
import hmac
import re
from collections.abc import Callable
from pathlib import Path

from example_mapper.policy import Host, StoreError
from example_mapper.power import HttpResponse

#: The example settings, read from the file the README points operators at.
EXAMPLE_SETTINGS = (Path(__file__).parent.parent / "example.settings.json").read_text()

#: alice's authenticator secret in the example settings.
ALICE_SECRET = "JBSWY3DPEHPK3PXP"

#: The one code the test host's ``verify_totp`` accepts for ``ALICE_SECRET`` (once).
GOOD_CODE = "492039"

# The prefix of the test host's ``hash_password`` results: not a format the real host knows, so
# a test cannot pass by accident with a real hash.
_TEST_HASH_PREFIX = "$test-sha256$"


def verify_test_password(password: str, stored: str) -> bool:
    """The interstate_love_song hash check the broker implements: PBKDF2-HMAC-SHA256, salt
    ``IGNORED``, 100000 iterations, lowercase hex. The test host's own ``hash_password`` format
    is also accepted; anything else is refused, as on the host."""
    if stored.startswith(_TEST_HASH_PREFIX):
        return hmac.compare_digest(hash_test_password(password), stored)
    if re.fullmatch(r"[0-9a-f]{64}", stored) is None:
        return False
    derived = hashlib.pbkdf2_hmac("sha256", password.encode(), b"IGNORED", 100000)
    return hmac.compare_digest(derived.hex(), stored)


def hash_test_password(password: str) -> str:
    """The test host's ``hash_password``."""
    return _TEST_HASH_PREFIX + hashlib.sha256(password.encode()).hexdigest()


class RecordingHost:
    """A host which records every log line, keeps the store in ``values``, and fails every store
    call with ``store_error`` when it is set."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.values: dict[str, bytes] = {}
        #: Every set: (key, value as text, ttl_ms).
        self.writes: list[tuple[str, str, int | None]] = []
        #: A description to fail every store call with.
        self.store_error: str | None = None
        self.spent_codes: set[str] = set()
        self.totp_calls: list[tuple[str, str]] = []
        #: The power API's answers by "METHOD url"; a callable answer may raise.
        self.routes: dict[str, HttpResponse | Callable[[], HttpResponse]] = {}
        self.requests: list[str] = []
        self.verify_calls = 0

    def host(self) -> Host:
        return Host(
            log=lambda level, message: self.lines.append(f"{level} {message}"),
            verify_password=self._verify_password,
            hash_password=hash_test_password,
            verify_totp=self._verify_totp,
            store_get=self._store_get,
            store_set=self._store_set,
            http=self._http,
        )

    def _verify_password(self, password: str, stored: str) -> bool:
        self.verify_calls += 1
        return verify_test_password(password, stored)

    def _verify_totp(self, secret: str, code: str) -> str:
        self.totp_calls.append((secret, code))
        if secret != ALICE_SECRET or code != GOOD_CODE:
            return "rejected"
        if code in self.spent_codes:
            return "replayed"
        self.spent_codes.add(code)
        return "accepted"

    def _store_get(self, key: str) -> bytes | None:
        if self.store_error is not None:
            raise StoreError(self.store_error)
        return self.values.get(key)

    def _store_set(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        if self.store_error is not None:
            raise StoreError(self.store_error)
        self.values[key] = value
        self.writes.append((key, value.decode(), ttl_ms))

    def _http(self, method: str, url: str) -> HttpResponse:
        self.requests.append(f"{method} {url}")
        answer = self.routes.get(f"{method} {url}", HttpResponse(404, ""))
        return answer() if callable(answer) else answer
