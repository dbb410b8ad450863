"""Response shapes of projects, issues, merge requests, comments and reviews."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import attrs

__all__ = ["CommentOut", "CommitOut", "ComparisonOut", "FileChangeOut", "IssueOut", "MergeRequestOut",
           "PersonOut", "ReviewOut", "UserRefOut"]


@attrs.frozen
class UserRefOut:
    """A user as other objects name it."""

    id: uuid.UUID
    name: str | None


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


@attrs.frozen
class CommentOut:
    """A comment on an issue or a merge request."""

    id: uuid.UUID
    body: str
    author: UserRefOut | None
    created_at: datetime
    updated_at: datetime


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
