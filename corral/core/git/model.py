"""Value objects of the git domain: refs, trees, blobs, commits, diffs, merges, pushes."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import attrs

__all__ = [
    "ZERO_SHA",
    "Blob",
    "Branch",
    "Commit",
    "Comparison",
    "FileChange",
    "FileWrite",
    "MergeStrategy",
    "PushIntent",
    "PushRule",
    "RefUpdate",
    "Signature",
    "Tag",
    "TreeEntry",
]

ZERO_SHA = "0" * 40


@attrs.frozen
class Signature:
    name: str
    email: str
    date: datetime


@attrs.frozen
class Commit:
    sha: str
    parents: tuple[str, ...]
    author: Signature
    committer: Signature
    message: str

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0]


@attrs.frozen
class Branch:
    name: str
    commit: Commit


@attrs.frozen
class Tag:
    name: str
    target: str  # the commit (peeled) the tag points to
    commit: Commit | None = None
    message: str | None = None


@attrs.frozen
class TreeEntry:
    name: str
    path: str
    type: str  # blob | tree | commit (submodule)
    mode: str
    sha: str
    size: int | None = None


@attrs.frozen
class Blob:
    path: str
    sha: str
    size: int
    data: bytes  # at most the requested limit
    truncated: bool = False


@attrs.frozen
class FileChange:
    path: str
    status: str  # added | modified | deleted | renamed | copied | type_changed
    additions: int | None  # None for binary files
    deletions: int | None
    old_path: str | None = None


@attrs.frozen
class FileWrite:
    """One file of a commit written through the API: its new bytes, or None to delete it."""

    path: str
    content: bytes | None


@attrs.frozen
class Comparison:
    """What ``head`` adds on top of its merge base with ``base``."""

    base: str
    head: str
    merge_base: str | None
    commits: tuple[Commit, ...]
    files: tuple[FileChange, ...]
    patch: str
    patch_truncated: bool = False


class MergeStrategy(enum.StrEnum):
    MERGE = "merge"  # always a merge commit with both parents
    SQUASH = "squash"  # one new commit on top of the target with the combined change
    FAST_FORWARD = "fast-forward"  # move the target to the source; refused unless possible
    REBASE = "rebase"  # the source's commits replayed one by one on top of the target (authors kept)


@attrs.frozen
class RefUpdate:
    """One ref change requested by a push (``old``/``new`` are ZERO_SHA for create/delete)."""

    old: str
    new: str
    ref: str

    @property
    def branch(self) -> str | None:
        return self.ref[len("refs/heads/") :] if self.ref.startswith("refs/heads/") else None

    @property
    def is_delete(self) -> bool:
        return self.new == ZERO_SHA

    @property
    def is_create(self) -> bool:
        return self.old == ZERO_SHA


@attrs.frozen
class PushIntent:
    """A push about to run, written before git may move a ref: if the process dies before the push is
    recorded, recovery finds the intent, looks at the refs and records what moved (corral.core.git.recovery).

    ``bypassed``: (branch protection id, reason) pairs whose merge-request requirement the pusher bypasses.
    """

    id: uuid.UUID
    project_id: uuid.UUID
    actor_id: uuid.UUID
    actor_name: str
    updates: tuple[RefUpdate, ...]
    created_at: datetime
    bypassed: tuple[tuple[uuid.UUID, str], ...] = ()


@attrs.frozen
class PushRule:
    """Branch protection as the receive side enforces it (before refs move)."""

    pattern: str
    allow_force_push: bool = False
    allow_deletion: bool = False
    require_merge_request: bool = False
