"""Random secrets for tokens, session cookies, CSRF and recovery codes; only their SHA-256 is stored.

SHA-256 (not argon2) is right here: these are 190+ bits of randomness, so a
fast hash cannot be brute-forced, and it keeps authentication per request cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

__all__ = ["TOKEN_PREFIX", "digest", "matches", "new_recovery_code", "new_secret", "new_token_secret"]

TOKEN_PREFIX = "crl_"
_ALPHABET = string.ascii_letters + string.digits


def new_token_secret() -> str:
    """An API token: ``crl_`` + 40 base62 characters (~238 bits), recognisable by secret scanners."""
    return TOKEN_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(40))


def new_secret() -> str:
    """A session cookie value or CSRF token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def new_recovery_code() -> str:
    """A one-time TOTP recovery code like ``7k3q-9xw2-m4tp`` (60 bits)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def digest(secret: str) -> str:
    """Hex SHA-256 of a secret: what is stored and looked up."""
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    """Constant-time comparison of a presented secret with a stored digest."""
    return hmac.compare_digest(digest(secret), stored_digest)
