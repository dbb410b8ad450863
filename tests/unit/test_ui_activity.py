"""The dashboard's activity feed in words: every action a project reader may see is told in a sentence and linked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import corral.entrypoints.web.routes  # noqa: F401 (the UI modules load through the route tables, as in the app)
from corral.core.audit.model import AuditEntry
from corral.entrypoints.web.ui.dashboard import _href, _news, _public, describe


def entry(action: str, **detail: Any) -> AuditEntry:
    return AuditEntry(id=uuid.uuid4(), actor_id=uuid.uuid4(), actor_name="alice", action=action,
                      resource=action.split(".")[0], created_at=datetime(2026, 12, 7, tzinfo=UTC),
                      resource_id=uuid.UUID(int=7), project_id=uuid.uuid4(), detail=detail)


def test_pipelines_and_agent_sessions_are_told_in_words_and_linked() -> None:
    started = entry("pipeline.create", number=5)
    assert describe(started, "alice/shop") == "alice started pipeline #5 in alice/shop"
    assert _href(started, "alice/shop") == "/ui/alice/shop/pipelines/5"
    finished = entry("agent_session.finish")
    assert describe(finished, "alice/shop") == "alice finished its agent session in alice/shop"
    assert _href(finished, "alice/shop") == f"/ui/agent-sessions/{uuid.UUID(int=7)}"
    assert describe(entry("deploy.rollback"), "alice/shop") == "alice rolled back a deployment in alice/shop"


def test_an_action_without_words_still_reads_as_its_name() -> None:
    assert describe(entry("thing.frobnicate"), None) == "alice: thing frobnicate"


def test_project_readers_see_the_work_not_the_settings() -> None:
    for action in ("repo.push", "issue.create", "merge_request.merge", "pipeline.create", "release.create",
                   "agent_session.create", "project.create"):
        assert _public(entry(action)), action
    for action in ("webhook.create", "secret.read", "role_binding.create", "branch_protection.update",
                   "project.update", "token.create", "delegation.create"):
        assert not _public(entry(action)), action


def test_the_news_leaves_the_machinery_to_the_audit_log() -> None:
    for action in ("auth.login", "token.create", "token.revoke", "delegation.revoke", "secret.read"):
        assert not _news(entry(action)), action
    for action in ("repo.push", "webhook.create", "secret.put", "project.update", "user.create"):
        assert _news(entry(action)), action
