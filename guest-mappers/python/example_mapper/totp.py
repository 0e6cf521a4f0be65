"""TOTP (RFC 6238) one-time codes: HMAC-SHA1, base32 secrets, 30 s steps, 6 digits."""

import base64
import hashlib
import hmac
import re
import struct

#: The RFC 6238 time step, in seconds.
STEP_SECONDS = 30

_CODE = re.compile(r"[0-9]{6}")


def base32_decode(text: str) -> bytes | None:
    """Decodes a base32 secret as authenticator apps show it.

    Case, spaces and missing ``=`` padding are forgiven. Returns None when the text is not
    base32.
    """
    clean = re.sub(r"\s", "", text).rstrip("=").upper()
    if re.fullmatch(r"[A-Z2-7]*", clean) is None:
        return None
    try:
        return base64.b32decode(clean + "=" * (-len(clean) % 8))
    except ValueError:
        # Lengths 1, 3 and 6 (mod 8) cannot come from whole bytes.
        return None


def hotp(key: bytes, counter: int, digits: int = 6) -> str:
    """HOTP (RFC 4226) with HMAC-SHA1."""
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    binary = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


def totp(key: bytes, unix_seconds: float, digits: int = 6) -> str:
    """TOTP (RFC 6238) for the step that contains ``unix_seconds``."""
    return hotp(key, int(unix_seconds // STEP_SECONDS), digits)


def verify_totp(key: bytes, code: str, unix_seconds: float) -> bool:
    """Checks a 6-digit code against the previous, current and next step.

    The neighbouring steps forgive clock drift and a code typed just as it rolled over.
    Spaces in the code are ignored.
    """
    typed = re.sub(r"\s", "", code)
    if _CODE.fullmatch(typed) is None:
        return False
    step = int(unix_seconds // STEP_SECONDS)
    matched = False
    # Every window is computed, so the time taken does not reveal which one matched.
    for candidate in (step - 1, step, step + 1):
        if candidate >= 0 and hmac.compare_digest(hotp(key, candidate), typed):
            matched = True
    return matched
