"""Wiring of agent sessions: the claude-code provider, the agent's identity through the identity domain, the
project's repository, the runner over the Executor, restart recovery, and the audit tag of agent requests."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from corral.core.agents.model import AgentSession
from corral.core.agents.ports import AgentGrant
from corral.core.agents.runner import AgentRunner, RunnerSettings
from corral.core.agents.service import AgentService, agent_purge_parts
from corral.core.errors import CorralError, NotFound, PermissionDenied
from corral.core.identity.model import AuthMethod, Principal
from corral.core.lru import ExpiringLru
from corral.core.projects.model import Actor, Project
from corral.core.workloads.model import Resources, Sandbox
from corral.entrypoints.platform import Platform

__all__ = ["AgentSessionMessages", "IdentityAgentIdentity", "ProjectsAgentRepository", "confinement", "wire_agents"]

log = logging.getLogger("corral.agents")

RECOVERY_SECONDS = 60.0
AGENT_EMAIL_DOMAIN = "agents.corral.invalid"


def _agent(user_id: uuid.UUID, name: str) -> Principal:
    return Principal(user_id=user_id, name=name, method=AuthMethod.SESSION, is_agent=True)


@attrs.define
class IdentityAgentIdentity:
    """A session's agent user, delegation and token through the identity services (each step audited)."""

    platform: Any

    def _ids(self) -> Any:
        from corral.core.identity.kit import IdentityServices

        return self.platform.resolve(IdentityServices)

    async def provision(self, requester: Principal, session_id: uuid.UUID, project_id: uuid.UUID,
                        permissions: tuple[str, ...], expires_at: datetime,
                        agent_user_id: uuid.UUID | None) -> AgentGrant:
        from corral.core.identity.commands import NewDelegation, NewToken, NewUser

        ids = self._ids()
        held = await ids.authorizer.permissions(requester, project_id)
        missing = sorted(set(permissions) - held)
        if missing:  # before anything is made: no orphan agent user
            raise PermissionDenied(f"you can only delegate permissions you hold in this project; missing: "
                                   f"{', '.join(missing)}")
        if agent_user_id is None:
            name = f"agent-{session_id.hex[-12:]}"
            user = await ids.users.create(requester, NewUser(
                name=name, email=f"{name}@{AGENT_EMAIL_DOMAIN}", agent=True,
                display_name=f"agent session {session_id}"))
            agent_user_id, agent_name = user.id, user.name
        else:
            async with self.platform.uow_factory() as uow:
                user = await uow.users.get(agent_user_id)
            if user is None:
                raise NotFound("the session's agent user no longer exists")
            agent_name = user.name
        delegations = await ids.rbac.delegate(requester, NewDelegation(
            delegate=agent_name, permissions=list(permissions), expires_at=expires_at,
            reason=f"agent session {session_id}"), project_id=project_id)
        issued = await ids.tokens.create(_agent(agent_user_id, agent_name), NewToken(
            name=f"agent session {session_id}", scopes=list(permissions), expires_at=expires_at),
            project_id=project_id)
        return AgentGrant(agent_user_id=agent_user_id, agent_user_name=agent_name,
                          delegation_ids=tuple(d.id for d in delegations), token_id=issued.token.id,
                          token_secret=issued.secret)

    async def retire(self, session: AgentSession) -> None:
        ids = self._ids()
        requester = Principal(user_id=session.requester_id, name=session.requester_name, method=AuthMethod.SESSION)
        for delegation_id in session.delegation_ids:
            try:
                await ids.rbac.revoke_delegation(requester, delegation_id)
            except NotFound:
                pass
        if session.token_id is not None and session.agent_user_id is not None:
            try:
                await ids.tokens.revoke(_agent(session.agent_user_id, session.agent_user_name or ""), session.token_id)
            except NotFound:
                pass


