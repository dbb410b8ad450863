"""The MCP endpoint's protocol edge: handshake, sessions, headers, batching, pagination, errors.

The app is the real one (every route table, the real middleware chain) over the in-memory identity services, so
tool calls here run the identity routes' own handlers and checks.
"""

from __future__ import annotations

import pytest

from corral.entrypoints.mcp import protocol
from tests.unit.identity.webkit import identity_client, user_with_token

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
ACCEPT = "application/json, text/event-stream"


@pytest.fixture
async def web():
    client, ids, _memory = await identity_client()
    yield client, ids
    await client.close()


def hdrs(token: str, session: str | None = None, version: str | None = None, **extra: str) -> dict[str, str]:
    out = {"Authorization": f"Bearer {token}", "Accept": ACCEPT, **extra}
    if session:
        out["Mcp-Session-Id"] = session
    if version:
        out["MCP-Protocol-Version"] = version
    return out


async def start(client, token: str, version: str = "2025-06-18") -> str:
    body = {**INIT, "params": {**INIT["params"], "protocolVersion": version}}
    resp = await client.post("/mcp", json=body, headers=hdrs(token))
    assert resp.status == 200, await resp.text()
    session = resp.headers["Mcp-Session-Id"]
    resp = await client.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                             headers=hdrs(token, session, version))
    assert resp.status == 202
    return session


async def rpc(client, token: str, session: str, method: str, params: dict | None = None,
              version: str = "2025-06-18") -> dict:
    resp = await client.post("/mcp", json={"jsonrpc": "2.0", "id": 7, "method": method, "params": params or {}},
                             headers=hdrs(token, session, version))
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/json"
    return await resp.json()


@pytest.mark.parametrize(("asked", "answered"), [
    ("2025-03-26", "2025-03-26"), ("2025-06-18", "2025-06-18"), ("2025-11-25", "2025-11-25"),
    ("2024-11-05", "2025-11-25"), ("2099-01-01", "2025-11-25"),
])
async def test_initialize_answers_the_clients_revision_when_supported(web, asked, answered) -> None:
    client, ids = web
    token = await user_with_token(ids, "ann", admin=True)
    resp = await client.post("/mcp", json={**INIT, "params": {**INIT["params"], "protocolVersion": asked}},
                             headers=hdrs(token))
    assert resp.status == 200
    body = await resp.json()
    assert body["id"] == 1
    result = body["result"]
    assert result["protocolVersion"] == answered
    assert result["capabilities"] == {"tools": {"listChanged": False}}
    assert result["serverInfo"]["name"] == "corral"
    assert resp.headers["Mcp-Session-Id"]
    assert resp.headers["Mcp-Session-Id"].isascii()


async def test_missing_token_is_401_naming_the_resource_metadata(web) -> None:
    client, _ids = web
    resp = await client.post("/mcp", json=INIT, headers={"Accept": ACCEPT})
    assert resp.status == 401
    challenge = resp.headers["WWW-Authenticate"]
    base = f"http://{resp.url.host}:{resp.url.port}"
    assert challenge == f'Bearer resource_metadata="{base}/.well-known/oauth-protected-resource"'
    for method in ("GET", "DELETE"):
        resp = await client.request(method, "/mcp")
        assert resp.status == 401
        assert "resource_metadata=" in resp.headers["WWW-Authenticate"]
    bad = await client.post("/mcp", json=INIT, headers={"Authorization": "Bearer crl_nope", "Accept": ACCEPT})
    assert bad.status == 401


async def test_protected_resource_metadata_is_public(web) -> None:
    client, _ids = web
    resp = await client.get("/.well-known/oauth-protected-resource")
    assert resp.status == 200
    body = await resp.json()
    assert body["resource"].endswith("/mcp")
    assert body["authorization_servers"] == []
    assert body["bearer_methods_supported"] == ["header"]
    same = await client.get("/.well-known/oauth-protected-resource/mcp")
    assert (await same.json())["resource"] == body["resource"]


