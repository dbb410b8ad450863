"""Typed commands of the deployer's use cases (the API's bodies)."""

from __future__ import annotations

import uuid
from typing import Any

import attrs

__all__ = ["DesiredState", "NewOpsRepo", "RollbackRequest"]


def _doc(text: str) -> dict[str, object]:
    return {"doc": text}


@attrs.frozen(kw_only=True)
class NewOpsRepo:
    """Register an ops repository: a Corral project (``project``) or an outside git URL (``url``)."""

    name: str = attrs.field(metadata=_doc("unique name, e.g. platform-ops"))
    project: str | None = attrs.field(default=None, metadata=_doc("owner/name of a Corral project"))
    url: str | None = attrs.field(default=None, metadata=_doc("an outside https:// git URL"))
    branch: str = attrs.field(default="main", metadata=_doc("the branch followed"))
    path: str = attrs.field(default="", metadata=_doc("directory of the repository holding apps/ ('' the root)"))
    credential_secret: str | None = attrs.field(
        default=None, metadata=_doc("name of a global secret (scope deploy or all) with the token for url"))


@attrs.frozen(kw_only=True)
class DesiredState:
    """What an environment of a project runs."""

    ops_repo: str = attrs.field(metadata=_doc("name of a registered ops repository"))
    app_path: str = attrs.field(metadata=_doc("directory of the templates in the ops repository, e.g. apps/web"))
    image_ref: str = attrs.field(metadata=_doc("container image, e.g. registry.example.com/web:sha-abc"))
    namespace: str = attrs.field(metadata=_doc("target Kubernetes namespace"))
    values_override: dict[str, Any] = attrs.field(factory=dict, metadata=_doc("over values.yaml"))
    prune: bool = attrs.field(default=False, metadata=_doc("delete objects that left the templates"))
    self_heal: bool = attrs.field(default=False, metadata=_doc("put back objects changed by someone else"))
    auto_rollback: bool = attrs.field(default=False, metadata=_doc(
        "go back to the previous healthy image when a rollout turns Degraded"))


@attrs.frozen(kw_only=True)
class RollbackRequest:
    """Roll back to a history entry (default: the previous healthy one)."""

    to: uuid.UUID | None = attrs.field(default=None, metadata=_doc("history id; null: the previous healthy one"))
