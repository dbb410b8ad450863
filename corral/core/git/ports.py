"""The GitRepositories port: bare repositories addressed by a path relative to the repositories root."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol

from corral.core.git.model import (
    Blob,
    Branch,
    Commit,
    Comparison,
    FileWrite,
    MergeStrategy,
    PushIntent,
    RefUpdate,
    Signature,
    Tag,
    TreeEntry,
)

__all__ = ["GitRepositories", "PushIntentStore"]


class PushIntentStore(Protocol):
    """Pushes announced before git may move a ref, until they are recorded (a unit-of-work store).

    ``claim`` deletes an intent and says whether this caller got it: of two units claiming the same intent
    (the push's own recording and a recovery), exactly one gets True, so a push is recorded once.

    The store also remembers the ref moves recorded lately (``add_moves``): an intent abandoned by a crash
    whose client retried the same push must not be recorded a second time by the recovery
    (corral.core.git.recovery), and a push must not record a move a recovery recorded meanwhile.
    """

    async def add(self, intent: PushIntent) -> None:
        """Store ``intent`` (its id is new)."""
        ...

    async def claim(self, intent_id: uuid.UUID) -> bool:
        """Delete the intent; True if it was there (this unit records the push), False if another took it."""
        ...

    async def older_than(self, before: datetime, limit: int) -> list[PushIntent]:
        """Intents created before ``before``, oldest first, at most ``limit`` (recovery's candidates)."""
        ...

    async def lock_moves(self, project_id: uuid.UUID) -> None:
        """Serialise the units recording ref moves of the project: the first to call this holds the project's
        record lock until it ends (commit or rollback); another unit's call waits for it (PostgreSQL), or one of
        two overlapping units fails at commit with Conflict (fakes)."""
        ...

    async def moves_since(self, project_id: uuid.UUID, refs: list[str], since: datetime) -> list[RefUpdate]:
        """The recorded moves (``add_moves``) of ``refs`` whose time is ``since`` or later, in recording order."""
        ...

    async def add_moves(self, project_id: uuid.UUID, moves: list[RefUpdate], at: datetime) -> None:
        """Remember that ``moves`` were recorded (as ``push`` events) at ``at``."""
        ...

    async def forget_moves(self, before: datetime) -> int:
        """Drop the recorded moves older than ``before``; returns how many."""
        ...


class GitRepositories(Protocol):
    """Bare git repositories.

    ``rev`` arguments accept a branch, tag or commit sha; an unknown rev or
    path raises NotFound. A malformed rev or path (leading '-', '..' segments,
    control characters) raises InvalidInput. Mutations (``merge``) move a ref
    only with an old-value check: a concurrent change makes them raise Conflict
    and leaves the repository as the other writer left it.
    """

    async def create(self, repo: str, default_branch: str) -> None:
        """An empty bare repository whose HEAD names ``default_branch``; Conflict if it exists."""
        ...

    async def delete(self, repo: str) -> None:
        """Remove the repository from disk; a missing repository is not an error."""
        ...

    async def set_default_branch(self, repo: str, branch: str) -> None:
        """Point HEAD at ``branch`` (which need not exist yet)."""
        ...

    async def list_branches(self, repo: str, *, after: str | None = None, limit: int | None = None) -> list[Branch]:
        """Branches by name (byte order), each with its head commit; only names after ``after``, at most
        ``limit`` of them (head commits are read for the returned branches only)."""
        ...

    async def list_tags(self, repo: str, *, after: str | None = None, limit: int | None = None) -> list[Tag]:
        """Tags by name (byte order), peeled to the commit they name; ``after``/``limit`` as for branches."""
        ...

    async def resolve(self, repo: str, rev: str) -> str | None:
        """The commit sha ``rev`` names, or None."""
        ...

    async def tree(self, repo: str, rev: str, path: str) -> list[TreeEntry]:
        """Entries of the directory ``path`` ('' for the root) at ``rev``, directories first."""
        ...

    async def blob(self, repo: str, rev: str, path: str, *, limit: int) -> Blob:
        """The file ``path`` at ``rev``, its data cut at ``limit`` bytes (``truncated`` then set)."""
        ...

    def blob_stream(self, repo: str, rev: str, path: str) -> AsyncIterator[bytes]:
        """The raw bytes of a file, streamed (NotFound raised before the first chunk)."""
        ...

    async def log(
        self, repo: str, rev: str, *, path: str | None = None, skip: int = 0, limit: int = 50
    ) -> list[Commit]:
        """Commits reachable from ``rev`` (touching ``path`` if given), newest first."""
        ...

    async def show(self, repo: str, sha: str, *, max_patch_bytes: int) -> tuple[Commit, Comparison]:
        """One commit and its change against its first parent (the empty tree for a root commit)."""
        ...

    async def compare(self, repo: str, base: str, head: str, *, max_patch_bytes: int) -> Comparison:
        """Commits in ``head`` not in ``base`` and the diff from their merge base to ``head``."""
        ...

    async def is_ancestor(self, repo: str, ancestor: str, descendant: str) -> bool: ...

    async def ref_values(self, repo: str, refs: list[str]) -> dict[str, str]:
        """Current values of the given full ref names (``refs/heads/main``); absent refs are left out."""
        ...

    async def merged_into(self, repo: str, refs: list[str], commit: str) -> dict[str, str]:
        """Of the given full ref names, those whose value is ``commit`` or one of its ancestors, with their values
        (one look at the repository for all of them)."""
        ...

    async def commits_between(self, repo: str, old: str | None, new: str, *, limit: int) -> list[Commit]:
        """Commits reachable from ``new`` but not ``old`` (all of ``new``'s history if None), newest first."""
        ...

    async def merge(
        self, repo: str, *, target: str, source: str, strategy: MergeStrategy, author: Signature, message: str,
        expected_target: str | None = None, announce: Callable[[str], Awaitable[None]] | None = None,
    ) -> str:
        """Merge branch ``source`` into branch ``target``; return the target's new head.

        Conflict (detail ``{"paths": [...]}``) when the changes conflict, Conflict
        when fast-forward is impossible, Conflict when the target moved away
        from ``expected_target``; in every refusal the repository is untouched.
        ``announce`` is awaited with the new head once it is known and before the target moves (if it
        raises, nothing moves): the caller records its intent there (corral.core.git.recovery).
        """
        ...

    async def write_commit(
        self, repo: str, *, parent: str | None, changes: Sequence[FileWrite], author: Signature, message: str,
        committer: Signature | None = None,
    ) -> str:
        """A new commit: ``parent``'s tree (the empty tree for None) with ``changes`` applied (a file's bytes, or
        None to delete it), authored by ``author`` and committed by ``committer`` (default: the author). No ref
        moves (``update_ref`` does that).

        InvalidInput (field ``path``) for a malformed path or one that would make a file and a directory of the
        same name; NotFound when a deleted file is not there.
        """
        ...

    async def update_ref(self, repo: str, ref: str, *, new: str, old: str) -> None:
        """Compare-and-swap the full ref name ``ref`` from ``old`` to ``new`` (ZERO_SHA ``old``: the ref must not
        exist; ZERO_SHA ``new``: delete it). Conflict, and nothing changes, when ``ref`` does not hold ``old``."""
        ...

    async def merge_conflicts(self, repo: str, base: str, head: str) -> list[str]:
        """The paths that would conflict if ``head`` were merged into ``base`` (commit shas), sorted; [] when the
        merge is clean. Leaves the repository as it was (no object, no ref)."""
        ...

    async def ahead_behind(self, repo: str, base: str, head: str) -> tuple[int, int]:
        """(commits in ``head`` not in ``base``, commits in ``base`` not in ``head``)."""
        ...

    async def tree_id(self, repo: str, rev: str) -> str:
        """The id of the root tree of the commit ``rev`` names (NotFound if none)."""
        ...

    def archive(self, repo: str, commit: str, *, fmt: str, prefix: str) -> AsyncIterator[bytes]:
        """The files of ``commit`` as a ``tar.gz`` or ``zip`` (``fmt``) archive whose paths start with ``prefix``
        (ends with '/'), streamed; NotFound raised before the first chunk."""
        ...
