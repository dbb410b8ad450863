"""A tool call authenticates its token once (the inner request reuses the outer principal) and passes the route's
JSON answer on without re-encoding it, with the same result shape as before."""

from __future__ import annotations

import json
import logging
import uuid

from corral.core.identity.catalogue import AGENT_ROLE
from corral.entrypoints.observability import current_context
from corral.entrypoints.web.keys import AGENT_SESSION_OF, WEB_AUTH
from tests.unit.identity.webkit import identity_client, user_with_token
from tests.unit.mcp.test_protocol import hdrs, rpc, start, web  # noqa: F401 (the web fixture)


async def test_a_tool_call_authenticates_the_token_once(web) -> None:  # noqa: F811
    client, ids = web
    admin = await user_with_token(ids, "root", admin=True)
    session = await start(client, admin)
    auth = client.server.app[WEB_AUTH]
    calls: list[str] = []
    original = auth.authenticate

    async def counting(request):
        calls.append(request.path)
        return await original(request)

    auth.authenticate = counting
    try:
        me = (await rpc(client, admin, session, "tools/call", {"name": "get_current_user", "arguments": {}}))["result"]
    finally:
        auth.authenticate = original
    assert me["isError"] is False and me["structuredContent"]["name"] == "root"
    assert calls == ["/mcp"]  # not again for /api/v1/me
    # the raw answer is spliced in whole: its text is the same JSON as the structured content
    assert json.loads(me["content"][0]["text"]) == me["structuredContent"]


async def test_listing_results_and_errors_keep_their_shape(web) -> None:  # noqa: F811
    client, ids = web
    admin = await user_with_token(ids, "root", admin=True)
    reader = await user_with_token(ids, "ann", "viewer", scopes=["project:read"])
    session = await start(client, admin)
    users = (await rpc(client, admin, session, "tools/call", {"name": "list_users", "arguments": {"limit": 1}}))
    assert users["jsonrpc"] == "2.0" and users["id"] == 7
    result = users["result"]
    assert set(result) == {"content", "isError", "structuredContent"}
    assert len(result["structuredContent"]["items"]) == 1
    rsession = await start(client, reader)
    denied = (await rpc(client, reader, rsession, "tools/call", {"name": "list_users", "arguments": {}}))["result"]
    assert denied["isError"] is True and "admin:users" in denied["content"][0]["text"]
    # 2025-03-26 has no structured content: the answer is text only
    old = await start(client, admin, "2025-03-26")
    plain = (await rpc(client, admin, old, "tools/call", {"name": "get_current_user", "arguments": {}},
                       version="2025-03-26"))["result"]
    assert "structuredContent" not in plain and json.loads(plain["content"][0]["text"])["name"] == "root"


async def test_the_dispatched_principal_cannot_be_sent_from_outside(web) -> None:  # noqa: F811
    client, ids = web
    admin = await user_with_token(ids, "root", admin=True)
    for forged in ({"corral_dispatched_principal": "root"}, {"Cookie": "corral_dispatched_principal=root"}):
        resp = await client.get("/api/v1/me", headers=forged)
        assert resp.status == 401
    resp = await client.get("/api/v1/me", headers=hdrs(admin))
    assert resp.status == 200


def test_a_verified_session_id_is_still_checked_for_its_token_and_age(monkeypatch) -> None:
    from corral.entrypoints.mcp import sessions

    verified = sessions.VerifiedIds(size=2)
    session_id = sessions.new_session_id("2025-06-18", "tok-1")
    opened = sessions.open_session(session_id, "tok-1", verified)
    assert opened is not None and opened.version == "2025-06-18" and opened.token == "tok-1"
    assert sessions.open_session(session_id, "tok-1", verified) == opened  # from the verified ids
    assert sessions.open_session(session_id, "tok-2", verified) is None  # another token: refused, cached or not
    tampered = session_id[:-2] + ("AA" if not session_id.endswith("AA") else "BB")
    assert sessions.open_session(tampered, "tok-1", verified) is None
    assert verified.get(tampered) is None  # a bad signature is never remembered as good
    later = sessions.time.time() + sessions.SESSION_SECONDS + 1
    monkeypatch.setattr(sessions.time, "time", lambda: later)
    assert sessions.open_session(session_id, "tok-1", verified) is None  # expired, though verified before
    # bounded: the oldest verified ids are forgotten (and verified again when they come back)
    others = [sessions.new_session_id("2025-06-18", "tok-1") for _ in range(2)]
    for other in others:
        assert verified.get(other) is not None
    assert session_id not in verified._sessions and len(verified._sessions) == 2


