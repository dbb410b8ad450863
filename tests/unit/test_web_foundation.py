"""The web layer's foundation: health, readiness, problem+json, default deny, OpenAPI."""

from __future__ import annotations

import json
import logging

import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from corral.core.errors import Conflict, InvalidInput, Unavailable
from corral.entrypoints.web.app import create_app
from corral.entrypoints.web.jsonio import read_body
from corral.entrypoints.web.routes import ROUTE_TABLES
from corral.entrypoints.web.routing import RouteTable, openapi_path, spec_of
from tests.unit.webstub import StubPlatform


@attrs.frozen
class Thing:
    name: str
    size: int = 1


extra = RouteTable(tag="test")


@extra.post("/api/v1/_test/things", summary="make a thing", public=True, request_body=Thing)
async def make_thing(request: web.Request) -> web.StreamResponse:
    thing = await read_body(request, Thing)
    if thing.name == "dup":
        raise Conflict("a thing named dup already exists")
    if thing.name == "boom":
        raise RuntimeError("secret internals")
    if thing.name == "down":
        raise Unavailable("PostgreSQL is unavailable (connection refused); retry shortly", retry_after=1)
    return web.json_response(attrs.asdict(thing), status=201)


@extra.get("/api/v1/_test/private", summary="needs a user", account=False)
async def private(_request: web.Request) -> web.StreamResponse:
    return web.json_response({"ok": True})


async def _client(platform: StubPlatform) -> TestClient:
    app = create_app(platform)
    extra.mount(app)

    async def naked(_r: web.Request) -> web.Response:  # mounted outside the registry
        return web.json_response({"leak": True})

    app.router.add_get("/api/v1/_test/naked", naked)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def client():
    platform = StubPlatform()

    async def ok() -> None:
        return None

    async def down() -> None:
        raise ConnectionRefusedError("connection refused")

    platform.health_checks.update({"postgresql": ok, "valkey": down})
    c = await _client(platform)
    yield c
    await c.close()


async def test_healthz_is_ok(client: TestClient) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}
    assert resp.headers["X-Request-Id"]


async def test_readyz_names_the_failing_dependency(client: TestClient) -> None:
    resp = await client.get("/readyz")
    assert resp.status == 503
    body = await resp.json()
    assert body["checks"]["postgresql"] == "ok"
    # anonymous callers learn which dependency fails, not why (addresses, driver messages)
    assert body["checks"]["valkey"] == "unavailable"
    assert "refused" not in json.dumps(body)
    assert "valkey" in body["detail"]
    assert resp.headers["Retry-After"] == "1"


async def test_healthz_fails_when_a_child_was_given_up_on() -> None:
    platform = StubPlatform()
    reason: list[str | None] = [None]
    platform.liveness_checks["valkey"] = lambda: reason[0]
    c = await _client(platform)
    try:
        assert (await c.get("/healthz")).status == 200
        reason[0] = "the embedded Valkey is down for 61 s and could not be restarted within 60 s (OSError: x)"
        resp = await c.get("/healthz")
        assert resp.status == 503
        assert "could not be restarted" in (await resp.json())["detail"]
        reason[0] = None  # brought back after all
        assert (await c.get("/healthz")).status == 200
    finally:
        await c.close()


async def test_unknown_route_is_problem_json(client: TestClient) -> None:
    resp = await client.get("/api/v1/nope")
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["status"] == 404


async def test_bad_body_names_the_field(client: TestClient) -> None:
    resp = await client.post("/api/v1/_test/things", json={"name": "x", "size": "big"})
    assert resp.status == 400
    body = await resp.json()
    assert body["field"] == "size"
    resp = await client.post("/api/v1/_test/things", data=b"{not json")
    assert resp.status == 400
    assert "JSON" in (await resp.json())["detail"]
    resp = await client.post("/api/v1/_test/things", json={"size": 3})
    assert resp.status == 400
    assert (await resp.json())["field"] == "name"


async def test_nul_deep_json_and_bad_content_encoding_are_400s_naming_what_is_wrong(client: TestClient) -> None:
    """Found by a black-box attack: each of these was a 500 (RecursionError, aiohttp's decoding error, NUL
    refused by PostgreSQL deep inside a handler). They are refused at the edge, naming the field."""
    cases = [
        (b"[" * 100_000, {}, "body"),
        (b'{"name": "a\\u0000b"}', {}, "name"),
        (b'{"name": "x", "n\\u0000": 1}', {}, "n\\u0000"),
        (b'{"name": "x", "size": 1, "deep": [{"k": "\\u0000"}]}', {}, "deep[0].k"),
        (b'{"name": "x"}', {"Content-Encoding": "gzip"}, "Content-Encoding"),
        (b'{"name": "x"}', {"Content-Encoding": "deflate"}, "Content-Encoding"),
        (b'{"name": "x", "size": 1e400}', {}, "size"),
        (b'{"name": "x", "size": 100000000000000000000000000000}', {}, "size"),
        (b'{"name": "x", "extra": 1}', {}, "extra"),
    ]
    for body, headers, field in cases:
        resp = await client.post("/api/v1/_test/things", data=body,
                                 headers={"Content-Type": "application/json", "Connection": "close", **headers})
        problem = await resp.json(content_type=None)
        assert resp.status == 400, (body[:60], problem)
        assert resp.content_type == "application/problem+json"
        assert problem["field"] == field, (body[:60], problem)
    for target, field in (("/api/v1/_test/things?x=a%00b", "x"), ("/api/v1/_test/th%00ings", "path"),
                          ("/healthz?a%00=1", "a\\u0000")):
        resp = await client.get(target)
        problem = await resp.json(content_type=None)
        assert resp.status == 400 and problem["field"] == field, (target, problem)


