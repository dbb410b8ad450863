"""Identity wired by the production bootstrap on PostgreSQL + Valkey: first admin, login, tokens, audit, CLI."""

from __future__ import annotations

import io
import json

import asyncpg
import attrs
import pytest
from aiohttp.test_utils import TestClient, TestServer

from corral.core.identity.kit import IdentityServices
from corral.entrypoints.bootstrap import Platform, start_platform
from corral.entrypoints.config import Settings
from corral.entrypoints.web.app import create_app

pytestmark = pytest.mark.integration

ADMIN_PW = "first admin password"


@pytest.fixture(autouse=True)
def identity_only(monkeypatch):
    """Wire only the identity domain: these tests must not depend on other domains' start-up."""
    from corral.entrypoints import bootstrap
    from corral.entrypoints.identity_wiring import wire_identity

    monkeypatch.setattr(bootstrap, "WIRINGS", [wire_identity])


@pytest.fixture
def settings(db_dsn, valkey_url, tmp_path):
    return Settings(database_url=db_dsn, valkey_url=valkey_url, data_dir=tmp_path, log_level="error",
                    bootstrap_admin_name="root", bootstrap_admin_password=ADMIN_PW,
                    bootstrap_admin_email="root@example.com")


async def test_first_admin_login_token_audit(settings, db_dsn):
    platform = await start_platform(settings)
    client = TestClient(TestServer(create_app(platform)))
    await client.start_server()
    try:
        resp = await client.post("/api/v1/auth/login", json={"name": "root", "password": "wrong password"})
        assert resp.status == 401
        resp = await client.post("/api/v1/auth/login", json={"name": "root", "password": ADMIN_PW})
        assert resp.status == 200
        csrf = {"X-CSRF-Token": (await resp.json())["csrf_token"]}
        me = await (await client.get("/api/v1/me")).json()
        assert me["roles"] == [{"role": "admin", "project": None}]
        assert "admin:users" in me["permissions"]
        resp = await client.post("/api/v1/tokens", headers=csrf, json={"name": "ci", "scopes": ["project:read"]})
        assert resp.status == 201
        token = (await resp.json())["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await (await client.get("/api/v1/me", headers=bearer)).json())["permissions"] == ["project:read"]
        resp = await client.post("/api/v1/users", headers=csrf, json={
            "name": "dev", "email": "dev@example.com", "password": "developer password"})
        assert resp.status == 201
        audit = await (await client.get("/api/v1/audit?limit=50")).json()
        actions = [e["action"] for e in audit["items"]]
        for action in ("auth.login_failed", "auth.login", "token.create", "user.create", "role.create"):
            assert action in actions
        await ids_flush(platform)
    finally:
        await client.close()
        await platform.aclose()
    conn = await asyncpg.connect(db_dsn)
    try:
        dump = json.dumps([dict(r) for r in await conn.fetch("SELECT * FROM audit_log")], default=str)
        token_row = await conn.fetchrow("SELECT token_hash, prefix, last_used_at FROM api_tokens")
        users = await conn.fetch("SELECT password_hash FROM users")
    finally:
        await conn.close()
    for secret in (ADMIN_PW, "wrong password", "developer password", token):
        assert secret not in dump
    assert token_row["token_hash"] != token
    assert token.startswith(token_row["prefix"])
    assert token_row["last_used_at"] is not None  # written by the batched flush
    assert all(r["password_hash"].startswith("$argon2id$") for r in users)


async def ids_flush(platform: Platform) -> None:
    ids: IdentityServices = platform.resolve(IdentityServices)
    from corral.core.uow import UnitOfWorkFactory

    await ids.usage.flush(platform.resolve(UnitOfWorkFactory))


async def test_bootstrap_admin_only_when_no_user_exists(settings):
    platform = await start_platform(settings)
    await platform.aclose()
    again = await start_platform(attrs.evolve(settings, bootstrap_admin_name="other",
                                              bootstrap_admin_email="o@example.com"))
    try:
        ids: IdentityServices = again.resolve(IdentityServices)
        page = await ids.users.list(limit=10, cursor=None)
        assert [u.name for u in page.items] == ["root"]
    finally:
        await again.aclose()


def test_cli_create_user(db_dsn, valkey_url, tmp_path, monkeypatch, capsys):
    from corral.entrypoints.cli import main

    monkeypatch.setenv("CORRAL_DATABASE_URL", db_dsn)
    monkeypatch.setenv("CORRAL_VALKEY_URL", valkey_url)
    monkeypatch.setenv("CORRAL_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["admin", "create-user", "ada", "--email", "ada@example.com", "--admin", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == "ada"
    assert out["admin"] is True
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["admin", "create-user", "bob", "--email", "bob@example.com"]) == 1
    assert "password" in capsys.readouterr().err


async def test_password_change_on_postgres_and_valkey(settings, db_dsn):
    """Two replicas: a password change ends the session on the other replica at once; tokens keep working."""
    first, second = await start_platform(settings), await start_platform(settings)
    a = TestClient(TestServer(create_app(first)))
    b = TestClient(TestServer(create_app(second)))
    await a.start_server()
    await b.start_server()
    new_pw = "a brand new admin passphrase"
    try:
        login = await (await a.post("/api/v1/auth/login", json={"name": "root", "password": ADMIN_PW})).json()
        assert (await b.post("/api/v1/auth/login", json={"name": "root", "password": ADMIN_PW})).status == 200
        assert (await b.get("/api/v1/me")).status == 200  # cached on replica b
        resp = await a.post("/api/v1/tokens", headers={"X-CSRF-Token": login["csrf_token"]},
                            json={"name": "ci", "scopes": ["project:read"]})
        bearer = {"Authorization": f"Bearer {(await resp.json())['token']}"}
        wrong = await a.post("/api/v1/me/password", headers={"X-CSRF-Token": login["csrf_token"]},
                             json={"current_password": "not the password", "new_password": new_pw})
        assert wrong.status == 400 and (await wrong.json())["field"] == "current_password"
        resp = await a.post("/api/v1/me/password", headers={"X-CSRF-Token": login["csrf_token"]},
                            json={"current_password": ADMIN_PW, "new_password": new_pw})
        assert resp.status == 200
        assert (await b.get("/api/v1/me")).status == 401  # the other replica's session ended
        assert (await a.get("/api/v1/me")).status == 200  # the re-issued session works
        assert (await b.get("/api/v1/me", headers=bearer)).status == 200  # tokens stay valid
        assert (await b.post("/api/v1/auth/login", json={"name": "root", "password": ADMIN_PW})).status == 401
        assert (await b.post("/api/v1/auth/login", json={"name": "root", "password": new_pw})).status == 200
    finally:
        await a.close()
        await b.close()
        await first.aclose()
        await second.aclose()
    conn = await asyncpg.connect(db_dsn)
    try:
        rows = await conn.fetch("SELECT action, detail::text AS detail FROM audit_log"
                                " WHERE action LIKE '%password_change%'")
    finally:
        await conn.close()
    assert sorted(r["action"] for r in rows) == ["auth.password_change_failed", "user.password_change"]
    assert not any(pw in r["detail"] for r in rows for pw in (ADMIN_PW, new_pw, "not the password"))