async def test_foreign_origin_is_403_own_origin_passes(web) -> None:
    client, ids = web
    token = await user_with_token(ids, "ann", admin=True)
    evil = await client.post("/mcp", json=INIT, headers=hdrs(token, Origin="http://evil.example"))
    assert evil.status == 403
    assert "DNS rebinding" in (await evil.json())["detail"]
    null = await client.post("/mcp", json=INIT, headers=hdrs(token, Origin="null"))
    assert null.status == 403
    own = await client.post("/mcp", json=INIT,
                            headers=hdrs(token, Origin=f"http://{client.host}:{client.port}"))
    assert own.status == 200


async def test_cookie_or_basic_credentials_are_not_enough(web) -> None:
    client, ids = web
    token = await user_with_token(ids, "ann", admin=True)
    import base64
    basic = base64.b64encode(f"x:{token}".encode()).decode()
    resp = await client.post("/mcp", json=INIT, headers={"Authorization": f"Basic {basic}", "Accept": ACCEPT})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer resource_metadata=")


async def test_notifications_and_responses_are_202(web) -> None:
    client, ids = web
    token = await user_with_token(ids, "ann", admin=True)
    session = await start(client, token)
    for message in ({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}},
                    {"jsonrpc": "2.0", "id": 9, "result": {}}):
        resp = await client.post("/mcp", json=message, headers=hdrs(token, session, "2025-06-18"))
        assert resp.status == 202
        assert await resp.read() == b""


async def test_ping_and_unknown_method(web) -> None:
    client, ids = web
    token = await user_with_token(ids, "ann", admin=True)
    session = await start(client, token)
    assert (await rpc(client, token, session, "ping")) == {"jsonrpc": "2.0", "id": 7, "result": {}}
    missing = await rpc(client, token, session, "resources/list")
    assert missing["error"]["code"] == -32601


async def test_session_is_required_and_bound_to_its_token(web) -> None:
    client, ids = web
    ann = await user_with_token(ids, "ann", admin=True)
    bob = await user_with_token(ids, "bob", admin=True)
    session = await start(client, ann)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    no_session = await client.post("/mcp", json=ping, headers=hdrs(ann))
    assert no_session.status == 400
    assert "Mcp-Session-Id" in (await no_session.json())["detail"]
    other = await client.post("/mcp", json=ping, headers=hdrs(bob, session))
    assert other.status == 404
    forged = await client.post("/mcp", json=ping, headers=hdrs(ann, session[:-2] + "AA"))
    assert forged.status == 404


async def test_unsupported_protocol_version_header_is_400(web) -> None:
    client, ids = web
    token = await user_with_token(ids, "ann", admin=True)
    session = await start(client, token)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    resp = await client.post("/mcp", json=ping, headers=hdrs(token, session, "2024-01-01"))
    assert resp.status == 400
    assert "MCP-Protocol-Version" in (await resp.json())["detail"]
    ok = await client.post("/mcp", json=ping, headers=hdrs(token, session, "2025-11-25"))
    assert ok.status == 200
    without = await client.post("/mcp", json=ping, headers=hdrs(token, session))
    assert without.status == 200  # the session's negotiated revision applies


async def test_get_is_405_and_delete_ends_the_session(web) -> None:
    client, ids = web
    token = await user_with_token(ids, "ann", admin=True)
    session = await start(client, token)
    got = await client.get("/mcp", headers=hdrs(token, session, "2025-06-18"))
    assert got.status == 405
    assert set(got.headers["Allow"].replace(" ", "").split(",")) == {"POST", "DELETE"}
    ended = await client.delete("/mcp", headers=hdrs(token, session, "2025-06-18"))
    assert ended.status == 204
    after = await client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                              headers=hdrs(token, session, "2025-06-18"))
    assert after.status == 404
    again = await client.delete("/mcp", headers=hdrs(token, session, "2025-06-18"))
    assert again.status == 404
    fresh = await start(client, token)  # a new initialize works after the end
    assert fresh != session


