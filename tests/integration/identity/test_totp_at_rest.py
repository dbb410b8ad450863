"""TOTP secrets at rest on the running platform (PostgreSQL, Valkey, real crypto): enrolment over HTTP leaves
no plaintext in a pg_dump, a row left in plain text by an older Corral is sealed at start-up, the start-up key
check and `corral secrets rotate-master-key` cover TOTP secrets, and migration 022 keeps legacy rows."""

from __future__ import annotations

import base64
import os
import time

import asyncpg
import attrs
import pytest
from aiohttp.test_utils import TestClient, TestServer

from corral.adapters.postgres.migrator import apply_migrations, load_migrations
from corral.core.identity import totp
from corral.core.secrets.model import SecretUndecryptable
from corral.entrypoints.bootstrap import start_platform
from corral.entrypoints.config import Settings
from corral.entrypoints.web.app import create_app
from tests.integration.platformkit import PASSWORD, b64, pg_dump_data, platform_settings, rotate_master_key

pytestmark = pytest.mark.integration

LEGACY = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of "12345678901234567890" (RFC 6238's key)



@pytest.fixture
def settings(db_dsn, valkey_url, tmp_path):
    return platform_settings(db_dsn, valkey_url, tmp_path)



def _forms(secret: str) -> list[bytes]:
    raw = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return [secret.encode(), secret.lower().encode(), raw, raw.hex().encode(), base64.b64encode(raw).rstrip(b"=")]


async def _login(client: TestClient, name: str, code: str | None = None) -> tuple[int, dict]:
    body = {"name": name, "password": PASSWORD} | ({"totp_code": code} if code else {})
    resp = await client.post("/api/v1/auth/login", json=body)
    return resp.status, await resp.json()


async def test_enrolment_legacy_rows_rotation_and_start_check(settings, db_dsn, monkeypatch):
    platform = await start_platform(settings)
    client = TestClient(TestServer(create_app(platform)))
    await client.start_server()
    try:
        status, body = await _login(client, "root")
        assert status == 200
        csrf = {"X-CSRF-Token": body["csrf_token"]}
        resp = await client.post("/api/v1/auth/totp", headers=csrf)
        assert resp.status == 201, await resp.text()
        secret = (await resp.json())["secret"]
        resp = await client.post("/api/v1/auth/totp/confirm", headers=csrf,
                                 json={"code": totp.code_at(secret, time.time())})
        assert resp.status == 200, await resp.text()
        client.session.cookie_jar.clear()
        assert (await _login(client, "root"))[0] == 401  # the second factor is now needed
        conn = await asyncpg.connect(db_dsn)
        try:
            row = await conn.fetchrow("SELECT secret, secret_sealed, key_id FROM user_totp")
            assert row["secret"] is None and row["secret_sealed"] and row["key_id"]
            # an older Corral's row: a confirmed enrolment with the secret in plain text
            await conn.execute(
                "INSERT INTO users (id, name, email, password_hash) SELECT gen_random_uuid(), 'old', 'old@x.io',"
                " password_hash FROM users WHERE name = 'root'"
            )
            await conn.execute(
                "INSERT INTO user_totp (user_id, secret, confirmed_at) SELECT id, $1, now() FROM users"
                " WHERE name = 'old'", LEGACY,
            )
        finally:
            await conn.close()
    finally:
        await client.close()
        await platform.aclose()
    assert LEGACY.encode() in await pg_dump_data(db_dsn)

    platform = await start_platform(settings)  # the start-up step seals the legacy row
    client = TestClient(TestServer(create_app(platform)))
    await client.start_server()
    try:
        assert (await _login(client, "old"))[0] == 401
        assert (await _login(client, "old", totp.code_at(LEGACY, time.time())))[0] == 200
    finally:
        await client.close()
        await platform.aclose()
    dump = await pg_dump_data(db_dsn)
    assert b"totp.encrypt" in dump
    for form in _forms(secret) + _forms(LEGACY):
        assert form not in dump

    # a production start with another master key is refused: TOTP secrets count (there are no other secrets)
    new_key = b64(os.urandom(32))
    with pytest.raises(SecretUndecryptable, match="master key is wrong"):
        await start_platform(attrs.evolve(settings, master_key=new_key, environment="production"))
    report = await rotate_master_key(monkeypatch, settings, new_key, batch_size=1)
    assert report["rewrapped"] == 2 and report["done"] is True
    platform = await start_platform(attrs.evolve(settings, master_key=new_key, environment="production"))
    client = TestClient(TestServer(create_app(platform)))
    await client.start_server()
    try:  # only the new key configured: both TOTP secrets still open
        assert (await _login(client, "root", totp.code_at(secret, time.time() + 30)))[0] == 200
        assert (await _login(client, "old", totp.code_at(LEGACY, time.time() + 30)))[0] == 200
    finally:
        await client.close()
        await platform.aclose()


async def test_migration_022_keeps_plaintext_rows_for_the_start_up_step(pg_dsn):
    conn = await asyncpg.connect(pg_dsn)
    try:
        before = [m for m in load_migrations() if m.name < "022"]
        await apply_migrations(conn, before)
        user_id = await conn.fetchval(
            "INSERT INTO users (name, email, password_hash) VALUES ('u', 'u@x.io', 'h') RETURNING id"
        )
        await conn.execute("INSERT INTO user_totp (user_id, secret, last_step) VALUES ($1, $2, 9)", user_id, LEGACY)
        await apply_migrations(conn)
        row = await conn.fetchrow("SELECT secret, secret_sealed, last_step FROM user_totp")
        assert (row["secret"], row["secret_sealed"], row["last_step"]) == (LEGACY, None, 9)
        with pytest.raises(asyncpg.CheckViolationError):  # never both, never neither
            await conn.execute("UPDATE user_totp SET secret = NULL")
    finally:
        await conn.close()


async def test_a_start_on_a_schema_without_022_leaves_plaintext_rows_for_the_next_start(db_dsn, valkey_url, tmp_path):
    """`corral migrate` on the embedded database starts the platform before migrating: it must not fail."""
    conn = await asyncpg.connect(db_dsn)
    try:  # the database as an older Corral left it: 022 not applied, a TOTP row in plain text
        await conn.execute(
            "DROP INDEX idx_user_totp_key_id, idx_user_totp_plaintext;"
            " ALTER TABLE user_totp DROP CONSTRAINT user_totp_sealed_or_legacy,"
            " DROP COLUMN secret_sealed, DROP COLUMN key_id, DROP COLUMN wrapped_key;"
            " DELETE FROM schema_migrations WHERE name = '022_totp_sealed.sql'"
        )
        user_id = await conn.fetchval(
            "INSERT INTO users (name, email, password_hash) VALUES ('u', 'u@x.io', 'h') RETURNING id"
        )
        await conn.execute("INSERT INTO user_totp (user_id, secret) VALUES ($1, $2)", user_id, LEGACY)
    finally:
        await conn.close()
    settings = Settings(database_url=db_dsn, valkey_url=valkey_url, data_dir=tmp_path,
                        master_key=b64(os.urandom(32)), log_format="text")
    platform = await start_platform(settings, migrate=False)
    await platform.aclose()
    platform = await start_platform(settings)  # migrates, then seals
    await platform.aclose()
    conn = await asyncpg.connect(db_dsn)
    try:
        row = await conn.fetchrow("SELECT secret, secret_sealed FROM user_totp")
        assert row["secret"] is None and LEGACY.encode() not in row["secret_sealed"]
    finally:
        await conn.close()
