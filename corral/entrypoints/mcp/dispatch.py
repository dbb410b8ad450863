"""Calling an operation for a tool: an internal request through the application's own middleware chain.

A tool call is not a second implementation of anything. ``Caller.call`` builds an aiohttp request for the
operation's route (its path, query string and JSON body, carrying the MCP caller's ``Authorization`` header,
forwarding headers, request id and trace context) and hands it to the application exactly as the server does
with a request from the network (``Application._handle``: router, then context, error, response-check and
security middlewares, then the handler). So the project-restricted token rules, the RBAC check, input parsing,
audit, access logging and problem+json rendering are the route's own; authentication is the outer request's (its
principal is carried under a request key only in-process code can set, so the token is not checked twice). The
answer is captured in memory (a handler that streams writes into a buffer, never onto the MCP connection).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import attrs
from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from corral.entrypoints.web.keys import DISPATCHED_PRINCIPAL, PRINCIPAL, REQUEST_ID, TRACE
from corral.entrypoints.web.routing import RouteSpec

__all__ = ["Answer", "Caller", "ToolInputError", "build_call", "media_type"]

_FORWARDED = ("Authorization", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded",
              "X-Real-IP", "User-Agent")
_MAX_REDIRECTS = 3
_NO_BODY = ((hdrs.CONTENT_LENGTH, "0"),)


class ToolInputError(Exception):
    """Arguments that cannot even be put into a request (unknown argument, missing path parameter)."""


@attrs.frozen
class Answer:
    """What the route answered."""

    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = attrs.field(factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class _Capture(AbstractStreamWriter):
    """The payload writer of an internal request: a streamed answer is collected here."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.status_line = ""

    async def write(self, chunk: bytes | bytearray | memoryview) -> None:
        self.chunks.append(bytes(chunk))

    async def write_eof(self, chunk: bytes = b"") -> None:
        if chunk:
            self.chunks.append(bytes(chunk))

    async def drain(self) -> None:
        return None

    def enable_compression(self, encoding: str = "deflate", strategy: int | None = None) -> None:
        return None

    def enable_chunking(self) -> None:
        return None

    async def write_headers(self, status_line: str, headers: CIMultiDict[str]) -> None:
        self.status_line = status_line


@attrs.frozen
class _Shape:
    """What ``build_call`` needs to know about an operation (worked out once per route)."""

    path_names: tuple[str, ...]
    # the path as (literal text, parameter name, characters kept unquoted) pieces, then the text after the last
    pieces: tuple[tuple[str, str, str], ...]
    tail: str
    query_names: tuple[str, ...]
    allowed: frozenset[str]
    has_body: bool
    text_body: bool


_SHAPES: dict[int, tuple[RouteSpec, _Shape]] = {}  # by id(spec); the spec is kept, so its id is not reused


def _shape(spec: RouteSpec) -> _Shape:
    known = _SHAPES.get(id(spec))
    if known is not None and known[0] is spec:
        return known[1]
    from corral.entrypoints.mcp.tools import PATH_PARAM, text_body

    pieces: list[tuple[str, str, str]] = []
    at = 0
    for match in PATH_PARAM.finditer(spec.path):  # as tools.route_url: a regex parameter ({path:.*}) keeps '/'
        pieces.append((spec.path[at:match.start()], match.group(1), "/" if match.group(2) else ""))
        at = match.end()
    path_names = tuple(name for _, name, _ in pieces)
    query_names = tuple(_query_names(spec))
    has_body = spec.body is not None or spec.request_body is not None
    allowed = frozenset(path_names) | frozenset(query_names) | ({"body"} if has_body else frozenset())
    shape = _Shape(path_names, tuple(pieces), spec.path[at:], query_names, allowed, has_body, text_body(spec))
    _SHAPES[id(spec)] = (spec, shape)
    return shape


def build_call(spec: RouteSpec, arguments: dict[str, Any]) -> tuple[str, bytes | None, str]:
    """The relative URL, body and body type of a call of ``spec`` with a tool's ``arguments``.

    Path parameters and query parameters are the arguments of the same names; ``body`` is the JSON body.
    Values are not checked here beyond their JSON kind: the route's own parsing answers the 400 naming
    the parameter, as it does for HTTP clients."""
    shape = _shape(spec)
    allowed = shape.allowed
    if not allowed.issuperset(arguments):
        unknown = sorted(set(arguments) - allowed)
        takes = ", ".join(sorted(allowed)) or "none"
        raise ToolInputError(f"unknown argument {unknown[0]!r}; this tool takes: {takes}")
    parts: list[str] = []
    for literal, name, safe in shape.pieces:
        value = arguments.get(name)
        if value is None or value == "":
            raise ToolInputError(f"argument {name!r} is required")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ToolInputError(f"argument {name!r} must be a string")
        parts += (literal, quote(str(value), safe=safe))
    parts.append(shape.tail)
    url = "".join(parts)
    query: list[tuple[str, str]] = []
    for name in shape.query_names:
        value = arguments.get(name)
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict | list):
                raise ToolInputError(f"argument {name!r} must be a {'list of ' if isinstance(value, list) else ''}"
                                     "string, number or boolean")
            query.append((name, _query_text(item)))
    if query:
        url += "?" + urlencode(query)
    body = None
    if shape.text_body:
        text = arguments.get("body")
        if text is not None and not isinstance(text, str):
            raise ToolInputError(f"argument 'body' must be a string ({spec.request_content_types[0]} text)")
        return url, None if text is None else text.encode(), spec.request_content_types[0]
    if shape.has_body and "body" in arguments:
        body = json.dumps(arguments["body"]).encode()
    return url, body, "application/json"


