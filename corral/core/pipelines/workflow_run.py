"""Running one leased workflow: workspace, clone, services, the steps as a DAG (per edge), the end.

- A step starts as soon as every step it depends on has finished (a detached step counts as finished once
  started), within the replica's ``max_running_steps`` slots.
- A step whose dependencies include a failure (a failed step without ``failure: ignore``, an error, a kill, or a
  step skipped because of one) runs only with ``when.status: failure``; otherwise it is skipped and the
  failure passes on to what depends on it. A step with only ``when.status: failure`` is skipped when nothing
  failed upstream.
- Services and detached steps are stopped when the steps are done; their logs are kept.
- Cancel, the workflow timeout and a lost lease stop every workload of the workflow at once.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import shlex
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

import attrs

from corral.core.clock import Clock
from corral.core.errors import Conflict, CorralError
from corral.core.pipelines.completion import finish_pipeline_if_done, skip_blocked_workflows
from corral.core.pipelines.creation import CLONE_STEP
from corral.core.pipelines.definition import FailurePolicy, SecretRef, Step, Value, Workflow, render_value
from corral.core.pipelines.engine_ports import LogWriter, PipelineToken, PipelineTokens, SecretValues, StepLogs
from corral.core.pipelines.environment import pipeline_environment, replan
from corral.core.pipelines.ports import PipelineFileParser
from corral.core.pipelines.runs import Pipeline, Status, StepKind, StepRun, WorkflowRun, overall_status
from corral.core.pipelines.settings import EngineSettings
from corral.core.pipelines.step_files import StepFiles
from corral.core.projects.model import Project
from corral.core.secrets.masking import SecretMasker
from corral.core.uow import UnitOfWorkFactory
from corral.core.workloads.model import ExitStatus, Outcome, WorkloadHandle, WorkloadSpec, Workspace
from corral.core.workloads.ports import Executor


class Engine(Protocol):
    """What a workflow run uses of the scheduler that runs it."""

    uow_factory: UnitOfWorkFactory
    executor: Executor
    parser: PipelineFileParser
    logs: StepLogs
    clock: Clock
    settings: EngineSettings
    clone_source: Callable[[Project], str]
    secrets: SecretValues | None
    tokens: PipelineTokens | None

    @property
    def files(self) -> StepFiles | None: ...

    @property
    def step_slots(self) -> asyncio.Semaphore: ...

__all__ = ["WorkflowExecution", "command_script", "step_log_key"]

log = logging.getLogger("corral.pipelines")
span_log = logging.getLogger("corral.pipelines.span")  # SelfTelemetry turns these records into spans
# SelfTelemetry turns these into log records (service ``pipeline``, the project and the step's span in the
# envelope); the stderr log leaves them out. Bounded: the first lines of each step, the stored log keeps all.
step_log = logging.getLogger("corral.pipelines.steplog")
TELEMETRY_LINES_PER_STEP = 200

_MAX_LINE = 64 * 1024
_FAILING = frozenset({Status.FAILURE, Status.ERROR, Status.KILLED})


def command_script(commands: tuple[str, ...]) -> str:
    """Woodpecker's script: each command echoed (shell-quoted, ``+ ``) then run, under ``/bin/sh -e``."""
    lines: list[str] = []
    for command in commands:
        lines.append(f"echo {shlex.quote('+ ' + command)}")
        lines.append(command)
    return "\n".join(lines) + "\n"


def _has_secret(value: Value) -> bool:
    if isinstance(value, SecretRef):
        return True
    if isinstance(value, list):
        return any(_has_secret(v) for v in value)
    if isinstance(value, dict):
        return any(_has_secret(v) for v in value.values())
    return False


