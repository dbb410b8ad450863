"""The one exception tree of Corral.

Core code raises these with a message a user can act on; adapters translate
driver errors into them; the web layer renders them as problem+json and the
CLI as one line.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "CorralError",
    "InvalidInput",
    "InvalidTransition",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "Unauthenticated",
    "Unavailable",
]


class CorralError(Exception):
    """Base of every error Corral raises on purpose.

    ``field`` names the input that is wrong (for InvalidInput), ``detail``
    carries extra machine-readable context rendered into the problem document.
    """

    title = "Error"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        detail: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.detail = detail or {}


class InvalidInput(CorralError):
    """The caller sent something malformed; nothing was changed."""

    title = "Invalid input"


class NotFound(CorralError):
    """The thing named does not exist (or the caller may not know it exists)."""

    title = "Not found"


class Conflict(CorralError):
    """The request clashes with the current state (duplicate, stale version, merge conflict)."""

    title = "Conflict"


class InvalidTransition(Conflict):
    """A state machine refused the transition (e.g. merging a closed merge request)."""

    title = "Invalid state transition"


class Unauthenticated(CorralError):
    """No valid credentials were presented."""

    title = "Authentication required"


class PermissionDenied(CorralError):
    """The caller is known but lacks the permission."""

    title = "Permission denied"


class RateLimited(CorralError):
    """Too many attempts; ``retry_after`` seconds until the next may succeed."""

    title = "Too many requests"

    def __init__(self, message: str, *, retry_after: int = 1, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class PayloadTooLarge(CorralError):
    """The request body exceeds a configured limit."""

    title = "Payload too large"


class Unavailable(CorralError):
    """A dependency is down or overloaded; retry later."""

    title = "Service unavailable"

    def __init__(self, message: str, *, retry_after: int | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after
