"""Request context (request id, correlation envelope, access log), problem+json errors and default-deny security."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from typing import Any

from aiohttp import web

from corral.core.audit.context import bind_acting_session
from corral.core.errors import CorralError, InvalidInput, PermissionDenied, Unauthenticated, Unavailable
from corral.core.identity.access import require_account_access
from corral.entrypoints.observability import bind_context, reset_context
from corral.entrypoints.web.forwarded import client_ip
from corral.entrypoints.web.keys import (
    AGENT_SESSION_OF,
    AUTH_CHALLENGE,
    DISPATCHED_PRINCIPAL,
    PRINCIPAL,
    PROJECT_ID,
    PROJECT_LOOKUP,
    REQUEST_ID,
    TRACE,
    TRANSIENT_ERRORS,
    WEB_AUTH,
)
from corral.entrypoints.web.operation import parse_inputs
from corral.entrypoints.web.problem import from_corral_error, problem_response
from corral.entrypoints.web.routing import spec_of

__all__ = ["body_read_error", "check_request_text", "context_middleware", "error_middleware", "security_middleware"]

log = logging.getLogger("corral.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
_QUIET = frozenset({"/healthz", "/readyz"})


@web.middleware
async def context_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Assign a request id, bind the correlation envelope, log one access line per request."""
    outer = request.get(TRACE)
    if outer is not None:
        # an in-process dispatch (an MCP tool call): its outer request's id and trace, already bound in this
        # context; the inner request is a span of its own
        request_id, span_id = request[REQUEST_ID], os.urandom(8).hex()
        request[TRACE] = (outer[0], span_id)
        token = bind_context(span_id=span_id)
    else:
        # one read of the system's random source for a request id, a trace id and a span id
        fresh = os.urandom(40).hex()
        incoming = request.headers.get("X-Request-Id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else fresh[:32]
        request[REQUEST_ID] = request_id
        traceparent = request.headers.get("traceparent")
        parent = _TRACEPARENT.match(traceparent) if traceparent else None
        trace_id = parent.group(1) if parent else fresh[32:64]
        span_id = fresh[64:]
        request[TRACE] = (trace_id, span_id)
        token = bind_context(request_id=request_id, trace_id=trace_id, span_id=span_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        if not response.prepared:
            response.headers["X-Request-Id"] = request_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        ended = time.perf_counter()
        level = logging.DEBUG if request.path in _QUIET and status < 400 else logging.INFO
        if status == 503:  # a dependency is down (an outage, logged once where it starts): not a bug
            level = logging.WARNING
        if log.isEnabledFor(level):  # the line's fields (the client address, ...) only when it is written
            principal = request.get(PRINCIPAL)
            log.log(
                level,
                "%s %s %s",
                request.method,
                request.path,
                status,
                extra={
                    "http_method": request.method,
                    "http_path": request.path,
                    "http_status": status,
                    "duration_ms": round((ended - started) * 1000, 2),
                    "remote": client_ip(request),
                    "user_id": str(getattr(principal, "user_id", "")) or None,
                },
            )
        reset_context(token)


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Render every error as problem+json; log 5xx with the request id; never leak a stack trace."""
    try:
        try:
            return await handler(request)
        except web.RequestPayloadError as exc:
            raise body_read_error(request, exc) from exc
    except CorralError as exc:
        response = from_corral_error(exc, request)
        challenge = request.get(AUTH_CHALLENGE)
        if isinstance(exc, Unauthenticated) and challenge:  # the route's text, or worked out now it is sent
            response.headers["WWW-Authenticate"] = challenge if isinstance(challenge, str) else challenge(request)
        if isinstance(exc, Unavailable):
            log.warning("request failed: %s", exc.message)  # an outage, not a bug: the access line says 503
        elif response.status >= 500:
            log.error("request failed: %s", exc.message)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "www-authenticate", "retry-after"}}
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        return problem_response(
            exc.status, exc.reason, detail or exc.reason, instance=request.path,
            request_id=request.get(REQUEST_ID), headers=headers,
        )
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:
        if isinstance(exc, request.app.get(TRANSIENT_ERRORS, ())):
            # a driver error an adapter did not translate: the dependency is down, not the request wrong
            log.warning("a dependency is unavailable serving %s %s: %s", request.method, request.path,
                        type(exc).__name__)
            return problem_response(
                503, "Service unavailable", "a dependency of Corral is unavailable; retry shortly",
                instance=request.path, request_id=request.get(REQUEST_ID), headers={"Retry-After": "1"},
            )
        log.exception("unhandled error serving %s %s", request.method, request.path)
        return problem_response(
            500, "Internal server error", "an unexpected error occurred; quote the request id when reporting it",
            instance=request.path, request_id=request.get(REQUEST_ID),
        )


def body_read_error(request: web.Request, exc: BaseException) -> InvalidInput:
    """The 400 for a body aiohttp could not read: one that does not match its Content-Encoding (a plain
    body sent as gzip, a truncated deflate stream) or a malformed chunked transfer."""
    encoding = request.headers.get("Content-Encoding", "")
    cause = exc.__cause__ or exc.__context__
    if encoding and (type(cause).__name__ == "ContentEncodingError" or "decod" in str(exc).lower()
                     or "compress" in str(cause).lower()):
        return InvalidInput(f"the request body is not valid {encoding} data (Content-Encoding: {encoding})",
                            field="Content-Encoding")
    if encoding:
        return InvalidInput(f"the request body could not be decoded as Content-Encoding {encoding}",
                            field="Content-Encoding")
    return InvalidInput("the request body could not be read (malformed or truncated)", field="body")


def check_request_text(request: web.Request) -> None:
    """Path segments and query parameters never carry NUL (no store can hold it): a 400 naming the part."""
    if "\x00" in request.path or "%00" in request.raw_path.split("?", 1)[0]:
        for name, value in request.match_info.items():
            if "\x00" in value:
                raise InvalidInput(f"path parameter {name} must not contain NUL (\\u0000)", field=name)
        raise InvalidInput("the request path must not contain NUL (%00)", field="path")
    if "\x00" in request.query_string or "%00" in request.query_string.lower():
        for name, value in request.query.items():
            if "\x00" in name or "\x00" in value:
                shown = name.replace("\x00", "\\u0000")
                raise InvalidInput(f"query parameter {shown} must not contain NUL (\\u0000)", field=shown)


@web.middleware
async def security_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Default deny: authenticate and authorize per the matched route's declaration."""
    check_request_text(request)
    match = request.match_info
    if match.http_exception is not None:
        raise match.http_exception
    spec = spec_of(match.handler)
    if spec is None:
        # a route mounted outside the registry has no declared security: refuse it
        raise PermissionDenied("this route has no security declaration")
    if spec.public:
        if spec.typed:
            await parse_inputs(request, spec.params, spec.body)
        return await handler(request)
    if spec.challenge:  # a callable one is only called when a 401 is sent (error_middleware)
        request[AUTH_CHALLENGE] = spec.challenge
    auth = request.app[WEB_AUTH]
    # an internal dispatch carries the principal its outer request authenticated (see keys.DISPATCHED_PRINCIPAL)
    principal = request[DISPATCHED_PRINCIPAL] if DISPATCHED_PRINCIPAL in request else await auth.authenticate(request)
    request[PRINCIPAL] = principal
    if principal is not None and DISPATCHED_PRINCIPAL not in request:
        # (a dispatched request runs inside its outer request's context, which bound these for the same principal)
        user_id = getattr(principal, "user_id", None)
        bind_context(user_id=user_id)
        session_of = request.app.get(AGENT_SESSION_OF) if getattr(principal, "is_agent", False) else None
        # an agent session's token: the audit rows of this request name the session
        bind_acting_session(await session_of(user_id) if session_of is not None else None)
    if principal is None and not spec.anonymous:
        # before the project lookup: an anonymous caller learns nothing about which projects exist
        raise Unauthenticated("authentication required: send a bearer token, HTTP Basic with a token, or a session")
    if spec.account and principal is not None and getattr(principal, "token_project_id", None) is not None:
        require_account_access(principal, f"{request.method} {spec.path}")
    project_id = None
    if spec.project == "path":
        lookup = request.app[PROJECT_LOOKUP]
        name = match["name"]
        name = name[:-4] if name.endswith(".git") else name
        for_request = getattr(lookup, "project_id_for", None)  # RequestProjectLookup: loads the project once
        if for_request is not None:
            project_id = await for_request(request, match["owner"], name)
        else:
            project_id = await lookup.project_id(match["owner"], name)
    elif spec.project == "query" and request.query.get("project"):
        project_id = await request.app[PROJECT_LOOKUP].project_ref(request.query["project"])
    request[PROJECT_ID] = project_id
    if project_id is not None:
        bind_context(project_id=project_id)
    if principal is None and not spec.anonymous:
        raise Unauthenticated("authentication required: send a bearer token, HTTP Basic with a token, or a session")
    if spec.permission is not None:
        await auth.authorize(request, principal, spec.permission, project_id)
    if spec.typed:
        await parse_inputs(request, spec.params, spec.body)
    return await handler(request)
