"""Secrets through the whole running platform (PostgreSQL, Valkey, real identity): every secrets route over
HTTP never returns the value, the database dump and the logs hold no plaintext, a wrong master key stops a
production start, and `corral secrets rotate-master-key` re-wraps everything."""

from __future__ import annotations

import json
import logging
import os
import uuid
from urllib.parse import quote

import asyncpg
import attrs
import pytest
from aiohttp.test_utils import TestClient, TestServer

from corral.core.identity.model import AuthMethod, Principal
from corral.core.secrets.commands import PutSecret
from corral.core.secrets.model import SecretScope, SecretUndecryptable
from corral.core.secrets.reader import SecretReader
from corral.entrypoints.bootstrap import start_platform
from corral.entrypoints.web.app import create_app
from corral.entrypoints.web.routes import secrets as secret_routes
from corral.entrypoints.web.security import ProjectLookup
from tests.integration.platformkit import (
    PASSWORD,
    add_project_of_root,
    b64,
    pg_dump_data,
    platform_settings,
    rotate_master_key,
)

pytestmark = pytest.mark.integration

VALUE = f"Pl41n-{uuid.uuid4().hex}-s3cret/+="



def forms(value: str) -> list[str]:
    raw = value.encode()
    return [value, b64(raw).rstrip("="), quote(value, safe=""), raw.hex()]


class Lookup:
    def __init__(self, project_id: uuid.UUID) -> None:
        self.id = project_id

    async def project_id(self, owner: str, name: str) -> uuid.UUID:
        from corral.core.errors import NotFound

        if (owner, name) != ("root", "web"):
            raise NotFound(f"project {owner}/{name} not found")
        return self.id

    async def project_ref(self, ref: str) -> uuid.UUID:
        return self.id


@pytest.fixture
def settings(db_dsn, valkey_url, tmp_path):
    return platform_settings(db_dsn, valkey_url, tmp_path)



