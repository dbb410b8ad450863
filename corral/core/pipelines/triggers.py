"""Triggers: outbox consumers that turn pushes, tags and merge requests into pipelines, exactly once.

Each consumer runs in the outbox relay's unit of work, so the pipeline is written in the same transaction
that marks the event processed; a redelivered event finds its pipeline by ``trigger_key`` and adds nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import attrs

from corral.core.clock import Clock
from corral.core.errors import CorralError
from corral.core.git.ports import GitRepositories
from corral.core.outbox import topics
from corral.core.outbox.model import OutboxEvent
from corral.core.pipelines.creation import NewRun, create_pipeline, read_pipeline_files
from corral.core.pipelines.ports import PipelineFileParser
from corral.core.pipelines.selection import skip_ci
from corral.core.projects.model import IssueFilter, MrStatus, Project
from corral.core.uow import UnitOfWork

__all__ = ["PipelineTriggers"]

log = logging.getLogger("corral.pipelines")

_ZERO = "0" * 40
_MAX_CHANGED = 5000


@attrs.define
class PipelineTriggers:
    git: GitRepositories
    parser: PipelineFileParser
    clock: Clock
    base_url: str = ""
    on_created: Callable[[], None] | None = None  # e.g. wakes this replica's scheduler

    async def on_event(self, uow: UnitOfWork, event: OutboxEvent) -> int:
        """Outbox consumer: returns how many pipelines were created."""
        if event.project_id is None or event.topic not in (topics.PUSH, topics.MERGE_REQUEST):
            return 0
        project = await uow.projects.get(event.project_id)
        if project is None or not project.is_active:
            return 0
        try:  # git reads only: a failure here must not fail the relay's batch (webhooks, notifications)
            runs = await (self._push_runs if event.topic == topics.PUSH else self._mr_runs)(uow, project, event)
        except CorralError as exc:
            log.warning("no pipeline for event %s: %s", event.id, exc)
            return 0
        created = 0
        for run in runs:
            if run.trigger_key and await uow.pipelines.by_trigger(run.trigger_key) is not None:
                continue
            if skip_ci(run.message):
                continue
            try:
                files = await read_pipeline_files(self.git, project.repo_path, run.sha)
            except CorralError as exc:  # e.g. the commit is gone again: nothing to run
                log.warning("pipeline files unreadable at %s: %s", run.sha, exc)
                continue
            if await create_pipeline(uow, self.clock, self.parser, project, run, files, base_url=self.base_url):
                created += 1
        if created and self.on_created is not None:
            self.on_created()
        return created

    async def _commit(self, project: Project, sha: str) -> tuple[str, str]:
        commits = await self.git.log(project.repo_path, sha, limit=1)
        if not commits:
            return "", ""
        return commits[0].message, commits[0].author.name

    async def _changed(self, project: Project, base: str | None, head: str) -> tuple[str, ...] | None:
        try:
            if base is None or base == _ZERO:
                _, comparison = await self.git.show(project.repo_path, head, max_patch_bytes=0)
            else:
                comparison = await self.git.compare(project.repo_path, base, head, max_patch_bytes=0)
        except CorralError:
            return None
        paths: list[str] = []
        for f in comparison.files[:_MAX_CHANGED]:
            paths.append(f.path)
            if f.old_path:
                paths.append(f.old_path)
        return tuple(dict.fromkeys(paths))

    async def _push_runs(self, uow: UnitOfWork, project: Project, event: OutboxEvent) -> list[NewRun]:
        p = event.payload
        after = p.get("after")
        ref = p.get("ref")
        if p.get("deleted") or not isinstance(after, str) or not isinstance(ref, str):
            return []
        pusher = p.get("pusher") or {}
        actor_id = _uuid(pusher.get("id"))
        actor_name = str(pusher.get("name") or "")
        message, author = await self._commit(project, after)
        before = p.get("before") if not p.get("created") else None
        changed = await self._changed(project, before if isinstance(before, str) else None, after)
        if ref.startswith("refs/tags/"):
            return [NewRun(event="tag", ref=ref, branch="", sha=after, message=message, author=author,
                           changed_files=None, actor_id=actor_id, actor_name=actor_name,
                           trigger_key=f"outbox:{event.id}")]
        branch = p.get("branch")
        if not isinstance(branch, str):
            return []
        runs = [NewRun(event="push", ref=ref, branch=branch, sha=after, message=message, author=author,
                       changed_files=changed, actor_id=actor_id, actor_name=actor_name,
                       trigger_key=f"outbox:{event.id}")]
        # new commits on the source branch of an open merge request: a pull_request run (Woodpecker's synchronize)
        if p.get("via") != "merge" and not p.get("created"):
            for mr in await uow.merge_requests.list(project.id, IssueFilter(status="open", limit=200)):
                if mr.source_branch == branch:
                    runs.append(await self._pr_run(project, mr.number, mr.source_branch, mr.target_branch, after,
                                                   "pull_request", actor_id, actor_name,
                                                   f"outbox:{event.id}:mr:{mr.number}"))
        return runs

    async def _pr_run(self, project: Project, number: int, source: str, target: str, sha: str, event: str,
                      actor_id: uuid.UUID | None, actor_name: str, key: str) -> NewRun:
        message, author = await self._commit(project, sha)
        changed = await self._changed(project, f"refs/heads/{target}", sha) if event == "pull_request" else None
        return NewRun(event=event, ref=f"refs/pull/{number}/head", branch=target, sha=sha, message=message,
                      author=author, changed_files=changed, actor_id=actor_id, actor_name=actor_name,
                      pull_request=number, extra={"source_branch": source, "target_branch": target},
                      trigger_key=key)

    async def _mr_runs(self, uow: UnitOfWork, project: Project, event: OutboxEvent) -> list[NewRun]:
        p = event.payload
        action = p.get("action")
        mr = p.get("merge_request") or {}
        number = mr.get("number")
        if not isinstance(number, int):
            return []
        sender = p.get("sender") or {}
        actor_id, actor_name = _uuid(sender.get("id")), str(sender.get("name") or "")
        source, target = str(mr.get("source_branch", "")), str(mr.get("target_branch", ""))
        key = f"outbox:{event.id}"
        if action in ("opened", "reopened"):
            sha = await self.git.resolve(project.repo_path, f"refs/heads/{source}")
            if sha is None:
                return []
            return [await self._pr_run(project, number, source, target, sha, "pull_request", actor_id, actor_name,
                                       key)]
        if action in ("merged", "closed"):
            current = await uow.merge_requests.get(project.id, number)
            if action == "closed" and current is not None and current.status is not MrStatus.CLOSED:
                return []
            sha = mr.get("merge_commit_sha") or await self.git.resolve(project.repo_path, f"refs/heads/{source}")
            if not isinstance(sha, str) or not sha:
                return []
            return [await self._pr_run(project, number, source, target, sha, "pull_request_closed", actor_id,
                                       actor_name, key)]
        return []


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
