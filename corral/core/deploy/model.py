"""The deployer's records: ops repositories, deployments (desired and observed state), history, promotions."""

from __future__ import annotations

import enum
import re
import uuid
from datetime import datetime
from typing import Any, Final

import attrs

from corral.core.errors import InvalidInput

__all__ = [
    "NOT_CONFIGURED",
    "DeployStatus",
    "Deployment",
    "HistoryEntry",
    "HistoryResult",
    "ObjectRef",
    "OpsRepo",
    "Promotion",
    "PromotionStatus",
    "SyncStatus",
    "backoff_seconds",
    "check_app_path",
    "check_environment",
    "check_image_ref",
    "check_namespace",
]

NOT_CONFIGURED: Final = "not configured"  # the `cluster` of every deployment when Corral has no cluster


class SyncStatus(enum.StrEnum):
    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    UNKNOWN = "Unknown"


class DeployStatus(enum.StrEnum):
    PENDING = "pending"  # desired state written, not applied yet
    SYNCING = "syncing"  # applied, rolling out
    HEALTHY = "healthy"
    DEGRADED = "degraded"  # was healthy, an object turned Degraded later
    FAILED = "failed"  # render/apply error, or the rollout turned Degraded


class HistoryResult(enum.StrEnum):
    PENDING = "pending"
    HEALTHY = "healthy"
    FAILED = "failed"
    SUPERSEDED = "superseded"  # replaced by a newer desired state before it settled


class PromotionStatus(enum.StrEnum):
    PENDING = "pending_approval"
    APPLIED = "applied"


@attrs.frozen
class ObjectRef:
    """One Kubernetes object the deployer applied (its inventory entry)."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        group = self.api_version.rpartition("/")[0] if "/" in self.api_version else ""
        return group, self.kind, self.namespace or "", self.name

    def to_json(self) -> dict[str, Any]:
        return {"apiVersion": self.api_version, "kind": self.kind, "name": self.name, "namespace": self.namespace}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ObjectRef:
        return cls(str(raw["apiVersion"]), str(raw["kind"]), str(raw["name"]), raw.get("namespace"))

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


@attrs.frozen
class OpsRepo:
    """A git repository holding ``apps/<app>/*.yaml`` templates: a Corral project or an outside URL."""

    id: uuid.UUID
    name: str
    branch: str
    path: str
    created_at: datetime
    project_id: uuid.UUID | None = None
    url: str | None = None
    credential_secret: str | None = None  # name of a global secret (scope deploy) holding the credential
    sync_interval_s: int = 60


@attrs.frozen
class Deployment:
    """Desired state (what the API writes) and observed state (what the reconciler writes) of one environment."""

    id: uuid.UUID
    project_id: uuid.UUID
    environment: str
    ops_repo_id: uuid.UUID
    app_path: str
    image_ref: str
    namespace: str
    created_at: datetime
    updated_at: datetime
    values_override: dict[str, Any] = attrs.field(factory=dict)
    prune: bool = False
    self_heal: bool = False
    auto_rollback: bool = False
    cluster: str = "default"
    desired_revision: int = 1
    updated_by: uuid.UUID | None = None
    updated_by_name: str | None = None
    # observed state
    applied_revision: int | None = None
    applied_commit: str | None = None
    sync: SyncStatus = SyncStatus.UNKNOWN
    health: str = "Unknown"
    status: DeployStatus = DeployStatus.PENDING
    last_error: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    inventory: tuple[ObjectRef, ...] = ()
    history_id: uuid.UUID | None = None  # the history entry of the current desired state

    def observed(self, **changes: Any) -> Deployment:
        return attrs.evolve(self, **changes)


@attrs.frozen
class HistoryEntry:
    """One desired state an environment had."""

    id: uuid.UUID
    deployment_id: uuid.UUID
    revision: int
    image_ref: str
    values_override: dict[str, Any]
    by_id: uuid.UUID | None
    by_name: str | None
    at: datetime
    result: HistoryResult = HistoryResult.PENDING
    reason: str = "update"  # update, rollback, promote, auto_rollback


@attrs.frozen
class Promotion:
    """Copying one environment's image reference to another; waits for an approval when the target is protected."""

    id: uuid.UUID
    project_id: uuid.UUID
    from_environment: str
    to_environment: str
    image_ref: str
    requested_by: uuid.UUID
    requested_by_name: str
    requested_at: datetime
    status: PromotionStatus = PromotionStatus.PENDING
    approved_by: uuid.UUID | None = None
    approved_by_name: str | None = None
    decided_at: datetime | None = None


_ENV = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,511}$")


def check_environment(value: str, field: str = "environment") -> str:
    if not _ENV.match(value):
        raise InvalidInput(f"{field} must be 1-32 characters: lower-case letters, digits and '-', starting with a "
                           "letter (e.g. staging, production)", field=field)
    return value


def check_namespace(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise InvalidInput("namespace must be a DNS label (lower-case letters, digits, '-'; at most 63)",
                           field="namespace")
    return value


def check_image_ref(value: str) -> str:
    if not _IMAGE.match(value):
        raise InvalidInput("image_ref must be an image reference like registry.example.com/app:1.2 (no spaces)",
                           field="image_ref")
    return value


def check_app_path(value: str, field: str = "app_path") -> str:
    parts = value.strip("/").split("/")
    if not value.strip("/") or any(p in ("", ".", "..") or p.startswith("-") for p in parts) or "\x00" in value:
        raise InvalidInput(f"{field} must be a relative path like apps/web (no '..' segments)", field=field)
    return "/".join(parts)


def backoff_seconds(attempts: int) -> float:
    """Argo CD's retry backoff: 5 s doubling to 3 min (``attempts`` failures so far, >= 1)."""
    return float(min(5 * 2 ** max(attempts - 1, 0), 180))