@attrs.define
class ProjectsAgentRepository:
    """Branch heads from the git repositories; merge requests through the projects domain as the agent user."""

    platform: Any

    def _kit(self) -> Any:
        from corral.entrypoints.web.project_access import ProjectsKit

        return self.platform.resolve(ProjectsKit)

    async def branch_head(self, project: Project, branch: str) -> str | None:
        head: str | None = await self._kit().git.resolve(project.repo_path, f"refs/heads/{branch}")
        return head

    async def open_merge_request(self, session: AgentSession, project: Project, title: str, body: str) -> int:
        from corral.core.identity.kit import IdentityServices
        from corral.core.projects.commands import NewMergeRequest

        assert session.agent_user_id is not None
        agent = _agent(session.agent_user_id, session.agent_user_name or "")
        ids: IdentityServices = self.platform.resolve(IdentityServices)
        await ids.authorizer.authorize(agent, "project:write", project.id)  # the delegation, still alive
        mr = await self._kit().merge_requests.create(
            Actor(id=agent.user_id, name=agent.name, email=f"{agent.name}@{AGENT_EMAIL_DOMAIN}"), project,
            NewMergeRequest(source_branch=session.branch, title=title, body=body))
        number: int = mr.number
        return number


@attrs.define
class AgentSessionMessages:
    """Observe's SessionMessages port: an agent session's stored events, for the session timeline."""

    service: AgentService

    async def messages(self, session_id: str, project_ids: tuple[uuid.UUID, ...] | None,
                       limit: int) -> list[Any]:
        from corral.core.observe.model import SessionMessage

        try:
            sid = uuid.UUID(session_id)
        except ValueError:
            return []  # not an agent session's id (telemetry may name its own sessions)
        try:
            session = await self.service.get(sid)
        except NotFound:
            return []
        if project_ids is not None and session.project_id not in project_ids:
            return []
        from corral.core.pagination import MAX_LIMIT

        events: list[Any] = []
        while len(events) < limit:  # bounded: each page moves on, an empty or short page ends it
            wanted = min(MAX_LIMIT, limit - len(events))
            page = await self.service.events(sid, after=events[-1].id if events else 0, limit=wanted)
            events += page
            if len(page) < wanted:
                break
        return [SessionMessage(id=e.id, timestamp=e.created_at, type=e.type, role=e.role.value, content=e.content,
                               metadata=e.metadata) for e in events]


def _owner_gone_check(owner_id: str) -> Any:
    host = socket.gethostname()

    async def owner_gone(owner: str | None) -> bool | None:
        if owner is None:
            return True
        if owner == owner_id:
            return False
        parts = owner.split(":")
        if len(parts) != 3 or parts[0] != host:
            return None  # another machine: its heartbeat decides
        try:
            pid = int(parts[1])
        except ValueError:
            return None
        if pid == os.getpid():
            return True  # this process, an earlier incarnation of the runner
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return None
        return None  # a live process (maybe another replica; maybe a reused pid): the heartbeat decides

    return owner_gone


def confinement(settings: Any, *, local: bool) -> tuple[Resources | None, Sandbox | None]:
    """What the workloads of a session ask for and are confined to: in a cluster, the ``agent_*`` requests and
    limits and a sandbox (non-root, read-only root filesystem, a NetworkPolicy); on this machine, nothing (a
    process cannot be confined here: the local runtime is for trusted agents)."""
    if local:
        return None, None
    return (Resources(cpu_request=settings.agent_cpu_request, cpu_limit=settings.agent_cpu_limit,
                      memory_request=settings.agent_memory_request, memory_limit=settings.agent_memory_limit),
            Sandbox(user_id=settings.agent_run_as_user))


