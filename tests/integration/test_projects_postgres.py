"""The projects store contract on PostgreSQL (every migration applied)."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from corral.adapters.postgres.projects import PostgresUserDirectory
from corral.adapters.postgres.uow import PostgresUnitOfWorkFactory
from corral.contracts.projects import ProjectStoresContract
from corral.core.ids import uuid7
from tests.integration.platformkit import PostgresStoreFixtures, add_user


class TestPostgresProjectStores(PostgresStoreFixtures, ProjectStoresContract):
    @pytest.fixture
    def projects_uow_factory(self, uow_factory: Any) -> Any:
        return uow_factory


class TestPostgresProjectAdapters(PostgresStoreFixtures):
    async def test_user_directory(self, pool: asyncpg.Pool) -> None:
        alice = await add_user(pool, "alice")
        directory = PostgresUserDirectory(pool)
        assert await directory.by_name("alice") == alice
        assert await directory.by_name("nobody") is None
        assert await directory.by_ids({alice.id, uuid7()}) == {alice.id: alice}


    async def test_plaintext_webhook_secret_from_an_older_corral_is_sealed_once(self, pool: asyncpg.Pool) -> None:
        """Migration 053: a row with the legacy plain-text secret reads as UNSEALED_SECRET (never as "no secret",
        which would send deliveries unsigned) until the start-up step seals it and clears the plain text."""
        from corral.core.projects.model import UNSEALED_SECRET
        from corral.core.projects.webhook_seal import WebhookSecretSealer, seal_plaintext_webhook_secrets
        from corral.fakes.clock import FakeClock
        from corral.fakes.secrets import FakeCipher, FakeKeyWrapper

        owner = await add_user(pool, "olduser")
        project_id, hook_id = uuid7(), uuid7()
        await pool.execute("INSERT INTO projects (id, owner_id, name) VALUES ($1, $2, 'legacy')", project_id, owner.id)
        await pool.execute("INSERT INTO webhooks (id, project_id, url, events, secret) VALUES ($1, $2, $3, $4, $5)",
                           hook_id, project_id, "https://example.com/h", ["push"], "plain-old")
        factory = PostgresUnitOfWorkFactory(pool)
        async with factory() as uow:
            hook = await uow.webhooks.get(project_id, hook_id)
            assert hook is not None and hook.secret == UNSEALED_SECRET
            await uow.webhooks.update(hook)  # an update keeps the plain text for the sealing step
            await uow.commit()
        sealer = WebhookSecretSealer(FakeCipher(), FakeKeyWrapper(b"m" * 32))
        clock = FakeClock()
        assert await seal_plaintext_webhook_secrets(factory, sealer, clock) == 1
        assert await seal_plaintext_webhook_secrets(factory, sealer, clock) == 0
        row = await pool.fetchrow("SELECT * FROM webhooks WHERE id = $1", hook_id)
        assert row["secret"] is None and b"plain-old" not in row["secret_sealed"]
        async with factory() as uow:
            hook = await uow.webhooks.get(project_id, hook_id)
        assert hook is not None and sealer.open(hook_id, hook.secret) == "plain-old"
