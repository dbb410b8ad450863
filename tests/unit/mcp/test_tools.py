"""Tools generated from the route registry: names, schemas, and a route added later becoming a tool."""

from __future__ import annotations

import attrs
import pytest
from aiohttp import web

from corral.entrypoints.mcp.curated import CURATED
from corral.entrypoints.mcp.tools import TOOL_NAME, VERBS, build_tools, is_tool_route, tool_name
from corral.entrypoints.web import routes as route_package
from corral.entrypoints.web.jsonio import json_response
from corral.entrypoints.web.operation import body_of, params_of, query_param
from corral.entrypoints.web.routes import ROUTE_TABLES
from corral.entrypoints.web.routing import RouteTable
from tests.unit.identity.webkit import identity_client, user_with_token
from tests.unit.mcp.test_protocol import rpc, start


def all_specs():
    return [s for t in ROUTE_TABLES for s in t.specs]


def test_tool_names_are_unique_snake_case_verbs() -> None:
    tools = build_tools(all_specs(), CURATED)
    names = [t.name for t in tools]
    assert len(names) == len(set(names))
    for name in names:
        assert TOOL_NAME.match(name), name
        assert len(name) <= 64, name
        assert name.split("_")[0] in VERBS, name
    expected = {"create_issue", "list_issues", "merge_merge_request", "search_logs", "set_secret", "create_project",
                "read_file", "get_session_timeline", "get_file", "list_merge_requests", "create_merge_request"}
    assert expected <= set(names)


def test_git_objects_otlp_and_public_routes_are_not_tools() -> None:
    tools = build_tools(all_specs(), CURATED)
    paths = {t.spec.path for t in tools if t.spec is not None}
    assert not any(p.startswith(("/{owner}", "/v1/", "/api/v1/objects", "/mcp", "/healthz")) for p in paths)
    assert not any(p.endswith("/raw/{ref}/{path:.*}") for p in paths)  # raw bytes are not JSON
    assert "/api/v1/auth/login" not in paths  # public: credentials are the point of a tool call
    for spec in all_specs():
        if spec.path.startswith("/api/") and spec.typed and not spec.public and spec.content_type == "application/json":
            assert is_tool_route(spec), spec.path


def test_every_tool_has_object_schemas() -> None:
    for tool in build_tools(all_specs(), CURATED):
        schema = tool.input_schema
        assert schema["type"] == "object", tool.name
        assert set(schema["required"]) <= set(schema["properties"]), tool.name
        assert "components" not in str(schema), tool.name  # references are local ($defs)
        if tool.output_schema is not None:
            assert tool.output_schema["type"] == "object", tool.name
            assert "#/components/" not in str(tool.output_schema), tool.name


def test_input_schema_has_path_query_and_body() -> None:
    tools = {t.name: t for t in build_tools(all_specs(), CURATED)}
    create = tools["create_issue"].input_schema
    assert set(create["required"]) == {"owner", "name", "body"}
    body = create["properties"]["body"]
    target = body["allOf"][0]["$ref"].rsplit("/", 1)[1]
    assert "title" in create["$defs"][target]["properties"]
    listing = tools["list_issues"].input_schema
    assert {"owner", "name", "status", "label", "limit", "cursor"} <= set(listing["properties"])
    assert listing["properties"]["limit"]["maximum"] == 500
    assert tools["get_issue"].input_schema["properties"]["number"]["type"] == "integer"
    out = tools["list_issues"].output_schema
    assert out["required"] == ["items", "next_cursor"]


def test_name_derivation_for_unknown_operations() -> None:
    table = RouteTable(tag="widgets")

    async def handler(_request: web.Request) -> web.StreamResponse:
        return json_response({})

    for op, method, response in (("widget", "GET", None), ("widgets", "GET", list[int]), ("widget_new", "POST", None),
                                 ("frob", "PUT", None), ("triggerBuild", "POST", None)):
        table.route(method, f"/api/v1/{op}", summary="x", account=False, params=None, operation_id=op,
                    response=response)(handler)
    assert [tool_name(s) for s in table.specs] == ["get_widget", "list_widgets", "create_widget_new", "set_frob",
                                                   "trigger_build"]


@attrs.frozen
class GadgetQuery:
    """Filters."""

    colour: str | None = query_param(doc="only this colour")


@attrs.frozen
class NewGadget:
    """A gadget to make."""

    label: str
    size: int = 1


@attrs.frozen
class GadgetOut:
    """A gadget."""

    owner: str
    label: str
    size: int
    colour: str | None


@pytest.fixture
def gadget_table(monkeypatch):
    """A route table added the way any domain adds one (appended to ROUTE_TABLES), unknown to the MCP code."""
    table = RouteTable(tag="gadgets")
    calls: list[str] = []

    @table.post("/api/v1/gadgets/{owner}", summary="Make a gadget", permission="admin:settings", params=GadgetQuery,
                body=NewGadget, response=GadgetOut, status=201)
    async def create_gadget(request: web.Request) -> web.StreamResponse:
        new = body_of(request, NewGadget)
        calls.append(request.match_info["owner"])
        return json_response({"owner": request.match_info["owner"], "label": new.label, "size": new.size,
                              "colour": params_of(request, GadgetQuery).colour}, status=201)

    monkeypatch.setattr(route_package, "ROUTE_TABLES", [*ROUTE_TABLES, table])
    monkeypatch.setattr("corral.entrypoints.web.app.ROUTE_TABLES", [*ROUTE_TABLES, table])
    return calls


async def test_a_route_added_later_is_a_tool_without_touching_mcp_code(gadget_table) -> None:
    client, ids, _memory = await identity_client()
    try:
        admin = await user_with_token(ids, "root", admin=True)
        reader = await user_with_token(ids, "ann", "viewer", scopes=["project:read"])
        session = await start(client, admin)
        tools: dict = {}
        cursor = None
        while True:
            result = (await rpc(client, admin, session, "tools/list", {"cursor": cursor} if cursor else {}))["result"]
            tools.update({t["name"]: t for t in result["tools"]})
            if not (cursor := result.get("nextCursor")):
                break
        tool = tools["create_gadget"]
        assert tool["description"].startswith("Make a gadget.")
        assert set(tool["inputSchema"]["properties"]) == {"owner", "colour", "body"}
        assert tool["outputSchema"]["properties"]["label"] == {"type": "string"}
        made = (await rpc(client, admin, session, "tools/call", {"name": "create_gadget", "arguments": {
            "owner": "acme", "colour": "red", "body": {"label": "g1"}}}))["result"]
        assert made["isError"] is False
        assert made["structuredContent"] == {"owner": "acme", "label": "g1", "size": 1, "colour": "red"}
        assert gadget_table == ["acme"]
        # the new route's declared permission is enforced on the tool call too
        rsession = await start(client, reader)
        denied = (await rpc(client, reader, rsession, "tools/call", {"name": "create_gadget", "arguments": {
            "owner": "acme", "body": {"label": "g2"}}}))["result"]
        assert denied["isError"] is True
        assert "admin:settings" in denied["content"][0]["text"]
        assert gadget_table == ["acme"]
        # and its body class still validates: an unknown field is the route's own 400 naming it
        bad = (await rpc(client, admin, session, "tools/call", {"name": "create_gadget", "arguments": {
            "owner": "acme", "body": {"label": "g3", "weight": 2}}}))["result"]
        assert bad["isError"] is True
        assert "weight" in bad["content"][0]["text"]
    finally:
        await client.close()
