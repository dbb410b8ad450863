"""The telemetry query and alert-rule API over the memory profile: typed query parameters and bodies (an
unknown or malformed parameter, a mistyped body field: 400s naming them) and answers matching their schemas."""

from __future__ import annotations

import uuid

import attrs
import pytest
from aiohttp.test_utils import TestClient, TestServer

from corral.adapters.otlp.codec import decode_request
from corral.core.errors import Unauthenticated
from corral.core.observe.model import Caller
from corral.entrypoints.bootstrap import start_platform
from corral.entrypoints.config import Settings
from corral.entrypoints.observe_runtime import ObserveRuntime
from corral.entrypoints.web.app import create_app
from corral.entrypoints.web.security import WebAuth
from tests.otlp_payloads import logs_request


@attrs.frozen
class Admin:
    user_id: uuid.UUID
    name: str
    token_project_id: uuid.UUID | None = None


class AdminAuth:
    """Everyone sending X-User is allowed everything (the permission checks are not under test here)."""

    async def authenticate(self, request):
        name = request.headers.get("X-User")
        return Admin(uuid.uuid5(uuid.NAMESPACE_DNS, name), name) if name else None

    async def authorize(self, request, principal, permission, project_id):
        if principal is None:
            raise Unauthenticated("authentication required")


H = {"X-User": "ops"}


@pytest.fixture
async def api(tmp_path):
    platform = await start_platform(Settings(profile="memory", data_dir=tmp_path, validate_responses=True))
    platform.container.register(WebAuth, instance=AdminAuth())
    client = TestClient(TestServer(create_app(platform)))
    await client.start_server()
    rt: ObserveRuntime = platform.resolve(ObserveRuntime)
    message = decode_request("logs", logs_request(3, session_id="sess-api", message="typed query").SerializeToString(),
                             "application/x-protobuf")
    await rt.pipeline.ingest(lambda lookup: rt.codec.logs(message, Caller(), lookup), rt.directory)
    try:
        yield client
    finally:
        await client.close()
        await platform.aclose()


async def _problem(resp) -> dict:
    assert resp.status == 400, await resp.text()
    assert resp.content_type == "application/problem+json"
    return await resp.json()


async def test_the_log_search_takes_its_documented_parameters(api):
    resp = await api.get("/api/v1/observe/logs", headers=H, params=[
        ("session_id", "sess-api"), ("level", "debug,info,warn,error"), ("q", "TYPED"), ("since", "7d"),
        ("until", "2099-01-01T00:00:00Z"), ("limit", "2"), ("project", "")])
    assert resp.status == 200, await resp.text()  # the answer also passed its schema (validate_responses)
    page = await resp.json()
    assert [i["message"] for i in page["items"]] == ["typed query"] * 2
    assert page["next_cursor"]
    resp = await api.get("/api/v1/observe/logs", headers=H, params={"session_id": "sess-api",
                                                                   "cursor": page["next_cursor"], "limit": "2"})
    assert [i["message"] for i in (await resp.json())["items"]] == ["typed query"]


@pytest.mark.parametrize(("query", "field"), [
    ("sevice=api", "sevice"),  # a misspelt parameter is no longer ignored
    ("limit=ten", "limit"),
    ("limit=501", "limit"),
    ("limit=1&limit=2", "limit"),
    ("level=loud", "level"),
    ("attr=no-colon", "attr"),
    ("since=yesterday", "since"),
    ("trace_id=xyz", "trace_id"),
    ("cursor=forged", "cursor"),
])
async def test_a_bad_or_unknown_log_query_parameter_is_a_400_naming_it(api, query, field):
    problem = await _problem(await api.get(f"/api/v1/observe/logs?{query}", headers=H))
    assert problem["field"] == field
    assert field in problem["detail"]


@pytest.mark.parametrize(("path", "field"), [
    ("/api/v1/observe/metrics?step=60", "name"),
    ("/api/v1/observe/metrics?name=m&agg=median", "agg"),
    ("/api/v1/observe/metrics?name=m&step=soon", "step"),
    ("/api/v1/observe/sessions/s/timeline?limit=0", "limit"),
    ("/api/v1/alerts?status=open", "status"),
    ("/api/v1/alert-rules?limit=5", "limit"),
    ("/api/v1/observe/traces/" + "a" * 32 + "?since=1h", "since"),
])
async def test_the_other_reads_refuse_bad_parameters_too(api, path, field):
    assert (await _problem(await api.get(path, headers=H)))["field"] == field


RULE = {"name": "errors", "query": "logs: level=error window=5m", "condition": "gt", "threshold": 1}


@pytest.mark.parametrize(("change", "field"), [
    ({"threshold": "1"}, "threshold"),
    ({"for_seconds": 1.5}, "for_seconds"),
    ({"enabled": "yes"}, "enabled"),
    ({"notify_channels": "email"}, "notify_channels"),
    ({"notify_channels": ["pager"]}, "notify_channels"),
    ({"condition": "above"}, "condition"),
    ({"project": 7}, "project"),
    ({"owner": "me"}, "owner"),
])
async def test_a_wrongly_typed_alert_rule_body_is_a_400_naming_the_field(api, change, field):
    problem = await _problem(await api.post("/api/v1/alert-rules", headers=H, json={**RULE, **change}))
    assert problem["field"] == field
    assert (await (await api.get("/api/v1/alert-rules", headers=H)).json())["items"] == []  # nothing stored


