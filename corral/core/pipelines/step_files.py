"""Step caches and artifacts in the object store (Corral's extensions ``cache`` and ``artifacts``).

- A cache is one tar object ``cache/<project id>/<branch>/<key>.tar`` (the branch URL-quoted): restored before
  the step (the step's branch first, else the project's default branch), saved after the step succeeded.
- Artifacts are one object per file, ``artifacts/<project id>/<pipeline id>/<name>`` (``name`` = the file's
  path relative to the workspace), recorded in the store with their size and expiry; the retention loop
  deletes them once expired.

Problems here never fail the step: they are said in its log. An executor that cannot pack or unpack (it
raises ``Unavailable``) gets one line saying so.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import quote

import attrs

from corral.core.clock import Clock
from corral.core.errors import CorralError, NotFound, Unavailable
from corral.core.ids import uuid7
from corral.core.pipelines.definition import Artifacts, Cache
from corral.core.pipelines.runs import Artifact, Pipeline, StepRun
from corral.core.pipelines.tar_reader import TarFormatError, tar_files
from corral.core.projects.model import Project
from corral.core.storage.ports import ObjectStore
from corral.core.uow import UnitOfWorkFactory
from corral.core.workloads.model import Workspace
from corral.core.workloads.ports import Executor

__all__ = ["StepFiles", "artifact_prefix", "cache_key"]

log = logging.getLogger("corral.pipelines")


def cache_key(project_id: object, branch: str, key: str) -> str:
    return f"cache/{project_id}/{quote(branch or '_', safe='')}/{quote(key, safe='')}.tar"


def artifact_prefix(pipeline: Pipeline) -> str:
    return f"artifacts/{pipeline.project_id}/{pipeline.id}/"


async def _primed(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks`` with its first chunk already read: an executor's refusal (Unavailable) is raised here,
    before anything is written to the store."""
    first = await anext(chunks, None)

    async def rest() -> AsyncIterator[bytes]:
        if first is not None:
            yield first
        async for chunk in chunks:
            yield chunk

    return rest()


@attrs.define
class StepFiles:
    executor: Executor
    objects: ObjectStore
    uow_factory: UnitOfWorkFactory
    clock: Clock

    async def restore_cache(self, workspace: Workspace, project: Project, branch: str, cache: Cache) -> list[str]:
        """Unpack the cache into the workspace; the lines to log."""
        candidates = [branch] if branch else []
        if project.default_branch not in candidates:
            candidates.append(project.default_branch)
        for name in candidates:
            key = cache_key(project.id, name, cache.key)
            try:
                if not await self.objects.exists(key):
                    continue
                await self.executor.unpack(workspace, self.objects.get(key))
            except Unavailable as exc:
                return [f"cache {cache.key}: not restored, the executor cannot unpack files ({exc.message})"]
            except CorralError as exc:
                return [f"cache {cache.key}: not restored ({exc.message})"]
            where = "" if name == branch else f" (from the default branch {name})"
            return [f"cache {cache.key}: restored{where}"]
        return [f"cache {cache.key}: nothing to restore yet"]

    async def save_cache(self, workspace: Workspace, project: Project, branch: str, cache: Cache) -> list[str]:
        key = cache_key(project.id, branch or project.default_branch, cache.key)
        try:
            info = await self.objects.put(key, await _primed(self.executor.pack(workspace, cache.paths)),
                                          content_type="application/x-tar")
        except Unavailable as exc:
            return [f"cache {cache.key}: not saved, the executor cannot pack files ({exc.message})"]
        except CorralError as exc:
            return [f"cache {cache.key}: not saved ({exc.message})"]
        return [f"cache {cache.key}: saved ({info.size} bytes)"]

    async def upload_artifacts(self, workspace: Workspace, pipeline: Pipeline, row: StepRun,
                               artifacts: Artifacts) -> list[str]:
        """Upload each file matching the step's ``artifacts.paths``; the lines to log."""
        prefix = artifact_prefix(pipeline)
        expires = (self.clock.now() + timedelta(seconds=artifacts.expire_in_seconds)
                   if artifacts.expire_in_seconds else None)
        count, total = 0, 0
        try:
            async for member in tar_files(await _primed(self.executor.pack(workspace, artifacts.paths))):
                key = prefix + member.name
                info = await self.objects.put(key, member.chunks)
                artifact = Artifact(id=uuid7(), pipeline_id=pipeline.id, project_id=pipeline.project_id,
                                    step=row.name, name=member.name, key=key, size=info.size,
                                    created_at=self.clock.now(), expires_at=expires)
                async with self.uow_factory() as uow:
                    await uow.pipelines.put_artifact(artifact)
                    await uow.commit()
                count += 1
                total += info.size
        except Unavailable as exc:
            return [f"artifacts: not uploaded, the executor cannot pack files ({exc.message})"]
        except (CorralError, TarFormatError) as exc:
            message = exc.message if isinstance(exc, CorralError) else str(exc)
            return [f"artifacts: upload failed after {count} file(s): {message}"]
        if not count:
            return [f"artifacts: no file matches {', '.join(artifacts.paths)}"]
        until = f", kept until {expires.isoformat(timespec='seconds')}" if expires else ""
        return [f"artifacts: {count} file(s) uploaded ({total} bytes){until}"]

    async def expire(self, limit: int = 200) -> int:
        """Delete expired artifacts (objects, then rows); returns how many."""
        async with self.uow_factory() as uow:
            expired = await uow.pipelines.expired_artifacts(self.clock.now(), limit)
            for artifact in expired:
                with contextlib.suppress(NotFound):
                    await self.objects.delete(artifact.key)
                await uow.pipelines.delete_artifact(artifact.id)
            await uow.commit()
        if expired:
            log.info("expired pipeline artifacts deleted", extra={"count": len(expired)})
        return len(expired)
