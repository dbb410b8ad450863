"""The ports of the deployer: its store (a unit-of-work store), the cluster, the ops repositories' files,
the template renderer and the secrets it may read."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import attrs

from corral.core.deploy.model import Deployment, HistoryEntry, ObjectRef, OpsRepo, Promotion

__all__ = ["Cluster", "DeployStore", "ManifestRenderer", "OpsSource", "RenderedObject", "SecretSource"]


class DeployStore(Protocol):
    """Ops repositories, deployments, their history and promotions (bound to a unit of work)."""

    async def add_ops_repo(self, repo: OpsRepo) -> None:
        """Store a new ops repository; Conflict when its name is taken."""
        ...

    async def get_ops_repo(self, repo_id: uuid.UUID) -> OpsRepo | None: ...

    async def ops_repo_by_name(self, name: str) -> OpsRepo | None: ...

    async def list_ops_repos(self) -> list[OpsRepo]:
        """Every ops repository, by name."""
        ...

    async def get(self, project_id: uuid.UUID, environment: str) -> Deployment | None: ...

    async def get_by_id(self, deployment_id: uuid.UUID) -> Deployment | None: ...

    async def list_for_project(self, project_id: uuid.UUID) -> list[Deployment]:
        """The project's deployments, by environment."""
        ...

    async def list_all(self) -> list[Deployment]:
        """Every deployment (the reconciler's pass), oldest first."""
        ...

    async def project_names(self, project_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """``owner/name`` of each existing (active) project among ``project_ids``, in one read."""
        ...

    async def save(self, deployment: Deployment) -> None:
        """Insert or replace the whole deployment (desired and observed state); Conflict when another deployment
        has the same (project, environment)."""
        ...

    async def save_observed(self, deployment: Deployment) -> None:
        """Write only the observed state (applied revision and commit, sync, health, status, last error, retry
        schedule, inventory) of an existing deployment: a desired state written meanwhile is kept."""
        ...

    async def add_history(self, entry: HistoryEntry) -> None: ...

    async def set_history_result(self, entry_id: uuid.UUID, result: str) -> None: ...

    async def get_history(self, entry_id: uuid.UUID) -> HistoryEntry | None: ...

    async def history(self, deployment_id: uuid.UUID, limit: int) -> list[HistoryEntry]:
        """The newest ``limit`` entries, newest first."""
        ...

    async def trim_history(self, deployment_id: uuid.UUID, keep: int) -> None:
        """Delete all but the newest ``keep`` entries."""
        ...

    async def add_promotion(self, promotion: Promotion) -> None: ...

    async def get_promotion(self, promotion_id: uuid.UUID) -> Promotion | None: ...

    async def save_promotion(self, promotion: Promotion) -> None: ...

    async def list_promotions(self, project_id: uuid.UUID) -> list[Promotion]:
        """The project's promotions, newest first."""
        ...


class Cluster(Protocol):
    """One Kubernetes cluster, reached with server-side apply (field manager ``corral``, forced conflicts).

    Objects are plain mappings as the API server speaks them. ``apply`` creates or updates; with ``dry_run``
    the server computes the result without storing it. A missing object is None for ``get`` and nothing for
    ``delete``. Unavailable when the API server cannot be reached.
    """

    name: str

    async def apply(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]: ...

    async def get(self, ref: ObjectRef) -> dict[str, Any] | None: ...

    async def list_labelled(self, kinds: Iterable[tuple[str, str]], labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Objects of the given (apiVersion, kind) pairs, in every namespace, carrying every label of ``labels``."""
        ...

    async def delete(self, ref: ObjectRef) -> None: ...


class OpsSource(Protocol):
    """Reads the ops repositories (a Corral project's repository, or a mirror of an outside URL)."""

    async def head(self, repo: OpsRepo) -> str | None:
        """The commit the followed branch points at (fetching an outside repository first); None if absent."""
        ...

    async def files(self, repo: OpsRepo, commit: str, directory: str) -> dict[str, str]:
        """The YAML files (``*.yaml``, ``*.yml``) directly in ``directory`` at ``commit``: name → text.
        NotFound when the directory does not exist."""
        ...


@attrs.frozen
class RenderedObject:
    """One Kubernetes object rendered from a template, with where it came from."""

    file: str
    line: int
    obj: dict[str, Any]


class ManifestRenderer(Protocol):
    """Templates → objects: sandboxed templating over ``context`` only (undefined names are errors), then YAML.

    Raises corral.core.deploy.render.RenderError naming the file, line and missing value.
    """

    def load_values(self, file: str, text: str) -> dict[str, Any]:
        """``values.yaml``: a mapping (empty file: {})."""
        ...

    def render(self, files: Mapping[str, str], context: Mapping[str, Any]) -> list[RenderedObject]:
        """Every document of every file (by file name), empty documents left out."""
        ...


class SecretSource(Protocol):
    """Secret values for a deployment (the audited secret reader, scope ``deploy``)."""

    async def read(self, deployment: Deployment, names: Iterable[str]) -> dict[str, str]: ...
