"""The MCP server at ``/mcp``: JSON-RPC over Streamable HTTP (revisions 2025-03-26, 2025-06-18, 2025-11-25).

- ``POST /mcp``: one JSON-RPC message (a batch only in 2025-03-26 sessions, which the revision requires);
  requests are answered with ``application/json`` (no call streams, so no SSE), notifications and responses
  with 202. ``initialize`` answers the client's revision when supported, else the newest, and an
  ``Mcp-Session-Id`` (see ``sessions``); every later request must carry it (400 without, 404 when unknown,
  expired, ended or opened by another token) and may carry ``MCP-Protocol-Version`` (400 when unsupported).
- ``GET /mcp`` → 405 (no server-initiated stream); ``DELETE /mcp`` ends the session (204).
- Every request needs ``Authorization: Bearer <API token>``: 401 with ``WWW-Authenticate: Bearer
  resource_metadata="<base>/.well-known/oauth-protected-resource"`` otherwise. A browser ``Origin`` that is
  not Corral's own is refused with 403 (DNS rebinding).
- Methods: ``initialize``, ``ping``, ``tools/list`` (paginated: ``cursor`` / ``nextCursor``), ``tools/call``.

The route declares ``account=False``: the endpoint itself touches nothing; each tool call runs the security
declaration of its own route (``dispatch``).
"""

from __future__ import annotations

import json
import logging
import weakref
from typing import Any

import attrs
from aiohttp import web

from corral import __version__
from corral.core.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from corral.core.pagination import decode_cursor, encode_cursor
from corral.core.safetext import loads_json
from corral.entrypoints.mcp.curated import CURATED, Outcome, ToolContext, problem_text
from corral.entrypoints.mcp.dispatch import Caller, ToolInputError, media_type
from corral.entrypoints.mcp.sessions import EndedSessions, McpSession, VerifiedIds, new_session_id, open_session
from corral.entrypoints.mcp.tools import Tool, build_tools
from corral.entrypoints.web.forwarded import is_secure
from corral.entrypoints.web.identity_auth import is_same_origin
from corral.entrypoints.web.jsonio import json_response
from corral.entrypoints.web.keys import PLATFORM, PRINCIPAL, ROUTE_SPECS, WEB_AUTH
from corral.entrypoints.web.routing import RouteSpec, RouteTable

__all__ = ["LATEST_VERSION", "PAGE_SIZE", "SUPPORTED_VERSIONS", "routes", "tools_of"]

log = logging.getLogger("corral.mcp")

SUPPORTED_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")  # newest first
LATEST_VERSION = SUPPORTED_VERSIONS[0]
PAGE_SIZE = 40  # tools per tools/list page
MAX_BODY_BYTES = 4 * 1024 * 1024
METADATA_PATH = "/.well-known/oauth-protected-resource"

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32601, -32602, -32603

routes = RouteTable(tag="mcp")


def base_url(request: web.Request) -> str:
    """Corral's public base URL: CORRAL_BASE_URL, else the scheme and Host this request was made to."""
    settings = getattr(request.app[PLATFORM], "settings", None)
    configured = getattr(settings, "base_url", None)
    if configured:
        return str(configured).rstrip("/")
    return f"{'https' if is_secure(request) else 'http'}://{request.host}"


def bearer_challenge(request: web.Request) -> str:
    return f'Bearer resource_metadata="{base_url(request)}{METADATA_PATH}"'


# --- per-application state -------------------------------------------------------------------------------------
@attrs.define
class _State:
    tools: list[Tool]
    by_name: dict[str, Tool]
    specs: dict[str, RouteSpec]
    ended: EndedSessions
    verified: VerifiedIds = attrs.field(factory=VerifiedIds)


_STATES: weakref.WeakKeyDictionary[web.Application, _State] = weakref.WeakKeyDictionary()


def tools_of(app: web.Application) -> list[Tool]:
    """Every tool the application offers (before filtering by what a caller may do)."""
    return _state(app).tools


