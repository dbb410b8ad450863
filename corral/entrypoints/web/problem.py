"""RFC 9457 problem+json rendering of every error, with the right status and no stack traces."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from corral.core import errors
from corral.entrypoints.web.keys import REQUEST_ID

__all__ = ["STATUS_OF", "problem_response", "status_for"]

STATUS_OF: list[tuple[type[errors.CorralError], int]] = [
    (errors.InvalidTransition, 409),
    (errors.Conflict, 409),
    (errors.InvalidInput, 400),
    (errors.NotFound, 404),
    (errors.Unauthenticated, 401),
    (errors.PermissionDenied, 403),
    (errors.RateLimited, 429),
    (errors.PayloadTooLarge, 413),
    (errors.Unavailable, 503),
]


def status_for(exc: errors.CorralError) -> int:
    """The HTTP status for a Corral error (500 for an unknown subclass)."""
    for cls, status in STATUS_OF:
        if isinstance(exc, cls):
            return status
    return 500


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    request_id: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if request_id:
        body["request_id"] = request_id
    if extra:
        for key, value in extra.items():
            body.setdefault(key, value)
    return web.Response(
        text=json.dumps(body, default=str),
        status=status,
        content_type="application/problem+json",
        headers=headers,
    )


def from_corral_error(exc: errors.CorralError, request: web.Request) -> web.Response:
    """Render a CorralError raised while serving ``request``."""
    status = status_for(exc)
    extra: dict[str, Any] = dict(exc.detail)
    if exc.field:
        extra["field"] = exc.field
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is None and status == 503:
        retry_after = 1  # a dependency is down: clients retry (and must not hammer)
    if retry_after is not None:
        headers["Retry-After"] = str(int(retry_after))
    return problem_response(
        status, exc.title, exc.message, instance=request.path, request_id=request.get(REQUEST_ID),
        extra=extra, headers=headers,
    )
