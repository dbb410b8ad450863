"""In-memory fakes of the deployer's ports: the store (a unit-of-work component), a cluster whose Deployments
roll out over fake time, the ops repositories' files, the secrets."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from corral.core.clock import Clock
from corral.core.deploy.model import Deployment, HistoryEntry, HistoryResult, ObjectRef, OpsRepo, Promotion
from corral.core.errors import Conflict, NotFound, Unavailable

__all__ = ["DeployTables", "FakeCluster", "FakeSecretSource", "InMemoryDeployStore", "InMemoryOpsSource"]

_OBSERVED = ("applied_revision", "applied_commit", "sync", "health", "status", "last_error", "attempts",
             "next_attempt_at", "inventory", "cluster")


@attrs.define
class DeployTables:
    ops_repos: dict[uuid.UUID, OpsRepo] = attrs.field(factory=dict)
    deployments: dict[uuid.UUID, Deployment] = attrs.field(factory=dict)
    history: dict[uuid.UUID, HistoryEntry] = attrs.field(factory=dict)
    promotions: dict[uuid.UUID, Promotion] = attrs.field(factory=dict)


class InMemoryDeployStore:
    """DeployStore over DeployTables (rows replaced, never mutated)."""

    def __init__(self, tables: DeployTables, projects: Any = None) -> None:
        self.t = tables
        self.projects = projects  # the projects domain's tables (corral.fakes.projects.ProjectsData), if any

    async def add_ops_repo(self, repo: OpsRepo) -> None:
        if any(r.name == repo.name for r in self.t.ops_repos.values()):
            raise Conflict(f"ops repository {repo.name} exists")
        self.t.ops_repos[repo.id] = repo

    async def get_ops_repo(self, repo_id: uuid.UUID) -> OpsRepo | None:
        return self.t.ops_repos.get(repo_id)

    async def ops_repo_by_name(self, name: str) -> OpsRepo | None:
        return next((r for r in self.t.ops_repos.values() if r.name == name), None)

    async def list_ops_repos(self) -> list[OpsRepo]:
        return sorted(self.t.ops_repos.values(), key=lambda r: r.name)

    async def get(self, project_id: uuid.UUID, environment: str) -> Deployment | None:
        return next((d for d in self.t.deployments.values()
                     if d.project_id == project_id and d.environment == environment), None)

    async def get_by_id(self, deployment_id: uuid.UUID) -> Deployment | None:
        return self.t.deployments.get(deployment_id)

    async def list_for_project(self, project_id: uuid.UUID) -> list[Deployment]:
        return sorted((d for d in self.t.deployments.values() if d.project_id == project_id),
                      key=lambda d: d.environment)

    async def list_all(self) -> list[Deployment]:
        return sorted(self.t.deployments.values(), key=lambda d: (d.created_at, d.id))

    async def project_names(self, project_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        known = self.projects.projects if self.projects is not None else {}
        return {pid: known[pid].full_name for pid in project_ids if pid in known}

    async def save(self, deployment: Deployment) -> None:
        other = await self.get(deployment.project_id, deployment.environment)
        if other is not None and other.id != deployment.id:
            raise Conflict(f"the project already has a deployment in {deployment.environment}")
        self.t.deployments[deployment.id] = deployment

    async def save_observed(self, deployment: Deployment) -> None:
        current = self.t.deployments.get(deployment.id)
        if current is None:
            raise NotFound("deployment not found")
        self.t.deployments[deployment.id] = attrs.evolve(
            current, **{name: getattr(deployment, name) for name in _OBSERVED})

    async def add_history(self, entry: HistoryEntry) -> None:
        self.t.history[entry.id] = entry

    async def set_history_result(self, entry_id: uuid.UUID, result: str) -> None:
        entry = self.t.history.get(entry_id)
        if entry is not None:
            self.t.history[entry_id] = attrs.evolve(entry, result=HistoryResult(result))

    async def get_history(self, entry_id: uuid.UUID) -> HistoryEntry | None:
        return self.t.history.get(entry_id)

    async def history(self, deployment_id: uuid.UUID, limit: int) -> list[HistoryEntry]:
        rows = [e for e in self.t.history.values() if e.deployment_id == deployment_id]
        return sorted(rows, key=lambda e: (e.revision, e.id), reverse=True)[:limit]

    async def trim_history(self, deployment_id: uuid.UUID, keep: int) -> None:
        for entry in (await self.history(deployment_id, 10**9))[keep:]:
            del self.t.history[entry.id]

    async def add_promotion(self, promotion: Promotion) -> None:
        self.t.promotions[promotion.id] = promotion

    async def get_promotion(self, promotion_id: uuid.UUID) -> Promotion | None:
        return self.t.promotions.get(promotion_id)

    async def save_promotion(self, promotion: Promotion) -> None:
        self.t.promotions[promotion.id] = promotion

    async def list_promotions(self, project_id: uuid.UUID) -> list[Promotion]:
        rows = [p for p in self.t.promotions.values() if p.project_id == project_id]
        return sorted(rows, key=lambda p: (p.requested_at, p.id), reverse=True)


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = _merge(base.get(k), v)
        return out
    return _copy(patch)


def _copy(value: Any) -> Any:
    """A deep copy of JSON-like data (dicts, lists, scalars): what the API server hands out, several times faster
    than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _key(api_version: str, kind: str, namespace: str | None, name: str) -> tuple[str, str, str, str]:
    return ObjectRef(api_version, kind, name, namespace).key


