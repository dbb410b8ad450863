"""The records a session change leaves: its audit rows and the agent_completed notification."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from corral.core.agents.model import AgentSession
from corral.core.audit.model import AuditEntry
from corral.core.identity.model import AuthMethod, Principal
from corral.core.ids import uuid7
from corral.core.outbox import topics
from corral.core.uow import UnitOfWork

__all__ = ["audit_session", "finished_records", "requester_of"]


def requester_of(session: AgentSession) -> Principal:
    return Principal(user_id=session.requester_id, name=session.requester_name, method=AuthMethod.SESSION)


async def audit_session(uow: UnitOfWork, actor: Principal, action: str, session: AgentSession, now: datetime,
                        **detail: Any) -> None:
    await uow.audit.record(AuditEntry(
        id=uuid7(), actor_id=actor.user_id, actor_name=actor.name, action=action, resource="agent_session",
        created_at=now, resource_id=session.id, project_id=session.project_id,
        detail={"session_id": str(session.id), **detail}, ip_addr=actor.ip_addr))


async def finished_records(uow: Any, session: AgentSession, now: datetime) -> None:
    """The audit row and the agent_completed notification of a session that ended (same transaction)."""
    project = await uow.projects.get(session.project_id)
    actor_id = session.agent_user_id or session.requester_id
    actor_name = session.agent_user_name or session.requester_name
    await uow.audit.record(AuditEntry(
        id=uuid7(), actor_id=actor_id, actor_name=actor_name, action="agent_session.finish",
        resource="agent_session", created_at=now, resource_id=session.id, project_id=session.project_id,
        detail={"session_id": str(session.id), "status": session.status.value, "error": session.error,
                "cost_usd": session.cost_usd, "turns": session.turns, "merge_request": session.merge_request,
                "delegator": session.requester_name}))
    await uow.outbox.add(topics.AGENT_COMPLETED, {
        "project": project.full_name if project is not None else None, "project_id": str(session.project_id),
        "agent": session.agent_user_name, "outcome": session.status.value,
        "title": session.prompt.strip().splitlines()[0][:120] if session.prompt.strip() else None,
        "session_id": str(session.id), "id": str(session.id), "user_ids": [str(session.requester_id)],
        "actor_id": str(actor_id), "notify_actor": True, "error": session.error,
        "cost_usd": session.cost_usd, "merge_request": session.merge_request,
        "dedupe_key": f"agent_completed:{session.id}:{session.runs}",
    }, project_id=session.project_id)
