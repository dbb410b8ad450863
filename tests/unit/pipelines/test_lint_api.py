"""POST /api/v1/pipelines/lint through the aiohttp app: authenticated, YAML in, errors with lines out."""

from __future__ import annotations

import uuid

import attrs
import pytest
from aiohttp.test_utils import TestClient, TestServer

from corral.adapters.pipeline_yaml import PyYamlPipelineFileParser
from corral.core.errors import Unauthenticated
from corral.core.pipelines.ports import MAX_FILE_BYTES, PipelineFileParser
from corral.entrypoints.config import Settings
from corral.entrypoints.web.app import create_app
from corral.entrypoints.web.openapi import build_openapi
from corral.entrypoints.web.routes import pipelines as pipeline_routes
from corral.entrypoints.web.security import WebAuth
from tests.unit.webstub import StubPlatform


@attrs.frozen
class Caller:
    user_id: uuid.UUID
    name: str


class HeaderAuth:
    async def authenticate(self, request):
        return Caller(uuid.uuid4(), "ann") if request.headers.get("X-User") == "ann" else None

    async def authorize(self, request, principal, permission, project_id):
        if principal is None:
            raise Unauthenticated("authentication required")


@pytest.fixture
async def client():
    platform = StubPlatform(settings=Settings(profile="memory", validate_responses=True))
    platform.container.register(PipelineFileParser, instance=PyYamlPipelineFileParser())
    platform.container.register(WebAuth, instance=HeaderAuth())
    c = TestClient(TestServer(create_app(platform)))
    await c.start_server()
    yield c
    await c.close()


URL = "/api/v1/pipelines/lint"
YAML_HEADERS = {"X-User": "ann", "Content-Type": "application/yaml"}

GOOD = """\
steps:
  - name: test
    image: python:3.12
    commands: [pip install -e ., pytest]
  - name: deploy
    image: alpine
    commands: [./deploy.sh]
    when:
      branch: main
"""


async def test_valid_file(client):
    resp = await client.post(URL, data=GOOD, headers=YAML_HEADERS)
    assert resp.status == 200
    assert await resp.json() == {"valid": True, "errors": [],
                                 "workflows": [{"name": "woodpecker", "steps": ["test", "deploy"]}]}


async def test_invalid_file_lists_every_error_with_its_line(client):
    text = "steps:\n  test:\n    image: golang\n    comand: [go test]\n    timeout: soon\n"
    resp = await client.post(URL + "?file=.woodpecker/build.yaml", data=text,
                             headers={"X-User": "ann", "Content-Type": "text/plain; charset=utf-8"})
    assert resp.status == 200
    assert await resp.json() == {"valid": False, "workflows": [], "errors": [
        {"message": "unknown key (did you mean commands?)", "line": 4, "path": "steps.test.comand"},
        {"message": "'soon' is not a duration: write it like 90s, 10m, 1h30m or 7d", "line": 5,
         "path": "steps.test.timeout"},
    ]}


async def test_yaml_syntax_error_and_bomb(client):
    resp = await client.post(URL, data="steps:\n  a:\n\timage: x\n", headers=YAML_HEADERS)
    body = await resp.json()
    assert resp.status == 200 and not body["valid"] and body["errors"][0]["line"] == 3
    bomb = ["a0: &a0 [x,x,x,x,x,x,x,x,x,x]"] + [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]"
                                               for i in range(1, 9)] + ["steps: *a8"]
    resp = await client.post(URL, data="\n".join(bomb), headers=YAML_HEADERS)
    body = await resp.json()
    assert resp.status == 200 and not body["valid"] and "expands to more than" in body["errors"][0]["message"]


async def test_refusals(client):
    resp = await client.post(URL, data=GOOD, headers={"Content-Type": "application/yaml"})
    assert resp.status == 401
    resp = await client.post(URL, data="x" * (MAX_FILE_BYTES + 1), headers=YAML_HEADERS)
    assert resp.status == 413
    resp = await client.post(URL, data=GOOD, headers={"X-User": "ann", "Content-Type": "application/json"})
    assert resp.status == 400 and "application/yaml" in (await resp.json())["detail"]
    resp = await client.post(URL + "?file=../x.yaml", data=GOOD, headers=YAML_HEADERS)
    assert resp.status == 400
    resp = await client.post(URL + "?nope=1", data=GOOD, headers=YAML_HEADERS)
    assert resp.status == 400
    resp = await client.post(URL, data=b"\xff\xfe", headers=YAML_HEADERS)
    assert resp.status == 400


def test_openapi_documents_a_yaml_body_and_the_result():
    doc = build_openapi(pipeline_routes.routes.specs, server_url="http://x")
    op = doc["paths"]["/api/v1/pipelines/lint"]["post"]
    assert set(op["requestBody"]["content"]) == {"application/yaml", "text/plain"}
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/LintResult"}
    assert [p["name"] for p in op["parameters"]] == ["file"]
    assert set(doc["components"]["schemas"]["LintError"]["properties"]) == {"message", "line", "path"}