async def wire_agents(platform: Platform) -> None:
    from corral.adapters.claude_code import ClaudeCodeProvider
    from corral.core.secrets.model import SecretScope
    from corral.core.workloads.ports import Executor
    from corral.entrypoints.web.project_access import ProjectsKit

    if platform.resolve_optional(ProjectsKit) is None:
        return  # no projects domain wired (some unit tests): no agent sessions
    purger = platform.resolve(ProjectsKit).projects.purger
    if purger is not None:  # a deleted project's agent workspaces
        purger.contributors.append(agent_purge_parts)
    settings = platform.settings
    executor = platform.resolve_optional(Executor)
    if executor is None:
        log.warning("no workload executor is configured: agent sessions cannot run")
        return
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    repos_root = Path(settings.git_repos_dir or settings.data_dir / "repos")
    local = type(executor).__name__.lower().startswith(("local", "inmemory"))
    if not local and not settings.agent_image:
        log.warning("CORRAL_AGENT_IMAGE is not set: agent pods run the executor's default image, which has no "
                    "agent CLI (see deploy/agent-image)")
    base_url = settings.public_url()

    def git_source(project: Project) -> str:
        # the local runtime clones from the repository on disk; a pod clones over HTTP (the token's header)
        return str(repos_root / project.repo_path) if local else f"{base_url}/{project.full_name}.git"

    async def secret_env(session: AgentSession) -> dict[str, str]:
        from corral.core.secrets.reader import SecretReader

        reader: SecretReader | None = platform.resolve_optional(SecretReader)
        if reader is None:
            return {}
        requester = Principal(user_id=session.requester_id, name=session.requester_name, method=AuthMethod.SESSION)
        try:
            return await reader.read_many(requester, session.project_id, ["ANTHROPIC_API_KEY"], SecretScope.AGENT,
                                          f"agent session {session.id}")
        except CorralError:
            return {}  # no key stored (or not readable by the requester): the CLI's own login applies

    resources, sandbox = confinement(settings, local=local)
    runner = AgentRunner(
        platform.uow_factory, platform.clock, executor,
        {"claude-code": ClaudeCodeProvider(settings.agent_claude_command, settings.agent_permission_mode)},
        IdentityAgentIdentity(platform), ProjectsAgentRepository(platform),
        RunnerSettings(base_url=base_url, owner=owner, git_source=git_source,
                       otlp_endpoint=f"http://{settings.host}:{settings.otlp_port}" if settings.otlp_port
                       else base_url, image=settings.agent_image, wrapup_seconds=settings.agent_wrapup_seconds,
                       # on this machine the agent finds its tools (node, python, git) where the server does
                       env={"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")} if local else {},
                       resources=resources, sandbox=sandbox),
        secrets=secret_env)
    service = AgentService(runner)
    platform.register(AgentService, service)
    from corral.entrypoints.observe_runtime import ObserveRuntime

    observe = platform.resolve_optional(ObserveRuntime)
    if observe is not None:  # the session's messages on observe's session timeline, beside its logs and spans
        observe.queries.messages = AgentSessionMessages(service)
    platform.closers.append(runner.aclose)
    owner_gone = _owner_gone_check(owner)

    retention = timedelta(hours=settings.agent_workspace_retention_hours)

    async def agent_recovery() -> None:
        import asyncio

        while True:
            try:
                marked = await service.recover(owner_gone)
                if marked:
                    log.warning("marked %d agent session(s) failed: their server stopped while they ran", marked)
            except CorralError:
                log.exception("agent session recovery failed")
            try:
                swept = await service.sweep_workspaces(retention)
                if swept:
                    log.info("deleted the workspaces of %d finished agent session(s) after %s h", swept,
                             settings.agent_workspace_retention_hours)
            except CorralError:
                log.exception("agent workspace retention sweep failed")
            await asyncio.sleep(RECOVERY_SECONDS)

    platform.background.append(agent_recovery)
    sessions_of: ExpiringLru[uuid.UUID, tuple[uuid.UUID | None]] = ExpiringLru(4096)

    async def session_of(user_id: uuid.UUID) -> uuid.UUID | None:
        now = platform.clock.monotonic()
        cached = sessions_of.get(user_id, now)
        if cached is not None:
            return cached[0]
        found = await service.session_of_agent_user(user_id)
        sessions_of.put(user_id, (found,), now + 300.0)  # an agent user belongs to one session for good
        return found

    def hook(app: Any) -> None:
        from corral.entrypoints.web.keys import AGENT_SESSION_OF

        app[AGENT_SESSION_OF] = session_of

    platform.app_hooks.append(hook)
