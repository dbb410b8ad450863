"""The reconciler: one leader across replicas renders each deployment's templates, applies what changed with
server-side apply, prunes, detects drift, assesses health and records every transition.

A pass (``run_once``) goes over every deployment. A deployment is applied when its desired revision or the
ops repository's commit changed since the last apply; otherwise every object is compared with a dry-run apply
(drift: OutOfSync, put back with self-heal). Failures retry with backoff (5 s doubling to 3 min). A rollout
that turns Degraded fails the deployment and, with auto_rollback, writes the previous healthy image back as a
new desired state. Without a cluster everything but the apply runs and the deployment says so.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import attrs

from corral.core.clock import Clock
from corral.core.deploy.health import DEGRADED, HEALTHY, MISSING, Health, assess, worst
from corral.core.deploy.model import (
    NOT_CONFIGURED,
    Deployment,
    DeployStatus,
    HistoryResult,
    ObjectRef,
    OpsRepo,
    SyncStatus,
    backoff_seconds,
)
from corral.core.deploy.ports import Cluster, ManifestRenderer, OpsSource, SecretSource
from corral.core.deploy.render import (
    DEPLOYMENT_LABEL,
    MANAGED_BY,
    RenderError,
    comparable,
    context_of,
    drifted,
    label,
    order_by_wave,
    protect_secret_refs,
    ref_of,
    substitute_secrets,
)
from corral.core.deploy.service import Actor, DeployService, ProjectInfo, announce
from corral.core.deploy.telemetry import SpanSink, SpanTimer, new_trace_id
from corral.core.errors import CorralError, NotFound
from corral.core.observe.ports import LeaderLock
from corral.core.outage import OutageLog
from corral.core.uow import UnitOfWorkFactory

__all__ = ["PassReport", "PlannedChange", "Reconciler", "Rendering", "render_deployment"]

log = logging.getLogger("corral.deploy")

LOCK_NAME = "deployer"
VALUES_FILE = "values.yaml"


@attrs.frozen
class Rendering:
    """A deployment's objects as they are applied, in sync order."""

    commit: str
    objects: list[dict[str, Any]]


async def render_deployment(d: Deployment, repo: OpsRepo, project: str, commit: str, source: OpsSource,
                            renderer: ManifestRenderer, secrets: SecretSource | None) -> Rendering:
    """Render ``d`` at ``commit``; ``secrets`` None previews secret values as ``<secret:NAME>``."""
    directory = "/".join(p for p in (repo.path.strip("/"), d.app_path.strip("/")) if p)
    try:
        files = await source.files(repo, commit, directory)
    except NotFound:
        raise RenderError(f"no directory {directory} in {repo.name} at {commit[:12]}", file=directory) from None
    values_text = files.pop(VALUES_FILE, None)
    values = renderer.load_values(f"{directory}/{VALUES_FILE}", values_text) if values_text else {}
    protected, refs = protect_secret_refs({f"{directory}/{name}": text for name, text in sorted(files.items())})
    rendered = renderer.render(protected, context_of(d, project, values))
    secret_values = await secrets.read(d, refs.names) if secrets is not None and refs.names else None
    if secrets is None and refs.names:
        secret_values = None
    substituted = substitute_secrets(rendered, refs, secret_values)
    objects = [label(item, d) for item in substituted]
    seen: dict[tuple[str, str, str, str], str] = {}
    for item, obj in zip(substituted, objects, strict=True):
        key = ref_of(obj).key
        if key in seen:
            raise RenderError(f"{ref_of(obj)} is also defined in {seen[key]}", file=item.file, line=item.line)
        seen[key] = f"{item.file}:{item.line}"
    return Rendering(commit, order_by_wave(objects))


@attrs.frozen
class PlannedChange:
    """What applying one object would do: ``create``, ``update``, ``unchanged``, ``prune`` (an inventory object
    that left the templates, prune on), ``orphan`` (the same, prune off: kept, OutOfSync) or ``unknown`` (no
    cluster, or a Secret whose values a preview does not read). ``live`` and ``would_be`` are the compared forms
    (status and server-set fields left out) when the cluster was asked."""

    ref: ObjectRef
    change: str
    rendered: dict[str, Any] | None
    live: dict[str, Any] | None = None
    would_be: dict[str, Any] | None = None


@attrs.define
class PassReport:
    deployments: int = 0
    applied: int = 0
    healed: int = 0
    pruned: int = 0
    failed: int = 0
    skipped: int = 0