async def test_malformed_bodies(web) -> None:
    client, ids = web
    token = await user_with_token(ids, "ann", admin=True)
    session = await start(client, token)
    bad_json = await client.post("/mcp", data=b"{not json", headers={**hdrs(token, session),
                                                                       "Content-Type": "application/json"})
    assert bad_json.status == 400
    assert (await bad_json.json())["error"]["code"] == -32700
    wrong_type = await client.post("/mcp", data=b"{}", headers={**hdrs(token, session), "Content-Type": "text/plain"})
    assert wrong_type.status == 415
    not_rpc = await client.post("/mcp", json={"id": 1, "method": "ping"}, headers=hdrs(token, session))
    assert not_rpc.status == 400
    assert (await not_rpc.json())["error"]["code"] == -32600
    wrong_accept = await client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                     headers={**hdrs(token, session), "Accept": "text/html"})
    assert wrong_accept.status == 406


async def test_batches_only_in_2025_03_26(web) -> None:
    client, ids = web
    token = await user_with_token(ids, "ann", admin=True)
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "ping"},
             {"jsonrpc": "2.0", "method": "notifications/initialized"},
             {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "get_current_user"}}]
    old = await start(client, token, "2025-03-26")
    resp = await client.post("/mcp", json=batch, headers=hdrs(token, old, "2025-03-26"))
    assert resp.status == 200
    answers = await resp.json()
    assert [a["id"] for a in answers] == [1, 2]
    assert answers[1]["result"]["isError"] is False
    assert "structuredContent" not in answers[1]["result"]  # 2025-03-26 has no structured content
    only_notes = await client.post("/mcp", json=[batch[1]], headers=hdrs(token, old, "2025-03-26"))
    assert only_notes.status == 202
    new = await start(client, token, "2025-06-18")
    refused = await client.post("/mcp", json=batch, headers=hdrs(token, new, "2025-06-18"))
    assert refused.status == 400
    assert (await refused.json())["error"]["code"] == -32600


async def test_tools_list_is_paginated(web) -> None:
    client, ids = web
    token = await user_with_token(ids, "ann", admin=True)
    session = await start(client, token)
    names: list[str] = []
    cursor = None
    pages = 0
    while True:
        result = (await rpc(client, token, session, "tools/list", {"cursor": cursor} if cursor else {}))["result"]
        pages += 1
        assert len(result["tools"]) <= protocol.PAGE_SIZE
        names += [t["name"] for t in result["tools"]]
        cursor = result.get("nextCursor")
        if cursor is None:
            break
    assert pages >= 2
    assert len(names) == len(set(names))
    assert {"create_issue", "list_issues", "merge_merge_request", "search_logs", "set_secret", "create_project",
            "read_file", "list_users"} <= set(names)
    bad = await rpc(client, token, session, "tools/list", {"cursor": "not-a-cursor"})
    assert bad["error"]["code"] == -32602


async def test_tools_list_shows_only_what_the_token_may_call(web) -> None:
    client, ids = web
    admin = await user_with_token(ids, "root", admin=True)
    reader = await user_with_token(ids, "ann", "viewer", scopes=["project:read"])
    names = {}
    for who, token in (("admin", admin), ("reader", reader)):
        session = await start(client, token)
        result = (await rpc(client, token, session, "tools/list"))["result"]
        seen = [t["name"] for t in result["tools"]]
        while cursor := result.get("nextCursor"):
            result = (await rpc(client, token, session, "tools/list", {"cursor": cursor}))["result"]
            seen += [t["name"] for t in result["tools"]]
        names[who] = set(seen)
    assert "list_users" in names["admin"]
    assert "list_users" not in names["reader"]  # admin:users is not the reader's
    assert "create_issue" not in names["reader"]  # project:write is not in its scopes
    assert {"list_issues", "read_file", "get_file"} <= names["reader"]
    assert names["reader"] < names["admin"]


