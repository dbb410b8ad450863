"""Secrets on real PostgreSQL: the store contract, tamper/swap/wrong key, rotation killed and resumed, no plaintext."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid

import asyncpg
import pytest

from corral.adapters.crypto import AesGcmCipher, AesGcmKeyWrapper
from corral.adapters.postgres.pool import create_pool
from corral.adapters.postgres.uow import PostgresUnitOfWorkFactory
from corral.contracts.secrets import SecretStoreContract
from corral.core.secrets.commands import PutSecret
from corral.core.secrets.envelope import Envelope
from corral.core.secrets.model import SecretScope, SecretUndecryptable
from corral.core.secrets.reader import SecretReader
from corral.core.secrets.rotation import MasterKeyRotation, check_master_key
from corral.core.secrets.service import SecretsService
from corral.fakes.clock import FakeClock
from corral.fakes.secrets import AllowAllAuthorizer
from tests.unit.secrets_support import Who

pytestmark = pytest.mark.integration

ALICE = Who(uuid.uuid4(), "alice")


@pytest.fixture
async def pool(db_dsn):
    pool = await create_pool(db_dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
def uow_factory(pool):
    return PostgresUnitOfWorkFactory(pool, FakeClock())


@pytest.fixture
async def project_id(pool):
    user_id, pid = ALICE.user_id, uuid.uuid4()
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO users (id, name, email, password_hash) VALUES ($1, $2, $3, 'x') ON CONFLICT DO NOTHING",
            user_id, f"u{user_id.hex[:8]}", f"{user_id.hex[:8]}@example.org",
        )
        await conn.execute("INSERT INTO projects (id, owner_id, name) VALUES ($1, $2, 'p')", pid, user_id)
    return pid


class TestPostgresSecretStore(SecretStoreContract):
    pass


def envelope(*keys: bytes) -> Envelope:
    return Envelope(AesGcmCipher(), AesGcmKeyWrapper(list(keys)))


MASTER = os.urandom(32)
SECRET_VALUES = [f"pg-plaintext-{i}-{uuid.uuid4().hex}" for i in range(9)]


async def test_tamper_swap_and_wrong_key_fail_loudly(uow_factory, project_id, pool):
    env = envelope(MASTER)
    service = SecretsService(uow_factory, env, FakeClock())
    reader = SecretReader(uow_factory, env, AllowAllAuthorizer(), FakeClock())
    a, _ = await service.put(ALICE, project_id, "A", PutSecret(value="value-a", scope=SecretScope.ALL))
    b, _ = await service.put(ALICE, project_id, "B", PutSecret(value="value-b", scope=SecretScope.ALL))
    assert await reader.read(ALICE, project_id, "A", SecretScope.AGENT, "t") == "value-a"
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE secret_versions SET ciphertext = set_byte(ciphertext, 20, get_byte(ciphertext, 20) # 1)"
            " WHERE secret_id = $1", a.id,
        )
        await conn.execute(
            "UPDATE secret_versions b SET ciphertext = s.ciphertext, wrapped_key = s.wrapped_key, key_id = s.key_id"
            " FROM (SELECT ciphertext, wrapped_key, key_id FROM secret_versions WHERE secret_id = $1) s"
            " WHERE b.secret_id = $2",
            a.id, b.id,
        )
    for name in ("A", "B"):
        with pytest.raises(SecretUndecryptable, match=f"secret {name}"):
            await reader.read(ALICE, project_id, name, SecretScope.AGENT, "t")
    await service.put(ALICE, project_id, "C", PutSecret(value="value-c", scope=SecretScope.ALL))
    wrong = envelope(os.urandom(32))
    with pytest.raises(SecretUndecryptable, match="not configured"):
        await SecretReader(uow_factory, wrong, AllowAllAuthorizer(), FakeClock()).read(
            ALICE, project_id, "C", SecretScope.AGENT, "t"
        )
    with pytest.raises(SecretUndecryptable, match="master key is wrong"):
        await check_master_key(uow_factory, wrong)


async def test_rotation_killed_half_way_resumes_and_concurrent_runs_do_not_collide(uow_factory, project_id):
    old_env = envelope(MASTER)
    service = SecretsService(uow_factory, old_env, FakeClock())
    for i, value in enumerate(SECRET_VALUES):
        where = project_id if i % 2 else None
        await service.put(ALICE, where, f"S{i}", PutSecret(value=value, scope=SecretScope.ALL))
    new = os.urandom(32)
    both = envelope(new, MASTER)
    rotation = MasterKeyRotation(uow_factory, both, FakeClock(), batch_size=2)

    class Killed(Exception):
        pass

    async def kill(_total: int) -> None:
        raise Killed

    with pytest.raises(Killed):
        await rotation.run(on_batch=kill)
    reader = SecretReader(uow_factory, both, AllowAllAuthorizer(), FakeClock())
    status = await rotation.status()
    assert status.remaining == {old_env.keys.current_key_id: len(SECRET_VALUES) - 2}
    for i, value in enumerate(SECRET_VALUES):  # serving during the rotation: both keys accepted
        assert await reader.read(ALICE, project_id, f"S{i}", SecretScope.PIPELINE, "t") == value
    # two replicas resuming at once: SKIP LOCKED splits the work, nothing is re-wrapped twice
    r1, r2 = await asyncio.gather(rotation.run(), MasterKeyRotation(uow_factory, both, FakeClock(), batch_size=2).run())
    assert r1.rewrapped + r2.rewrapped == len(SECRET_VALUES) - 2
    assert (await rotation.status()).done
    only_new = envelope(new)
    await check_master_key(uow_factory, only_new)
    reader = SecretReader(uow_factory, only_new, AllowAllAuthorizer(), FakeClock())
    for i, value in enumerate(SECRET_VALUES):
        assert await reader.read(ALICE, project_id, f"S{i}", SecretScope.PIPELINE, "t") == value


async def test_database_dump_holds_no_plaintext(uow_factory, project_id, db_dsn, pool):
    env = envelope(MASTER)
    service = SecretsService(uow_factory, env, FakeClock())
    reader = SecretReader(uow_factory, env, AllowAllAuthorizer(), FakeClock())
    marker = f"dump-marker-{uuid.uuid4().hex}"
    await service.put(ALICE, project_id, "DUMPED", PutSecret(value=marker, scope=SecretScope.ALL))
    await service.put(ALICE, None, "DUMPED_G", PutSecret(value=marker + "g", scope=SecretScope.ALL))
    await reader.read_many(ALICE, project_id, ["DUMPED", "DUMPED_G"], SecretScope.DEPLOY, "deploy 1")
    dump = await _dump(db_dsn, pool)
    assert b"DUMPED" in dump  # names are stored; the dump is real
    for needle in (marker.encode(), marker.encode().hex().encode()):
        assert needle not in dump
    async with pool.acquire() as conn:
        actions = [r["action"] for r in await conn.fetch("SELECT action FROM audit_log ORDER BY created_at")]
    assert actions.count("secret.read") == 2


async def _dump(db_dsn: str, pool: asyncpg.Pool) -> bytes:
    """pg_dump when the binary is there, else every row of every table as text."""
    for binary in ("/usr/lib/postgresql/15/bin/pg_dump", "pg_dump"):
        try:
            return subprocess.run([binary, "--data-only", db_dsn], capture_output=True, check=True).stdout
        except (FileNotFoundError, subprocess.CalledProcessError):
            continue
    out = []
    async with pool.acquire() as conn:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        for t in tables:
            for row in await conn.fetch(f'SELECT * FROM "{t["tablename"]}"'):
                out.append(repr(dict(row)))
    return "\n".join(out).encode()


