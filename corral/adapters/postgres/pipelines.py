"""PostgresPipelineStore: pipelines, pipeline_workflows (the leased queue) and pipeline_steps (migration 060)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from corral.adapters.postgres.errors import translate_errors
from corral.core.pipelines.runs import Artifact, Pipeline, Schedule, Status, StepKind, StepRun, WorkflowRun

__all__ = ["PostgresPipelineStore"]

_PIPELINE_COLUMNS = (
    "id, project_id, number, event, git_ref, commit_sha, status, created_at, branch, commit_message, "
    "commit_author, pull_request, parent_number, triggered_by, triggered_by_name, variables, definition, errors, "
    "trigger_key, cancel_requested, started_at, finished_at"
)
_WORKFLOW_COLUMNS = (
    "id, pipeline_id, project_id, position, name, status, depends_on, runs_on, workspace_key, workspace_deleted, "
    "reuse_workspace, lease_owner, heartbeat_at, started_at, finished_at, error"
)
_STEP_COLUMNS = (
    "id, pipeline_id, workflow_id, project_id, step_order, name, kind, status, image, depends_on, detached, "
    "exit_code, started_at, finished_at, log_ref, error"
)


def _pipeline(r: Any) -> Pipeline:
    return Pipeline(
        id=r["id"], project_id=r["project_id"], number=r["number"], event=r["event"], ref=r["git_ref"],
        commit_sha=r["commit_sha"] or "", status=Status(r["status"]), created_at=r["created_at"], branch=r["branch"],
        commit_message=r["commit_message"], commit_author=r["commit_author"], pull_request=r["pull_request"],
        parent_number=r["parent_number"], triggered_by=r["triggered_by"], triggered_by_name=r["triggered_by_name"],
        variables=dict(r["variables"] or {}), definition=dict(r["definition"] or {}), errors=tuple(r["errors"] or ()),
        trigger_key=r["trigger_key"], cancel_requested=r["cancel_requested"], started_at=r["started_at"],
        finished_at=r["finished_at"],
    )


def _pipeline_args(p: Pipeline) -> tuple[Any, ...]:
    return (p.id, p.project_id, p.number, p.event, p.ref, p.commit_sha, p.status.value, p.created_at, p.branch,
            p.commit_message, p.commit_author, p.pull_request, p.parent_number, p.triggered_by, p.triggered_by_name,
            dict(p.variables), dict(p.definition), list(p.errors), p.trigger_key, p.cancel_requested, p.started_at,
            p.finished_at)


def _workflow(r: Any) -> WorkflowRun:
    return WorkflowRun(
        id=r["id"], pipeline_id=r["pipeline_id"], project_id=r["project_id"], position=r["position"], name=r["name"],
        status=Status(r["status"]), depends_on=tuple(r["depends_on"]), runs_on=tuple(r["runs_on"]),
        workspace_key=r["workspace_key"], workspace_deleted=r["workspace_deleted"],
        reuse_workspace=r["reuse_workspace"], lease_owner=r["lease_owner"], heartbeat_at=r["heartbeat_at"],
        started_at=r["started_at"], finished_at=r["finished_at"], error=r["error"],
    )


def _workflow_args(w: WorkflowRun) -> tuple[Any, ...]:
    return (w.id, w.pipeline_id, w.project_id, w.position, w.name, w.status.value, list(w.depends_on),
            list(w.runs_on), w.workspace_key, w.workspace_deleted, w.reuse_workspace, w.lease_owner, w.heartbeat_at,
            w.started_at, w.finished_at, w.error)


def _step(r: Any) -> StepRun:
    return StepRun(
        id=r["id"], pipeline_id=r["pipeline_id"], workflow_id=r["workflow_id"], project_id=r["project_id"],
        position=r["step_order"], name=r["name"], kind=StepKind(r["kind"]), status=Status(r["status"]),
        image=r["image"], depends_on=tuple(r["depends_on"]), detached=r["detached"], exit_code=r["exit_code"],
        started_at=r["started_at"], finished_at=r["finished_at"], log_key=r["log_ref"], error=r["error"],
    )


def _step_args(s: StepRun) -> tuple[Any, ...]:
    return (s.id, s.pipeline_id, s.workflow_id, s.project_id, s.position, s.name, s.kind.value, s.status.value,
            s.image, list(s.depends_on), s.detached, s.exit_code, s.started_at, s.finished_at, s.log_key, s.error)


_ARTIFACT_COLUMNS = "id, pipeline_id, project_id, step, name, minio_path, size_bytes, created_at, expires_at"
_SCHEDULE_COLUMNS = ("id, project_id, name, cron, branch, variables, created_by, created_by_name, created_at, "
                     "next_run_at, last_run_at")


def _artifact(r: Any) -> Artifact:
    return Artifact(id=r["id"], pipeline_id=r["pipeline_id"], project_id=r["project_id"], step=r["step"],
                    name=r["name"], key=r["minio_path"], size=r["size_bytes"], created_at=r["created_at"],
                    expires_at=r["expires_at"])


def _schedule(r: Any) -> Schedule:
    return Schedule(id=r["id"], project_id=r["project_id"], name=r["name"], cron=r["cron"], branch=r["branch"],
                    variables=dict(r["variables"] or {}), created_by=r["created_by"],
                    created_by_name=r["created_by_name"], created_at=r["created_at"], next_run_at=r["next_run_at"],
                    last_run_at=r["last_run_at"])


def _schedule_args(s: Schedule) -> tuple[Any, ...]:
    return (s.id, s.project_id, s.name, s.cron, s.branch, dict(s.variables), s.created_by, s.created_by_name,
            s.created_at, s.next_run_at, s.last_run_at)


def _placeholders(n: int) -> str:
    return ", ".join(f"${i}" for i in range(1, n + 1))


def _assignments(columns: str) -> str:
    names = [c.strip() for c in columns.split(",")]
    return ", ".join(f"{name} = ${i}" for i, name in enumerate(names, 1) if i > 1)


class PostgresPipelineStore:
    """See corral.core.pipelines.store.PipelineStore."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def next_number(self, project_id: uuid.UUID) -> int:
        with translate_errors("pipeline number"):
            value = await self.conn.fetchval(
                "INSERT INTO pipeline_counters (project_id, last_number) VALUES ($1, 1) ON CONFLICT (project_id)"
                " DO UPDATE SET last_number = pipeline_counters.last_number + 1 RETURNING last_number", project_id)
        return int(value)

    async def add(self, pipeline: Pipeline, workflows: list[WorkflowRun], steps: list[StepRun]) -> None:
        with translate_errors("pipeline"):
            await self.conn.execute(
                f"INSERT INTO pipelines ({_PIPELINE_COLUMNS}) VALUES ({_placeholders(22)})", *_pipeline_args(pipeline))
            if workflows:
                await self.conn.executemany(
                    f"INSERT INTO pipeline_workflows ({_WORKFLOW_COLUMNS}) VALUES ({_placeholders(16)})",
                    [_workflow_args(w) for w in workflows])
            if steps:
                await self.conn.executemany(
                    f"INSERT INTO pipeline_steps ({_STEP_COLUMNS}) VALUES ({_placeholders(16)})",
                    [_step_args(s) for s in steps])

    async def get(self, project_id: uuid.UUID, number: int) -> Pipeline | None:
        r = await self.conn.fetchrow(
            f"SELECT {_PIPELINE_COLUMNS} FROM pipelines WHERE project_id = $1 AND number = $2", project_id, number)
        return _pipeline(r) if r else None

    async def get_by_id(self, pipeline_id: uuid.UUID) -> Pipeline | None:
        r = await self.conn.fetchrow(f"SELECT {_PIPELINE_COLUMNS} FROM pipelines WHERE id = $1", pipeline_id)
        return _pipeline(r) if r else None

    async def by_trigger(self, trigger_key: str) -> Pipeline | None:
        r = await self.conn.fetchrow(f"SELECT {_PIPELINE_COLUMNS} FROM pipelines WHERE trigger_key = $1", trigger_key)
        return _pipeline(r) if r else None

    async def recent(self, project_id: uuid.UUID, *, limit: int, before_number: int | None = None) -> list[Pipeline]:
        rows = await self.conn.fetch(
            f"SELECT {_PIPELINE_COLUMNS} FROM pipelines WHERE project_id = $1 AND ($2::int IS NULL OR number < $2)"
            " ORDER BY number DESC LIMIT $3", project_id, before_number, limit)
        return [_pipeline(r) for r in rows]

    async def last_before(self, project_id: uuid.UUID, number: int, branch: str) -> Pipeline | None:
        r = await self.conn.fetchrow(
            f"SELECT {_PIPELINE_COLUMNS} FROM pipelines WHERE project_id = $1 AND number < $2 AND branch = $3"
            " ORDER BY number DESC LIMIT 1", project_id, number, branch)
        return _pipeline(r) if r else None

    async def workflows(self, pipeline_id: uuid.UUID) -> list[WorkflowRun]:
        rows = await self.conn.fetch(
            f"SELECT {_WORKFLOW_COLUMNS} FROM pipeline_workflows WHERE pipeline_id = $1 ORDER BY position", pipeline_id)
        return [_workflow(r) for r in rows]

    async def steps(self, pipeline_id: uuid.UUID) -> list[StepRun]:
        rows = await self.conn.fetch(
            f"SELECT {', '.join('s.' + c.strip() for c in _STEP_COLUMNS.split(','))} FROM pipeline_steps s"
            " JOIN pipeline_workflows w ON w.id = s.workflow_id WHERE s.pipeline_id = $1"
            " ORDER BY w.position, s.step_order", pipeline_id)
        return [_step(r) for r in rows]

    async def update_pipeline(self, pipeline: Pipeline) -> None:
        with translate_errors("pipeline"):
            await self.conn.execute(
                f"UPDATE pipelines SET {_assignments(_PIPELINE_COLUMNS)} WHERE id = $1", *_pipeline_args(pipeline))

    async def update_workflow(self, workflow: WorkflowRun) -> None:
        with translate_errors("pipeline workflow"):
            await self.conn.execute(
                f"UPDATE pipeline_workflows SET {_assignments(_WORKFLOW_COLUMNS)} WHERE id = $1",
                *_workflow_args(workflow))

    async def update_step(self, step: StepRun) -> None:
        with translate_errors("pipeline step"):
            await self.conn.execute(
                f"UPDATE pipeline_steps SET {_assignments(_STEP_COLUMNS)} WHERE id = $1", *_step_args(step))

    async def claim(self, owner: str, now: datetime, limit: int) -> list[WorkflowRun]:
        rows = await self.conn.fetch(
            f"""
            UPDATE pipeline_workflows w SET status = 'running', lease_owner = $1, heartbeat_at = $2, started_at = $2
             WHERE w.id IN (
                SELECT c.id FROM pipeline_workflows c JOIN pipelines p ON p.id = c.pipeline_id
                 WHERE c.status = 'pending' AND NOT p.cancel_requested
                   AND NOT EXISTS (SELECT 1 FROM pipeline_workflows d
                                    WHERE d.pipeline_id = c.pipeline_id
                                      AND split_part(d.name, ' (', 1) = ANY(c.depends_on)
                                      AND d.status IN ('pending', 'running', 'blocked'))
                 ORDER BY p.created_at, c.pipeline_id, c.position
                 LIMIT $3
                 FOR UPDATE OF c SKIP LOCKED)
            RETURNING {', '.join('w.' + c.strip() for c in _WORKFLOW_COLUMNS.split(','))}""",
            owner, now, limit)
        return sorted((_workflow(r) for r in rows), key=lambda w: w.position)

    async def heartbeat(self, owner: str, ids: list[uuid.UUID], now: datetime) -> list[uuid.UUID]:
        rows = await self.conn.fetch(
            "UPDATE pipeline_workflows SET heartbeat_at = $3 WHERE id = ANY($2::uuid[]) AND lease_owner = $1"
            " AND status = 'running' RETURNING id", owner, ids, now)
        return [r["id"] for r in rows]

    async def expired(self, before: datetime, limit: int) -> list[WorkflowRun]:
        rows = await self.conn.fetch(
            f"SELECT {_WORKFLOW_COLUMNS} FROM pipeline_workflows WHERE status = 'running' AND heartbeat_at < $1"
            " ORDER BY heartbeat_at LIMIT $2 FOR UPDATE SKIP LOCKED", before, limit)
        return [_workflow(r) for r in rows]

    async def by_commit(self, project_id: uuid.UUID, sha: str, limit: int) -> list[Pipeline]:
        rows = await self.conn.fetch(
            f"SELECT {_PIPELINE_COLUMNS} FROM pipelines WHERE project_id = $1 AND commit_sha = $2"
            " ORDER BY number DESC LIMIT $3", project_id, sha, limit)
        return [_pipeline(r) for r in rows]

    async def kept_workspaces(self, before: datetime, limit: int) -> list[WorkflowRun]:
        rows = await self.conn.fetch(
            f"SELECT {_WORKFLOW_COLUMNS} FROM pipeline_workflows WHERE NOT workspace_deleted AND workspace_key <> ''"
            " AND status NOT IN ('pending', 'running', 'blocked') AND finished_at < $1 ORDER BY finished_at LIMIT $2",
            before, limit)
        return [_workflow(r) for r in rows]

    async def workspaces_of(self, project_id: uuid.UUID) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT workspace_key FROM pipeline_workflows WHERE project_id = $1 AND NOT workspace_deleted"
            " AND workspace_key <> '' ORDER BY workspace_key", project_id)
        return [r["workspace_key"] for r in rows]

    # ---- artifacts ----------------------------------------------------------------------------------------
    async def put_artifact(self, artifact: Artifact) -> Artifact | None:
        with translate_errors("pipeline artifact"):
            old = await self.conn.fetchrow(
                f"DELETE FROM artifacts WHERE pipeline_id = $1 AND name = $2 RETURNING {_ARTIFACT_COLUMNS}",
                artifact.pipeline_id, artifact.name)
            await self.conn.execute(
                f"INSERT INTO artifacts ({_ARTIFACT_COLUMNS}) VALUES ({_placeholders(9)})",
                artifact.id, artifact.pipeline_id, artifact.project_id, artifact.step, artifact.name, artifact.key,
                artifact.size, artifact.created_at, artifact.expires_at)
        return _artifact(old) if old else None

    async def artifacts(self, pipeline_id: uuid.UUID) -> list[Artifact]:
        rows = await self.conn.fetch(
            f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts WHERE pipeline_id = $1 ORDER BY name", pipeline_id)
        return [_artifact(r) for r in rows]

    async def artifact(self, pipeline_id: uuid.UUID, name: str) -> Artifact | None:
        r = await self.conn.fetchrow(
            f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts WHERE pipeline_id = $1 AND name = $2", pipeline_id, name)
        return _artifact(r) if r else None

    async def expired_artifacts(self, now: datetime, limit: int) -> list[Artifact]:
        rows = await self.conn.fetch(
            f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2"
            " FOR UPDATE SKIP LOCKED", now, limit)
        return [_artifact(r) for r in rows]

    async def delete_artifact(self, artifact_id: uuid.UUID) -> None:
        await self.conn.execute("DELETE FROM artifacts WHERE id = $1", artifact_id)

    # ---- schedules ----------------------------------------------------------------------------------------
    async def add_schedule(self, schedule: Schedule) -> None:
        with translate_errors("pipeline schedule"):
            await self.conn.execute(
                f"INSERT INTO pipeline_schedules ({_SCHEDULE_COLUMNS}) VALUES ({_placeholders(11)})",
                *_schedule_args(schedule))

    async def schedules(self, project_id: uuid.UUID) -> list[Schedule]:
        rows = await self.conn.fetch(
            f"SELECT {_SCHEDULE_COLUMNS} FROM pipeline_schedules WHERE project_id = $1 ORDER BY name", project_id)
        return [_schedule(r) for r in rows]

    async def schedule(self, project_id: uuid.UUID, name: str) -> Schedule | None:
        r = await self.conn.fetchrow(
            f"SELECT {_SCHEDULE_COLUMNS} FROM pipeline_schedules WHERE project_id = $1 AND name = $2",
            project_id, name)
        return _schedule(r) if r else None

    async def update_schedule(self, schedule: Schedule) -> None:
        with translate_errors("pipeline schedule"):
            await self.conn.execute(
                f"UPDATE pipeline_schedules SET {_assignments(_SCHEDULE_COLUMNS)} WHERE id = $1",
                *_schedule_args(schedule))

    async def delete_schedule(self, schedule_id: uuid.UUID) -> None:
        await self.conn.execute("DELETE FROM pipeline_schedules WHERE id = $1", schedule_id)

    async def due_schedules(self, now: datetime, limit: int) -> list[Schedule]:
        rows = await self.conn.fetch(
            f"SELECT {_SCHEDULE_COLUMNS} FROM pipeline_schedules WHERE next_run_at <= $1 ORDER BY next_run_at"
            " LIMIT $2 FOR UPDATE SKIP LOCKED", now, limit)
        return [_schedule(r) for r in rows]