_SYSTEM = Actor(uuid.UUID(int=0), "system")


@attrs.define
class Reconciler:
    uow_factory: UnitOfWorkFactory
    clock: Clock
    renderer: ManifestRenderer
    source: OpsSource
    secrets: SecretSource
    leader: LeaderLock
    service: DeployService
    cluster: Cluster | None = None
    # rendered objects by what they depend on (commit, directory, desired state): a pass with nothing new
    # renders nothing and reads no secret
    _cache: dict[str, Rendering] = attrs.field(factory=dict)
    # objects found in sync: (deployment, object) -> (resourceVersion, render key). The same live version of an
    # object compared with the same rendering needs no new dry-run apply (any change bumps resourceVersion).
    _in_sync: dict[tuple[uuid.UUID, tuple[str, str, str, str]], tuple[str, str]] = attrs.field(factory=dict)
    _wake: asyncio.Event | None = None
    on_apply: Callable[[Deployment], Awaitable[None]] | None = None  # instrumentation (benchmarks, tests)
    spans: SpanSink | None = None  # Corral's own telemetry: a span per pass and per deployment applied
    # an outage of PostgreSQL: one warning when it starts, one line when it ends (not a traceback per pass)
    _outage: OutageLog = attrs.field(factory=lambda: OutageLog("deployer", log), init=False)

    @property
    def cluster_name(self) -> str:
        return self.cluster.name if self.cluster is not None else NOT_CONFIGURED

    def wake(self) -> None:
        """Start the next pass now (a desired state was written, an ops repository was pushed to)."""
        if self._wake is not None:
            self._wake.set()

    async def loop(self, interval: float) -> None:
        """Passes every ``interval`` seconds (or at once when woken), as the leader only."""
        self._wake = asyncio.Event()
        while True:
            wait = interval
            try:
                await self.run_once()
            except Exception as exc:
                backoff = self._outage.failed(exc)
                if backoff is None:
                    log.exception("deployer pass failed; retrying next period")
                else:  # a dependency is down: logged once; retry sooner than a period while it lasts
                    wait = min(backoff, interval)
            else:
                self._outage.succeeded()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except TimeoutError:
                pass
            self._wake.clear()

    async def run_once(self) -> PassReport | None:
        """One pass as the leader; None (nothing done) when another replica leads."""
        async with self.leader.lead(LOCK_NAME) as leading:
            if not leading:
                return None
            return await self._pass()

    async def _pass(self) -> PassReport:
        started = time.monotonic()
        timer = SpanTimer("deploy.pass", new_trace_id())
        report = PassReport()
        async with self.uow_factory() as uow:  # three reads, whatever the number of deployments
            deployments = await uow.deploy.list_all()
            repos = {r.id: r for r in await uow.deploy.list_ops_repos()}
            names = await uow.deploy.project_names({d.project_id for d in deployments})
        heads: dict[uuid.UUID, str | BaseException | None] = {}
        for repo_id in {d.ops_repo_id for d in deployments}:
            repo = repos.get(repo_id)
            if repo is None:
                continue
            try:
                heads[repo_id] = await self.source.head(repo)
            except Exception as exc:  # an unreachable outside repository fails its deployments only
                heads[repo_id] = exc
        report.deployments = len(deployments)
        now = self.clock.now()
        due = [d for d in deployments if d.next_attempt_at is None or now >= d.next_attempt_at]
        report.skipped = len(deployments) - len(due)
        # a new desired state first: a write reaches the cluster without waiting for the checks of the others
        due.sort(key=lambda d: d.applied_revision == d.desired_revision)
        live = await self._live_index(due)
        for d in due:
            if not self._still_leading():
                log.warning("the deployer lock was lost during a pass; another replica takes over",
                            extra={"trace_id": timer.trace_id, "span_id": timer.span_id})
                break
            full_name = names.get(d.project_id)
            repo = repos.get(d.ops_repo_id)
            if full_name is None or repo is None:
                continue
            await self._reconcile(d, repo, ProjectInfo(d.project_id, full_name), heads.get(repo.id), report,
                                  timer, live)
        figures = {"deployments": report.deployments, "applied": report.applied, "healed": report.healed,
                   "pruned": report.pruned, "failed": report.failed, "skipped": report.skipped}
        timer.finish(self.spans, error=report.failed > 0, **{f"deploy.{k}": v for k, v in figures.items()},
                     **{"deploy.cluster": self.cluster_name})
        if report.applied or report.failed or report.healed or report.pruned:
            log.info("deployer pass", extra={**figures, "trace_id": timer.trace_id, "span_id": timer.span_id,
                                             "duration_ms": round((time.monotonic() - started) * 1000, 1)})
        return report

    def _still_leading(self) -> bool:
        """False once the leader lock says it was lost mid-pass (a lock that cannot tell: True)."""
        holds = getattr(self.leader, "holds", None)
        return True if holds is None else bool(holds(LOCK_NAME))

    async def _live_index(self, due: list[Deployment]) -> dict[tuple[str, str, str, str], dict[str, Any]] | None:
        """Every object Corral manages of the kinds the due deployments applied, in one list call per kind
        (instead of one read per object); None (read one by one) without a cluster or when listing fails."""
        if self.cluster is None:
            return None
        kinds = {(r.api_version, r.kind) for d in due if d.applied_revision == d.desired_revision
                 for r in d.inventory}
        if not kinds:
            return None
        try:
            listed = await self.cluster.list_labelled(sorted(kinds), {MANAGED_BY[0]: MANAGED_BY[1]})
        except Exception as exc:  # each deployment then reads (and fails) on its own
            log.warning("listing the managed objects failed; reading them one by one: %s", exc)
            return None
        return {ref_of(obj).key: obj for obj in listed}

    @staticmethod
    def _render_key(d: Deployment, repo: OpsRepo, project: ProjectInfo, commit: str) -> str:
        return json.dumps([commit, repo.path, d.app_path, d.image_ref, d.values_override, d.environment,
                           d.namespace, project.full_name, str(d.id)], sort_keys=True, default=str)

    async def _render(self, d: Deployment, repo: OpsRepo, project: ProjectInfo, commit: str,
                      key: str | None = None) -> Rendering:
        key = key or self._render_key(d, repo, project, commit)
        cached = self._cache.get(key)
        if cached is None:
            cached = await render_deployment(d, repo, project.full_name, commit, self.source, self.renderer,
                                             self.secrets)
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = cached
        return cached

    async def preview(self, d: Deployment, project: ProjectInfo) -> tuple[Rendering, list[tuple[dict[str, Any], str]]]:
        """What ``d`` renders to now (secret values as ``<secret:NAME>``) and, per object, what applying it would
        do (see PlannedChange; an orphan is not listed). Changes nothing, reads no secret."""
        rendering, plan = await self.plan(d, project)
        return rendering, [(p.rendered if p.rendered is not None else p.ref.to_json(), p.change) for p in plan
                           if p.change != "orphan"]

    async def plan(self, d: Deployment, project: ProjectInfo) -> tuple[Rendering, list[PlannedChange]]:
        """The rendering of ``d`` at its ops repository's head and what applying it would change in the cluster
        (a dry-run apply compared with the live object, as a pass does). Changes nothing, reads no secret."""
        async with self.uow_factory() as uow:
            repo = await uow.deploy.get_ops_repo(d.ops_repo_id)
        if repo is None:
            raise NotFound("the deployment's ops repository is gone")
        commit = await self.source.head(repo)
        if commit is None:
            raise RenderError(f"branch {repo.branch} not found in {repo.name}", file=repo.name)
        rendering = await render_deployment(d, repo, project.full_name, commit, self.source, self.renderer, None)
        out: list[PlannedChange] = []
        for obj in rendering.objects:
            ref = ref_of(obj)
            if self.cluster is None:
                out.append(PlannedChange(ref, "unknown", obj))
                continue
            live = await self.cluster.get(ref)
            if live is None:
                out.append(PlannedChange(ref, "create", obj))
            elif "<secret:" in json.dumps(obj):
                out.append(PlannedChange(ref, "unknown", obj, comparable(live)))  # real values are not read
            else:
                would_be = comparable(await self.cluster.apply(obj, dry_run=True))
                change = "update" if would_be != comparable(live) else "unchanged"
                out.append(PlannedChange(ref, change, obj, comparable(live), would_be))
        keys = {ref_of(o).key for o in rendering.objects}
        for ref in d.inventory:
            if ref.key not in keys:
                live = await self.cluster.get(ref) if self.cluster is not None else None
                if self.cluster is None or live is not None:
                    out.append(PlannedChange(ref, "prune" if d.prune else "orphan", None, comparable(live)))
        return rendering, out

    async def _reconcile(self, d: Deployment, repo: OpsRepo, project: ProjectInfo,
                         head: str | BaseException | None, report: PassReport,
                         parent: SpanTimer | None = None,
                         live: dict[tuple[str, str, str, str], dict[str, Any]] | None = None) -> None:
        timer = SpanTimer("deploy.apply", parent.trace_id if parent else new_trace_id(),
                          parent.span_id if parent else None, project.id)
        extra = {"project": project.full_name, "project_id": str(project.id), "environment": d.environment,
                 "trace_id": timer.trace_id, "span_id": timer.span_id}
        before = (report.applied, report.healed, report.pruned)
        error: str | None = None
        try:
            if isinstance(head, BaseException):
                raise head
            if head is None:
                raise RenderError(f"branch {repo.branch} not found in {repo.name}", file=repo.name)
            render_key = self._render_key(d, repo, project, head)
            rendering = await self._render(d, repo, project, head, render_key)
            if self.cluster is None:
                await self._observe(d, project, cluster=NOT_CONFIGURED, sync=SyncStatus.UNKNOWN, health="Unknown",
                                    status=d.status if d.status is not DeployStatus.FAILED else DeployStatus.PENDING,
                                    last_error=None)
                return
            await self._sync(d, project, rendering, report, extra, live, render_key)
        except CorralError as exc:
            report.failed += 1
            error = exc.message
            await self._failed(d, project, exc.message, extra)
        except Exception as exc:  # a driver error the adapter did not translate: still a failure to retry
            report.failed += 1
            error = f"{type(exc).__name__}: {exc}"
            log.exception("deployment reconcile failed", extra=extra)
            await self._failed(d, project, error, extra)
        finally:
            if error is not None or (report.applied, report.healed, report.pruned) != before:
                timer.finish(self.spans, error=error is not None, **{
                    "corral.project": project.full_name, "deploy.environment": d.environment,
                    "deploy.revision": d.desired_revision, "deploy.image_ref": d.image_ref,
                    "deploy.cluster": self.cluster_name, "deploy.applied": report.applied > before[0],
                    "deploy.healed": report.healed - before[1], "deploy.pruned": report.pruned - before[2],
                    **({"deploy.error": error} if error is not None else {})})

    async def _sync(self, d: Deployment, project: ProjectInfo, rendering: Rendering, report: PassReport,
                    extra: dict[str, Any], live_index: dict[tuple[str, str, str, str], dict[str, Any]] | None = None,
                    render_key: str = "") -> None:
        cluster = self.cluster
        assert cluster is not None
        new_revision = d.applied_revision != d.desired_revision or d.applied_commit != rendering.commit
        refs = [ref_of(o) for o in rendering.objects]
        live: dict[tuple[str, str, str, str], dict[str, Any] | None] = {}
        out_of_sync = False
        if new_revision:
            for obj in rendering.objects:
                live[ref_of(obj).key] = await cluster.apply(obj)
            report.applied += 1
            log.info("applied", extra={**extra, "revision": d.desired_revision, "commit": rendering.commit,
                                       "objects": len(refs)})
            if self.on_apply is not None:
                await self.on_apply(d)
        else:
            for obj in rendering.objects:
                ref = ref_of(obj)
                current = live_index.get(ref.key) if live_index is not None else None
                if current is None:  # not listed (no index, or its labels were changed): read it
                    current = await cluster.get(ref)
                version = str((current or {}).get("metadata", {}).get("resourceVersion") or "")
                memo = (d.id, ref.key)
                if version and self._in_sync.get(memo) == (version, render_key):
                    pass  # the same live version was found in sync with the same rendering
                elif current is None or drifted(await cluster.apply(obj, dry_run=True), current):
                    self._in_sync.pop(memo, None)
                    if d.self_heal:
                        current = await cluster.apply(obj)
                        report.healed += 1
                        log.info("self-heal: put back", extra={**extra, "object": str(ref)})
                    else:
                        out_of_sync = True
                elif version and render_key:
                    if len(self._in_sync) > 100_000:
                        self._in_sync.clear()
                    self._in_sync[memo] = (version, render_key)
                live[ref.key] = current
        left = [r for r in d.inventory if r.key not in {x.key for x in refs}]
        if d.prune:
            kinds = {(r.api_version, r.kind) for r in [*d.inventory, *refs]}
            for obj in await cluster.list_labelled(sorted(kinds), {DEPLOYMENT_LABEL: str(d.id)}):
                ref = ref_of(obj)
                if ref.key not in {x.key for x in refs}:
                    await cluster.delete(ref)
                    report.pruned += 1
                    log.info("pruned", extra={**extra, "object": str(ref)})
            left = []
        elif left:
            out_of_sync = True
        healths = []
        for ref in refs:
            seen = live.get(ref.key)
            if seen is None:
                healths.append(Health(MISSING, f"{ref} is missing"))
                continue
            health = assess(seen)
            if health is not None:
                healths.append(health if not health.message else Health(health.status, f"{ref}: {health.message}"))
        app = worst(healths)
        status, last_error = d.status, None
        history = None
        if new_revision:
            status = DeployStatus.SYNCING
        if status in (DeployStatus.SYNCING, DeployStatus.PENDING):
            if app.status == HEALTHY:
                status, history = DeployStatus.HEALTHY, HistoryResult.HEALTHY
            elif app.status == DEGRADED:
                status, history, last_error = DeployStatus.FAILED, HistoryResult.FAILED, app.message
            else:
                status = DeployStatus.SYNCING
        elif status is DeployStatus.HEALTHY and app.status == DEGRADED:
            status, last_error = DeployStatus.DEGRADED, app.message
        elif status in (DeployStatus.DEGRADED, DeployStatus.FAILED) and app.status == HEALTHY:
            status = DeployStatus.HEALTHY
            if d.status is DeployStatus.FAILED:
                history = HistoryResult.HEALTHY
        elif status in (DeployStatus.DEGRADED, DeployStatus.FAILED):
            last_error = d.last_error if app.status != DEGRADED else app.message
        inventory = tuple(refs) + tuple(left)
        await self._observe(d, project, cluster=cluster.name,
                            sync=SyncStatus.OUT_OF_SYNC if out_of_sync else SyncStatus.SYNCED, health=app.status,
                            status=status, last_error=last_error, applied_revision=d.desired_revision,
                            applied_commit=rendering.commit, inventory=inventory, attempts=0, next_attempt_at=None,
                            history=history, rollout_failed=history is HistoryResult.FAILED)

    async def _observe(self, d: Deployment, project: ProjectInfo, *, history: HistoryResult | None = None,
                       rollout_failed: bool = False, **fields: Any) -> None:
        """Write the observed state when it changed; announce a status change; roll back a failed rollout."""
        updated = attrs.evolve(d, **fields)
        if updated == d and history is None:
            return
        async with self.uow_factory() as uow:
            fresh = await uow.deploy.get_by_id(d.id)
            if fresh is None or fresh.desired_revision != d.desired_revision:
                return  # a new desired state was written meanwhile: the next pass handles it
            await uow.deploy.save_observed(updated)
            if history is not None and d.history_id is not None:
                await uow.deploy.set_history_result(d.history_id, history.value)
            if updated.status is not d.status:
                action = updated.status.value
                await announce(uow, updated, project.full_name, action, None)
                log.info("deployment %s", action, extra={"project": project.full_name,
                                                         "environment": d.environment,
                                                         "health": updated.health, "error": updated.last_error})
                if rollout_failed and d.auto_rollback:
                    try:
                        await self.service.rollback_in(uow, _SYSTEM, project, updated, None, "auto_rollback")
                    except CorralError as exc:
                        log.warning("auto rollback impossible: %s", exc.message, extra={"project": project.full_name})
                    else:
                        self.wake()
            await uow.commit()

    async def _failed(self, d: Deployment, project: ProjectInfo, message: str, extra: dict[str, Any]) -> None:
        attempts = d.attempts + 1
        delay = backoff_seconds(attempts)
        log.warning("deployment failed; retrying in %.0f s: %s", delay, message, extra=extra)
        new_revision = d.applied_revision != d.desired_revision
        await self._observe(d, project, status=DeployStatus.FAILED, last_error=message, attempts=attempts,
                            next_attempt_at=self.clock.now() + timedelta(seconds=delay),
                            sync=SyncStatus.OUT_OF_SYNC if self.cluster is not None else SyncStatus.UNKNOWN,
                            cluster=self.cluster_name,
                            history=HistoryResult.FAILED if new_revision and d.attempts == 0 else None)


