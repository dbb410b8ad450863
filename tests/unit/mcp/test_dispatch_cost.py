"""A tool call authenticates its token once (the inner request reuses the outer principal) and passes the route's
JSON answer on without re-encoding it, with the same result shape as before."""

from __future__ import annotations

import json

from corral.entrypoints.web.keys import WEB_AUTH
from tests.unit.identity.webkit import user_with_token
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
