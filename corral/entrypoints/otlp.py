"""The OTLP/HTTP receiver: POST /v1/logs, /v1/traces, /v1/metrics (protobuf or JSON, gzip).

Mounted on the main application and, when ``CORRAL_OTLP_PORT`` is set, on a dedicated
listener. Errors follow the OTLP specification, not problem+json: the body is a
google.rpc.Status in the request's content type; 400 for malformed data (not retried),
413 over the size limit, 429/503 with Retry-After under overload (retried by clients).
The 200 is sent only after the batch holding the request's records is committed.
"""

from __future__ import annotations

import hashlib
import uuid

from aiohttp import web

from corral.adapters.otlp.codec import encode_response, encode_status
from corral.core.errors import (
    CorralError,
    InvalidInput,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from corral.core.observe.model import Caller, TelemetryBatch
from corral.entrypoints.observe_runtime import ObserveRuntime
from corral.entrypoints.web.keys import PLATFORM, PRINCIPAL, WEB_AUTH
from corral.entrypoints.web.routing import RouteTable

__all__ = ["routes"]

routes = RouteTable(tag="otlp")
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# google.rpc.Code values
_CODES = {400: 3, 401: 16, 403: 7, 413: 11, 415: 3, 429: 8, 503: 14, 500: 13}


def _status_response(status: int, message: str, as_json: bool, retry_after: int | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return web.Response(
        status=status,
        body=encode_status(_CODES.get(status, 2), message, as_json),
        content_type=JSON if as_json else PROTOBUF,
        headers=headers,
    )


class BodyBudget:
    """Bounds the request bytes held in memory by all OTLP requests together (bodies being read
    or decoded): beyond it a request is refused with 429 before its body is read."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, n: int) -> None:
        if self.used and self.used + n > self.limit:
            raise RateLimited("too many telemetry bytes in flight; retry later", retry_after=1)
        self.used += n

    def give(self, n: int) -> None:
        self.used -= n


async def _read_limited(request: web.Request, limit: int, budget: BodyBudget) -> tuple[bytes, int]:
    """The body (at most ``limit`` bytes after decompression) and the bytes taken from ``budget``."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request body is over the {limit} byte limit")
    taken = request.content_length or 0
    budget.take(taken)
    chunks = bytearray()
    try:
        async for chunk in request.content.iter_chunked(256 * 1024):
            chunks += chunk
            if len(chunks) > limit:
                raise PayloadTooLarge(f"request body is over the {limit} byte limit (after decompression)")
            if len(chunks) > taken:  # gzip or chunked: account for what is really held
                budget.take(len(chunks) - taken)
                taken = len(chunks)
    except web.RequestPayloadError as exc:  # e.g. a plain body sent as Content-Encoding: gzip
        budget.give(taken)
        from corral.entrypoints.web.middleware import body_read_error

        raise body_read_error(request, exc) from exc
    except BaseException:
        budget.give(taken)
        raise
    return bytes(chunks), taken


def _projects(batch: TelemetryBatch) -> set[uuid.UUID | None]:
    found: set[uuid.UUID | None] = {r[4] for r in batch.logs}
    found.update(r[5] for r in batch.spans)
    found.update(r[3] for r in batch.points)
    found.update(batch.project_ids)
    return found


async def _receive(request: web.Request, signal: str) -> web.StreamResponse:
    ctype = request.content_type
    as_json = ctype == JSON
    if ctype not in (PROTOBUF, JSON):
        return _status_response(415, f"Content-Type must be {PROTOBUF} or {JSON}", as_json)
    rt: ObserveRuntime = request.app[PLATFORM].resolve(ObserveRuntime)
    principal = request.get(PRINCIPAL)
    caller = Caller(
        user_id=getattr(principal, "user_id", None), project_id=getattr(principal, "token_project_id", None)
    )
    if rt.pipeline.full:
        return _status_response(
            429, "telemetry ingest queue is full; retry later", as_json, retry_after=rt.pipeline.retry_after_seconds
        )
    budget = _budget(rt)
    taken = 0
    try:
        body, taken = await _read_limited(request, rt.settings.otlp_max_body_bytes, budget)
        try:
            recent = rt.recent if rt.settings.otlp_dedupe_seconds > 0 else None
            fingerprint = _fingerprint(signal, ctype, caller, body) if recent is not None else ""
            if recent is not None and await recent.seen(fingerprint):
                # a retry of a request already stored (its answer was lost): acknowledge, store nothing
                return web.Response(
                    body=encode_response(signal, 0, "", as_json), content_type=JSON if as_json else PROTOBUF
                )
            batch = await rt.decoder.decode(signal, body, ctype, caller, tail=await rt.tail.listening())
            del body
        finally:
            budget.give(taken)
        auth = request.app[WEB_AUTH]
        for project_id in _projects(batch):
            await auth.authorize(request, principal, "observe:write", project_id)
        await rt.pipeline.submit(batch)
        if recent is not None:
            await recent.remember(fingerprint, rt.settings.otlp_dedupe_seconds)
    except InvalidInput as exc:
        return _status_response(400, exc.message, as_json)
    except PayloadTooLarge as exc:
        return _status_response(413, exc.message, as_json)
    except RateLimited as exc:
        return _status_response(429, exc.message, as_json, retry_after=exc.retry_after)
    except Unavailable as exc:
        return _status_response(503, exc.message, as_json, retry_after=exc.retry_after or 1)
    except (PermissionDenied, Unauthenticated) as exc:
        return _status_response(403 if isinstance(exc, PermissionDenied) else 401, exc.message, as_json)
    except CorralError as exc:
        return _status_response(400, exc.message, as_json)
    return web.Response(
        body=encode_response(signal, batch.rejected, batch.error_message, as_json),
        content_type=JSON if as_json else PROTOBUF,
    )


def _fingerprint(signal: str, ctype: str, caller: Caller, body: bytes) -> str:
    """Who sent which bytes (after gzip) to which signal: equal only for a retried request."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{signal}\0{ctype}\0{caller.user_id}\0{caller.project_id}\0".encode())
    h.update(body)
    return h.hexdigest()


def _budget(rt: ObserveRuntime) -> BodyBudget:
    if rt.body_budget is None:
        # 4 maximal bodies at once, at least 64 MiB: the queue bounds records, this bounds raw bytes
        rt.body_budget = BodyBudget(max(4 * rt.settings.otlp_max_body_bytes, 64 * 1024 * 1024))
    budget: BodyBudget = rt.body_budget
    return budget


_DOC = (
    "OTLP/HTTP export (protobuf or JSON, optionally gzip). 200 only once stored; partial_success names "
    "refused records; errors are google.rpc.Status bodies. Needs observe:write on the records' project "
    "(resource attribute corral.project = owner/name or corral.project_id; default: the token's project)."
)


_REJECTED = {"type": ["string", "integer"], "pattern": "^[0-9]+$",
             "description": "records refused (an int64: a decimal string in OTLP/JSON)"}
_PARTIAL = {
    "type": "object", "additionalProperties": False,
    "properties": {"rejectedLogRecords": _REJECTED, "rejectedSpans": _REJECTED, "rejectedDataPoints": _REJECTED,
                   "errorMessage": {"type": "string"}},
}
# Export{Logs,Trace,Metrics}ServiceResponse in OTLP/JSON; a protobuf request is answered in protobuf.
_ANSWER = {"type": "object", "additionalProperties": False, "properties": {"partialSuccess": _PARTIAL},
           "description": "empty when every record was stored; partialSuccess names the refused ones"}


def _request(signal: str) -> dict[str, object]:
    return {"type": "object", "description": f"an OTLP Export{signal}ServiceRequest: protobuf, or OTLP/JSON "
                                             "(Content-Encoding: gzip accepted)"}


_OTLP = {"params": None, "request_content_types": (PROTOBUF, JSON), "response": _ANSWER, "description": _DOC,
         "account": False}


@routes.post("/v1/logs", summary="OTLP logs export", request_body=_request("Logs"), **_OTLP)
async def otlp_logs(request: web.Request) -> web.StreamResponse:
    return await _receive(request, "logs")


@routes.post("/v1/traces", summary="OTLP traces export", request_body=_request("Trace"), **_OTLP)
async def otlp_traces(request: web.Request) -> web.StreamResponse:
    return await _receive(request, "traces")


@routes.post("/v1/metrics", summary="OTLP metrics export", request_body=_request("Metrics"), **_OTLP)
async def otlp_metrics(request: web.Request) -> web.StreamResponse:
    return await _receive(request, "metrics")
