"""The secrets REST API over fakes: every route is called and the value never comes back."""

from __future__ import annotations

import base64
import logging
import uuid
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer

from corral.core.secrets.envelope import Envelope
from corral.core.secrets.service import SecretsService
from corral.entrypoints.config import Settings
from corral.entrypoints.web.app import create_app
from corral.entrypoints.web.routes import secrets as secret_routes
from corral.entrypoints.web.security import ProjectLookup, WebAuth
from corral.fakes.clock import FakeClock
from corral.fakes.secrets import FakeCipher, FakeKeyWrapper
from tests.unit.secrets_support import audit, new_db
from tests.unit.webstub import HeaderAuth, StubPlatform

VALUE = "pl41n-t3xt-VALUE-do-not-leak"
PROJECT_ID = uuid.uuid4()


class Lookup:
    async def project_id(self, owner, name):
        from corral.core.errors import NotFound

        if (owner, name) == ("acme", "web"):
            return PROJECT_ID
        raise NotFound(f"project {owner}/{name} not found")

    async def project_ref(self, ref):
        return PROJECT_ID


@pytest.fixture
async def api():
    db = new_db()
    platform = StubPlatform(settings=Settings(profile="memory", validate_responses=True))
    env = Envelope(FakeCipher(), FakeKeyWrapper(b"k" * 32))
    platform.container.register(SecretsService, instance=SecretsService(db, env, FakeClock()))
    platform.container.register(WebAuth, instance=HeaderAuth())
    platform.container.register(ProjectLookup, instance=Lookup())
    client = TestClient(TestServer(create_app(platform)))
    await client.start_server()
    yield client, db
    await client.close()


ADMIN = {"X-User": "root", "X-Perms": "secret:write,secret:read"}
DEV = {"X-User": "dev", "X-Perms": "secret:read"}


def forms(value: str) -> list[str]:
    return [value, base64.b64encode(value.encode()).decode().rstrip("="), quote(value, safe="")]


async def test_every_route_never_returns_the_value(api, caplog):
    client, db = api
    caplog.set_level(logging.DEBUG)
    called: set[tuple[str, str]] = set()
    bodies: list[str] = []

    async def call(method, path, template, *, status, headers=ADMIN, **kw):
        resp = await client.request(method, path, headers=headers, **kw)
        text = await resp.text()
        assert resp.status == status, text
        bodies.append(text + repr(dict(resp.headers)))
        called.add((method, template))
        return text

    p, g = "/api/v1/projects/acme/web/secrets", "/api/v1/secrets"
    for base, tpl in ((p, secret_routes.PROJECT), (g, secret_routes.GLOBAL)):
        text = await call("PUT", f"{base}/TOKEN", tpl + "/{secret}", status=201, json={"value": VALUE, "scope": "all"})
        assert '"version":1' in text and '"name":"TOKEN"' in text
        await call("PUT", f"{base}/TOKEN", tpl + "/{secret}", status=200, json={"value": VALUE + "2", "cas": 1})
        await call("PUT", f"{base}/TOKEN", tpl + "/{secret}", status=409, json={"value": VALUE + "3", "cas": 1})
        await call("PUT", f"{base}/TOKEN", tpl + "/{secret}", status=400, json={"value": VALUE, "scope": "nope"})
        await call("PUT", f"{base}/TOKEN", tpl + "/{secret}", status=400, json={"value": VALUE, "extra": VALUE})
        await call("GET", base, tpl, status=200)
        await call("GET", f"{base}/TOKEN", tpl + "/{secret}", status=200)
        await call("DELETE", f"{base}/TOKEN?versions=1", tpl + "/{secret}", status=204)
        await call("POST", f"{base}/TOKEN/undelete", tpl + "/{secret}/undelete", status=200, json={"versions": [1]})
        await call("POST", f"{base}/TOKEN/destroy", tpl + "/{secret}/destroy", status=200, json={"versions": [1]})
        await call("DELETE", f"{base}/TOKEN?purge=true", tpl + "/{secret}", status=204)
        await call("GET", f"{base}/TOKEN", tpl + "/{secret}", status=404)
    assert called == {(s.method, s.path) for s in secret_routes.routes.specs}
    everything = "\n".join(bodies) + caplog.text + repr(audit(db))
    for form in forms(VALUE):
        assert form not in everything


async def test_list_shows_names_versions_and_no_values(api):
    client, _ = api
    await client.put("/api/v1/projects/acme/web/secrets/A", headers=ADMIN, json={"value": VALUE})
    await client.put("/api/v1/projects/acme/web/secrets/A", headers=ADMIN, json={"value": VALUE + "x"})
    resp = await client.get("/api/v1/projects/acme/web/secrets", headers=DEV)
    body = await resp.json()
    assert resp.status == 200
    assert [(i["name"], i["version"], i["scope"]) for i in body["items"]] == [("A", 2, "pipeline")]
    assert [v["version"] for v in body["items"][0]["versions"]] == [1, 2]
    assert "value" not in body["items"][0]


