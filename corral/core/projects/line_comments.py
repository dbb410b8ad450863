"""Line comments on a merge request's diff: where they point, and whether a later head changed that line.

A line comment names a file, a 1-based line, a side ('new': the file at the comment's commit; 'old': the file
at the merge base of the target and that commit) and the commit. The line's text then is kept with it; the
comment is *outdated* when the same line of the same side at the merge request's current head (or current merge
base) reads differently or is gone. That is a line-content comparison, stricter than following the line through
insertions above it: a line that merely moved down also reads as outdated, as Gitea's blame check would for a
rewritten line.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import attrs

from corral.core.errors import CorralError, InvalidInput, NotFound
from corral.core.git.ports import GitRepositories
from corral.core.projects.commands import NewMergeRequestComment
from corral.core.projects.model import Comment, MergeRequest, MrStatus, Project

__all__ = ["LineAnchor", "anchor_of", "outdated_comments"]

_MAX_FILE_BYTES = 4 << 20  # files compared for outdated comments are read up to this size
_MAX_LINE = 10_000_000


@attrs.frozen
class LineAnchor:
    """Where a line comment points and the line's text at that commit."""

    path: str
    line: int
    side: str
    commit_sha: str
    line_content: str


async def _lines(repos: GitRepositories, repo: str, rev: str, path: str) -> list[str] | None:
    """The lines of ``path`` at ``rev`` (None when it is not a file there or too large to compare)."""
    try:
        blob = await repos.blob(repo, rev, path, limit=_MAX_FILE_BYTES)
    except (NotFound, InvalidInput):
        return None
    if blob.truncated:
        return None
    return blob.data.decode("utf-8", "replace").splitlines()


async def _side_rev(repos: GitRepositories, project: Project, mr: MergeRequest, head: str, side: str) -> str | None:
    """The commit whose file a line of ``side`` refers to when the merge request's head is ``head``."""
    if side == "new":
        return head
    cmp = await repos.compare(project.repo_path, f"refs/heads/{mr.target_branch}", head, max_patch_bytes=0)
    return cmp.merge_base


def _check_path(value: object) -> str:
    if not isinstance(value, str) or not value.strip("/") or len(value) > 4096 or "\x00" in value:
        raise InvalidInput("path must be a file path in the repository", field="path")
    parts = value.strip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidInput("path must be a file path in the repository (no '.', '..' or empty parts)", field="path")
    return "/".join(parts)


async def anchor_of(repos: GitRepositories, project: Project, mr: MergeRequest,
                    command: NewMergeRequestComment) -> LineAnchor | None:
    """The anchor a comment command asks for (None for a plain comment); InvalidInput naming the field when the
    path, line, side or commit does not name a line."""
    if command.path is None and command.line is None:
        if command.commit_sha is not None:
            raise InvalidInput("commit_sha needs path and line (a line comment)", field="commit_sha")
        return None
    if command.path is None or command.line is None:
        missing = "path" if command.path is None else "line"
        raise InvalidInput(f"a line comment needs both path and line ({missing} is missing)", field=missing)
    path = _check_path(command.path)
    if not isinstance(command.line, int) or isinstance(command.line, bool) or not 0 < command.line <= _MAX_LINE:
        raise InvalidInput("line must be a line number from 1", field="line")
    if command.side not in ("old", "new"):
        raise InvalidInput("side must be old or new", field="side")
    if command.commit_sha is None:
        commit = await repos.resolve(project.repo_path, f"refs/heads/{mr.source_branch}")
        if commit is None:
            raise InvalidInput(f"the source branch {mr.source_branch!r} is gone: give commit_sha",
                               field="commit_sha")
    else:
        sha = command.commit_sha
        if not isinstance(sha, str) or not 4 <= len(sha) <= 64 or any(c not in "0123456789abcdefABCDEF" for c in sha):
            raise InvalidInput("commit_sha must be a commit sha", field="commit_sha")
        commit = await repos.resolve(project.repo_path, sha.lower())
        if commit is None:
            raise InvalidInput(f"commit_sha {sha!r} is not a commit of {project.full_name}", field="commit_sha")
    rev = await _side_rev(repos, project, mr, commit, command.side)
    lines = await _lines(repos, project.repo_path, rev, path) if rev is not None else None
    if lines is None:
        raise InvalidInput(f"{path!r} is not a text file on the {command.side} side at {commit[:12]}", field="path")
    if command.line > len(lines):
        raise InvalidInput(f"{path!r} has {len(lines)} lines on the {command.side} side at {commit[:12]}",
                           field="line")
    return LineAnchor(path=path, line=command.line, side=command.side, commit_sha=commit,
                      line_content=lines[command.line - 1])


async def outdated_comments(repos: GitRepositories, project: Project, mr: MergeRequest,
                            comments: Iterable[Comment]) -> set[uuid.UUID]:
    """The ids of the line comments among ``comments`` whose line reads differently at the merge request's current
    head (the source branch; gone: nothing is outdated). Old-side lines are compared at the current merge base
    while the merge request is open."""
    anchored = [c for c in comments if c.path is not None and c.line is not None and c.commit_sha is not None]
    if not anchored:
        return set()
    head = await repos.resolve(project.repo_path, f"refs/heads/{mr.source_branch}")
    if head is None:
        return set()
    revs: dict[str, str | None] = {}
    files: dict[tuple[str, str], list[str] | None] = {}
    out: set[uuid.UUID] = set()
    for c in anchored:
        assert c.path is not None and c.line is not None
        side = c.side or "new"
        if c.commit_sha == head or (side == "old" and mr.status is not MrStatus.OPEN):
            continue
        if side not in revs:
            try:
                revs[side] = await _side_rev(repos, project, mr, head, side)
            except CorralError:
                revs[side] = None
        rev = revs[side]
        if rev is None:
            continue
        if (rev, c.path) not in files:
            files[(rev, c.path)] = await _lines(repos, project.repo_path, rev, c.path)
        lines = files[(rev, c.path)]
        if lines is None or c.line > len(lines) or lines[c.line - 1] != c.line_content:
            out.add(c.id)
    return out
