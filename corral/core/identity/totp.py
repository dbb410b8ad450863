"""TOTP (RFC 6238 over RFC 4226 HOTP): HMAC-SHA1, 6 digits, 30-second steps, ±1 step of clock skew."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote

__all__ = ["DIGITS", "STEP_SECONDS", "code_at", "matching_step", "new_secret", "provisioning_uri"]

STEP_SECONDS = 30
DIGITS = 6


def new_secret() -> str:
    """A random 160-bit secret, base32 without padding (what authenticator apps expect)."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    return base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))


def hotp(secret: str, counter: int) -> str:
    """RFC 4226 HOTP value for ``counter``."""
    digest = hmac.new(_key(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def code_at(secret: str, unix_time: float) -> str:
    """The TOTP code at ``unix_time``."""
    return hotp(secret, int(unix_time) // STEP_SECONDS)


def matching_step(secret: str, code: str, unix_time: float, *, after_step: int = 0) -> int | None:
    """The time step (within ±1 of now) whose code equals ``code`` and that is later than ``after_step``
    (so a code is never accepted twice), or None."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    now = int(unix_time) // STEP_SECONDS
    for step in (now, now - 1, now + 1):
        if step > after_step and hmac.compare_digest(hotp(secret, step), code):
            return step
    return None


def provisioning_uri(secret: str, account: str, issuer: str = "Corral") -> str:
    """The otpauth:// URI an authenticator app scans (as a QR code) or imports."""
    label = quote(f"{issuer}:{account}")
    return (
        f"otpauth://totp/{label}?secret={secret}&issuer={quote(issuer)}"
        f"&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}"
    )
