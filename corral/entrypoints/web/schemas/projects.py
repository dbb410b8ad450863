"""Response shapes of projects, issues, merge requests, comments and reviews."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import attrs

__all__ = [
    "BlobOut",
    "BranchOut",
    "BranchProtectionOut",
    "CommentOut",
    "CommitDetailOut",
    "CommitOut",
    "CommitRefOut",
    "CompareOut",
    "ComparisonOut",
    "ContentOut",
    "ContentRefOut",
    "DeliveryDetailOut",
    "DeliveryOut",
    "DocOut",
    "FileChangeOut",
    "FileResultOut",
    "FileWriteOut",
    "FilesWriteOut",
    "IssueOut",
    "LabelOut",
    "MergeRequestCommentOut",
    "MergeRequestOut",
    "MilestoneOut",
    "MilestoneRefOut",
    "PersonOut",
    "ProjectOut",
    "ReleaseAssetOut",
    "ReleaseOut",
    "ReviewOut",
    "TagOut",
    "TreeEntryOut",
    "TreeOut",
    "UserRefOut",
    "WebhookOut",
]


@attrs.frozen
class UserRefOut:
    """A user as other objects name it."""

    id: uuid.UUID
    name: str | None


@attrs.frozen
class MilestoneRefOut:
    """A milestone as issues and merge requests name it."""

    id: uuid.UUID
    title: str | None


@attrs.frozen
class LabelOut:
    """A project's label."""

    id: uuid.UUID
    name: str
    color: str
    description: str | None
    created_at: datetime


@attrs.frozen
class ReleaseAssetOut:
    """A file of a release (download: .../releases/{id}/assets/{name})."""

    id: uuid.UUID
    name: str
    size: int
    content_type: str
    created_at: datetime


@attrs.frozen
class ReleaseOut:
    """A release: a tag with a title, markdown notes (the UI renders them) and assets."""

    id: uuid.UUID
    tag: str
    target: str
    title: str
    notes: str
    draft: bool
    prerelease: bool
    author_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    assets: list[ReleaseAssetOut]


@attrs.frozen
class MilestoneOut:
    """A project's milestone with how many of its issues are open and closed."""

    id: uuid.UUID
    title: str
    description: str | None
    due_on: str | None
    state: Literal["open", "closed"]
    open_issues: int
    closed_issues: int
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


@attrs.frozen
class IssueOut:
    """An issue."""

    id: uuid.UUID
    number: int
    title: str
    body: str | None
    status: Literal["open", "closed"]
    labels: list[str]
    author: UserRefOut | None
    assignee: UserRefOut | None
    milestone: MilestoneRefOut | None
    created_at: datetime
    updated_at: datetime


@attrs.frozen
class MergeRequestOut:
    """A merge request."""

    id: uuid.UUID
    number: int
    title: str
    body: str | None
    status: Literal["open", "merged", "closed"]
    source_branch: str
    target_branch: str
    author: UserRefOut | None
    merged_by: UserRefOut | None
    merged_at: datetime | None
    merge_commit_sha: str | None
    created_at: datetime
    updated_at: datetime
    draft: bool
    labels: list[str]
    milestone: MilestoneRefOut | None
    assignees: list[UserRefOut | None]
    reviewers: list[UserRefOut | None]
    mergeable: bool | None
    conflicting_paths: list[str]
    pipeline_status: str | None = attrs.field(metadata={"doc": (
        "GET of one merge request only (null in listings, and when the source branch is gone): the pipeline "
        "status of the source branch's head, as `state` of `GET …/commits/{sha}/status` (the newest pipeline's "
        "status, `none` when no pipeline ran for it)")})


@attrs.frozen
class CommentOut:
    """A comment on an issue or a merge request."""

    id: uuid.UUID
    body: str
    author: UserRefOut | None
    created_at: datetime
    updated_at: datetime


@attrs.frozen
class MergeRequestCommentOut(CommentOut):
    """A comment on a merge request; a line comment names its path, line, side and commit, and is outdated once a
    later head changed that line."""

    path: str | None
    line: int | None
    side: Literal["old", "new"] | None
    commit_sha: str | None
    outdated: bool


@attrs.frozen
class ReviewOut:
    """A review of a merge request."""

    id: uuid.UUID
    verdict: Literal["approve", "request_changes", "comment"]
    body: str | None
    reviewer: UserRefOut | None
    created_at: datetime


@attrs.frozen
class PersonOut:
    """A commit's author or committer."""

    name: str
    email: str
    date: datetime | None


