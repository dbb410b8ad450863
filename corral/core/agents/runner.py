"""Running one agent session: its workspace, its provider process, its events, its end."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import timedelta
from typing import Any

import attrs

from corral.core.agents.milestones import MilestoneTracker
from corral.core.agents.model import AgentEvent, AgentSession, AgentStatus, EventDraft, EventRole
from corral.core.agents.ports import AgentGrant, AgentIdentity, AgentProvider, AgentRepository, Launch, ProviderEvent
from corral.core.agents.records import audit_session, finished_records, requester_of
from corral.core.audit.context import bind_acting_session, reset_acting_session
from corral.core.clock import Clock
from corral.core.errors import Conflict, CorralError, InvalidTransition, NotFound
from corral.core.identity.model import Principal
from corral.core.projects.model import Project
from corral.core.uow import UnitOfWorkFactory
from corral.core.workloads.model import (
    ExitStatus,
    Outcome,
    Resources,
    Sandbox,
    WorkloadHandle,
    WorkloadSpec,
    Workspace,
)
from corral.core.workloads.ports import Executor

__all__ = ["SESSION_LABEL", "AgentRunner", "LiveFeed", "RunnerSettings", "workspace_key"]

log = logging.getLogger("corral.agents")

SESSION_LABEL = "corral.agent-session"
_MAX_LINE = 1024 * 1024
_MAX_CONTENT = 64 * 1024


@attrs.frozen(kw_only=True)
class RunnerSettings:
    """How sessions run here. ``git_source(project)``: what the workspace clones from (a path for the local
    runtime, a URL otherwise); ``wrapup_seconds``: the reserve before the wall-clock limit when the agent is told
    to commit and stop (at most a tenth of the session's time); ``resources`` and ``sandbox``: what every
    workload of a session (the clone steps, the provider) asks for and is confined to (the Kubernetes runtime:
    requests/limits, non-root, a NetworkPolicy)."""

    base_url: str
    owner: str
    git_source: Callable[[Project], str]
    otlp_endpoint: str = ""
    image: str | None = None
    wrapup_seconds: float = 60.0
    prepare_timeout_seconds: float = 300.0
    heartbeat_seconds: float = 15.0
    mcp: bool = True
    env: Mapping[str, str] = attrs.field(factory=dict)  # the base of every environment (e.g. the host's PATH)
    resources: Resources | None = None
    sandbox: Sandbox | None = None


@attrs.define
class LiveFeed:
    """Wakes the viewers of a session when it has new events, and keeps the latest events of recent sessions so
    viewers in this process read them from memory (other replicas' viewers poll the store)."""

    keep_events: int = 2048  # per session
    keep_sessions: int = 256
    _waiters: dict[uuid.UUID, asyncio.Event] = attrs.field(factory=dict)
    _recent: dict[uuid.UUID, collections.deque[AgentEvent]] = attrs.field(factory=dict)

    def publish(self, session_id: uuid.UUID, events: list[AgentEvent]) -> None:
        if events:
            recent = self._recent.pop(session_id, None)
            if recent and events[0].id <= recent[-1].id:
                recent = None  # published out of commit order: forget, viewers read the store until it settles
            else:
                if not recent or recent[-1].id + 1 != events[0].id:
                    recent = collections.deque(maxlen=self.keep_events)  # a gap: start again from these
                recent.extend(events)
                self._recent[session_id] = recent  # most recently written last
            while len(self._recent) > self.keep_sessions:
                del self._recent[next(iter(self._recent))]
        waiter = self._waiters.pop(session_id, None)
        if waiter is not None:
            waiter.set()

    def after(self, session_id: uuid.UUID, after: int, limit: int) -> list[AgentEvent] | None:
        """The events after ``after`` when memory holds all of them (None: ask the store)."""
        recent = self._recent.get(session_id)
        if not recent or recent[0].id > after + 1 or recent[-1].id < after:
            return None
        start = after + 1 - recent[0].id
        return list(itertools.islice(recent, start, start + limit))

    async def wait(self, session_id: uuid.UUID, timeout: float) -> None:
        waiter = self._waiters.setdefault(session_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter.wait(), timeout)


@attrs.define(eq=False)
class _Live:
    session: AgentSession
    grant: AgentGrant
    message: str
    resume: bool
    handle: WorkloadHandle | None = None
    task: asyncio.Task[None] | None = None
    lock: asyncio.Lock = attrs.field(factory=asyncio.Lock)
    stdin_open: bool = False
    messages_sent: int = 0
    results: int = 0
    last_result: ProviderEvent | None = None
    message_ids: set[str] = attrs.field(factory=set)
    cost_usd: float | None = None
    turns: int | None = None
    duration_ms: int | None = None
    stop_by: str | None = None
    cap_error: str | None = None
    deadline_hit: bool = False
    start_head: str | None = None
    pending: list[str] = attrs.field(factory=list)  # messages that came after the input was closed
    milestones: list[str] = attrs.field(factory=list)
    stopper: asyncio.Future[None] | None = None  # the stop a cap started


def _clip(text: str, limit: int = _MAX_CONTENT) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[… {len(text) - limit} more characters]"


def _draft(event: ProviderEvent) -> EventDraft | None:
    if event.kind == "init":
        return EventDraft(type="system", role=EventRole.SYSTEM, content="the agent started",
                          metadata={"subtype": event.subtype or "init", "session_id": event.provider_session_id,
                                    "model": event.raw.get("model"), "tools": event.raw.get("tools")})
    if event.kind in ("text", "thinking"):
        return EventDraft(type=event.kind, role=EventRole.ASSISTANT, content=_clip(event.text),
                          metadata={"message_id": event.message_id})
    if event.kind == "tool_use":
        summary = json.dumps(event.tool_input, ensure_ascii=False, default=str)
        return EventDraft(type="tool_use", role=EventRole.ASSISTANT,
                          content=_clip(f"{event.tool_name} {summary}", 4096),
                          metadata={"tool_use_id": event.tool_id, "name": event.tool_name,
                                    "input": json.loads(_clip(summary)) if len(summary) <= _MAX_CONTENT else {},
                                    "message_id": event.message_id})
    if event.kind == "tool_result":
        return EventDraft(type="tool_result", role=EventRole.TOOL, content=_clip(event.text),
                          metadata={"tool_use_id": event.tool_id, "is_error": event.is_error})
    if event.kind == "result":
        return EventDraft(type="result", role=EventRole.SYSTEM, content=_clip(event.text),
                          metadata={"subtype": event.subtype, "is_error": event.is_error,
                                    "total_cost_usd": event.cost_usd, "num_turns": event.num_turns,
                                    "duration_ms": event.duration_ms, "session_id": event.provider_session_id})
    if event.kind == "output":
        return EventDraft(type="output", role=EventRole.SYSTEM, content=_clip(event.text, 4096))
    return EventDraft(type=str(event.raw.get("type") or "other"), role=EventRole.SYSTEM, content="",
                      metadata={"raw": json.loads(_clip(json.dumps(event.raw, default=str)))}
                      if len(json.dumps(event.raw, default=str)) <= _MAX_CONTENT else {})


async def _cancel(*tasks: asyncio.Task[None] | None) -> None:
    for task in tasks:
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _briefing(session: AgentSession, project: Project) -> str:
    """What the agent is told about where it runs (appended to the provider's system prompt)."""
    return (f"You run as {session.agent_user_name}, an agent of Corral, for {session.requester_name}, in a clone of "
            f"{project.full_name} on branch {session.branch}. Commit your work there and publish it with "
            f"`git push origin HEAD:{session.branch}` (git is already authenticated). Corral's API is at $CORRAL_URL "
            "(send `Authorization: Bearer $CORRAL_TOKEN`); you hold only the permissions delegated to this session: "
            f"{', '.join(session.permissions)}. Telemetry sent with the OTEL_* variables lands in this session's "
            "timeline.")


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[str]]:
    """The complete lines of each chunk (a line longer than 1 MiB is cut)."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        if b"\n" not in buffer:
            if len(buffer) > _MAX_LINE:
                yield [buffer[:_MAX_LINE].decode(errors="replace")]
                buffer = b""
            continue
        *complete, buffer = buffer.split(b"\n")
        yield [line.decode(errors="replace") for line in complete if line.strip()]
    if buffer.strip():
        yield [buffer.decode(errors="replace")]


def workspace_key(session_id: uuid.UUID) -> str:
    """The executor's key of a session's workspace (every run of the session uses the same one)."""
    return f"agent-{session_id}"


@attrs.define
class AgentRunner:
    """Runs sessions in this process; ``live`` holds the ones running here."""

    uow_factory: UnitOfWorkFactory
    clock: Clock
    executor: Executor
    providers: dict[str, AgentProvider]
    identity: AgentIdentity
    repository: AgentRepository
    settings: RunnerSettings
    feed: LiveFeed = attrs.field(factory=LiveFeed)
    secrets: Callable[[AgentSession], Any] | None = None  # async: the session's secret environment (API key)
    live: dict[uuid.UUID, _Live] = attrs.field(factory=dict)

    # ------------------------------------------------------------------------------------------- control

    def launch(self, session: AgentSession, grant: AgentGrant, message: str, *, resume: bool) -> None:
        """Start running ``session`` (pending) in the background."""
        live = _Live(session=session, grant=grant, message=message, resume=resume)
        self.live[session.id] = live
        live.task = asyncio.create_task(self._run(live), name=f"agent session {session.id}")

    async def send(self, session_id: uuid.UUID, text: str) -> bool:
        """Give a running session a follow-up; False when it runs elsewhere or its input is closed (queued for
        a resume when it runs here)."""
        live = self.live.get(session_id)
        if live is None:
            return False
        provider = self.providers[live.session.provider]
        async with live.lock:
            if live.handle is None or not live.stdin_open:
                live.pending.append(text)
                return True
            try:
                await self.executor.send(live.handle, provider.user_message(text))
                live.messages_sent += 1
            except Conflict:
                live.pending.append(text)
        return True

    async def interrupt(self, session_id: uuid.UUID) -> bool:
        live = self.live.get(session_id)
        if live is None or live.handle is None or not live.stdin_open:
            return False
        with contextlib.suppress(Conflict):
            await self.executor.send(live.handle, self.providers[live.session.provider].interrupt())
        return True

    async def stop(self, session_id: uuid.UUID, by: str, grace_seconds: float = 5.0) -> bool:
        """End a session running here and wait until it is recorded as stopped; False when it is not here."""
        live = self.live.get(session_id)
        if live is None:
            return False
        live.stop_by = by
        live.pending.clear()
        if live.handle is not None:
            await self.executor.stop(live.handle, grace_seconds)
        if live.task is not None:
            await asyncio.shield(live.task)
        return True

    async def aclose(self) -> None:
        """Server shutdown: leave the sessions to the recovery of the next start (their processes end)."""
        tasks = [live.task for live in self.live.values() if live.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ----------------------------------------------------------------------------------------- one run

    async def _save(self, live: _Live, session: AgentSession, drafts: list[EventDraft] | None = None) -> None:
        stored: list[AgentEvent] = []
        async with self.uow_factory() as uow:
            await uow.agents.update(session)
            if drafts:
                stored = await uow.agents.add_events(session.id, drafts, self.clock.now())
            await uow.commit()
        live.session = session
        if drafts:
            self.feed.publish(session.id, stored)

    async def _events(self, session_id: uuid.UUID, drafts: list[EventDraft]) -> None:
        if not drafts:
            return
        async with self.uow_factory() as uow:
            stored = await uow.agents.add_events(session_id, drafts, self.clock.now())
            await uow.commit()
        self.feed.publish(session_id, stored)

    async def _project(self, project_id: uuid.UUID) -> Project:
        async with self.uow_factory() as uow:
            project = await uow.projects.get(project_id)
        if project is None:
            raise NotFound("the session's project no longer exists")
        return project

    async def _run(self, live: _Live) -> None:
        session = live.session
        bind_acting_session(session.id)  # this task's audit rows (merge request, revocations, end) name it
        status: ExitStatus | None = None
        error: str | None = None
        heartbeat: asyncio.Task[None] | None = None
        timers: asyncio.Task[None] | None = None
        try:
            project = await self._project(session.project_id)
            workspace = await self.executor.create_workspace(workspace_key(session.id))
            live.start_head = (await self.repository.branch_head(project, session.branch)
                               or await self.repository.branch_head(project, project.default_branch))
            if not live.resume or not await self._prepared(workspace):
                error = await self._prepare(live, workspace, project)
            if error is None and live.stop_by is None:
                handle = await self._start(live, workspace, project)
                heartbeat = asyncio.create_task(self._heartbeat(live))
                timers = asyncio.create_task(self._timers(live))
                await self._read(live, handle)
                status = await self.executor.wait(handle)
        except asyncio.CancelledError:  # the server shuts down: end the process and say so
            if live.handle is not None:
                await asyncio.shield(self.executor.stop(live.handle, 1.0))
            await _cancel(heartbeat, timers)
            if self.live.get(session.id) is live:
                self.live.pop(session.id, None)
            live.pending.clear()
            with contextlib.suppress(Exception):
                await asyncio.shield(self._finish(live, None, "the server shut down while the session ran; send a "
                                                              "message to resume it"))
            raise
        except CorralError as exc:
            error = str(exc)
        except Exception as exc:  # the session must end recorded whatever went wrong
            log.exception("agent session %s failed", session.id)
            error = f"internal error: {type(exc).__name__}"
        finally:
            await _cancel(heartbeat, timers)  # a heartbeat must not land after the final state
        try:
            await self._finish(live, status, error)
        finally:
            if self.live.get(session.id) is live:  # a resume may already run under the same id
                self.live.pop(session.id, None)
        if live.pending and live.stop_by is None:
            await self._resume_pending(live)

    async def _prepared(self, workspace: Workspace) -> bool:
        handle = await self.executor.start(WorkloadSpec(
            name=f"agent-check-{uuid.uuid4().hex[:10]}", argv=("git", "-C", "repo", "rev-parse", "--git-dir"),
            workspace=workspace, image=self.settings.image, timeout_seconds=60,
            labels={SESSION_LABEL: "prepare"}, resources=self.settings.resources, sandbox=self.settings.sandbox))
        async for _ in self.executor.logs(handle):
            pass
        return (await self.executor.wait(handle)).succeeded

    async def _prepare(self, live: _Live, workspace: Workspace, project: Project) -> str | None:
        """Clone the project into ``repo`` on the session's branch; the remote is Corral's HTTP URL (pushes
        authenticate with the token through the environment). An error message, or None."""
        session = live.session
        remote = f"{self.settings.base_url.rstrip('/')}/{project.full_name}.git"
        exists = await self.repository.branch_head(project, session.branch) is not None
        checkout = ("checkout", "-q", "-B", session.branch, f"origin/{session.branch}") if exists else \
            ("checkout", "-q", "-b", session.branch)
        steps: list[tuple[str, ...]] = [
            ("git", "clone", "-q", self.settings.git_source(project), "repo"),
            ("git", "-C", "repo", *checkout),
            ("git", "-C", "repo", "remote", "set-url", "origin", remote),
        ]
        for argv in steps:
            handle = await self.executor.start(WorkloadSpec(
                name=f"agent-prepare-{uuid.uuid4().hex[:10]}", argv=argv, workspace=workspace,
                image=self.settings.image, timeout_seconds=self.settings.prepare_timeout_seconds,
                env={**self.settings.env, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_COUNT": "1",
                     "GIT_CONFIG_KEY_0": f"http.{self.settings.base_url.rstrip('/')}/.extraHeader"},
                secret_env={"GIT_CONFIG_VALUE_0": f"Authorization: Bearer {live.grant.token_secret}"},
                labels={SESSION_LABEL: str(session.id)},  # a clone over HTTP (pods) authenticates too
                resources=self.settings.resources, sandbox=self.settings.sandbox))
            output = b"".join([chunk async for chunk in self.executor.logs(handle)])
            status = await self.executor.wait(handle)
            if not status.succeeded:
                text = output.decode(errors="replace").strip()[-2000:]
                return f"preparing the workspace failed ({' '.join(argv[:3])}): {status.reason or text or status}"
        await self._events(session.id, [EventDraft(
            type="milestone", role=EventRole.SYSTEM, content=f"cloned {project.full_name} on {session.branch}",
            metadata={"branch": session.branch})])
        return None

    def _environment(self, live: _Live, project: Project) -> tuple[dict[str, str], dict[str, str]]:
        session, token = live.session, live.grant.token_secret
        base = self.settings.base_url.rstrip("/")
        otlp = self.settings.otlp_endpoint or base
        env = {
            **self.settings.env,
            "CORRAL_URL": base, "CORRAL_SESSION_ID": str(session.id), "CORRAL_PROJECT": project.full_name,
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_RESOURCE_ATTRIBUTES": f"corral.session_id={session.id},corral.project={project.full_name}",
            "OTEL_SERVICE_NAME": f"agent-{session.provider}",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": live.grant.agent_user_name, "GIT_COMMITTER_NAME": live.grant.agent_user_name,
            "GIT_AUTHOR_EMAIL": f"{live.grant.agent_user_name}@agents.corral.invalid",
            "GIT_COMMITTER_EMAIL": f"{live.grant.agent_user_name}@agents.corral.invalid",
            "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"http.{base}/.extraHeader",
        }
        secret_env = {
            "CORRAL_TOKEN": token,
            "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer {token}",
            "GIT_CONFIG_VALUE_0": f"Authorization: Bearer {token}",
        }
        return env, secret_env

    async def _start(self, live: _Live, workspace: Workspace, project: Project) -> WorkloadHandle:
        session = live.session
        provider = self.providers[session.provider]
        env, secret_env = self._environment(live, project)
        if self.secrets is not None:
            secret_env.update(await self.secrets(session))
        mcp = None
        if self.settings.mcp:
            mcp = json.dumps({"mcpServers": {"corral": {
                "type": "http", "url": f"{self.settings.base_url.rstrip('/')}/mcp",
                "headers": {"Authorization": "Bearer ${CORRAL_TOKEN}"}}}})
        launch = Launch(session_id=session.id, resume=live.resume, max_turns=session.max_turns,
                        max_cost_usd=session.max_cost_usd, mcp_config_path=mcp,
                        system_prompt=_briefing(session, project))
        remaining = max(1.0, (session.expires_at - self.clock.now()).total_seconds())
        async with live.lock:
            handle = await self.executor.start(WorkloadSpec(
                name=f"agent-{session.id.hex[:16]}-{session.runs}", argv=provider.command(launch),
                workspace=workspace, workdir="repo", env=env, secret_env=secret_env, image=self.settings.image,
                timeout_seconds=remaining + 30.0, labels={SESSION_LABEL: str(session.id)},
                stdin=provider.user_message(live.message), interactive=True, resources=self.settings.resources,
                sandbox=self.settings.sandbox))
            live.handle = handle
            live.stdin_open = True
            live.messages_sent = 1
            early, live.pending = live.pending, []
            for text in early:  # follow-ups that came while the workspace was prepared
                await self.executor.send(handle, provider.user_message(text))
                live.messages_sent += 1
        now = self.clock.now()
        running = session.moved(AgentStatus.RUNNING, started_at=session.started_at or now, heartbeat_at=now,
                                owner=self.settings.owner)
        await self._save(live, running, [EventDraft(type="status", role=EventRole.SYSTEM, content="running",
                                                    metadata={"status": "running", "run": session.runs})])
        return handle

    async def _heartbeat(self, live: _Live) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            async with self.uow_factory() as uow:
                current = await uow.agents.get(live.session.id)
                if current is None or current.status is not AgentStatus.RUNNING:
                    return
                beat = attrs.evolve(current, heartbeat_at=self.clock.now())
                await uow.agents.update(beat)
                await uow.commit()

    async def _timers(self, live: _Live) -> None:
        """The wall clock: the wrap-up message at the reserve, the end at the deadline."""
        session = live.session
        total = float(session.timeout_seconds)
        reserve = min(self.settings.wrapup_seconds, total / 10.0)
        remaining = (session.expires_at - self.clock.now()).total_seconds()
        if remaining - reserve > 0:
            await asyncio.sleep(remaining - reserve)
        if reserve > 0 and live.stdin_open:
            await self._events(session.id, [EventDraft(
                type="message", role=EventRole.SYSTEM, content="wrap-up: the time is almost up",
                metadata={"reserve_seconds": reserve})])
            await self.send(session.id, f"Time is almost up ({int(reserve)} s left): commit and push your work "
                                        "now, then stop.")
            await asyncio.sleep(reserve)
        live.deadline_hit = True
        if live.handle is not None:
            await self.executor.stop(live.handle, 5.0)

    async def _read(self, live: _Live, handle: WorkloadHandle) -> None:
        provider = self.providers[live.session.provider]
        tracker = MilestoneTracker(branch=live.session.branch)
        async for lines in _lines(self.executor.logs(handle)):
            drafts: list[EventDraft] = []
            for line in lines:
                for event in provider.parse(line):
                    draft = _draft(event)
                    if draft is not None:
                        drafts.append(draft)
                    for milestone in tracker.feed(event):
                        live.milestones.append(milestone)
                        drafts.append(EventDraft(type="milestone", role=EventRole.SYSTEM, content=milestone))
                    await self._account(live, event, handle)
            await self._events(live.session.id, drafts)

    async def _account(self, live: _Live, event: ProviderEvent, handle: WorkloadHandle) -> None:
        """Turns and cost from the events (the caps are checked here too, not only by the provider)."""
        session = live.session
        if event.message_id and event.kind in ("text", "tool_use", "thinking"):
            live.message_ids.add(event.message_id)
        if event.kind == "result":
            live.results += 1
            live.last_result = event
            if event.cost_usd is not None:
                live.cost_usd = event.cost_usd  # the process's total so far
            if event.num_turns is not None:
                live.turns = event.num_turns
            if event.duration_ms is not None:
                live.duration_ms = event.duration_ms
        turns = max(live.turns or 0, len(live.message_ids))
        cap = None
        if turns > session.max_turns:
            cap = f"the agent went past its limit of {session.max_turns} turns"
        elif live.cost_usd is not None and (session.cost_usd or 0.0) + live.cost_usd > session.max_cost_usd:
            spent = (session.cost_usd or 0.0) + live.cost_usd
            cap = f"the agent spent ${spent:.4f}, over its limit of ${session.max_cost_usd:.2f}"
        if cap is not None and live.cap_error is None:
            live.cap_error = cap
            live.stopper = asyncio.ensure_future(self.executor.stop(handle, 5.0))
            return
        if event.kind == "result":
            async with live.lock:
                if live.results >= live.messages_sent and live.stdin_open:
                    live.stdin_open = False  # every message answered: closing the input ends the process
                    await self.executor.close_stdin(handle)

    # -------------------------------------------------------------------------------------------- the end

    def _outcome(self, live: _Live, status: ExitStatus | None, error: str | None) -> tuple[AgentStatus, str | None]:
        result = live.last_result
        if live.stop_by is not None:
            return AgentStatus.STOPPED, f"stopped by {live.stop_by}"
        if error is not None:
            return AgentStatus.FAILED, error
        if live.cap_error is not None:
            return AgentStatus.FAILED, live.cap_error
        if live.deadline_hit or (status is not None and status.outcome is Outcome.TIMED_OUT):
            return AgentStatus.FAILED, f"the wall-clock limit of {live.session.timeout_seconds} s was reached"
        if status is None:
            return AgentStatus.FAILED, "the provider did not run"
        if status.outcome is not Outcome.EXITED:
            return AgentStatus.FAILED, status.reason or f"the provider {status.outcome.value}"
        if status.exit_code != 0:
            detail = f": {result.text[:500]}" if result is not None and result.is_error and result.text else ""
            return AgentStatus.FAILED, f"the provider exited with code {status.exit_code}{detail}"
        if result is None:
            return AgentStatus.FAILED, "the provider ended without a result"
        if result.is_error:
            return AgentStatus.FAILED, (f"the provider reported an error ({result.subtype or 'error'})"
                                        + (f": {result.text[:500]}" if result.text else ""))
        return AgentStatus.COMPLETED, None

    async def _finish(self, live: _Live, status: ExitStatus | None, error: str | None) -> None:
        final, reason = self._outcome(live, status, error)
        session = live.session
        drafts: list[EventDraft] = []
        merge_request = session.merge_request
        if final is AgentStatus.COMPLETED and session.open_merge_request and merge_request is None:
            merge_request = await self._merge_request(live, drafts)
        try:
            await self.identity.retire(session)
        except Exception:
            log.exception("could not retire the identity of agent session %s", session.id)
        now = self.clock.now()
        ended = session.moved(
            final, finished_at=now, error=reason, merge_request=merge_request,
            cost_usd=round((session.cost_usd or 0.0) + (live.cost_usd or 0.0), 6)
            if live.cost_usd is not None else session.cost_usd,
            turns=(session.turns or 0) + (live.turns if live.turns is not None else len(live.message_ids)),
            duration_ms=(session.duration_ms or 0) + (live.duration_ms if live.duration_ms is not None else int(
                (now - (session.started_at or session.created_at)).total_seconds() * 1000)),
            heartbeat_at=now, owner=None)
        drafts.append(EventDraft(type="status", role=EventRole.SYSTEM, content=final.value,
                                 metadata={"status": final.value, "error": reason, "cost_usd": ended.cost_usd,
                                           "turns": ended.turns, "merge_request": merge_request}))
        async with self.uow_factory() as uow:
            await uow.agents.update(ended)
            stored = await uow.agents.add_events(session.id, drafts, now)
            await finished_records(uow, ended, now)
            await uow.commit()
        live.session = ended
        self.feed.publish(session.id, stored)

    async def _merge_request(self, live: _Live, drafts: list[EventDraft]) -> int | None:
        session = live.session
        try:
            project = await self._project(session.project_id)
            head = await self.repository.branch_head(project, session.branch)
            if head is None or head == live.start_head:
                return None
            title = session.prompt.strip().splitlines()[0][:200] if session.prompt.strip() else "Agent session"
            summary = live.last_result.text if live.last_result is not None else ""
            body = "\n".join([
                f"Opened by agent session {session.id} for {session.requester_name}.", "",
                summary[:20000], "", *(f"- {m}" for m in live.milestones[-50:])])
            number = await self.repository.open_merge_request(session, project, f"Agent: {title}", body)
        except CorralError as exc:
            drafts.append(EventDraft(type="milestone", role=EventRole.SYSTEM,
                                     content=f"merge request not opened: {exc}"))
            return None
        drafts.append(EventDraft(type="milestone", role=EventRole.SYSTEM, content=f"opened merge request !{number}",
                                 metadata={"merge_request": number}))
        return number

    async def _resume_pending(self, live: _Live) -> None:
        text = "\n\n".join(live.pending)
        try:
            await self.resume(live.session.id, text)
        except CorralError as exc:
            await self._events(live.session.id, [EventDraft(
                type="message", role=EventRole.SYSTEM, content=f"the queued message could not resume: {exc}")])

    async def resume(self, session_id: uuid.UUID, text: str, actor: Principal | None = None) -> AgentSession:
        """Run a finished session again with ``text`` (the provider's resume): a new delegation and token for the
        same agent user, expiring after the session's timeout."""
        async with self.uow_factory() as uow:
            session = await uow.agents.get(session_id)
        if session is None:
            raise NotFound(f"no agent session {session_id}")
        if not session.status.finished:
            raise InvalidTransition(f"the session is {session.status.value}: it cannot be resumed")
        if session.workspace_deleted_at is not None:
            raise InvalidTransition(
                f"the session's workspace was deleted at {session.workspace_deleted_at.isoformat()} (kept "
                "for a resume only for a while after the session finished): it cannot be resumed; start a new "
                "session")
        now = self.clock.now()
        expires_at = now + timedelta(seconds=session.timeout_seconds)
        bound = bind_acting_session(session.id)
        try:
            grant = await self.identity.provision(requester_of(session), session.id, session.project_id,
                                                    session.permissions, expires_at, session.agent_user_id)
        finally:
            reset_acting_session(bound)
        pending = session.moved(AgentStatus.PENDING, expires_at=expires_at, finished_at=None, error=None,
                                runs=session.runs + 1, delegation_ids=grant.delegation_ids, token_id=grant.token_id,
                                owner=self.settings.owner, heartbeat_at=now)
        async with self.uow_factory() as uow:
            await uow.agents.update(pending)
            stored = await uow.agents.add_events(session.id, [
                EventDraft(type="message", role=EventRole.USER, content=text,
                           metadata={"from": actor.name if actor else session.requester_name, "resume": True}),
                EventDraft(type="status", role=EventRole.SYSTEM, content="pending",
                           metadata={"status": "pending", "run": pending.runs})], now)
            await audit_session(uow, actor or requester_of(session), "agent_session.resume", pending, now)
            await uow.commit()
        self.feed.publish(session.id, stored)
        self.launch(pending, grant, text, resume=True)
        return pending