def test_build_call_puts_the_arguments_where_the_route_path_has_them() -> None:
    from corral.entrypoints.mcp.dispatch import build_call
    from corral.entrypoints.mcp.tools import PATH_PARAM, route_url
    from corral.entrypoints.web.routes import ROUTE_TABLES

    checked = 0
    for spec in (s for table in ROUTE_TABLES for s in table.specs):
        names = [m.group(1) for m in PATH_PARAM.finditer(spec.path)]
        if not names:
            continue
        values = {name: f"a b/ä%{i}" for i, name in enumerate(names)}
        url, _body, _type = build_call(spec, dict(values))
        assert url.partition("?")[0] == route_url(spec, values), spec.path
        again, _body, _type = build_call(spec, dict(values))  # the route's shape is worked out once, same answer
        assert again == url
        checked += 1
    assert checked > 50


def test_media_type_reads_content_type_as_aiohttp_does() -> None:
    from aiohttp import web as aioweb

    from corral.entrypoints.mcp.dispatch import media_type

    for value in ("application/json", "Application/JSON; charset=utf-8", " text/plain ;x=1",
                  "application/problem+json", "", None):
        response = aioweb.Response(body=b"")
        response.headers.pop("Content-Type", None)
        if value is not None:
            response.headers["Content-Type"] = value
        assert media_type(response.headers) == response.content_type, value


class _Lines(logging.Handler):
    """The access lines of corral.http with the correlation fields bound when each was written."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[tuple[str, dict[str, str]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.getMessage(), current_context()))


async def test_the_inner_request_is_a_span_of_the_tool_calls_request(web) -> None:  # noqa: F811
    client, ids = web
    admin = await user_with_token(ids, "root", admin=True)
    session = await start(client, admin)
    http = logging.getLogger("corral.http")
    lines, level = _Lines(), http.level
    http.addHandler(lines)
    http.setLevel(logging.INFO)
    trace = "0af7651916cd43dd8448eb211c80319c"
    try:
        resp = await client.post("/mcp", headers={**hdrs(admin, session), "X-Request-Id": "req-mcp-1",
                                                  "traceparent": f"00-{trace}-b7ad6b7169203331-01"},
                                 json={"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                                       "params": {"name": "get_current_user", "arguments": {}}})
    finally:
        http.removeHandler(lines)
        http.setLevel(level)
    assert resp.status == 200 and resp.headers["X-Request-Id"] == "req-mcp-1"
    assert (await resp.json())["result"]["structuredContent"]["name"] == "root"
    (inner_line, inner), (outer_line, outer) = lines.lines
    assert inner_line == "GET /api/v1/me 200" and outer_line == "POST /mcp 200"
    user_id = str((await ids.users.get("root")).id)
    for fields in (inner, outer):
        assert fields["request_id"] == "req-mcp-1" and fields["trace_id"] == trace and fields["user_id"] == user_id
    assert len(inner["span_id"]) == 16 and inner["span_id"] not in (outer["span_id"], "b7ad6b7169203331")


async def test_a_generated_request_id_trace_and_span_are_fresh_hex() -> None:
    client, _ids, _memory = await identity_client()
    try:
        seen = set()
        for _ in range(3):
            resp = await client.get("/api/v1/me")
            assert resp.status == 401
            request_id = resp.headers["X-Request-Id"]
            assert len(request_id) == 32 and int(request_id, 16) >= 0 and request_id not in seen
            assert (await resp.json())["request_id"] == request_id
            seen.add(request_id)
    finally:
        await client.close()


async def test_an_agents_tool_call_audits_under_its_session() -> None:
    acting = uuid.uuid4()
    asked: list[uuid.UUID] = []

    async def session_of(user_id: uuid.UUID) -> uuid.UUID:
        asked.append(user_id)
        return acting

    client, ids, memory = await identity_client(hooks=[lambda app: app.__setitem__(AGENT_SESSION_OF, session_of)])
    try:
        bot = await user_with_token(ids, "bot", AGENT_ROLE, admin=True)
        session = await start(client, bot)
        made = await rpc(client, bot, session, "tools/call",
                         {"name": "create_token", "arguments": {"body": {"name": "n", "scopes": ["project:read"]}}})
        assert made["result"]["isError"] is False, made
        created = [e for e in memory.audit if e.action == "token.create" and e.detail.get("name") == "n"]
        assert len(created) == 1 and created[0].detail["session_id"] == str(acting)
        bot_id = (await ids.users.get("bot")).id
        assert asked and set(asked) == {bot_id}
    finally:
        await client.close()
