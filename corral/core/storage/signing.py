"""Signed, expiring object URLs for stores that are served by Corral itself (local filesystem, memory).

A URL has the form ``{base_url}/api/v1/objects/{key}?expires={unix_seconds}&signature={hex}``:
the signature is HMAC-SHA256 over ``METHOD\\nkey\\nexpires`` with the store's signing key.
The web route serving that path calls ``verify`` with the request's method, the
(URL-decoded) key and the two query parameters.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import quote

import attrs

from corral.core.clock import Clock
from corral.core.errors import InvalidInput
from corral.core.storage.keys import validate_key

__all__ = ["MAX_EXPIRES_IN", "OBJECT_ROUTE", "SIGNED_METHODS", "ObjectUrlSigner", "check_signed_url_request"]

OBJECT_ROUTE = "/api/v1/objects/"
SIGNED_METHODS = frozenset({"GET", "HEAD", "PUT"})
MAX_EXPIRES_IN = 7 * 24 * 3600  # the most S3 allows too


def check_signed_url_request(method: str, expires_in: int) -> str:
    """Validate the arguments of ``ObjectStore.signed_url``; returns the upper-cased method."""
    upper = method.upper() if isinstance(method, str) else ""
    if upper not in SIGNED_METHODS:
        raise InvalidInput(f"method must be one of {', '.join(sorted(SIGNED_METHODS))}", field="method")
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int)
        or not 1 <= expires_in <= MAX_EXPIRES_IN
    ):
        raise InvalidInput(f"expires_in must be 1..{MAX_EXPIRES_IN} seconds", field="expires_in")
    return upper


def _strip_slash(url: str) -> str:
    return str(url).rstrip("/")


@attrs.define
class ObjectUrlSigner:
    """Makes and checks signed object URLs (see the module docstring for the form)."""

    signing_key: bytes = attrs.field(repr=False)
    base_url: str = attrs.field(converter=_strip_slash)
    clock: Clock | None = None

    def __attrs_post_init__(self) -> None:
        if len(self.signing_key) < 16:
            raise InvalidInput("the object URL signing key must be at least 16 bytes", field="signing_key")

    def _now(self) -> int:
        now = self.clock.now() if self.clock is not None else datetime.now(UTC)
        return int(now.timestamp())

    def _signature(self, key: str, method: str, expires: int) -> str:
        message = f"{method}\n{key}\n{expires}".encode()
        return hmac.new(self.signing_key, message, hashlib.sha256).hexdigest()

    def sign(self, key: str, *, method: str = "GET", expires_in: int = 3600) -> str:
        """A URL granting ``method`` on ``key`` for ``expires_in`` seconds."""
        validate_key(key)
        method = check_signed_url_request(method, expires_in)
        expires = self._now() + expires_in
        signature = self._signature(key, method, expires)
        return f"{self.base_url}{OBJECT_ROUTE}{quote(key, safe='/')}?expires={expires}&signature={signature}"

    def verify(self, key: str, method: str, expires: str | int, signature: str) -> bool:
        """Whether a request for ``method`` on ``key`` carries a valid, unexpired signature.

        ``HEAD`` is allowed by a ``GET`` signature. Never raises on bad input: it is just not valid.
        """
        try:
            validate_key(key)
            expires_at = int(expires)
        except (InvalidInput, ValueError, TypeError):
            return False
        if not isinstance(signature, str) or expires_at < self._now():
            return False
        method = method.upper() if isinstance(method, str) else ""
        candidates = ["GET", "HEAD"] if method == "HEAD" else [method]
        return any(
            hmac.compare_digest(self._signature(key, candidate, expires_at), signature)
            for candidate in candidates
        )