@attrs.frozen
class CommitOut:
    """A commit."""

    sha: str
    parents: list[str]
    message: str
    author: PersonOut
    committer: PersonOut


@attrs.frozen
class FileChangeOut:
    """A file changed between two commits."""

    path: str
    old_path: str | None
    status: str
    additions: int | None
    deletions: int | None


@attrs.frozen
class ComparisonOut:
    """What lies between a base and a head: commits, changed files and the patch."""

    base: str
    head: str
    merge_base: str | None
    commits: list[CommitOut]
    files: list[FileChangeOut]
    patch: str
    patch_truncated: bool


@attrs.frozen
class CommitDetailOut(CommitOut):
    """A commit with its diff against its first parent."""

    files: list[FileChangeOut]
    patch: str
    patch_truncated: bool


@attrs.frozen
class ProjectOut:
    """A project."""

    id: uuid.UUID
    owner: str
    name: str
    full_name: str
    display_name: str | None
    description: str | None
    visibility: Literal["private", "internal", "public"]
    default_branch: str
    archived: bool
    clone_url: str
    created_at: datetime
    updated_at: datetime


@attrs.frozen
class BranchProtectionOut:
    """A branch protection rule."""

    id: uuid.UUID
    pattern: str
    allow_force_push: bool
    allow_deletion: bool
    require_merge_request: bool
    required_approvals: int
    bypass_admins: bool
    push_allowlist: list[str]
    required_checks: list[str]
    created_at: datetime


@attrs.frozen
class WebhookOut:
    """A webhook (its secret is never shown, only whether it has one)."""

    id: uuid.UUID
    url: str
    events: list[Literal["push", "issue", "merge_request", "review", "pipeline", "deployment", "release"]]
    active: bool
    has_secret: bool
    created_at: datetime


@attrs.frozen
class DeliveryOut:
    """One delivery of an event to a webhook, with the summary of its attempts."""

    id: uuid.UUID
    webhook_id: uuid.UUID
    event: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    status_code: int | None
    duration_ms: int | None
    response_excerpt: str | None
    error: str | None
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None
    redelivery_of: uuid.UUID | None


@attrs.frozen
class DeliveryDetailOut(DeliveryOut):
    """A delivery with the payload it sends."""

    payload: dict[str, Any]


@attrs.frozen
class BranchOut:
    """A branch and its head commit."""

    name: str
    commit: CommitOut


@attrs.frozen
class TagOut:
    """A tag, peeled to its commit."""

    name: str
    sha: str
    message: str | None
    commit: CommitOut | None


@attrs.frozen
class TreeEntryOut:
    """An entry of a directory."""

    name: str
    path: str
    type: str
    mode: str
    sha: str
    size: int | None


@attrs.frozen
class TreeOut:
    """A directory at a ref."""

    ref: str
    path: str
    items: list[TreeEntryOut]


@attrs.frozen
class BlobOut:
    """A file at a ref: utf-8 text, or base64 when it is not utf-8."""

    path: str
    sha: str
    size: int
    encoding: Literal["utf-8", "base64"]
    content: str
    truncated: bool


@attrs.frozen
class DocOut:
    """A Markdown document under docs/ (path relative to docs/)."""

    path: str
    size: int | None


@attrs.frozen
class CompareOut(ComparisonOut):
    """A comparison of two refs with how far head is ahead of and behind base."""

    ahead_by: int
    behind_by: int


@attrs.frozen
class ContentOut:
    """A file (its bytes, base64) or a directory (its entries) at a ref."""

    type: Literal["file", "dir"]
    name: str
    path: str
    ref: str
    sha: str | None
    size: int | None
    encoding: Literal["base64"] | None
    content: str | None
    truncated: bool
    entries: list[TreeEntryOut] | None


@attrs.frozen
class ContentRefOut:
    """A file as a write left it."""

    path: str
    sha: str


@attrs.frozen
class CommitRefOut:
    """The commit a write made."""

    sha: str


@attrs.frozen
class FileWriteOut:
    """What writing (or deleting: content null) one file made."""

    content: ContentRefOut | None
    commit: CommitRefOut


@attrs.frozen
class FileResultOut:
    """One file of a multi-file commit: its new blob sha, null when deleted."""

    path: str
    sha: str | None


@attrs.frozen
class FilesWriteOut:
    """What a multi-file commit made."""

    files: list[FileResultOut]
    commit: CommitRefOut