async def test_alert_rules_round_trip_with_partial_updates(api):
    resp = await api.post("/api/v1/alert-rules", headers=H, json={**RULE, "description": "why"})
    assert resp.status == 201, await resp.text()
    rule = await resp.json()
    assert (rule["state"], rule["notify_channels"], rule["project"]) == ("ok", ["in_app"], None)
    url = f"/api/v1/alert-rules/{rule['id']}"
    for bad, field in (({"name": None}, "name"), ({"for_seconds": "60"}, "for_seconds"), ({"x": 1}, "x")):
        assert (await _problem(await api.patch(url, headers=H, json=bad)))["field"] == field
    resp = await api.patch(url, headers=H, json={"description": None, "threshold": 5})
    assert resp.status == 200, await resp.text()
    changed = await resp.json()
    assert (changed["description"], changed["threshold"], changed["name"]) == (None, 5, "errors")
    resp = await api.get("/api/v1/alert-rules", headers=H)
    assert [r["id"] for r in (await resp.json())["items"]] == [rule["id"]]
    assert (await api.get("/api/v1/alerts?status=firing&limit=5", headers=H)).status == 200
    assert (await api.delete(url, headers=H)).status == 204
    assert (await api.get(url, headers=H)).status == 404


async def test_the_system_routes_answer_their_schemas_and_take_no_parameters(api):
    for path in ("/healthz", "/readyz", "/api/v1/version", "/api/v1/openapi.json"):
        assert (await api.get(path)).status == 200, path
    assert (await _problem(await api.get("/api/v1/version?verbose=1")))["field"] == "verbose"
    doc = await (await api.get("/api/v1/openapi.json")).json()
    tail = doc["paths"]["/api/v1/observe/tail"]["get"]
    assert "101" in tail["responses"]
    assert {p["name"] for p in tail["parameters"]} == {"project", "trace_id", "session_id", "service", "level", "q"}
    otlp = doc["paths"]["/v1/logs"]["post"]
    assert set(otlp["requestBody"]["content"]) == {"application/x-protobuf", "application/json"}


async def test_the_session_timeline_carries_the_session_s_messages_from_the_port(api):
    from datetime import UTC, datetime

    from corral.core.observe.model import SessionMessage
    from corral.entrypoints.web.keys import PLATFORM

    asked = []

    class Messages:  # what the agents domain provides in the wiring
        async def messages(self, session_id, project_ids, limit):
            asked.append((session_id, project_ids, limit))
            return [SessionMessage(id=1, timestamp=datetime(2030, 1, 1, tzinfo=UTC), type="message", role="user",
                                   content="Fix it", metadata={"from": "ann"})] if session_id == "sess-api" else []

    api.app[PLATFORM].resolve(ObserveRuntime).queries.messages = Messages()
    resp = await api.get("/api/v1/observe/sessions/sess-api/timeline", headers=H, params={"limit": "5"})
    assert resp.status == 200, await resp.text()  # the answer also passed its schema (validate_responses)
    body = await resp.json()
    assert [i["message"] for i in body["items"]] == ["typed query"] * 3
    assert body["messages"] == [{"id": 1, "timestamp": "2030-01-01T00:00:00+00:00", "type": "message", "role": "user",
                                 "content": "Fix it", "metadata": {"from": "ann"}}]
    assert asked == [("sess-api", None, 5)]
    resp = await api.get("/api/v1/observe/sessions/other/timeline", headers=H)
    assert (await resp.json())["messages"] == []


def test_a_waterfall_span_s_json_is_what_its_response_class_writes():
    from datetime import UTC, datetime

    from corral.core.observe.model import SpanItem
    from corral.core.observe.query import WaterfallSpan
    from corral.entrypoints.web.jsonio import to_json
    from corral.entrypoints.web.routes.observe import waterfall_json
    from corral.entrypoints.web.schemas.observe import WaterfallSpanOut

    span = SpanItem(id=7, start=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), trace_id="a" * 32,
                    span_id="b" * 16, parent_span_id="c" * 16, name="GET /x", service="api", kind="server",
                    status="error", duration_ms=12.5, project_id=uuid.uuid4(), session_id="s1", user_id=None,
                    attributes={"http.route": "/x", "n": [1, {"k": None}]}, events=[{"name": "e"}])
    w = WaterfallSpan(span=span, depth=3, offset_ms=1.23456789)
    out = WaterfallSpanOut(trace_id=span.trace_id, span_id=span.span_id, parent_span_id=span.parent_span_id,
                           name=span.name, service=span.service, kind=span.kind, status=span.status, start=span.start,
                           duration_ms=span.duration_ms, session_id=span.session_id, attributes=span.attributes,
                           events=span.events, depth=3, offset_ms=1.235)
    assert to_json(waterfall_json(w)) == to_json(out)
