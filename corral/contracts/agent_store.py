"""AgentSessionStoreContract: what every AgentSessionStore does (rows, paging, recovery lists, numbered events).

Subclasses provide ``agents_uow_factory`` (units carrying ``projects`` and ``agents``) and ``make_user`` (an async
callable ``name -> UserRef``).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from corral.core.agents.model import AgentSession, AgentStatus, EventDraft, EventRole
from corral.core.errors import Conflict, InvalidTransition, NotFound
from corral.core.ids import uuid7
from corral.core.projects.model import Project, Visibility

__all__ = ["AgentSessionStoreContract"]

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def _project(uow_factory: Any, make_user: Any) -> tuple[Project, Any]:
    owner = await make_user(f"u{uuid.uuid4().hex[:8]}")
    pid = uuid7()
    project = Project(id=pid, owner_id=owner.id, owner_name=owner.name, name="app", visibility=Visibility.PRIVATE,
                      default_branch="main", repo_path=f"{pid}.git", created_at=T0, updated_at=T0)
    async with uow_factory() as uow:
        await uow.projects.add(project)
        await uow.commit()
    return project, owner


def _session(project: Project, requester: Any, agent: Any | None = None, *, created: datetime = T0) -> AgentSession:
    return AgentSession(
        id=uuid7(), project_id=project.id, requester_id=requester.id, requester_name=requester.name,
        prompt="fix the bug", provider="claude-code", permissions=("project:read", "project:write"), max_turns=10,
        max_cost_usd=1.5, timeout_seconds=600, branch="agent/1a2b", open_merge_request=True,
        status=AgentStatus.PENDING, created_at=created, expires_at=created + timedelta(minutes=10),
        agent_user_id=agent.id if agent else None, agent_user_name=agent.name if agent else None,
        runs=1, owner="host:1:abc", heartbeat_at=created, delegation_ids=(uuid7(), uuid7()), token_id=uuid7())


class AgentSessionStoreContract:
    async def test_a_session_reads_back_as_written_and_updates(self, agents_uow_factory: Any, make_user: Any) -> None:
        project, owner = await _project(agents_uow_factory, make_user)
        agent = await make_user(f"agent-{uuid.uuid4().hex[:8]}")
        session = _session(project, owner, agent)
        async with agents_uow_factory() as uow:
            await uow.agents.add(session)
            await uow.commit()
        async with agents_uow_factory() as uow:
            assert await uow.agents.get(session.id) == session
            assert await uow.agents.for_agent_user(agent.id) == session
            assert await uow.agents.get(uuid7()) is None
            with pytest.raises(Conflict):
                await uow.agents.add(session)
        done = session.moved(AgentStatus.RUNNING, started_at=T0).moved(
            AgentStatus.COMPLETED, finished_at=T0 + timedelta(seconds=5), cost_usd=0.0421, turns=7, duration_ms=5000,
            merge_request=3, error=None, owner=None)
        async with agents_uow_factory() as uow:
            await uow.agents.update(done)
            await uow.commit()
        async with agents_uow_factory() as uow:
            assert await uow.agents.get(session.id) == done
            with pytest.raises(NotFound):
                await uow.agents.update(attrs.evolve(done, id=uuid7()))

    async def test_the_state_machine_refuses_invalid_transitions(self) -> None:
        project = Project(id=uuid7(), owner_id=uuid7(), owner_name="o", name="p", visibility=Visibility.PRIVATE,
                          default_branch="main", repo_path="x.git", created_at=T0, updated_at=T0)
        requester = attrs.make_class("U", ["id", "name"])(uuid7(), "ann")
        session = _session(project, requester)
        with pytest.raises(InvalidTransition):
            session.moved(AgentStatus.COMPLETED)
        finished = session.moved(AgentStatus.RUNNING).moved(AgentStatus.STOPPED)
        with pytest.raises(InvalidTransition):
            finished.moved(AgentStatus.RUNNING)
        assert finished.moved(AgentStatus.PENDING).status is AgentStatus.PENDING  # a resume

    async def test_listing_pages_newest_first_and_unfinished(self, agents_uow_factory: Any, make_user: Any) -> None:
        project, owner = await _project(agents_uow_factory, make_user)
        sessions = [_session(project, owner, created=T0 + timedelta(minutes=i)) for i in range(5)]
        sessions[1] = sessions[1].moved(AgentStatus.RUNNING)
        sessions[2] = sessions[2].moved(AgentStatus.FAILED)
        async with agents_uow_factory() as uow:
            for s in sessions:
                await uow.agents.add(s)
            await uow.commit()
        async with agents_uow_factory() as uow:
            first = await uow.agents.list_for_project(project.id, limit=3, cursor=None)
            assert [s.id for s in first.items] == [s.id for s in reversed(sessions)][:3]
            assert first.next_cursor is not None
            rest = await uow.agents.list_for_project(project.id, limit=3, cursor=first.next_cursor)
            assert [s.id for s in rest.items] == [sessions[1].id, sessions[0].id]
            assert rest.next_cursor is None
            unfinished = {s.id for s in await uow.agents.unfinished() if s.project_id == project.id}
            assert unfinished == {sessions[0].id, sessions[1].id, sessions[3].id, sessions[4].id}

    async def test_events_are_numbered_in_order_and_read_after_a_number(
            self, agents_uow_factory: Any, make_user: Any) -> None:
        project, owner = await _project(agents_uow_factory, make_user)
        session = _session(project, owner)
        async with agents_uow_factory() as uow:
            await uow.agents.add(session)
            stored = await uow.agents.add_events(session.id, [
                EventDraft(type="message", role=EventRole.USER, content="hi"),
                EventDraft(type="tool_use", role=EventRole.ASSISTANT, content="Read",
                           metadata={"input": {"file_path": "a.py"}, "n": 1, "id": uuid.UUID(int=1)}),
            ], T0)
            await uow.commit()
        assert [e.id for e in stored] == [1, 2]

        async def write(i: int) -> None:
            async with agents_uow_factory() as uow:
                await uow.agents.add_events(session.id, [EventDraft(type="text", role=EventRole.ASSISTANT,
                                                                    content=f"t{i}")], T0)
                await uow.commit()

        await asyncio.gather(*(write(i) for i in range(5)))
        async with agents_uow_factory() as uow:
            events = await uow.agents.events(session.id, after=0, limit=100)
            assert [e.id for e in events] == [1, 2, 3, 4, 5, 6, 7]
            assert events[1].metadata == {"input": {"file_path": "a.py"}, "n": 1, "id": str(uuid.UUID(int=1))}
            assert events[1].role is EventRole.ASSISTANT and events[1].type == "tool_use"
            assert sorted(e.content for e in events[2:]) == [f"t{i}" for i in range(5)]
            later = await uow.agents.events(session.id, after=5, limit=100)
            assert [e.id for e in later] == [6, 7]
            assert [e.id for e in await uow.agents.events(session.id, after=0, limit=2)] == [1, 2]
            with pytest.raises(NotFound):
                await uow.agents.add_events(uuid7(), [EventDraft(type="x", role=EventRole.SYSTEM, content="")], T0)

    async def test_events_roll_back_with_the_unit(self, agents_uow_factory: Any, make_user: Any) -> None:
        project, owner = await _project(agents_uow_factory, make_user)
        session = _session(project, owner)
        async with agents_uow_factory() as uow:
            await uow.agents.add(session)
            await uow.commit()
        async with agents_uow_factory() as uow:
            await uow.agents.add_events(session.id, [EventDraft(type="x", role=EventRole.SYSTEM, content="")], T0)
        async with agents_uow_factory() as uow:
            assert await uow.agents.events(session.id, after=0, limit=10) == []