async def test_core_errors_map_to_statuses(client: TestClient) -> None:
    resp = await client.post("/api/v1/_test/things", json={"name": "dup"})
    assert resp.status == 409
    assert (await resp.json())["detail"] == "a thing named dup already exists"


async def test_unexpected_errors_do_not_leak(client: TestClient) -> None:
    resp = await client.post("/api/v1/_test/things", json={"name": "boom"}, headers={"X-Request-Id": "req-123"})
    assert resp.status == 500
    body = await resp.json()
    assert "secret internals" not in await resp.text()
    assert body["request_id"] == "req-123"


async def test_a_503_is_logged_at_warning_not_error(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="corral")
    resp = await client.post("/api/v1/_test/things", json={"name": "down"})
    assert resp.status == 503 and resp.headers["Retry-After"] == "1"
    mine = [r for r in caplog.records if r.name.startswith("corral")]
    assert not [r for r in mine if r.levelno >= logging.ERROR], [r.getMessage() for r in mine]
    access = [r for r in mine if getattr(r, "http_status", None) == 503]
    assert [r.levelname for r in access] == ["WARNING"]


async def test_default_deny(client: TestClient) -> None:
    resp = await client.get("/api/v1/_test/private")
    assert resp.status == 401
    resp = await client.get("/api/v1/_test/naked")
    assert resp.status == 403
    assert "leak" not in await resp.text()


async def test_openapi_lists_every_registered_route(client: TestClient) -> None:
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    for table in ROUTE_TABLES:
        for spec in table.specs:
            if not spec.include_in_schema:
                continue
            path = openapi_path(spec.path)[0]  # '{path:.*}' is documented as '{path}'
            assert path in doc["paths"], path
            assert spec.method.lower() in doc["paths"][path]
    assert doc["paths"]["/healthz"]["get"]["security"] == []


def test_every_mounted_route_is_declared() -> None:
    app = create_app(StubPlatform())
    for route in app.router.routes():
        assert spec_of(route.handler) is not None, route


def test_invalid_input_carries_field() -> None:
    err = InvalidInput("limit must be positive", field="limit")
    assert err.field == "limit"


async def test_ui_page_is_served_with_security_headers(client: TestClient) -> None:
    resp = await client.get("/ui/")
    assert resp.status == 200
    assert "Corral" in await resp.text()
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    resp = await client.get("/ui/static/../../pyproject.toml")
    assert resp.status == 404
    resp = await client.get("/ui/static/ui.js")
    assert resp.status == 200
    assert resp.content_type == "text/javascript"


def test_alert_rule_create_and_patch_are_documented_from_their_request_classes() -> None:
    from corral.entrypoints.web.openapi import build_openapi

    doc = build_openapi([s for t in ROUTE_TABLES for s in t.specs], server_url="http://x")
    create = doc["paths"]["/api/v1/alert-rules"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    patch = doc["paths"]["/api/v1/alert-rules/{rule_id}"]["patch"]["requestBody"]["content"]["application/json"]
    assert create == {"$ref": "#/components/schemas/AlertRuleCreate"}
    assert patch["schema"] == {"$ref": "#/components/schemas/AlertRuleChanges"}
    schemas = doc["components"]["schemas"]
    assert schemas["AlertRuleCreate"]["required"] == ["name", "query", "condition"]
    assert schemas["AlertRuleCreate"]["additionalProperties"] is False
    assert schemas["AlertRuleCreate"]["properties"]["condition"] == {"enum": ["gt", "lt", "eq", "absent"]}
    assert schemas["AlertRuleCreate"]["properties"]["notify_channels"]["items"] == {
        "enum": ["in_app", "email", "webhook"]}
    assert schemas["AlertRuleChanges"]["required"] == []
    assert schemas["AlertRuleChanges"]["additionalProperties"] is False


class _DriverDown(ConnectionError):
    """Stands for a driver's connection error that no adapter translated."""


transient = RouteTable(tag="test")


@transient.get("/api/v1/_test/driver-down", summary="a dependency is down", public=True, params=None,
               response={"type": "object"})
async def driver_down(_request: web.Request) -> web.StreamResponse:
    raise _DriverDown("connection to 10.0.0.5:5432 refused")


async def test_an_untranslated_driver_outage_is_a_503_with_retry_after() -> None:
    platform = StubPlatform()
    platform.transient_errors = (_DriverDown,)
    app = create_app(platform)
    transient.mount(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        resp = await client.get("/api/v1/_test/driver-down")
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "1"
        body = await resp.text()
        assert "10.0.0.5" not in body  # no driver message or address reaches the caller
        plain = StubPlatform()  # a platform that lists no transient errors keeps the 500
        other = create_app(plain)
        transient.mount(other)
        client2 = TestClient(TestServer(other))
        await client2.start_server()
        try:
            assert (await client2.get("/api/v1/_test/driver-down")).status == 500
        finally:
            await client2.close()
    finally:
        await client.close()
