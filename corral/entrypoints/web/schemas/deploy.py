"""Response shapes of the deployer's API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import attrs

__all__ = ["DeploymentOut", "HistoryOut", "OpsRepoOut", "PromotionOut", "RenderOut", "RenderedObjectOut"]


@attrs.frozen
class OpsRepoOut:
    """An ops repository."""

    id: uuid.UUID
    name: str
    project: str | None
    url: str | None
    branch: str
    path: str
    credential_secret: str | None
    created_at: datetime


@attrs.frozen
class DeploymentOut:
    """An environment's desired state and what the deployer observed (one GET tells an agent everything)."""

    id: uuid.UUID
    environment: str
    image_ref: str
    desired_revision: int
    sync: Literal["Synced", "OutOfSync", "Unknown"]
    health: Literal["Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"]
    status: Literal["pending", "syncing", "healthy", "degraded", "failed"]
    cluster: str
    last_error: str | None
    ops_repo: str | None
    app_path: str
    namespace: str
    values_override: dict[str, Any]
    prune: bool
    self_heal: bool
    auto_rollback: bool
    applied_revision: int | None
    applied_commit: str | None
    next_attempt_at: datetime | None
    updated_by: str | None
    updated_at: datetime


@attrs.frozen
class HistoryOut:
    """One desired state an environment had."""

    id: uuid.UUID
    revision: int
    image_ref: str
    values_override: dict[str, Any]
    by: str | None
    at: datetime
    result: Literal["pending", "healthy", "failed", "superseded"]
    reason: str


@attrs.frozen
class PromotionOut:
    """A promotion: applied, or waiting for an approval from someone else (protected environment)."""

    id: uuid.UUID
    from_environment: str
    to_environment: str
    image_ref: str
    status: Literal["pending_approval", "applied"]
    requested_by: str
    requested_at: datetime
    approved_by: str | None
    decided_at: datetime | None


@attrs.frozen
class RenderedObjectOut:
    """One object as it would be applied (secret values shown as <secret:NAME>)."""

    ref: str
    object: dict[str, Any]
    change: Literal["create", "update", "unchanged", "prune", "unknown"]


@attrs.frozen
class RenderOut:
    """What an environment's templates render to, and what would change in the cluster."""

    environment: str
    commit: str
    cluster: str
    objects: list[RenderedObjectOut]
