"""Typed operations: query and body classes parsed before the handler, documented from the same classes,
responses checked against the document."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from corral.core.commands import UNSET, Unset
from corral.core.pagination import Page
from corral.entrypoints.config import Settings
from corral.entrypoints.web.app import create_app
from corral.entrypoints.web.jsonio import json_response
from corral.entrypoints.web.openapi import build_openapi
from corral.entrypoints.web.operation import PageParams, body_of, params_of, query_param
from corral.entrypoints.web.routes import ROUTE_TABLES
from corral.entrypoints.web.routing import RouteTable
from tests.unit.webstub import StubPlatform


@attrs.frozen
class WidgetQuery(PageParams):
    kind: Literal["round", "square"] | None = query_param(doc="the shape")
    since: datetime | None = query_param(doc="made after")
    owner: uuid.UUID | None = None
    tags: list[str] = attrs.field(factory=list)
    flag: bool = False
    from_: str | None = query_param(name="from", doc="a reserved word in Python")


@attrs.frozen(kw_only=True)
class NewWidget:
    name: str
    size: int = 1
    kind: Literal["round", "square"] = "round"
    tags: list[str] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class WidgetChanges:
    name: str | Unset = UNSET
    note: str | Unset | None = UNSET


@attrs.frozen
class WidgetOut:
    name: str
    size: int


table = RouteTable(tag="test")


@table.get("/api/v1/_ops/widgets", summary="list", public=True, params=WidgetQuery, response=Page[WidgetOut])
async def list_widgets(request: web.Request) -> web.StreamResponse:
    q = params_of(request, WidgetQuery)
    echo = {"limit": q.limit, "kind": q.kind, "since": q.since, "owner": q.owner, "tags": q.tags, "flag": q.flag,
            "from": q.from_}
    return json_response({"items": [], "next_cursor": None}, headers={"X-Echo": repr(echo)})


@table.post("/api/v1/_ops/widgets", summary="make", public=True, params=None, body=NewWidget, response=WidgetOut,
            status=201)
async def make_widget(request: web.Request) -> web.StreamResponse:
    w = body_of(request, NewWidget)
    return json_response({"name": w.name, "size": w.size}, status=201)


@table.patch("/api/v1/_ops/widgets/x", summary="change", public=True, params=None, body=WidgetChanges,
             response=WidgetOut)
async def change_widget(request: web.Request) -> web.StreamResponse:
    c = body_of(request, WidgetChanges)
    sent = sorted(k for k in ("name", "note") if getattr(c, k) is not UNSET)
    return json_response({"name": ",".join(sent), "size": 0 if c.note is None else 1})


@table.get("/api/v1/_ops/liar", summary="answers off its schema", public=True, params=None, response=WidgetOut)
async def liar(_request: web.Request) -> web.StreamResponse:
    return json_response({"name": "x", "size": "big"})


@pytest.fixture
async def client():
    platform = StubPlatform(settings=Settings(profile="memory", validate_responses=True))
    app = create_app(platform)
    table.mount(app)
    c = TestClient(TestServer(app))
    await c.start_server()
    yield c
    await c.close()


async def _problem(resp) -> dict:
    assert resp.content_type == "application/problem+json"
    return await resp.json()


async def test_query_is_typed(client: TestClient) -> None:
    owner = uuid.uuid4()
    resp = await client.get("/api/v1/_ops/widgets", params=[
        ("limit", "5"), ("kind", "round"), ("since", "2026-01-01T00:00:00Z"), ("owner", str(owner)),
        ("tags", "a"), ("tags", "b"), ("flag", "true"), ("from", "x")])
    assert resp.status == 200
    echo = resp.headers["X-Echo"]
    assert "'limit': 5" in echo and "'kind': 'round'" in echo and "'tags': ['a', 'b']" in echo
    assert "'flag': True" in echo and "'from': 'x'" in echo and str(owner) in echo


@pytest.mark.parametrize(("query", "field"), [
    ("state=closed", "state"),  # unknown parameters are refused, not ignored
    ("limit=x", "limit"),
    ("limit=0", "limit"),
    ("limit=501", "limit"),
    ("limit=" + "9" * 400, "limit"),
    ("limit=1&limit=2", "limit"),
    ("kind=triangle", "kind"),
    ("since=yesterday", "since"),
    ("since=2026-01-01T00:00:00", "since"),
    ("owner=nope", "owner"),
    ("flag=maybe", "flag"),
    ("cursor=a%00b", "cursor"),
])
async def test_bad_query_names_the_parameter(client: TestClient, query: str, field: str) -> None:
    resp = await client.get(f"/api/v1/_ops/widgets?{query}")
    assert resp.status == 400
    assert (await _problem(resp))["field"] == field


async def test_an_operation_without_params_takes_none(client: TestClient) -> None:
    resp = await client.post("/api/v1/_ops/widgets?debug=1", json={"name": "w"})
    assert resp.status == 400
    assert (await _problem(resp))["field"] == "debug"


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"name": 1}, "name", "expected a string"),
    ({"name": "w", "size": "2"}, "size", "integer"),
    ({"name": "w", "size": True}, "size", "integer"),
    ({"name": "w", "kind": "oval"}, "kind", "'round', 'square'"),
    ({"name": "w", "tags": "abc"}, "tags", "expected a JSON array"),
    ({"name": "w", "colour": "red"}, "colour", "unknown field"),
    ({"size": 2}, "name", "required"),
])
async def test_bad_body_names_the_field(client: TestClient, body: dict, field: str, words: str) -> None:
    resp = await client.post("/api/v1/_ops/widgets", json=body)
    assert resp.status == 400
    problem = await _problem(resp)
    assert problem["field"] == field
    assert words in problem["detail"]


async def test_partial_update_tells_unsent_from_null(client: TestClient) -> None:
    resp = await client.patch("/api/v1/_ops/widgets/x", json={"note": None})
    assert await resp.json() == {"name": "note", "size": 0}
    resp = await client.patch("/api/v1/_ops/widgets/x", json={"name": "n"})
    assert await resp.json() == {"name": "name", "size": 1}
    resp = await client.patch("/api/v1/_ops/widgets/x", json={"name": None})
    assert resp.status == 400
    assert (await _problem(resp))["field"] == "name"


async def test_a_response_off_its_schema_is_caught(client: TestClient) -> None:
    resp = await client.get("/api/v1/_ops/liar")
    assert resp.status == 500
    assert "size" in (await _problem(resp))["detail"]


def test_document_comes_from_the_classes() -> None:
    doc = build_openapi(table.specs, server_url="http://127.0.0.1")
    listing = doc["paths"]["/api/v1/_ops/widgets"]["get"]
    params = {p["name"]: p for p in listing["parameters"]}
    assert set(params) == {"limit", "cursor", "kind", "since", "owner", "tags", "flag", "from"}
    assert params["limit"]["schema"]["maximum"] == 500
    assert params["kind"]["description"] == "the shape"
    page = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert page["required"] == ["items", "next_cursor"]
    made = doc["paths"]["/api/v1/_ops/widgets"]["post"]
    assert made["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/NewWidget"}
    new = doc["components"]["schemas"]["NewWidget"]
    assert new["required"] == ["name"] and new["additionalProperties"] is False
    assert doc["components"]["schemas"]["WidgetChanges"]["properties"]["note"] == {
        "anyOf": [{"type": "string"}, {"type": "null"}]}
    assert doc["components"]["schemas"]["WidgetOut"]["required"] == ["name", "size"]


def test_typed_operations_of_the_api_have_schemas() -> None:
    """Every operation described by classes documents its response (a 204 documents none)."""
    typed = [s for t in ROUTE_TABLES for s in t.specs if s.typed and s.include_in_schema]
    assert typed, "no operation is typed yet"
    for spec in typed:
        if spec.status == 204:  # no content: nothing to describe
            assert spec.response is None, f"{spec.method} {spec.path} answers 204 but documents a body"
            continue
        assert spec.response is not None, f"{spec.method} {spec.path} has no response schema"