async def test_routes_dump_and_logs_never_hold_the_value(settings, db_dsn, caplog):
    caplog.set_level(logging.DEBUG)
    platform = await start_platform(settings)
    try:
        admin_id, project_id = await add_project_of_root(db_dsn)
        platform.register(ProjectLookup, Lookup(project_id))
        client = TestClient(TestServer(create_app(platform)))
        await client.start_server()
        try:
            resp = await client.post("/api/v1/auth/login", json={"name": "root", "password": PASSWORD})
            assert resp.status == 200, await resp.text()
            csrf = (await resp.json())["csrf_token"]
            body = {"name": "secrets-test", "scopes": ["secret:read", "secret:write"]}
            resp = await client.post("/api/v1/tokens", json=body, headers={"X-CSRF-Token": csrf})
            assert resp.status == 201, await resp.text()
            auth = {"Authorization": f"Bearer {(await resp.json())['token']}"}
            client.session.cookie_jar.clear()
            seen: list[str] = []
            called: set[tuple[str, str]] = set()

            async def call(method, path, template, status, **kw):
                resp = await client.request(method, path, headers=auth, **kw)
                text = await resp.text()
                assert resp.status == status, text
                seen.append(text + json.dumps(dict(resp.headers)))
                called.add((method, template))

            for base, tpl in (("/api/v1/projects/root/web/secrets", secret_routes.PROJECT),
                              ("/api/v1/secrets", secret_routes.GLOBAL)):
                one = tpl + "/{secret}"
                await call("PUT", f"{base}/DEPLOY_TOKEN", one, 201, json={"value": VALUE, "scope": "all"})
                await call("PUT", f"{base}/DEPLOY_TOKEN", one, 200, json={"value": VALUE + "v2", "cas": 1})
                await call("PUT", f"{base}/DEPLOY_TOKEN", one, 409, json={"value": VALUE + "v3", "cas": 1})
                await call("PUT", f"{base}/DEPLOY_TOKEN", one, 400, json={"value": VALUE, "scope": VALUE})
                await call("GET", base, tpl, 200)
                await call("GET", f"{base}/DEPLOY_TOKEN", one, 200)
                await call("DELETE", f"{base}/DEPLOY_TOKEN?versions=1", one, 204)
                await call("POST", f"{base}/DEPLOY_TOKEN/undelete", one + "/undelete", 200, json={"versions": [1]})
                await call("POST", f"{base}/DEPLOY_TOKEN/destroy", one + "/destroy", 200, json={"versions": [1]})
                await call("PUT", f"{base}/KEPT", one, 201, json={"value": VALUE + "kept", "scope": "pipeline"})
                await call("PUT", f"{base}/GONE", one, 201, json={"value": VALUE + "gone"})
                await call("DELETE", f"{base}/GONE?purge=true", one, 204)
            assert called == {(s.method, s.path) for s in secret_routes.routes.specs}
            resp = await client.get("/api/v1/secrets")
            assert resp.status == 401
        finally:
            await client.close()
        reader: SecretReader = platform.resolve(SecretReader)
        root = Principal(user_id=admin_id, name="root", method=AuthMethod.SYSTEM)
        values = await reader.read_many(root, project_id, ["DEPLOY_TOKEN", "KEPT"], SecretScope.PIPELINE, "build 1")
        assert values == {"DEPLOY_TOKEN": VALUE + "v2", "KEPT": VALUE + "kept"}
        conn = await asyncpg.connect(db_dsn)
        try:  # tampering in the real database fails loudly
            await conn.execute(
                "UPDATE secret_versions SET ciphertext = set_byte(ciphertext, 30, get_byte(ciphertext, 30) # 4)"
                " WHERE secret_id = (SELECT id FROM secrets WHERE name = 'KEPT' AND project_id = $1)", project_id
            )
        finally:
            await conn.close()
        with pytest.raises(SecretUndecryptable):
            await reader.read(root, project_id, "KEPT", SecretScope.PIPELINE, "build 2")
    finally:
        await platform.aclose()
    dump = await pg_dump_data(db_dsn)
    assert b"DEPLOY_TOKEN" in dump and b"secret.read" in dump
    everything = "\n".join(seen) + caplog.text
    for value in (VALUE, VALUE + "v2", VALUE + "kept", VALUE + "gone"):
        for form in forms(value):
            assert form.encode() not in dump
            assert form not in everything


async def test_wrong_master_key_stops_production_and_rotation_cli_rewraps(settings, db_dsn, monkeypatch):
    platform = await start_platform(settings)
    try:
        from corral.core.secrets.service import SecretsService

        service: SecretsService = platform.resolve(SecretsService)
        conn = await asyncpg.connect(db_dsn)
        try:
            admin_id = await conn.fetchval("SELECT id FROM users WHERE name = 'root'")
        finally:
            await conn.close()
        who = Principal(user_id=admin_id, name="root", method=AuthMethod.SYSTEM)
        for i in range(5):
            await service.put(who, None, f"G{i}", PutSecret(value=f"{VALUE}-{i}", scope=SecretScope.ALL))
    finally:
        await platform.aclose()
    wrong = attrs.evolve(settings, master_key=b64(os.urandom(32)), environment="production")
    with pytest.raises(SecretUndecryptable, match="master key is wrong"):
        await start_platform(wrong)
    missing = attrs.evolve(settings, master_key=None, environment="production")
    from corral.entrypoints.config import ConfigError

    with pytest.raises(ConfigError, match="CORRAL_MASTER_KEY must be set in production"):
        await start_platform(missing)

    new_key = b64(os.urandom(32))
    report = await rotate_master_key(monkeypatch, settings, new_key, batch_size=2)
    assert report["rewrapped"] == 5 and report["done"] is True
    only_new = attrs.evolve(settings, master_key=new_key, environment="production")
    platform = await start_platform(only_new)
    try:
        reader: SecretReader = platform.resolve(SecretReader)
        got = await reader.read(who, None, "G3", SecretScope.DEPLOY, "check")
        assert got == f"{VALUE}-3"
    finally:
        await platform.aclose()
