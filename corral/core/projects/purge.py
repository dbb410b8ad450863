"""Deleting a project's leftovers outside PostgreSQL: a durable job, not a best-effort call.

The transaction that deletes a project also records a ``ProjectPurge`` row: every object-store prefix and
executor workspace the domains keep for the project (each domain's ``PurgeContributor`` says which, read in
that transaction, before the cascade removes the rows that name them) and the bare repository. The purger
claims the row (a lease: a crash mid-purge leaves it to the next pass), deletes everything it names — each step
idempotent, so starting over is safe — and deletes the row only when all of it is gone. A failure is recorded
on the row and retried with a growing delay.

What the projects domain keeps itself: cached archives (``archives/<project id>/``), release assets
(``releases/<project id>/``) and the repository. Other domains add theirs at wiring time (LFS objects,
pipeline caches, artifacts and logs, pipeline and agent workspaces).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import attrs

from corral.core.clock import Clock
from corral.core.errors import Conflict, Unavailable
from corral.core.git.ports import GitRepositories
from corral.core.projects.model import Project, ProjectPurge, PurgeParts
from corral.core.storage.ports import ObjectStore
from corral.core.uow import UnitOfWork, UnitOfWorkFactory
from corral.core.workloads.ports import Executor

__all__ = ["ProjectPurger", "PurgeContributor", "own_parts", "plan_purge"]

log = logging.getLogger("corral.projects")

# Reads, in the deleting transaction, what one domain keeps for the project outside PostgreSQL.
PurgeContributor = Callable[[UnitOfWork, Project], Awaitable[PurgeParts]]

_MAX_ERROR = 2000


def own_parts(project: Project) -> PurgeParts:
    """The projects domain's own objects: cached archives and release assets."""
    return PurgeParts(prefixes=(f"archives/{project.id}/", f"releases/{project.id}/"))


async def plan_purge(uow: UnitOfWork, project: Project, contributors: list[PurgeContributor],
                     clock: Clock) -> ProjectPurge:
    """The purge row of ``project`` (call before deleting it, in the same unit of work)."""
    prefixes: list[str] = []
    workspaces: list[str] = []
    for part in [own_parts(project), *[await c(uow, project) for c in contributors]]:
        prefixes += [p for p in part.prefixes if p not in prefixes]
        workspaces += [w for w in part.workspaces if w not in workspaces]
    for prefix in prefixes:  # a prefix must hold this project's objects only: never "" or another project's
        if not prefix.endswith("/") or f"/{project.id}/" not in f"/{prefix}":
            raise ValueError(f"purge prefix {prefix!r} does not name project {project.id}")
    now = clock.now()
    return ProjectPurge(project_id=project.id, project_name=project.full_name, repo_path=project.repo_path,
                        prefixes=tuple(prefixes), workspaces=tuple(workspaces), created_at=now, next_attempt_at=now)


@attrs.define
class ProjectPurger:
    """Claims purge rows and deletes what they name (``run_once``; the purge loop and a project's deletion
    call it)."""

    uow_factory: UnitOfWorkFactory
    objects: ObjectStore
    repos: GitRepositories
    clock: Clock
    executor: Executor | None = None  # set by the workloads wiring; a purge naming workspaces waits for it
    contributors: list[PurgeContributor] = attrs.field(factory=list)
    lease: timedelta = timedelta(minutes=15)
    retry_base: timedelta = timedelta(seconds=30)
    retry_max: timedelta = timedelta(hours=1)

    async def plan(self, uow: UnitOfWork, project: Project) -> ProjectPurge:
        return await plan_purge(uow, project, self.contributors, self.clock)

    async def run_once(self, *, project_id: uuid.UUID | None = None, limit: int = 10) -> int:
        """Purge up to ``limit`` due projects (only ``project_id`` when given); returns how many are done."""
        now = self.clock.now()
        try:
            async with self.uow_factory() as uow:
                claimed = await uow.project_purges.claim(now, now + self.lease, limit, project_id)
                await uow.commit()
        except Conflict:  # another pass claimed them at the same moment
            return 0
        done = 0
        for purge in claimed:
            try:
                await self._purge(purge)
            except Exception as exc:  # recorded on the row and retried: nothing is lost
                delay = min(self.retry_base * 2 ** max(purge.attempts - 1, 0), self.retry_max)
                error = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]
                log.warning("purging deleted project %s failed (attempt %d, retried in %ds): %s",
                            purge.project_name, purge.attempts, delay.total_seconds(), error)
                async with self.uow_factory() as uow:
                    await uow.project_purges.fail(purge.project_id, error, self.clock.now() + delay)
                    await uow.commit()
                continue
            async with self.uow_factory() as uow:
                await uow.project_purges.finish(purge.project_id)
                await uow.commit()
            done += 1
            log.info("purged deleted project %s", purge.project_name,
                     extra={"project_id": str(purge.project_id), "prefixes": list(purge.prefixes),
                            "workspaces": len(purge.workspaces)})
        return done

    async def _purge(self, purge: ProjectPurge) -> None:
        for prefix in purge.prefixes:
            await self._delete_prefix(prefix)
        if purge.workspaces:
            if self.executor is None:
                raise Unavailable("no workload executor is wired to delete the project's workspaces")
            for key in purge.workspaces:
                # create_workspace is idempotent: it answers the executor's reference of an existing one
                await self.executor.delete_workspace(await self.executor.create_workspace(key))
        await self.repos.delete(purge.repo_path)

    async def _delete_prefix(self, prefix: str) -> None:
        token: str | None = None
        while True:
            listing = await self.objects.list(prefix, token=token)
            for obj in listing.objects:
                await self.objects.delete(obj.key)
            token = listing.next_token
            if not token:
                return
