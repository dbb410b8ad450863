"""PostgresDeployStore: the deployer's tables (migration 061)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import asyncpg

from corral.adapters.postgres.errors import translate_errors
from corral.core.deploy.model import (
    Deployment,
    DeployStatus,
    HistoryEntry,
    HistoryResult,
    ObjectRef,
    OpsRepo,
    Promotion,
    PromotionStatus,
    SyncStatus,
)

__all__ = ["PostgresDeployStore"]

_DEPLOYMENT_COLUMNS = (
    "id, project_id, environment, ops_repo_id, app_path, image_ref, namespace, values_override, prune, self_heal, "
    "auto_rollback, desired_revision, updated_by, updated_by_name, history_id, cluster, applied_revision, "
    "applied_commit, sync, health, status, last_error, attempts, next_attempt_at, inventory, created_at, updated_at"
)


def _repo(r: Any) -> OpsRepo:
    return OpsRepo(id=r["id"], name=r["name"], branch=r["branch"], path=r["path"], created_at=r["created_at"],
                   project_id=r["project_id"], url=r["url"], credential_secret=r["credential_secret"],
                   sync_interval_s=r["sync_interval_s"])


def _deployment(r: Any) -> Deployment:
    return Deployment(
        id=r["id"], project_id=r["project_id"], environment=r["environment"], ops_repo_id=r["ops_repo_id"],
        app_path=r["app_path"], image_ref=r["image_ref"], namespace=r["namespace"], created_at=r["created_at"],
        updated_at=r["updated_at"], values_override=dict(r["values_override"]), prune=r["prune"],
        self_heal=r["self_heal"], auto_rollback=r["auto_rollback"], cluster=r["cluster"],
        desired_revision=r["desired_revision"], updated_by=r["updated_by"], updated_by_name=r["updated_by_name"],
        applied_revision=r["applied_revision"], applied_commit=r["applied_commit"], sync=SyncStatus(r["sync"]),
        health=r["health"], status=DeployStatus(r["status"]), last_error=r["last_error"], attempts=r["attempts"],
        next_attempt_at=r["next_attempt_at"], inventory=tuple(ObjectRef.from_json(i) for i in r["inventory"]),
        history_id=r["history_id"],
    )


def _history(r: Any) -> HistoryEntry:
    return HistoryEntry(id=r["id"], deployment_id=r["deployment_id"], revision=r["revision"],
                        image_ref=r["image_ref"], values_override=dict(r["values_override"]), by_id=r["by_id"],
                        by_name=r["by_name"], at=r["at"], result=HistoryResult(r["result"]), reason=r["reason"])


def _promotion(r: Any) -> Promotion:
    return Promotion(id=r["id"], project_id=r["project_id"], from_environment=r["from_environment"],
                     to_environment=r["to_environment"], image_ref=r["image_ref"], requested_by=r["requested_by"],
                     requested_by_name=r["requested_by_name"], requested_at=r["requested_at"],
                     status=PromotionStatus(r["status"]), approved_by=r["approved_by"],
                     approved_by_name=r["approved_by_name"], decided_at=r["decided_at"])


class PostgresDeployStore:
    """See corral.core.deploy.ports.DeployStore."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add_ops_repo(self, repo: OpsRepo) -> None:
        with translate_errors("ops repository"):
            await self.conn.execute(
                "INSERT INTO deploy_ops_repos (id, name, project_id, url, credential_secret, branch, path,"
                " sync_interval_s, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                repo.id, repo.name, repo.project_id, repo.url, repo.credential_secret, repo.branch, repo.path,
                repo.sync_interval_s, repo.created_at)

    async def get_ops_repo(self, repo_id: uuid.UUID) -> OpsRepo | None:
        row = await self.conn.fetchrow("SELECT * FROM deploy_ops_repos WHERE id = $1", repo_id)
        return _repo(row) if row else None

    async def ops_repo_by_name(self, name: str) -> OpsRepo | None:
        row = await self.conn.fetchrow("SELECT * FROM deploy_ops_repos WHERE name = $1", name)
        return _repo(row) if row else None

    async def list_ops_repos(self) -> list[OpsRepo]:
        return [_repo(r) for r in await self.conn.fetch("SELECT * FROM deploy_ops_repos ORDER BY name")]

    async def get(self, project_id: uuid.UUID, environment: str) -> Deployment | None:
        row = await self.conn.fetchrow(
            f"SELECT {_DEPLOYMENT_COLUMNS} FROM deploy_deployments WHERE project_id = $1 AND environment = $2",
            project_id, environment)
        return _deployment(row) if row else None

    async def get_by_id(self, deployment_id: uuid.UUID) -> Deployment | None:
        row = await self.conn.fetchrow(f"SELECT {_DEPLOYMENT_COLUMNS} FROM deploy_deployments WHERE id = $1",
                                       deployment_id)
        return _deployment(row) if row else None

    async def list_for_project(self, project_id: uuid.UUID) -> list[Deployment]:
        rows = await self.conn.fetch(
            f"SELECT {_DEPLOYMENT_COLUMNS} FROM deploy_deployments WHERE project_id = $1 ORDER BY environment",
            project_id)
        return [_deployment(r) for r in rows]

    async def list_all(self) -> list[Deployment]:
        rows = await self.conn.fetch(f"SELECT {_DEPLOYMENT_COLUMNS} FROM deploy_deployments ORDER BY created_at, id")
        return [_deployment(r) for r in rows]

    async def project_names(self, project_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        ids = list(project_ids)
        if not ids:
            return {}
        rows = await self.conn.fetch(
            "SELECT p.id, u.name || '/' || p.name AS full_name FROM projects p JOIN users u ON u.id = p.owner_id"
            " WHERE p.id = ANY($1::uuid[]) AND p.is_active", ids)
        return {r["id"]: r["full_name"] for r in rows}

    async def save(self, d: Deployment) -> None:
        with translate_errors("deployment"):
            await self.conn.execute(
                f"INSERT INTO deploy_deployments ({_DEPLOYMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
                " $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)"
                " ON CONFLICT (id) DO UPDATE SET ops_repo_id = EXCLUDED.ops_repo_id, app_path = EXCLUDED.app_path,"
                " image_ref = EXCLUDED.image_ref, namespace = EXCLUDED.namespace,"
                " values_override = EXCLUDED.values_override, prune = EXCLUDED.prune,"
                " self_heal = EXCLUDED.self_heal, auto_rollback = EXCLUDED.auto_rollback,"
                " desired_revision = EXCLUDED.desired_revision, updated_by = EXCLUDED.updated_by,"
                " updated_by_name = EXCLUDED.updated_by_name, history_id = EXCLUDED.history_id,"
                " cluster = EXCLUDED.cluster, applied_revision = EXCLUDED.applied_revision,"
                " applied_commit = EXCLUDED.applied_commit, sync = EXCLUDED.sync, health = EXCLUDED.health,"
                " status = EXCLUDED.status, last_error = EXCLUDED.last_error, attempts = EXCLUDED.attempts,"
                " next_attempt_at = EXCLUDED.next_attempt_at, inventory = EXCLUDED.inventory,"
                " updated_at = EXCLUDED.updated_at",
                d.id, d.project_id, d.environment, d.ops_repo_id, d.app_path, d.image_ref, d.namespace,
                d.values_override, d.prune, d.self_heal, d.auto_rollback, d.desired_revision, d.updated_by,
                d.updated_by_name, d.history_id, d.cluster, d.applied_revision, d.applied_commit, d.sync.value,
                d.health, d.status.value, d.last_error, d.attempts, d.next_attempt_at,
                [r.to_json() for r in d.inventory], d.created_at, d.updated_at)

    async def save_observed(self, d: Deployment) -> None:
        with translate_errors("deployment"):
            await self.conn.execute(
                "UPDATE deploy_deployments SET cluster = $2, applied_revision = $3, applied_commit = $4, sync = $5,"
                " health = $6, status = $7, last_error = $8, attempts = $9, next_attempt_at = $10, inventory = $11"
                " WHERE id = $1",
                d.id, d.cluster, d.applied_revision, d.applied_commit, d.sync.value, d.health, d.status.value,
                d.last_error, d.attempts, d.next_attempt_at, [r.to_json() for r in d.inventory])

    async def add_history(self, e: HistoryEntry) -> None:
        with translate_errors("deployment history"):
            await self.conn.execute(
                "INSERT INTO deploy_history (id, deployment_id, revision, image_ref, values_override, by_id, by_name,"
                " at, result, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                e.id, e.deployment_id, e.revision, e.image_ref, e.values_override, e.by_id, e.by_name, e.at,
                e.result.value, e.reason)

    async def set_history_result(self, entry_id: uuid.UUID, result: str) -> None:
        await self.conn.execute("UPDATE deploy_history SET result = $2 WHERE id = $1", entry_id, result)

    async def get_history(self, entry_id: uuid.UUID) -> HistoryEntry | None:
        row = await self.conn.fetchrow("SELECT * FROM deploy_history WHERE id = $1", entry_id)
        return _history(row) if row else None

    async def history(self, deployment_id: uuid.UUID, limit: int) -> list[HistoryEntry]:
        rows = await self.conn.fetch("SELECT * FROM deploy_history WHERE deployment_id = $1"
                                     " ORDER BY revision DESC, id DESC LIMIT $2", deployment_id, limit)
        return [_history(r) for r in rows]

    async def trim_history(self, deployment_id: uuid.UUID, keep: int) -> None:
        await self.conn.execute(
            "DELETE FROM deploy_history WHERE deployment_id = $1 AND id NOT IN (SELECT id FROM deploy_history"
            " WHERE deployment_id = $1 ORDER BY revision DESC, id DESC LIMIT $2)", deployment_id, keep)

    async def add_promotion(self, p: Promotion) -> None:
        with translate_errors("promotion"):
            await self.conn.execute(
                "INSERT INTO deploy_promotions (id, project_id, from_environment, to_environment, image_ref,"
                " requested_by, requested_by_name, requested_at, status, approved_by, approved_by_name, decided_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                p.id, p.project_id, p.from_environment, p.to_environment, p.image_ref, p.requested_by,
                p.requested_by_name, p.requested_at, p.status.value, p.approved_by, p.approved_by_name, p.decided_at)

    async def get_promotion(self, promotion_id: uuid.UUID) -> Promotion | None:
        row = await self.conn.fetchrow("SELECT * FROM deploy_promotions WHERE id = $1", promotion_id)
        return _promotion(row) if row else None

    async def save_promotion(self, p: Promotion) -> None:
        await self.conn.execute(
            "UPDATE deploy_promotions SET status = $2, approved_by = $3, approved_by_name = $4, decided_at = $5"
            " WHERE id = $1", p.id, p.status.value, p.approved_by, p.approved_by_name, p.decided_at)

    async def list_promotions(self, project_id: uuid.UUID) -> list[Promotion]:
        rows = await self.conn.fetch("SELECT * FROM deploy_promotions WHERE project_id = $1"
                                     " ORDER BY requested_at DESC, id DESC", project_id)
        return [_promotion(r) for r in rows]
