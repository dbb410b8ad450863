"""Agent session use cases: start, list, read events, follow up or resume, stop, and recovery after a restart."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import attrs

from corral.core.agents.commands import AgentMessage, NewAgentSession
from corral.core.agents.model import AgentEvent, AgentSession, AgentStatus, EventDraft, EventRole
from corral.core.agents.records import audit_session, finished_records
from corral.core.agents.runner import SESSION_LABEL, AgentRunner, workspace_key
from corral.core.audit.context import bind_acting_session, reset_acting_session
from corral.core.errors import InvalidInput, InvalidTransition, NotFound
from corral.core.identity.catalogue import check_permission_names
from corral.core.identity.model import Principal
from corral.core.ids import uuid7
from corral.core.pagination import MAX_LIMIT, Page, clamp_limit
from corral.core.projects.model import Project, PurgeParts
from corral.core.uow import UnitOfWork

__all__ = ["AgentService", "agent_purge_parts"]

_BRANCH = re.compile(r"^(?!/)(?!.*//)(?!.*\.\.)(?!.*@\{)[A-Za-z0-9._/-]{1,200}(?<![/.])$")
_MAX_TEXT = 100_000


def _text(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_TEXT:
        raise InvalidInput(f"{field} must be a non-empty string of at most {_MAX_TEXT} characters", field=field)
    return value


def _check(command: NewAgentSession, providers: set[str]) -> tuple[str, tuple[str, ...]]:
    _text(command.prompt, "prompt")
    if command.provider not in providers:
        raise InvalidInput(f"provider must be one of: {', '.join(sorted(providers))}", field="provider")
    if not command.permissions:
        raise InvalidInput("permissions must name at least one permission", field="permissions")
    perms = tuple(sorted(check_permission_names(command.permissions, "permissions")))
    if isinstance(command.max_turns, bool) or not 1 <= command.max_turns <= 1000:
        raise InvalidInput("max_turns must be between 1 and 1000", field="max_turns")
    if not 0 < command.max_cost_usd <= 1000:
        raise InvalidInput("max_cost_usd must be more than 0 and at most 1000", field="max_cost_usd")
    if isinstance(command.timeout_seconds, bool) or not 10 <= command.timeout_seconds <= 86400:
        raise InvalidInput("timeout_seconds must be between 10 and 86400", field="timeout_seconds")
    branch = command.branch
    if branch is not None and (not _BRANCH.match(branch) or branch.endswith(".lock")):
        raise InvalidInput("branch must be a valid git branch name", field="branch")
    return branch or "", perms


async def agent_purge_parts(uow: UnitOfWork, project: Project) -> PurgeParts:
    """A deleted project's agent session workspaces not swept yet (corral.core.projects.purge)."""
    keys: list[str] = []
    cursor: str | None = None
    while True:
        page = await uow.agents.list_for_project(project.id, limit=MAX_LIMIT, cursor=cursor)
        keys += [workspace_key(s.id) for s in page.items if s.workspace_deleted_at is None]
        cursor = page.next_cursor
        if not cursor:
            return PurgeParts(workspaces=tuple(keys))