def _state(app: web.Application) -> _State:
    state = _STATES.get(app)
    if state is None:
        specs: list[RouteSpec] = app[ROUTE_SPECS]
        tools = build_tools(specs, CURATED)
        valkey = None
        platform = app[PLATFORM]
        try:
            valkey = platform.resolve("valkey")
        except Exception:  # punq: nothing registered (memory profile, tests)
            valkey = None
        state = _State(tools, {t.name: t for t in tools}, {s.operation_id: s for s in specs}, EndedSessions(valkey))
        _STATES[app] = state
    return state


# --- JSON-RPC ----------------------------------------------------------------------------------------------------
class _RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


def _error(msg_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": msg_id, "error": error}


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@attrs.frozen
class _Raw:
    """A tool result whose JSON is the route's answer bytes: structured content and text made without parsing it."""

    body: bytes  # a JSON object (checked: starts with '{') as the route rendered it
    wrapped: bool  # the tool's structured content is {"result": answer}


def _rpc_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    result = payload.get("result") if isinstance(payload, dict) else None
    if not isinstance(result, _Raw):
        return web.Response(text=_encode(payload), status=status, content_type="application/json", headers=headers)
    assert set(payload) == {"jsonrpc", "id", "result"}, "a raw result is the whole answer to one request"
    # the route's JSON spliced in as it is: once as the structured content, once as the text (a JSON string)
    answer = result.body
    text = _encode(answer.decode()).encode()
    body = b"".join((
        b'{"jsonrpc":"2.0","id":', _encode(payload["id"]).encode(), b',"result":{"content":[{"type":"text","text":',
        text, b'}],"isError":false,"structuredContent":',
        *((b'{"result":', answer, b"}") if result.wrapped else (answer,)), b"}}",
    ))
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def _is_request(msg: Any) -> bool:
    return isinstance(msg, dict) and "method" in msg and "id" in msg


def _valid_id(msg_id: Any) -> bool:
    return isinstance(msg_id, str | int) and not isinstance(msg_id, bool)


# --- the guards every method shares ------------------------------------------------------------------------------
def _guard(request: web.Request) -> Any:
    """The bearer-token principal of the request; 403 for a foreign browser Origin, 401 without a bearer token."""
    if not is_same_origin(request, getattr(getattr(request.app[PLATFORM], "settings", None), "base_url", None)):
        raise PermissionDenied(f"Origin {request.headers.get('Origin')!r} is not this server's: MCP requests from "
                               "other sites are refused (DNS rebinding protection)")
    principal = request.get(PRINCIPAL)
    scheme = request.headers.get("Authorization", "").partition(" ")[0].lower()
    if principal is None or scheme != "bearer" or getattr(principal, "token_id", None) is None:
        raise Unauthenticated("MCP needs an API token: send Authorization: Bearer <token>")
    return principal


async def _session(request: web.Request, principal: Any) -> McpSession:
    session_id = request.headers.get("Mcp-Session-Id")
    if not session_id:
        raise InvalidInput("Mcp-Session-Id header required: send initialize first", field="Mcp-Session-Id")
    state = _state(request.app)
    session = open_session(session_id, principal.token_id, state.verified)
    if session is None or await state.ended.ended(session):
        raise NotFound("unknown, expired or ended MCP session: send initialize again")
    return session


def _version_header(request: web.Request, session: McpSession) -> str:
    header = request.headers.get("MCP-Protocol-Version")
    if header is None:
        return session.version
    if header not in SUPPORTED_VERSIONS:
        raise InvalidInput(f"unsupported MCP-Protocol-Version {header!r}; supported: {', '.join(SUPPORTED_VERSIONS)}",
                           field="MCP-Protocol-Version")
    return header


# --- routes ------------------------------------------------------------------------------------------------------
_JSONRPC_BODY = {"description": "a JSON-RPC 2.0 message (a batch of them in 2025-03-26 sessions)",
                 "anyOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]}
_JSONRPC_ANSWER = {"description": "the JSON-RPC answer (202 with no body for notifications)",
                   "anyOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]}
_MCP_DOC = ("Model Context Protocol over Streamable HTTP (revisions 2025-03-26, 2025-06-18, 2025-11-25): the API's "
            "operations as tools. Authenticate with Authorization: Bearer <API token>.")


@routes.post("/mcp", summary="MCP endpoint: JSON-RPC messages (initialize, ping, tools/list, tools/call)",
             description=_MCP_DOC, account=False, challenge=bearer_challenge, params=None,
             request_body=_JSONRPC_BODY, response=_JSONRPC_ANSWER, operation_id="mcp_post")
async def mcp_post(request: web.Request) -> web.StreamResponse:
    principal = _guard(request)
    if media_type(request.headers) != "application/json":
        raise web.HTTPUnsupportedMediaType(text="MCP messages are sent as Content-Type: application/json")
    accept = request.headers.get("Accept", "")
    if accept and not any(t in accept for t in ("application/json", "*/*", "application/*")):
        raise web.HTTPNotAcceptable(text="MCP answers are application/json: accept it")
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY_BYTES, actual_size=request.content_length or 0)
    raw = await request.read()
    if len(raw) > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY_BYTES, actual_size=len(raw))
    try:
        message = loads_json(raw, what="the JSON-RPC message")  # a depth limit: never a RecursionError
    except InvalidInput as exc:
        return _rpc_response(_error(None, PARSE_ERROR, f"parse error: {exc.message}"), status=400)
    if isinstance(message, dict) and message.get("method") == "initialize":
        return await _initialize(principal, message)
    session = await _session(request, principal)
    version = _version_header(request, session)
    caller = Caller(request)
    if isinstance(message, list):
        if version != "2025-03-26":
            return _rpc_response(_error(None, INVALID_REQUEST, f"JSON-RPC batches are not part of MCP {version}"),
                                 status=400)
        if not message:
            return _rpc_response(_error(None, INVALID_REQUEST, "empty batch"), status=400)
        answers = [a for m in message if (a := await _handle(request, caller, principal, version, m))]
        return _rpc_response(answers) if answers else web.Response(status=202)
    answer = await _handle(request, caller, principal, version, message, raw_ok=True)
    if answer is None:
        return web.Response(status=202)
    status = 400 if "error" in answer and answer["error"]["code"] == INVALID_REQUEST else 200
    return _rpc_response(answer, status=status)


# not in the OpenAPI document: it only ever answers 405 (or 401/403)
@routes.get("/mcp", summary="MCP endpoint: no server-initiated stream (405)", description=_MCP_DOC, account=False,
            challenge=bearer_challenge, params=None, operation_id="mcp_get", include_in_schema=False)
async def mcp_get(request: web.Request) -> web.StreamResponse:
    _guard(request)
    raise web.HTTPMethodNotAllowed("GET", ["POST", "DELETE"],
                                   text="this MCP server does not offer a server-initiated SSE stream")


@routes.delete("/mcp", summary="End an MCP session (its Mcp-Session-Id)", description=_MCP_DOC, account=False,
               challenge=bearer_challenge, params=None, status=204, operation_id="mcp_delete")
async def mcp_delete(request: web.Request) -> web.StreamResponse:
    principal = _guard(request)
    session = await _session(request, principal)
    await _state(request.app).ended.end(session)
    return web.Response(status=204)


_METADATA = {"type": "object", "required": ["resource", "authorization_servers", "bearer_methods_supported"],
             "properties": {"resource": {"type": "string"},
                            "authorization_servers": {"type": "array", "items": {"type": "string"}},
                            "bearer_methods_supported": {"type": "array", "items": {"type": "string"}},
                            "resource_name": {"type": "string"}}}


@routes.get(METADATA_PATH, summary="OAuth protected resource metadata of the MCP endpoint (RFC 9728)",
            public=True, params=None, response=_METADATA, operation_id="protected_resource_metadata")
@routes.get(METADATA_PATH + "/mcp", summary="OAuth protected resource metadata of /mcp (RFC 9728 path form)",
            public=True, params=None, response=_METADATA, operation_id="protected_resource_metadata_mcp")
async def protected_resource(request: web.Request) -> web.StreamResponse:
    return json_response({"resource": f"{base_url(request)}/mcp", "authorization_servers": [],
                          "bearer_methods_supported": ["header"], "resource_name": "Corral"})


# --- methods -----------------------------------------------------------------------------------------------------
async def _initialize(principal: Any, message: dict[str, Any]) -> web.Response:
    msg_id = message.get("id")
    if not _valid_id(msg_id):
        return _rpc_response(_error(None, INVALID_REQUEST, "initialize must be a request with an id"), status=400)
    params = message.get("params")
    requested = params.get("protocolVersion") if isinstance(params, dict) else None
    version = requested if requested in SUPPORTED_VERSIONS else LATEST_VERSION
    info: dict[str, Any] = {"name": "corral", "version": __version__}
    if version != "2025-03-26":
        info["title"] = "Corral"
    result = {
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": False}},
        "serverInfo": info,
        "instructions": "Corral's API as tools: git forge (projects, repository, issues, merge requests), CI, "
                        "secrets, identity and telemetry. Tool names are snake_case verbs (create_issue, "
                        "list_merge_requests, read_file, search_logs); path and query parameters are arguments, "
                        "a JSON body goes in the `body` argument. Errors come back with isError and the reason.",
    }
    session_id = new_session_id(version, principal.token_id)
    return _rpc_response({"jsonrpc": "2.0", "id": msg_id, "result": result}, headers={"Mcp-Session-Id": session_id})


async def _handle(request: web.Request, caller: Caller, principal: Any, version: str,
                  msg: Any, *, raw_ok: bool = False) -> dict[str, Any] | None:
    """The answer to one message (None for a notification or a response)."""
    if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
        return _error(msg.get("id") if isinstance(msg, dict) and _valid_id(msg.get("id")) else None,
                      INVALID_REQUEST, "not a JSON-RPC 2.0 message")
    if "method" not in msg:
        return None  # a response to a server request (we send none): nothing to answer
    method = msg["method"]
    if "id" not in msg:
        return None  # a notification (notifications/initialized, notifications/cancelled, ...)
    msg_id = msg["id"]
    if not _valid_id(msg_id) or not isinstance(method, str):
        return _error(None, INVALID_REQUEST, "a request needs a string or integer id and a method")
    params = msg.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return _error(msg_id, INVALID_PARAMS, "params must be an object")
    try:
        if method == "initialize":
            raise _RpcError(INVALID_REQUEST, "initialize must be sent alone, not in a batch or a session")
        if method == "ping":
            result: Any = {}
        elif method == "tools/list":
            result = await _tools_list(request, principal, version, params)
        elif method == "tools/call":
            result = await _tools_call(request, caller, version, params, raw_ok=raw_ok)
        else:
            raise _RpcError(METHOD_NOT_FOUND, f"method not found: {method}")
    except _RpcError as exc:
        return _error(msg_id, exc.code, exc.message, exc.data)
    return {"jsonrpc": "2.0", "id": msg_id, "result": result}  # result may be a _Raw: only with raw_ok


async def _tools_list(request: web.Request, principal: Any, version: str, params: dict[str, Any]) -> dict[str, Any]:
    cursor = params.get("cursor")
    offset = 0
    if cursor is not None:
        try:
            values = decode_cursor(cursor) if isinstance(cursor, str) else None
        except InvalidInput:
            values = None
        if not values or values.get("k") != "mcp-tools" or not isinstance(values.get("o"), int):
            raise _RpcError(INVALID_PARAMS, "cursor is not a nextCursor of tools/list")
        offset = int(values["o"])  # type: ignore[call-overload]
    tools = await _visible(request, principal, _state(request.app).tools)
    page = tools[offset:offset + PAGE_SIZE]
    structured = version != "2025-03-26"
    result: dict[str, Any] = {"tools": [t.describe(structured=structured) for t in page]}
    if offset + PAGE_SIZE < len(tools):
        result["nextCursor"] = encode_cursor({"k": "mcp-tools", "o": offset + PAGE_SIZE})
    return result


async def _visible(request: web.Request, principal: Any, tools: list[Tool]) -> list[Tool]:
    """The tools ``principal`` may call: the route's permission through the authorizer (with the token's scopes
    and project restriction); an operation scoped to a project is shown when the token could hold its permission
    in some project (its scopes allow it; for a project-restricted token: in that project)."""
    auth = request.app[WEB_AUTH]
    token_project = getattr(principal, "token_project_id", None)
    scopes = getattr(principal, "scopes", None)
    decided: dict[tuple[Any, ...], bool] = {}

    async def may(spec: RouteSpec) -> bool:
        key = (spec.permission, spec.project, bool(spec.account))
        if key in decided:
            return decided[key]
        allowed = True
        if spec.account and token_project is not None:
            allowed = False
        elif spec.permission is not None:
            where = token_project if spec.project is not None else None
            if spec.project is not None and token_project is None:
                allowed = scopes is None or spec.permission in scopes
            else:
                try:
                    await auth.authorize(request, principal, spec.permission, where)
                except (PermissionDenied, Unauthenticated):
                    allowed = False
        decided[key] = allowed
        return allowed

    out = []
    for tool in tools:
        needs = tool.needs if tool.curated is not None else (tool.spec,)
        if all([await may(s) for s in needs if s is not None]):
            out.append(tool)
    return out


async def _tools_call(request: web.Request, caller: Caller, version: str, params: dict[str, Any], *,
                      raw_ok: bool = False) -> dict[str, Any] | _Raw:
    """The result of a tool call; with ``raw_ok`` (the answer is serialised by ``_rpc_response``) a route's JSON
    answer is passed on as its bytes (``_Raw``) rather than parsed here and encoded again."""
    name = params.get("name")
    state = _state(request.app)
    tool = state.by_name.get(name) if isinstance(name, str) else None
    if tool is None:
        raise _RpcError(INVALID_PARAMS, f"unknown tool: {name}")
    arguments = params.get("arguments")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise _RpcError(INVALID_PARAMS, "arguments must be an object")
    try:
        if tool.curated is not None:
            outcome = await tool.curated.call(ToolContext(caller, state.specs), arguments)
        else:
            assert tool.spec is not None
            answer = await caller.call(tool.spec, arguments)
            structured = version != "2025-03-26"
            if not answer.ok:
                outcome = Outcome(error=problem_text(answer))
            elif raw_ok and structured and answer.content_type == "application/json" and \
                    answer.body.lstrip()[:1] in (b"{", b"["):
                return _Raw(answer.body.strip(), wrapped=tool.wrapped or answer.body.lstrip()[:1] != b"{")
            else:
                try:
                    outcome = Outcome(answer.json())
                except ValueError:
                    outcome = Outcome(answer.body.decode(errors="replace"))
    except ToolInputError as exc:
        outcome = Outcome(error=f"invalid arguments: {exc}")
    return _render(tool, outcome, structured=version != "2025-03-26")


def _render(tool: Tool, outcome: Outcome, *, structured: bool) -> dict[str, Any]:
    if outcome.error is not None:
        return {"content": [{"type": "text", "text": outcome.error}], "isError": True}
    data = outcome.data
    text = "done (no content)" if data is None else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    result: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": False}
    if structured and data is not None:
        result["structuredContent"] = data if isinstance(data, dict) and not tool.wrapped else {"result": data}
    return result