def _split_env(step: Step, values: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The step's environment and plugin settings: plain ones, and those that carry a secret."""
    plain: dict[str, str] = {}
    secret: dict[str, str] = {}
    resolve = values.__getitem__
    for key, value in step.environment:
        if value is not None:
            (secret if _has_secret(value) else plain)[key] = render_value(value, resolve)
    for key, value in step.settings:
        if value is None or not key:
            continue
        name = "PLUGIN_" + key.replace(".", "_").replace("-", "_").upper()
        (secret if _has_secret(value) else plain)[name] = render_value(value, resolve)
    return plain, secret


def step_log_key(row: StepRun) -> str:
    """Where a step's log is stored (under the project's ``pipelines/<project id>/`` prefix)."""
    return f"pipelines/{row.project_id}/{row.pipeline_id}/{row.id}.log"


class _Aborted(Exception):
    pass


class WorkflowExecution:
    """One workflow run on this replica (made and tracked by the scheduler)."""

    def __init__(self, scheduler: Engine, workflow: WorkflowRun) -> None:
        self.s = scheduler
        self.workflow = workflow
        self.pipeline_id = workflow.pipeline_id
        self.reason: str | None = None  # cancel | timeout | lease
        self._handles: dict[str, WorkloadHandle] = {}
        self._background: list[tuple[StepRun, WorkloadHandle, asyncio.Task[int]]] = []
        self._stopping: list[asyncio.Task[None]] = []
        self._rows: dict[str, StepRun] = {}
        self._values: dict[str, str] = {}
        self._workspace: Workspace | None = None
        self._environ: dict[str, str] = {}
        self.pipeline: Pipeline | None = None
        self.project: Project | None = None
        self._token: PipelineToken | None = None
        self._elevated: dict[tuple[str, ...], PipelineToken | None] = {}  # step permissions -> their token
        self._masked: list[str] = []
        self._writers: dict[str, LogWriter] = {}

    # ---- aborting ---------------------------------------------------------------------------------------
    def abort(self, reason: str) -> None:
        """Stop every workload of the workflow now (cancel, timeout, lost lease); idempotent."""
        if self.reason is not None:
            return
        self.reason = reason
        handles = list(self._handles.values()) + [h for _, h, _ in self._background]
        if handles:
            self._stopping.append(asyncio.create_task(self._stop_all(handles)))

    async def _stop_all(self, handles: list[WorkloadHandle]) -> None:
        results = await asyncio.gather(
            *(self.s.executor.stop(h, self.s.settings.stop_grace_seconds) for h in handles), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.warning("stopping a workload failed: %s", result)

    # ---- database -----------------------------------------------------------------------------------------
    async def _save_step(self, row: StepRun) -> StepRun:
        self._rows[row.name] = row
        async with self.s.uow_factory() as uow:
            await uow.pipelines.update_step(row)
            await uow.commit()
        return row

    async def _load(self) -> list[WorkflowRun]:
        async with self.s.uow_factory() as uow:
            self.pipeline = await uow.pipelines.get_by_id(self.pipeline_id)
            assert self.pipeline is not None
            self.project = await uow.projects.get(self.pipeline.project_id)
            for row in await uow.pipelines.steps(self.pipeline_id):
                if row.workflow_id == self.workflow.id:
                    self._rows[row.name] = row
            siblings = await uow.pipelines.workflows(self.pipeline_id)
            prev = None
            if self.pipeline.branch:
                prev = await uow.pipelines.last_before(self.pipeline.project_id, self.pipeline.number,
                                                       self.pipeline.branch)
        if self.project is None:
            raise CorralError("the project was deleted")
        self._environ = pipeline_environment(self.pipeline, self.project, base_url=self.s.settings.base_url,
                                             prev=prev)
        return siblings

    # ---- the run ------------------------------------------------------------------------------------------
    async def run(self) -> None:
        token: PipelineToken | None = None
        status, error = Status.ERROR, ""
        watchdog: asyncio.Task[None] | None = None
        try:
            siblings = await self._load()
            deps = [w for w in siblings if w.name.split(" (")[0] in self.workflow.depends_on]
            if any(d.status.value not in self.workflow.runs_on for d in deps):
                status = Status.SKIPPED
                await self._skip_pending()
                return
            watchdog = asyncio.create_task(self._watchdog())
            token = await self._issue_token()
            status, error = await self._execute(token)
        except asyncio.CancelledError:
            self.abort(self.reason or "shutdown")
            await self._finish_background()
            raise
        except Exception as exc:
            log.exception("workflow %s failed to run", self.workflow.id)
            status, error = Status.ERROR, exc.message if isinstance(exc, CorralError) else type(exc).__name__
            self.abort("error")
        finally:
            if watchdog is not None:
                watchdog.cancel()
            if self.s.tokens is not None:
                for issued in [token, *self._elevated.values()]:
                    if issued is not None:
                        with contextlib.suppress(Exception):
                            await self.s.tokens.revoke(issued.id)
        await self._finish_background()
        await self._end(status, error)

    async def _watchdog(self) -> None:
        await asyncio.sleep(self.s.settings.workflow_timeout_seconds)
        self.abort("timeout")

    async def _issue_token(self, permissions: tuple[str, ...] = ()) -> PipelineToken | None:
        """The workflow's CORRAL_TOKEN (``project:read``), or with ``permissions`` the token of the steps that
        ask for them (``corral: {permissions}``): the user's permissions ∩ what is asked, never more."""
        p = self.pipeline
        assert p is not None and self.project is not None
        if self.s.tokens is None or p.triggered_by is None:
            return None
        extra = f" +{','.join(permissions)}" if permissions else ""
        try:
            return await self.s.tokens.issue(
                p.triggered_by, p.triggered_by_name, p.project_id, scopes=frozenset({"project:read", *permissions}),
                ttl_seconds=self.s.settings.workflow_timeout_seconds + 600,
                name=f"pipeline {self.project.full_name}#{p.number} {self.workflow.name}{extra}"[:100])
        except Exception as exc:
            log.warning("no CORRAL_TOKEN for pipeline %s: %s", p.id, exc)
            return None

    async def _execute(self, token: PipelineToken | None) -> tuple[Status, str]:
        p, project = self.pipeline, self.project
        assert p is not None and project is not None
        planned, definition = await asyncio.to_thread(replan, p, self.s.parser, self._environ)
        wf = next((w for w in planned if w.display_name == self.workflow.name), None)
        if wf is None:
            await self._skip_pending()
            problems = "; ".join(e.message for e in definition.errors) or "it no longer plans the same way"
            return Status.ERROR, f"the workflow could not be planned again: {problems}"
        names: set[str] = set()
        for step in (*wf.steps, *wf.services):
            if not self._rows.get(step.name) or not self._rows[step.name].status.final:
                names |= step.secrets()
        if names:
            if self.s.secrets is None or p.triggered_by is None:
                await self._skip_pending()
                return Status.ERROR, "secrets are referenced but no user is known to read them as"
            try:
                self._values = await self.s.secrets.read(p.triggered_by, p.triggered_by_name, p.project_id,
                                                         sorted(names), f"pipeline #{p.number} {self.workflow.name}")
            except CorralError as exc:
                await self._skip_pending()
                return Status.ERROR, exc.message
        for step in wf.steps:  # one more token per set of permissions the steps ask for (issued once)
            row = self._rows.get(step.name)
            if step.permissions and step.permissions not in self._elevated and row is not None \
                    and not row.status.final:
                self._elevated[step.permissions] = await self._issue_token(step.permissions)
        masked = list(self._values.values()) + ([token.secret] if token else [])
        masked += [t.secret for t in self._elevated.values() if t is not None]
        self._masked = masked
        self._token = token
        key = self.workflow.workspace_key or f"pipeline-{p.id.hex}-{self.workflow.position}"
        self._workspace = await self.s.executor.create_workspace(key)
        self.workflow = attrs.evolve(self.workflow, workspace_key=key, workspace_deleted=False)
        async with self.s.uow_factory() as uow:
            await uow.pipelines.update_workflow(self.workflow)
            await uow.commit()
        self._environ["CI_WORKSPACE"] = self._workspace.ref
        self._environ["CI_WORKFLOW_NAME"] = wf.name
        clone = self._rows.get(CLONE_STEP)
        if clone is not None and clone.kind is StepKind.CLONE and clone.status is Status.PENDING:
            clone = await self._run_clone(clone)
            if clone.status is not Status.SUCCESS:
                await self._skip_pending()
                return clone.status, "the clone step failed"
        for service in wf.services:
            row = self._rows.get(service.name)
            if row is not None and row.status is Status.PENDING and self.reason is None:
                await self._start_step(row, service, detached=True)
        failed = await self._run_dag(wf)
        if self.reason == "cancel":
            return Status.KILLED, "cancelled"
        if self.reason == "timeout":
            minutes = self.s.settings.workflow_timeout_seconds / 60
            return Status.FAILURE, f"the workflow timed out after {minutes:g} min"
        if self.reason == "lease":
            return Status.ERROR, "lost its lease"
        rows = [self._rows[s.name] for s in wf.steps if s.name in self._rows]
        effective = [Status.SUCCESS if (r.status is Status.FAILURE and wf.step(r.name).failure is FailurePolicy.IGNORE)
                     else r.status for r in rows if not r.detached]
        if failed and not effective:
            return Status.FAILURE, ""
        return (overall_status(effective) if effective else Status.SUCCESS), ""

    async def _skip_pending(self) -> None:
        for row in list(self._rows.values()):
            if row.status is Status.PENDING:
                await self._save_step(attrs.evolve(row, status=Status.SKIPPED))

    # ---- steps --------------------------------------------------------------------------------------------
    async def _run_clone(self, row: StepRun) -> StepRun:
        p, project = self.pipeline, self.project
        assert p is not None and project is not None
        source = self.s.clone_source(project)
        script = (f"git clone -q --no-checkout {shlex.quote(source)} .\n"
                  f"git -c advice.detachedHead=false checkout -q {shlex.quote(p.commit_sha)}\n"
                  f"git log -1 --format='HEAD is now at %h %s'\n")
        spec = self._spec(row, ("/bin/sh", "-e", "-c", script), {"GIT_TERMINAL_PROMPT": "0"}, {}, None, "")
        return await self._execute_step(row, spec, [])

    async def _run_dag(self, wf: Workflow) -> bool:
        """Run the steps; True when something failed (not ignored)."""
        failing: dict[str, bool] = {}
        finished: set[str] = set()
        pending: list[str] = []
        for step in wf.steps:
            row = self._rows.get(step.name)
            if row is None:
                continue
            if row.status.final:  # a restart: what succeeded before is not run again
                finished.add(step.name)
                failing[step.name] = row.status in _FAILING and step.failure is FailurePolicy.FAIL
            else:
                pending.append(step.name)
        running: dict[asyncio.Task[StepRun], str] = {}
        while pending or running:
            for name in list(pending):
                deps = wf.dependencies.get(name, ())
                if not all(d in finished or d not in self._rows for d in deps):
                    continue
                pending.remove(name)
                step, row = wf.step(name), self._rows[name]
                upstream_failed = any(failing.get(d, False) for d in deps)
                if self.reason is not None:
                    runs = False
                elif upstream_failed:
                    runs = step.when.runs_on_failure
                else:
                    runs = step.when.runs_on_success
                if not runs:
                    await self._save_step(attrs.evolve(row, status=Status.SKIPPED))
                    finished.add(name)
                    failing[name] = upstream_failed
                    continue
                running[asyncio.create_task(self._run_step(row, step))] = name
            if not running:
                if pending:  # unreachable with a valid graph; never spin
                    for name in pending:
                        await self._save_step(attrs.evolve(self._rows[name], status=Status.SKIPPED))
                break
            try:
                done, _ = await asyncio.wait(list(running), return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:  # shutdown: no step task outlives its workflow's
                for task in running:
                    task.cancel()
                raise
            for task in done:
                name = running.pop(task)
                row = task.result()
                finished.add(name)
                failing[name] = row.status in _FAILING and wf.step(name).failure is FailurePolicy.FAIL
        return any(failing.values())

    def _spec(self, row: StepRun, argv: tuple[str, ...], env: Mapping[str, str], secret_env: Mapping[str, str],
              timeout: float | None, directory: str, permissions: tuple[str, ...] = ()) -> WorkloadSpec:
        p = self.pipeline
        assert p is not None and self._workspace is not None
        full_env = {**self._environ, "CI_STEP_NAME": row.name, **env}
        secrets = dict(secret_env)
        token = self._elevated.get(permissions) if permissions else self._token
        if token is not None:
            secrets["CORRAL_TOKEN"] = token.secret
        return WorkloadSpec(
            name=f"p{p.number}-{p.id.hex[:8]}-{self.workflow.position}-{row.position}", argv=argv,
            workspace=self._workspace, workdir=directory, env=full_env, secret_env=secrets, image=row.image or None,
            timeout_seconds=timeout,
            labels={"corral.pipeline": str(p.id), "corral.workflow": str(self.workflow.id), "corral.step": row.name},
        )

    async def _run_step(self, row: StepRun, step: Step) -> StepRun:
        async with self.s.step_slots:
            if self.reason is not None:
                return await self._save_step(attrs.evolve(row, status=Status.SKIPPED))
            return await self._start_step(row, step, detached=step.detach)

    async def _start_step(self, row: StepRun, step: Step, *, detached: bool) -> StepRun:
        notes: list[str] = []
        if step.image and self.s.settings.local_executor:
            notes.append(f"image {step.image} is not used by the local executor")
        try:
            plain, secret = _split_env(step, self._values)
        except KeyError as exc:
            return await self._fail(row, Status.ERROR, f"secret {exc} could not be read")
        if step.commands:
            argv: tuple[str, ...] = ("/bin/sh", "-e", "-c", command_script(step.commands))
            if step.entrypoint:
                argv = (*step.entrypoint, command_script(step.commands))
        elif step.entrypoint:
            argv = step.entrypoint
        else:
            return await self._fail(row, Status.ERROR, f"plugin step (image {step.image or 'none'}, no commands): "
                                    "the local executor runs commands only", notes)
        timeout = float(step.timeout_seconds) if step.timeout_seconds else None
        spec = self._spec(row, argv, plain, secret, timeout, step.directory, step.permissions)
        if detached:
            return await self._start_background(row, spec, notes)
        return await self._execute_step(row, spec, notes, step)

    async def _fail(self, row: StepRun, status: Status, message: str, notes: list[str] | None = None) -> StepRun:
        now = self.s.clock.now()
        writer = self.s.logs.open(row.id, self._log_key(row))
        await writer.append([*(notes or []), message])
        key = await writer.finish()
        return await self._save_step(attrs.evolve(row, status=status, started_at=now, finished_at=now, error=message,
                                                  log_key=key))

    def _log_key(self, row: StepRun) -> str:
        return step_log_key(row)

    async def _begin(self, row: StepRun, spec: WorkloadSpec, notes: list[str], step: Step | None = None
                     ) -> tuple[StepRun, WorkloadHandle, LogWriter, asyncio.Task[int]]:
        row = await self._save_step(attrs.evolve(row, status=Status.RUNNING, started_at=self.s.clock.now()))
        writer = self.s.logs.open(row.id, self._log_key(row))
        if notes:
            await writer.append(notes)
        files = self.s.files
        if step is not None and step.cache is not None and files is not None:
            assert self._workspace is not None and self.project is not None and self.pipeline is not None
            await writer.append(await files.restore_cache(self._workspace, self.project, self.pipeline.branch,
                                                          step.cache))
        handle = await self.s.executor.start(spec)
        self._handles[row.name] = handle
        if self.reason is not None:  # aborted while starting
            await self.s.executor.stop(handle, self.s.settings.stop_grace_seconds)
        pump = asyncio.create_task(self._pump(handle, writer, row))
        return row, handle, writer, pump

    async def _execute_step(self, row: StepRun, spec: WorkloadSpec, notes: list[str],
                            step: Step | None = None) -> StepRun:
        row, handle, writer, pump = await self._begin(row, spec, notes, step)
        try:
            result = await self.s.executor.wait(handle)
            await pump
        finally:
            self._handles.pop(row.name, None)
        if step is not None and result.outcome is Outcome.EXITED and self.reason is None:
            await self._keep_files(step, row, result, writer)
        return await self._ended(row, result, writer)

    async def _keep_files(self, step: Step, row: StepRun, result: ExitStatus, writer: LogWriter) -> None:
        """After a step ran to its end: save its cache (when it succeeded), upload its artifacts (either way)."""
        files = self.s.files
        if files is None or (step.cache is None and step.artifacts is None):
            return
        assert self._workspace is not None and self.project is not None and self.pipeline is not None
        lines: list[str] = []
        if step.cache is not None and result.succeeded:
            lines += await files.save_cache(self._workspace, self.project, self.pipeline.branch, step.cache)
        if step.artifacts is not None:
            lines += await files.upload_artifacts(self._workspace, self.pipeline, row, step.artifacts)
        await writer.append(lines)

    async def _start_background(self, row: StepRun, spec: WorkloadSpec, notes: list[str]) -> StepRun:
        row, handle, writer, pump = await self._begin(row, spec, notes)
        self._handles.pop(row.name, None)
        self._background.append((row, handle, pump))
        self._writers[row.name] = writer
        return row

    async def _finish_background(self) -> None:
        """Stop services and detached steps; record how they ended, keep their logs."""
        background, self._background = self._background, []
        if self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)
        if not background:
            return
        await self._stop_all([h for _, h, _ in background])
        for row, handle, pump in background:
            try:
                result = await self.s.executor.wait(handle)
                await pump
            except Exception as exc:
                result = ExitStatus(Outcome.LOST, reason=str(exc))
            if result.outcome is Outcome.STOPPED:  # stopped at the end, as planned
                result = ExitStatus(Outcome.EXITED, 0)
            await self._ended(self._rows.get(row.name, row), result, self._writers[row.name])

    async def _pump(self, handle: WorkloadHandle, writer: LogWriter, row: StepRun | None = None) -> int:
        """Executor output → masked lines in the log (bounded memory); returns the number of lines.

        The first ``TELEMETRY_LINES_PER_STEP`` masked lines also go to Corral's own telemetry (``step_log``)."""
        masker = SecretMasker(self._masked_values())
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        partial = ""
        count = 0
        telemetry = row is not None and step_log.isEnabledFor(logging.INFO)

        async def emit(text: str, final: bool = False) -> None:
            nonlocal partial, count
            partial += text
            parts = partial.split("\n")
            partial = "" if final else parts.pop()
            if final and parts and parts[-1] == "":
                parts.pop()
            while len(partial) > _MAX_LINE:
                parts.append(partial[:_MAX_LINE])
                partial = partial[_MAX_LINE:]
            if parts:
                lines = [line.removesuffix("\r") for line in parts]
                if telemetry and count < TELEMETRY_LINES_PER_STEP:
                    assert row is not None
                    for n, line in enumerate(lines[:TELEMETRY_LINES_PER_STEP - count], start=count + 1):
                        self._telemetry_line(row, n, line)
                count += len(parts)
                await writer.append(lines)

        try:
            async for chunk in self.s.executor.logs(handle):
                await emit(masker.feed(decoder.decode(chunk)))
        except Exception as exc:  # the log stream broke: keep what came, say so
            log.warning("log stream of %s broke: %s", handle.name, exc)
        await emit(masker.feed(decoder.decode(b"", final=True)) + masker.flush(), final=True)
        if telemetry and count > TELEMETRY_LINES_PER_STEP:
            assert row is not None
            self._telemetry_line(row, count, f"... {count - TELEMETRY_LINES_PER_STEP} more lines in the step log")
        return count

    def _telemetry_line(self, row: StepRun, number: int, line: str) -> None:
        """One (masked) step log line as a record of Corral's own telemetry: the pipeline's trace, the step's
        span, the project in the envelope, service ``pipeline``."""
        p = self.pipeline
        if p is None:
            return
        step_log.info("%s", line, extra={
            "trace_id": p.id.hex, "span_id": row.id.hex[16:], "project_id": str(p.project_id),
            "service": "pipeline", "pipeline.number": p.number, "pipeline.step": row.name,
            "pipeline.line": number})

    def _masked_values(self) -> list[str]:
        return list(self._masked)

    async def _ended(self, row: StepRun, result: ExitStatus, writer: LogWriter) -> StepRun:
        notes: list[str] = []
        exit_code = result.exit_code
        if result.outcome is Outcome.EXITED:
            status = Status.SUCCESS if result.exit_code == 0 else Status.FAILURE
        elif result.outcome is Outcome.TIMED_OUT:
            status = Status.FAILURE
            notes.append(f"step timed out{': ' + result.reason if result.reason else ''}")
        elif result.outcome is Outcome.STOPPED:
            status = Status.KILLED
            notes.append({"cancel": "cancelled", "timeout": "the workflow timed out"}.get(self.reason or "",
                                                                                             "stopped"))
        else:
            status = Status.ERROR
            notes.append(result.reason or result.outcome.value)
        if result.reason and result.outcome is Outcome.EXITED:
            notes.append(result.reason)
        if notes:
            await writer.append(notes)
        key = await writer.finish()
        row = await self._save_step(attrs.evolve(
            row, status=status, exit_code=exit_code, finished_at=self.s.clock.now(), log_key=key,
            error="; ".join(notes) if status is not Status.SUCCESS else ""))
        self._span(row.name, row.id, self.workflow.id, row.started_at, row.finished_at, status,
                   {"pipeline.step": row.name, "pipeline.exit_code": exit_code, "pipeline.image": row.image})
        return row

    def _span(self, name: str, span_of: uuid.UUID, parent_of: uuid.UUID | None, started: datetime | None,
              finished: datetime | None, status: Status, detail: Mapping[str, object]) -> None:
        """One span of the pipeline's trace in Corral's own telemetry (service ``pipeline``): the trace is the
        pipeline, a span per workflow (root) and per step (its child)."""
        p = self.pipeline
        if p is None or started is None or finished is None:
            return
        span_log.info("pipeline span %s", name, extra={
            "trace_id": p.id.hex, "span_id": span_of.hex[16:], "parent_span_id": parent_of.hex[16:] if parent_of
            else None, "project_id": str(p.project_id), "service": "pipeline", "span_name": name,
            "span_status": "ok" if status in (Status.SUCCESS, Status.SKIPPED) else "error",
            "span_start": started.isoformat(), "duration_ms": (finished - started).total_seconds() * 1000,
            "pipeline.number": p.number, "pipeline.status": status.value, **detail})

    # ---- the end ------------------------------------------------------------------------------------------
    async def _end(self, status: Status, error: str) -> None:
        if self.reason == "lease":
            return  # another replica owns what is written about this workflow now
        if self._workspace is not None:
            keep = status is not Status.SUCCESS and self.s.settings.keep_failed_workspaces
            if not keep:
                with contextlib.suppress(Exception):
                    await self.s.executor.delete_workspace(self._workspace)
            self.workflow = attrs.evolve(self.workflow, workspace_deleted=not keep)
        for attempt in range(5):  # a heartbeat may touch the same row at the same moment (in-memory store)
            try:
                await self._record_end(status, error)
                return
            except Conflict:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.05)

    async def _record_end(self, status: Status, error: str) -> None:
        now = self.s.clock.now()
        async with self.s.uow_factory() as uow:
            current = next((w for w in await uow.pipelines.workflows(self.pipeline_id) if w.id == self.workflow.id),
                           None)
            if current is None or current.status is not Status.RUNNING or current.lease_owner != self.s.settings.owner:
                return
            for row in await uow.pipelines.steps(self.pipeline_id):
                if row.workflow_id == self.workflow.id and not row.status.final:
                    await uow.pipelines.update_step(attrs.evolve(
                        row, status=Status.KILLED if row.status is Status.RUNNING else Status.SKIPPED,
                        finished_at=now if row.status is Status.RUNNING else None))
            await uow.pipelines.update_workflow(attrs.evolve(
                self.workflow, status=status, finished_at=now, error=error, lease_owner=None))
            self._span(f"workflow {self.workflow.name}", self.workflow.id, None, current.started_at or now, now,
                       status, {"pipeline.workflow": self.workflow.name, "pipeline.event": self.pipeline.event
                                if self.pipeline else ""})
            await skip_blocked_workflows(uow, self.pipeline_id, now)
            await finish_pipeline_if_done(uow, self.s.clock, self.pipeline_id)
            await uow.commit()

