"""PostgresUnitOfWork: one pooled connection and one transaction per unit.

``commit()`` makes the work durable and the unit goes on in a fresh transaction, so a unit may
commit in steps; whatever is not committed when the block ends is rolled back, and the
connection goes back to the pool in every case (also on errors and cancellation). The
transaction opens on the first statement (see UnitConnection), so "write, commit, leave" costs
the same round trips as a hand-written transaction.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Self, cast

import asyncpg
from asyncpg.transaction import Transaction

from corral.adapters.clock import SystemClock
from corral.adapters.postgres.agents import PostgresAgentSessionStore
from corral.adapters.postgres.audit import PostgresAuditLog
from corral.adapters.postgres.deploy import PostgresDeployStore
from corral.adapters.postgres.errors import CONNECTION_ERRORS, translate_errors, unavailable
from corral.adapters.postgres.identity import (
    PostgresDelegationStore,
    PostgresIdentitySettingsStore,
    PostgresLoginThrottleStore,
    PostgresRoleStore,
    PostgresSessionStore,
    PostgresTokenStore,
    PostgresTotpStore,
    PostgresUserStore,
)
from corral.adapters.postgres.notify import (
    PostgresNotificationStore,
    PostgresPreferenceStore,
    PostgresRecipientDirectory,
)
from corral.adapters.postgres.outbox import PostgresOutbox
from corral.adapters.postgres.pipelines import PostgresPipelineStore
from corral.adapters.postgres.projects import (
    PostgresBranchProtectionStore,
    PostgresCommentStore,
    PostgresIssueStore,
    PostgresLabelStore,
    PostgresMergeRequestStore,
    PostgresMilestoneStore,
    PostgresProjectPurgeStore,
    PostgresProjectStore,
    PostgresReleaseStore,
    PostgresReviewStore,
    PostgresWebhookDeliveryStore,
    PostgresWebhookStore,
)
from corral.adapters.postgres.push_intents import PostgresPushIntentStore
from corral.adapters.postgres.secrets import PostgresSecretStore
from corral.adapters.postgres.unit_connection import UnitConnection
from corral.core.clock import Clock
from corral.core.errors import Conflict

__all__ = ["PostgresUnitOfWork", "PostgresUnitOfWorkFactory"]

log = logging.getLogger(__name__)


class PostgresUnitOfWork:
    """The UnitOfWork port over asyncpg. Stores are attributes bound to the unit's connection."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock) -> None:
        self._pool = pool
        self._clock = clock
        self._conn: asyncpg.Connection | None = None
        self._unit_conn: UnitConnection | None = None
        self._tx: Transaction | None = None
        self._used = False

    @property
    def connection(self) -> asyncpg.Connection:
        """The unit's connection, for adapters that need raw SQL inside the transaction."""
        if self._unit_conn is None:
            raise RuntimeError("the unit of work is not active (use `async with`)")
        return cast(asyncpg.Connection, self._unit_conn)

    def _bind(self, conn: asyncpg.Connection) -> None:
        # ``conn`` is the unit's UnitConnection, typed as the Connection it stands for
        # Each domain adds its stores here (one line each), bound to this connection.
        self.audit = PostgresAuditLog(conn)
        self.outbox = PostgresOutbox(conn, self._clock)
        # identity
        self.users = PostgresUserStore(conn)
        self.roles = PostgresRoleStore(conn)
        self.delegations = PostgresDelegationStore(conn)
        self.tokens = PostgresTokenStore(conn)
        self.sessions = PostgresSessionStore(conn)
        self.login_throttle = PostgresLoginThrottleStore(conn)
        self.totp = PostgresTotpStore(conn)
        self.identity_settings = PostgresIdentitySettingsStore(conn)
        # secrets
        self.secrets = PostgresSecretStore(conn)
        # notifications
        self.notifications = PostgresNotificationStore(conn)
        self.notification_preferences = PostgresPreferenceStore(conn)
        self.notification_recipients = PostgresRecipientDirectory(conn)
        # projects / git
        self.projects = PostgresProjectStore(conn)
        self.issues = PostgresIssueStore(conn)
        self.comments = PostgresCommentStore(conn)
        self.merge_requests = PostgresMergeRequestStore(conn)
        self.labels = PostgresLabelStore(conn)
        self.milestones = PostgresMilestoneStore(conn)
        self.releases = PostgresReleaseStore(conn)
        self.project_purges = PostgresProjectPurgeStore(conn)
        self.reviews = PostgresReviewStore(conn)
        self.branch_protections = PostgresBranchProtectionStore(conn)
        self.webhooks = PostgresWebhookStore(conn)
        self.webhook_deliveries = PostgresWebhookDeliveryStore(conn)
        self.push_intents = PostgresPushIntentStore(conn)
        # deployer
        self.deploy = PostgresDeployStore(conn)
        # pipelines
        self.pipelines = PostgresPipelineStore(conn)
        # agent sessions
        self.agents = PostgresAgentSessionStore(conn)

    async def __aenter__(self) -> Self:
        if self._used:
            raise RuntimeError("a unit of work is used once; make a new one with the factory")
        self._used = True
        try:
            conn = await self._pool.acquire()
        except CONNECTION_ERRORS as exc:
            raise unavailable(exc) from exc
        self._conn = conn
        self._unit_conn = UnitConnection(conn, self._begin)
        self._bind(self.connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._tx is not None:
                tx, self._tx = self._tx, None
                try:
                    await tx.rollback()
                except Exception:
                    # nothing was committed; a broken connection is discarded by the pool
                    log.warning("rollback failed; discarding the connection", exc_info=True)
                    if self._conn is not None:
                        self._conn.terminate()
        finally:
            await self._release()

    async def commit(self) -> None:
        self._check_active()
        tx, self._tx = self._tx, None
        if tx is None:  # nothing ran since the last commit: nothing to commit
            return
        if self._unit_conn is not None and self._unit_conn.failed:
            await tx.rollback()
            raise Conflict(
                "nothing was committed: a statement of this unit of work failed earlier and the database "
                "aborted the transaction (wrap statements that may fail in a savepoint: "
                "`async with uow.connection.transaction(): ...`)"
            )
        with translate_errors("the change"):
            await tx.commit()

    async def rollback(self) -> None:
        self._check_active()
        tx, self._tx = self._tx, None
        if tx is not None:
            with translate_errors("the rollback"):
                await tx.rollback()

    def _check_active(self) -> None:
        if self._conn is None:
            raise RuntimeError("the unit of work is not active (use `async with`)")

    async def _begin(self) -> None:
        """Open the unit's transaction unless it is open (called before every statement)."""
        if self._tx is not None:
            return
        if self._conn is None:
            raise RuntimeError("the unit of work is not active (use `async with`)")
        tx = self._conn.transaction()
        with translate_errors("the transaction"):
            await tx.start()
        self._tx = tx
        if self._unit_conn is not None:
            self._unit_conn.failed = False

    async def _release(self) -> None:
        conn, self._conn, self._unit_conn = self._conn, None, None
        if conn is not None:
            try:
                await self._pool.release(conn)
            except Exception:
                log.warning("releasing a connection failed", exc_info=True)


class PostgresUnitOfWorkFactory:
    """``factory()`` → a fresh PostgresUnitOfWork on ``pool`` (asyncpg pool from ``create_pool``)."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock | None = None) -> None:
        self.pool = pool
        self.clock = clock or SystemClock()

    def __call__(self) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self.pool, self.clock)