@attrs.define
class FakeCluster:
    """Cluster in memory. Apply merges the applied fields into the live object (enough of server-side apply
    for one field manager); Deployments roll out over ``clock`` time: ``rollout_seconds`` after a spec change
    they are available, unless their image is in ``failing_images``: then, after ``progress_deadline_seconds``,
    their Progressing condition says ProgressDeadlineExceeded. ``calls`` records (verb, ref) of every write;
    ``down`` makes every call Unavailable."""

    clock: Clock
    name: str = "fake"
    rollout_seconds: float = 30.0
    progress_deadline_seconds: float = 120.0
    failing_images: set[str] = attrs.field(factory=set)
    objects: dict[tuple[str, str, str, str], dict[str, Any]] = attrs.field(factory=dict)
    changed_at: dict[tuple[str, str, str, str], datetime] = attrs.field(factory=dict)
    calls: list[tuple[str, str]] = attrs.field(factory=list)
    down: bool = False
    reads: int = 0  # get and list calls (the reconciler's cost on a real API server)
    dry_runs: int = 0
    _version: int = 0  # resourceVersion of the last write

    def _bump(self, obj: dict[str, Any]) -> None:
        self._version += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self._version)

    def _check(self) -> None:
        if self.down:
            raise Unavailable("the Kubernetes API server cannot be reached")

    def _key_of(self, obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
        meta = obj.get("metadata") or {}
        return _key(str(obj.get("apiVersion")), str(obj.get("kind")), meta.get("namespace"), str(meta.get("name")))

    def _merged(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        key = self._key_of(obj)
        current = self.objects.get(key)
        merged = _merge(current or {}, {k: v for k, v in obj.items() if k != "status"})
        meta = merged.setdefault("metadata", {})
        spec_changed = current is None or current.get("spec") != merged.get("spec")
        generation = (current or {}).get("metadata", {}).get("generation", 0)
        meta["generation"] = generation + 1 if spec_changed else generation
        meta.setdefault("uid", str(uuid.uuid4()))
        if current is not None and "status" in current:
            merged["status"] = current["status"]
        return merged

    async def apply(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        self._check()
        merged = self._merged(obj)
        if dry_run:
            self.dry_runs += 1
            return self._with_status(merged, self._key_of(obj))
        key = self._key_of(obj)
        if self.objects.get(key, {}).get("spec") != merged.get("spec") or key not in self.objects:
            self.changed_at[key] = self.clock.now()
        if self.objects.get(key) != merged:
            self._bump(merged)
        self.objects[key] = merged
        self.calls.append(("apply", str(ObjectRef(merged["apiVersion"], merged["kind"], merged["metadata"]["name"],
                                                  merged["metadata"].get("namespace")))))
        return self._with_status(merged, key)

    async def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        self._check()
        self.reads += 1
        obj = self.objects.get(ref.key)
        return None if obj is None else self._with_status(obj, ref.key)

    async def list_labelled(self, kinds: Iterable[tuple[str, str]], labels: Mapping[str, str]) -> list[dict[str, Any]]:
        self._check()
        self.reads += 1
        wanted = {(ObjectRef(a, k, "x").key[0], k) for a, k in kinds}
        out = []
        for key, obj in self.objects.items():
            have = (obj.get("metadata") or {}).get("labels") or {}
            if (key[0], key[1]) in wanted and all(have.get(k) == v for k, v in labels.items()):
                out.append(self._with_status(obj, key))
        return out

    async def delete(self, ref: ObjectRef) -> None:
        self._check()
        if self.objects.pop(ref.key, None) is not None:
            self.calls.append(("delete", str(ref)))

    def edit(self, ref: ObjectRef, patch: Mapping[str, Any]) -> None:
        """Someone else changes a live object (drift)."""
        self.objects[ref.key] = _merge(self.objects[ref.key], patch)
        self._bump(self.objects[ref.key])

    def _with_status(self, obj: dict[str, Any], key: tuple[str, str, str, str]) -> dict[str, Any]:
        if obj.get("kind") != "Deployment":
            return _copy(obj)
        out: dict[str, Any] = _copy(obj)
        spec = out.get("spec") or {}
        replicas = spec.get("replicas", 1)
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
        images = {c.get("image") for c in containers}
        since = self.changed_at.get(key)
        elapsed = (self.clock.now() - since).total_seconds() if since is not None else 0.0
        generation = out["metadata"].get("generation", 1)
        status: dict[str, Any] = {"observedGeneration": generation, "replicas": replicas}
        if images & self.failing_images:
            status.update(updatedReplicas=replicas, availableReplicas=0)
            if elapsed >= self.progress_deadline_seconds:
                status["conditions"] = [{"type": "Progressing", "status": "False",
                                         "reason": "ProgressDeadlineExceeded"}]
        elif elapsed >= self.rollout_seconds:
            status.update(updatedReplicas=replicas, availableReplicas=replicas)
        else:
            status.update(updatedReplicas=replicas, availableReplicas=0)
        out["status"] = status
        return out


@attrs.define
class InMemoryOpsSource:
    """OpsSource over a GitRepositories fake (or any port): project repositories by path; outside URLs in
    ``mirrors`` (url → repository path in ``repos``)."""

    repos: Any
    paths: dict[uuid.UUID, str] = attrs.field(factory=dict)  # project id → repository path
    mirrors: dict[str, str] = attrs.field(factory=dict)

    def _repo(self, repo: OpsRepo) -> str:
        if repo.project_id is not None:
            return self.paths.get(repo.project_id, f"{repo.project_id}.git")
        if repo.url in self.mirrors:
            return self.mirrors[repo.url]
        raise Unavailable(f"cannot fetch {repo.url}")

    async def head(self, repo: OpsRepo) -> str | None:
        result: str | None = await self.repos.resolve(self._repo(repo), f"refs/heads/{repo.branch}")
        return result

    async def files(self, repo: OpsRepo, commit: str, directory: str) -> dict[str, str]:
        path = self._repo(repo)
        entries = await self.repos.tree(path, commit, directory)
        out: dict[str, str] = {}
        for entry in entries:
            if entry.type == "blob" and entry.name.endswith((".yaml", ".yml")):
                blob = await self.repos.blob(path, commit, entry.path, limit=1024 * 1024)
                out[entry.name] = blob.data.decode()
        return out


@attrs.define
class FakeSecretSource:
    """SecretSource from a dict; ``reads`` records (deployment id, names)."""

    values: dict[str, str] = attrs.field(factory=dict)
    reads: list[tuple[uuid.UUID, tuple[str, ...]]] = attrs.field(factory=list)

    async def read(self, deployment: Deployment, names: Iterable[str]) -> dict[str, str]:
        wanted = tuple(sorted(names))
        self.reads.append((deployment.id, wanted))
        missing = [n for n in wanted if n not in self.values]
        if missing:
            raise NotFound(f"secret {missing[0]} is not defined in this project or globally")
        return {n: self.values[n] for n in wanted}