async def test_permissions_and_unknown_project(api):
    client, db = api
    resp = await client.put("/api/v1/projects/acme/web/secrets/A", headers=DEV, json={"value": VALUE})
    assert resp.status == 403
    resp = await client.put("/api/v1/projects/acme/web/secrets/A", json={"value": VALUE})
    assert resp.status == 401
    resp = await client.put("/api/v1/projects/acme/nope/secrets/A", headers=ADMIN, json={"value": VALUE})
    assert resp.status == 404
    resp = await client.get("/api/v1/secrets", headers=DEV)
    assert resp.status == 403
    assert not db.db.secrets.secrets


async def test_bad_name_and_missing_value_name_the_field(api):
    client, _ = api
    resp = await client.put("/api/v1/secrets/bad-name", headers=ADMIN, json={"value": VALUE})
    assert resp.status == 400 and (await resp.json())["field"] == "name"
    resp = await client.put("/api/v1/secrets/OK", headers=ADMIN, json={"scope": "all"})
    assert resp.status == 400 and (await resp.json())["field"] == "value"
    resp = await client.delete("/api/v1/secrets/OK?versions=x", headers=ADMIN)
    assert resp.status in (400, 404)


async def test_openapi_documents_every_secrets_route_and_value_is_write_only(api):
    client, _ = api
    doc = await (await client.get("/api/v1/openapi.json")).json()
    paths = doc["paths"]
    assert "/api/v1/projects/{owner}/{name}/secrets/{secret}" in paths
    assert "/api/v1/secrets" in paths
    put = paths["/api/v1/secrets/{secret}"]["put"]
    ref = put["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert schema["properties"]["value"]["writeOnly"] is True
    assert schema["required"] == ["value"] and schema["additionalProperties"] is False
    # no response of the secrets API can carry a value: their classes have no such field
    for path, ops in paths.items():
        for op in ops.values():
            if "secrets" not in op["tags"]:
                continue
            for response in op["responses"].values():
                for content in response.get("content", {}).values():
                    assert "value" not in _properties(doc, content["schema"]), path


def _properties(doc: dict, schema: dict) -> set[str]:
    """Every property name reachable from ``schema`` (through $ref, items and properties)."""
    seen: set[str] = set()
    todo = [schema]
    while todo:
        s = todo.pop()
        if "$ref" in s:
            s = doc["components"]["schemas"][s["$ref"].rsplit("/", 1)[-1]]
        for name, sub in s.get("properties", {}).items():
            seen.add(name)
            todo.append(sub)
        if "items" in s:
            todo.append(s["items"])
        todo.extend(s.get("anyOf", []))
    return seen


async def test_delete_query_and_versions_body_are_typed(api):
    client, _ = api
    base = "/api/v1/projects/acme/web/secrets/K"
    for n in range(3):
        resp = await client.put(base, headers=ADMIN, json={"value": f"{VALUE}{n}"})
        assert resp.status in (200, 201)
    resp = await client.delete(base + "?versions=1,2", headers=ADMIN)  # today's comma spelling
    assert resp.status == 204
    info = await (await client.get(base, headers=ADMIN)).json()
    assert [v["deleted_at"] is not None for v in info["versions"]] == [True, True, False]
    for query, field in (("versions=1,x", "versions"), ("versions=%C2%B2", "versions"), ("purge=maybe", "purge"),
                         ("purge=true&versions=1", "versions"), ("force=1", "force")):
        resp = await client.delete(f"{base}?{query}", headers=ADMIN)
        assert resp.status == 400, query
        assert (await resp.json())["field"] == field, query
    resp = await client.post(base + "/undelete", headers=ADMIN)  # no body: the current version
    assert resp.status == 200
    resp = await client.post(base + "/undelete", headers=ADMIN, json={"versions": "1"})
    assert resp.status == 400 and (await resp.json())["field"] == "versions"
    resp = await client.post(base + "/destroy", headers=ADMIN, json={"versions": [1], "all": True})
    assert resp.status == 400 and (await resp.json())["field"] == "all"
    resp = await client.get(base + "?verbose=1", headers=ADMIN)
    assert resp.status == 400 and (await resp.json())["field"] == "verbose"


async def test_a_bad_scope_names_the_choices_and_never_echoes_what_was_sent(api):
    client, _ = api
    resp = await client.put("/api/v1/secrets/K", headers=ADMIN, json={"value": "v", "scope": VALUE})
    problem = await resp.json()
    assert resp.status == 400 and problem["field"] == "scope"
    assert "'pipeline', 'agent', 'deploy', 'all'" in problem["detail"]
    assert VALUE not in await resp.text()