async def test_tools_call_runs_the_route_with_its_checks(web) -> None:
    client, ids = web
    admin = await user_with_token(ids, "root", admin=True)
    reader = await user_with_token(ids, "ann", "viewer", scopes=["project:read"])
    session = await start(client, admin)
    me = (await rpc(client, admin, session, "tools/call", {"name": "get_current_user", "arguments": {}}))["result"]
    assert me["isError"] is False
    assert me["structuredContent"]["name"] == "root"
    assert '"name":"root"' in me["content"][0]["text"]
    users = (await rpc(client, admin, session, "tools/call",
                       {"name": "list_users", "arguments": {"limit": 1}}))["result"]
    assert len(users["structuredContent"]["items"]) == 1
    # the reader may not: the route's own RBAC check answers, as an isError result carrying the detail
    rsession = await start(client, reader)
    denied = (await rpc(client, reader, rsession, "tools/call", {"name": "list_users", "arguments": {}}))["result"]
    assert denied["isError"] is True
    assert "403" in denied["content"][0]["text"]
    assert "admin:users" in denied["content"][0]["text"]
    # input errors come from the route's own parsing, naming the field
    bad = (await rpc(client, admin, session, "tools/call",
                     {"name": "create_user", "arguments": {"body": {"name": 5}}}))["result"]
    assert bad["isError"] is True
    assert "400" in bad["content"][0]["text"] and "name" in bad["content"][0]["text"]
    created = (await rpc(client, admin, session, "tools/call", {"name": "create_user", "arguments": {
        "body": {"name": "cid", "email": "cid@example.com", "password": "correct horse battery"}}}))["result"]
    assert created["isError"] is False, created
    assert created["structuredContent"]["name"] == "cid"
    assert (await ids.users.get("cid")).email == "cid@example.com"
    unknown_arg = (await rpc(client, admin, session, "tools/call",
                             {"name": "list_users", "arguments": {"colour": "red"}}))["result"]
    assert unknown_arg["isError"] is True
    assert "colour" in unknown_arg["content"][0]["text"]
    unknown_tool = await rpc(client, admin, session, "tools/call", {"name": "nope"})
    assert unknown_tool["error"]["code"] == -32602


async def test_structured_content_validates_against_the_output_schema(web) -> None:
    import jsonschema_rs

    client, ids = web
    admin = await user_with_token(ids, "root", admin=True)
    session = await start(client, admin, "2025-11-25")
    result = (await rpc(client, admin, session, "tools/list", version="2025-11-25"))["result"]
    tools = {t["name"]: t for t in result["tools"]}
    while cursor := result.get("nextCursor"):
        result = (await rpc(client, admin, session, "tools/list", {"cursor": cursor}, version="2025-11-25"))["result"]
        tools.update({t["name"]: t for t in result["tools"]})
    for name, arguments in (("get_current_user", {}), ("list_users", {}), ("list_tokens", {}),
                            ("list_roles", {}), ("list_permissions", {})):
        called = (await rpc(client, admin, session, "tools/call", {"name": name, "arguments": arguments},
                            version="2025-11-25"))["result"]
        assert called["isError"] is False, called
        validator = jsonschema_rs.Draft202012Validator(tools[name]["outputSchema"])
        errors = [e.message for e in validator.iter_errors(called["structuredContent"])]
        assert errors == [], (name, errors)



async def test_a_deeply_nested_message_is_a_parse_error_not_a_500(web) -> None:
    client, ids = web
    token = await user_with_token(ids, "ann", admin=True)
    session = await start(client, token)
    resp = await client.post("/mcp", data=b"[" * 100_000 + b"]" * 100_000,
                             headers={**hdrs(token, session), "Content-Type": "application/json"})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["code"] == -32700
    assert "deeper than" in body["error"]["message"]