@attrs.define
class AgentService:
    """The API of agent sessions; ``runner`` runs the ones this process started."""

    runner: AgentRunner

    @property
    def _uow(self) -> Callable[[], UnitOfWork]:
        return self.runner.uow_factory

    async def create(self, actor: Principal, project: Project, command: NewAgentSession) -> AgentSession:
        """Start a session: the agent user, the delegation and the token first (a permission the requester does
        not hold in the project refuses the whole request), then the process in the background."""
        branch, perms = _check(command, set(self.runner.providers))
        if project.archived:
            raise InvalidTransition("the project is archived: no agent sessions")
        session_id = uuid7()
        branch = branch or f"agent/{session_id.hex[-8:]}"
        now = self.runner.clock.now()
        expires_at = now + timedelta(seconds=command.timeout_seconds)
        requester = actor
        if actor.token_project_id == project.id:
            # a token of this project may delegate within it: the delegation never leaves the project
            requester = attrs.evolve(actor, token_project_id=None)
        bound = bind_acting_session(session_id)
        try:
            grant = await self.runner.identity.provision(requester, session_id, project.id, perms, expires_at, None)
        finally:
            reset_acting_session(bound)
        session = AgentSession(
            id=session_id, project_id=project.id, requester_id=actor.user_id, requester_name=actor.name,
            prompt=command.prompt, provider=command.provider, permissions=perms, max_turns=command.max_turns,
            max_cost_usd=float(command.max_cost_usd), timeout_seconds=command.timeout_seconds, branch=branch,
            open_merge_request=command.open_merge_request, status=AgentStatus.PENDING, created_at=now,
            expires_at=expires_at, agent_user_id=grant.agent_user_id, agent_user_name=grant.agent_user_name,
            runs=1, owner=self.runner.settings.owner, heartbeat_at=now, delegation_ids=grant.delegation_ids,
            token_id=grant.token_id)
        async with self._uow() as uow:
            await uow.agents.add(session)
            stored = await uow.agents.add_events(session.id, [EventDraft(
                type="message", role=EventRole.USER, content=command.prompt, metadata={"from": actor.name})], now)
            await audit_session(uow, actor, "agent_session.create", session, now, agent=grant.agent_user_name,
                         permissions=list(perms), branch=branch, provider=command.provider,
                         expires_at=expires_at.isoformat())
            await uow.commit()
        self.runner.feed.publish(session.id, stored)
        self.runner.launch(session, grant, command.prompt, resume=False)
        return session

    async def get(self, session_id: uuid.UUID) -> AgentSession:
        async with self._uow() as uow:
            session = await uow.agents.get(session_id)
        if session is None:
            raise NotFound(f"no agent session {session_id}")
        return session

    async def recent(self, project: Project, *, limit: int | None, cursor: str | None) -> Page[AgentSession]:
        async with self._uow() as uow:
            return await uow.agents.list_for_project(project.id, limit=clamp_limit(limit), cursor=cursor)

    async def events(self, session_id: uuid.UUID, *, after: int = 0, limit: int = 500) -> list[AgentEvent]:
        if after < 0:
            raise InvalidInput("after must be 0 or more", field="after")
        async with self._uow() as uow:
            return await uow.agents.events(session_id, after=after, limit=clamp_limit(limit))

    async def wait_events(self, session_id: uuid.UUID, *, after: int, timeout: float) -> list[AgentEvent]:
        """Events after ``after``; when there are none yet, wait up to ``timeout`` for some. Events this process
        wrote lately come from memory (live viewers of a busy session cost no queries)."""
        found = self.runner.feed.after(session_id, after, 500)
        if found is None:
            found = await self.events(session_id, after=after)
        if found:
            return found
        await self.runner.feed.wait(session_id, timeout)
        found = self.runner.feed.after(session_id, after, 500)
        return found if found is not None else await self.events(session_id, after=after)

    async def send_message(self, actor: Principal, session_id: uuid.UUID, message: AgentMessage) -> AgentSession:
        """A follow-up to a running session, or the resume of a finished one."""
        text = _text(message.content, "content")
        session = await self.get(session_id)
        if session.status.finished:
            return await self.runner.resume(session.id, text, actor)
        if session.id not in self.runner.live:
            raise InvalidTransition("the session runs on another server or was lost; try again shortly")
        now = self.runner.clock.now()
        async with self._uow() as uow:
            stored = await uow.agents.add_events(session.id, [EventDraft(
                type="message", role=EventRole.USER, content=text, metadata={"from": actor.name})], now)
            await audit_session(uow, actor, "agent_session.message", session, now)
            await uow.commit()
        self.runner.feed.publish(session.id, stored)
        if not await self.runner.send(session.id, text):
            raise InvalidTransition("the session runs on another server or was lost; try again shortly")
        return session

    async def interrupt(self, actor: Principal, session_id: uuid.UUID) -> AgentSession:
        session = await self.get(session_id)
        if session.status is not AgentStatus.RUNNING or not await self.runner.interrupt(session.id):
            raise InvalidTransition(f"the session is {session.status.value}: nothing to interrupt")
        now = self.runner.clock.now()
        async with self._uow() as uow:
            stored = await uow.agents.add_events(session.id, [EventDraft(
                type="interrupt", role=EventRole.USER, content="interrupted", metadata={"from": actor.name})], now)
            await audit_session(uow, actor, "agent_session.interrupt", session, now)
            await uow.commit()
        self.runner.feed.publish(session.id, stored)
        return session

    async def stop(self, actor: Principal, session_id: uuid.UUID) -> AgentSession:
        """End the session's process; it is ``stopped`` and its delegation and token are dead when this returns.
        Stopping a finished session changes nothing."""
        session = await self.get(session_id)
        if session.status.finished:
            return session
        now = self.runner.clock.now()
        async with self._uow() as uow:
            await audit_session(uow, actor, "agent_session.stop", session, now)
            await uow.commit()
        if await self.runner.stop(session.id, actor.name):
            return await self.get(session.id)
        # not running here (another server, or lost): end what is left and record it
        return await self._end_elsewhere(session, AgentStatus.STOPPED, f"stopped by {actor.name}")

    async def _end_elsewhere(self, session: AgentSession, status: AgentStatus, reason: str) -> AgentSession:
        for handle in await self.runner.executor.running({SESSION_LABEL: str(session.id)}):
            await self.runner.executor.stop(handle, 5.0)
        await self.runner.identity.retire(session)
        now = self.runner.clock.now()
        async with self._uow() as uow:
            current = await uow.agents.get(session.id)
            if current is None or current.status.finished:
                return current or session
            ended = current.moved(status, finished_at=now, error=reason, owner=None, heartbeat_at=now)
            await uow.agents.update(ended)
            stored = await uow.agents.add_events(session.id, [EventDraft(
                type="status", role=EventRole.SYSTEM, content=status.value,
                metadata={"status": status.value, "error": reason})], now)
            await finished_records(uow, ended, now)
            await uow.commit()
        self.runner.feed.publish(session.id, stored)
        return ended

    async def recover(self, owner_gone: Callable[[str | None], Awaitable[bool | None]],
                      lease_seconds: float = 90.0) -> int:
        """Sessions whose server is gone (restart, crash) are marked failed, their processes ended and their
        identity retired. ``owner_gone(owner)``: True (gone), False (alive) or None (unknown: the heartbeat
        decides, older than ``lease_seconds``). Returns how many were marked."""
        async with self._uow() as uow:
            unfinished = await uow.agents.unfinished()
        now = self.runner.clock.now()
        marked = 0
        for session in unfinished:
            if session.id in self.runner.live or session.owner == self.runner.settings.owner:
                continue
            gone = await owner_gone(session.owner)
            stale = session.heartbeat_at is None or (now - session.heartbeat_at).total_seconds() > lease_seconds
            if gone is False or (gone is None and not stale):
                continue
            await self._end_elsewhere(session, AgentStatus.FAILED,
                                      "the server running this session stopped (restart or crash) before it "
                                      "ended; send a message to resume it")
            marked += 1
        return marked

    async def sweep_workspaces(self, retention: timedelta, *, limit: int = 100) -> int:
        """Delete the workspaces of sessions finished more than ``retention`` ago (through the executor) and
        record it: such a session can no longer be resumed. Returns how many were deleted (at most ``limit``)."""
        async with self._uow() as uow:
            expired = await uow.agents.expired_workspaces(self.runner.clock.now() - retention, limit)
        swept = 0
        for session in expired:
            if session.id in self.runner.live:
                continue  # resumed meanwhile
            executor = self.runner.executor
            await executor.delete_workspace(await executor.create_workspace(workspace_key(session.id)))
            async with self._uow() as uow:
                current = await uow.agents.get(session.id)
                if current is None or not current.status.finished or current.workspace_deleted_at is not None:
                    continue  # resumed meanwhile: its run makes the workspace again
                now = self.runner.clock.now()
                await uow.agents.update(attrs.evolve(current, workspace_deleted_at=now))
                stored = await uow.agents.add_events(session.id, [EventDraft(
                    type="workspace", role=EventRole.SYSTEM, content="workspace deleted",
                    metadata={"retention_hours": retention.total_seconds() / 3600})], now)
                await uow.commit()
            self.runner.feed.publish(session.id, stored)
            swept += 1
        return swept

    async def session_of_agent_user(self, user_id: uuid.UUID) -> uuid.UUID | None:
        async with self._uow() as uow:
            session = await uow.agents.for_agent_user(user_id)
        return session.id if session is not None else None
