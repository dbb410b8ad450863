"""JSON shapes of projects, issues and merge requests, shared by the API and event payloads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from corral.core.git.model import Commit
from corral.core.projects.model import (
    Comment,
    Issue,
    Label,
    MergeRequest,
    Milestone,
    Project,
    Review,
    Webhook,
    WebhookDelivery,
    is_draft,
)
from corral.core.projects.ports import UserRef

__all__ = [
    "comment_json",
    "commit_json",
    "delivery_json",
    "issue_json",
    "label_json",
    "milestone_json",
    "milestone_ref_json",
    "mr_comment_json",
    "mr_json",
    "project_json",
    "review_json",
    "user_json",
    "webhook_json",
]


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def user_json(users: dict[uuid.UUID, UserRef], user_id: uuid.UUID | None) -> dict[str, Any] | None:
    if user_id is None:
        return None
    user = users.get(user_id)
    return {"id": str(user_id), "name": user.name if user else None}


def project_json(project: Project, base_url: str = "") -> dict[str, Any]:
    return {
        "id": str(project.id),
        "owner": project.owner_name,
        "name": project.name,
        "full_name": project.full_name,
        "display_name": project.display_name,
        "description": project.description,
        "visibility": project.visibility.value,
        "default_branch": project.default_branch,
        "archived": project.archived,
        "clone_url": f"{base_url.rstrip('/')}/{project.full_name}.git",
        "created_at": _ts(project.created_at),
        "updated_at": _ts(project.updated_at),
    }


def milestone_ref_json(milestone_id: uuid.UUID | None, milestones: dict[uuid.UUID, Milestone] | None,
                       ) -> dict[str, Any] | None:
    if milestone_id is None:
        return None
    found = (milestones or {}).get(milestone_id)
    return {"id": str(milestone_id), "title": found.title if found else None}


def label_json(label: Label) -> dict[str, Any]:
    return {"id": str(label.id), "name": label.name, "color": label.color, "description": label.description,
            "created_at": _ts(label.created_at)}


def milestone_json(milestone: Milestone, counts: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    return {"id": str(milestone.id), "title": milestone.title, "description": milestone.description,
            "due_on": milestone.due_on.isoformat() if milestone.due_on else None, "state": milestone.state,
            "open_issues": counts[0], "closed_issues": counts[1], "created_at": _ts(milestone.created_at),
            "updated_at": _ts(milestone.updated_at), "closed_at": _ts(milestone.closed_at)}


def issue_json(issue: Issue, users: dict[uuid.UUID, UserRef],
               milestones: dict[uuid.UUID, Milestone] | None = None) -> dict[str, Any]:
    return {
        "id": str(issue.id),
        "number": issue.number,
        "title": issue.title,
        "body": issue.body,
        "status": issue.status.value,
        "labels": list(issue.labels),
        "author": user_json(users, issue.author_id),
        "assignee": user_json(users, issue.assignee_id),
        "milestone": milestone_ref_json(issue.milestone_id, milestones),
        "created_at": _ts(issue.created_at),
        "updated_at": _ts(issue.updated_at),
    }


def mr_json(mr: MergeRequest, users: dict[uuid.UUID, UserRef],
            milestones: dict[uuid.UUID, Milestone] | None = None) -> dict[str, Any]:
    return {
        "id": str(mr.id),
        "number": mr.number,
        "title": mr.title,
        "body": mr.body,
        "status": mr.status.value,
        "source_branch": mr.source_branch,
        "target_branch": mr.target_branch,
        "author": user_json(users, mr.author_id),
        "merged_by": user_json(users, mr.merged_by),
        "merged_at": _ts(mr.merged_at),
        "merge_commit_sha": mr.merge_commit_sha,
        "created_at": _ts(mr.created_at),
        "updated_at": _ts(mr.updated_at),
        "draft": is_draft(mr.title),
        "labels": list(mr.labels),
        "milestone": milestone_ref_json(mr.milestone_id, milestones),
        "assignees": [user_json(users, u) for u in mr.assignee_ids],
        "reviewers": [user_json(users, u) for u in mr.reviewer_ids],
    }


def comment_json(comment: Comment, users: dict[uuid.UUID, UserRef]) -> dict[str, Any]:
    return {
        "id": str(comment.id),
        "body": comment.body,
        "author": user_json(users, comment.author_id),
        "created_at": _ts(comment.created_at),
        "updated_at": _ts(comment.updated_at),
    }


def mr_comment_json(comment: Comment, users: dict[uuid.UUID, UserRef], *, outdated: bool = False) -> dict[str, Any]:
    """A merge request comment: a plain one answers null line fields."""
    return {**comment_json(comment, users), "path": comment.path, "line": comment.line, "side": comment.side,
            "commit_sha": comment.commit_sha, "outdated": outdated}


def review_json(review: Review, users: dict[uuid.UUID, UserRef]) -> dict[str, Any]:
    return {
        "id": str(review.id),
        "verdict": review.verdict.value,
        "body": review.body,
        "reviewer": user_json(users, review.reviewer_id),
        "created_at": _ts(review.created_at),
    }


def commit_json(commit: Commit) -> dict[str, Any]:
    return {
        "sha": commit.sha,
        "parents": list(commit.parents),
        "message": commit.message,
        "author": {"name": commit.author.name, "email": commit.author.email, "date": _ts(commit.author.date)},
        "committer": {
            "name": commit.committer.name, "email": commit.committer.email, "date": _ts(commit.committer.date)
        },
    }


def webhook_json(hook: Webhook) -> dict[str, Any]:
    """Never includes the secret itself, only whether one is set."""
    return {
        "id": str(hook.id),
        "url": hook.url,
        "events": list(hook.events),
        "active": hook.active,
        "has_secret": bool(hook.secret),
        "created_at": _ts(hook.created_at),
    }


def delivery_json(d: WebhookDelivery, *, with_payload: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(d.id),
        "webhook_id": str(d.webhook_id),
        "event": d.event,
        "status": d.status.value,
        "attempts": d.attempts,
        "status_code": d.status_code,
        "duration_ms": d.duration_ms,
        "response_excerpt": d.response_excerpt,
        "error": d.error,
        "created_at": _ts(d.created_at),
        "delivered_at": _ts(d.delivered_at),
        "next_attempt_at": _ts(d.next_attempt_at),
        "redelivery_of": str(d.redelivery_of) if d.redelivery_of else None,
    }
    if with_payload:
        out["payload"] = d.payload
    return out