def _query_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _query_names(spec: RouteSpec) -> list[str]:
    from corral.entrypoints.web.operation import query_fields

    if not spec.typed:
        return [name for name, _t, _d in spec.query]
    if spec.params is None:
        return []
    return [p.name for p in query_fields(spec.params)]


@attrs.define
class Caller:
    """Makes internal requests on behalf of the MCP request ``outer`` (same app, same credentials)."""

    outer: web.Request
    _forwarded: tuple[tuple[tuple[str, str], ...], tuple[tuple[bytes, bytes], ...]] | None = attrs.field(
        default=None, init=False)

    async def call(self, spec: RouteSpec, arguments: dict[str, Any]) -> Answer:
        """Call ``spec`` with a tool's arguments (ToolInputError when they cannot form a request)."""
        url, body, body_type = build_call(spec, arguments)
        return await self.request(spec.method, url, body, body_type)

    async def request(self, method: str, url: str, body: bytes | None = None,
                      body_type: str = "application/json") -> Answer:
        """One internal request (following a project's rename redirect, as an HTTP client would)."""
        for _ in range(_MAX_REDIRECTS + 1):
            answer = await self._once(method, url, body, body_type)
            location = answer.headers.get("Location", "")
            if answer.status in (301, 302, 307, 308) and location.startswith("/") and not location.startswith("//"):
                url = location
                continue
            return answer
        return answer

    def _headers(self) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[bytes, bytes], ...]]:
        """The headers every internal request of this outer request carries, and their raw form (worked out
        once)."""
        if self._forwarded is None:
            outer = self.outer
            sent = outer.headers.get
            pairs = [(name, value) for name in _FORWARDED if (value := sent(name)) is not None]
            pairs += [(hdrs.HOST, outer.host), (hdrs.ACCEPT, "application/json")]
            if outer.get(REQUEST_ID):
                pairs.append(("X-Request-Id", outer[REQUEST_ID]))
            trace = outer.get(TRACE)
            if trace:
                pairs.append(("traceparent", f"00-{trace[0]}-{trace[1]}-01"))
            self._forwarded = (tuple(pairs), tuple((k.encode(), v.encode()) for k, v in pairs))
        return self._forwarded

    async def _once(self, method: str, url: str, body: bytes | None, body_type: str) -> Answer:
        outer = self.outer
        forwarded, raw_forwarded = self._headers()
        payload: StreamReader = EMPTY_PAYLOAD
        if body is not None:
            length = str(len(body))
            extra: tuple[tuple[str, str], ...] = ((hdrs.CONTENT_TYPE, body_type), (hdrs.CONTENT_LENGTH, length))
            payload = StreamReader(outer.protocol, limit=max(len(body), 2**16), loop=outer._loop)
            payload.feed_data(body)
            payload.feed_eof()
        else:
            extra = _NO_BODY
        headers = CIMultiDict(forwarded)
        headers.extend(extra)
        # encoded: build_call quoted the path and query (as the HTTP parser takes a request line as it is)
        message = outer._message._replace(
            method=method, path=url, url=URL(url, encoded=True), headers=CIMultiDictProxy(headers),
            raw_headers=raw_forwarded + tuple((k.encode(), v.encode()) for k, v in extra),
            should_close=False, compression=None, upgrade=False, chunked=False,
        )
        writer = _Capture()
        # the outer request authenticated these same credentials: the route's security uses that principal (its
        # authorisation, project rules and audit still run); without one the inner request authenticates itself
        state: dict[Any, Any] = {DISPATCHED_PRINCIPAL: outer[PRINCIPAL]} if outer.get(PRINCIPAL) is not None else {}
        if REQUEST_ID in outer and TRACE in outer:
            # the outer request's id and trace (the context middleware makes the inner request a span of its trace
            # and does not bind again what the outer request bound in this same context)
            state[REQUEST_ID], state[TRACE] = outer[REQUEST_ID], outer[TRACE]
        inner = web.Request(message, payload, outer.protocol, writer, outer.task, outer._loop,
                            client_max_size=outer.app._client_max_size, state=state)
        try:
            response = await outer.app._handle(inner)
        except web.HTTPException as exc:  # a redirect (the error middleware renders 4xx/5xx itself)
            return Answer(exc.status, media_type(exc.headers), exc.body if isinstance(exc.body, bytes) else b"",
                          dict(exc.headers))
        if response.prepared:
            data = b"".join(writer.chunks)
        elif isinstance(response, web.Response):
            raw = response.body
            data = raw if isinstance(raw, bytes) else (response.text or "").encode()
        else:
            data = b""
        return Answer(response.status, media_type(response.headers), data, dict(response.headers))


def media_type(headers: Mapping[str, str]) -> str:
    """The media type of a Content-Type header, as aiohttp's ``content_type`` says it (lower case, without
    parameters; application/octet-stream when there is none) without its full header parser."""
    value = headers.get(hdrs.CONTENT_TYPE)
    if value is None:
        return "application/octet-stream"
    return value.partition(";")[0].strip().lower() or "application/octet-stream"
