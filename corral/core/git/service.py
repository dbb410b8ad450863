"""Git use cases: push policy (before refs move), push events (after), and the repository browser."""

from __future__ import annotations

import fnmatch
import posixpath
import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import attrs

from corral.core.audit.model import AuditEntry
from corral.core.clock import Clock
from corral.core.errors import InvalidInput, NotFound
from corral.core.git.model import (
    ZERO_SHA,
    Blob,
    Branch,
    Commit,
    Comparison,
    PushRule,
    RefUpdate,
    Tag,
    TreeEntry,
)
from corral.core.git.ports import GitRepositories
from corral.core.ids import uuid7
from corral.core.outbox import topics
from corral.core.pagination import Page, clamp_limit, cursor_int, cursor_str, decode_cursor, encode_cursor
from corral.core.projects.model import Actor, BranchProtection, Project
from corral.core.projects.payloads import commit_json, project_json
from corral.core.uow import UnitOfWork

__all__ = [
    "MAX_PATCH_BYTES", "RepoBrowser", "finished_report", "parse_commands", "push_rules", "record_push", "report_status",
]

MAX_PATCH_BYTES = 1_000_000
MAX_BLOB_JSON = 1_000_000
PUSH_EVENT_COMMITS = 20


def push_rules(protections: list[BranchProtection], bypassed: Collection[BranchProtection] = ()) -> list[PushRule]:
    """Branch protections as the receive side enforces them; ``bypassed`` rules (the pusher may bypass their
    merge-request-only requirement) still refuse force-pushes and deletions."""
    skip = {p.id for p in bypassed}
    return [
        PushRule(p.pattern, p.allow_force_push, p.allow_deletion, p.require_merge_request and p.id not in skip)
        for p in protections
    ]


def hook_rules(rules: list[PushRule], updates: list[RefUpdate], *, complete: bool) -> list[PushRule]:
    """The rules the pre-receive hook must be given for these ref updates, or [] when it need not run:
    it only ever refuses an update of a branch that one of the rules matches. ``complete``: ``updates`` is
    the whole command list (if not, every rule is kept).

    The hook matches with the shell's ``case``; a pattern whose meaning could differ from ``fnmatch``
    (brackets, backslashes) counts as matching every branch.
    """
    if not rules or not complete:
        return rules
    branches = [u.branch for u in updates if u.branch is not None]
    for rule in rules:
        if "[" in rule.pattern or "\\" in rule.pattern:
            return rules
        if any(b == rule.pattern or fnmatch.fnmatchcase(b, rule.pattern) for b in branches):
            return rules
    return []


def parse_commands(data: bytes) -> tuple[list[RefUpdate], bool]:
    """Ref update commands at the start of a receive-pack request (pkt-lines up to the flush).

    Returns the commands and whether the command list was complete in ``data``.
    """
    updates: list[RefUpdate] = []
    pos = 0
    while pos + 4 <= len(data):
        try:
            size = int(data[pos : pos + 4], 16)
        except ValueError:
            return updates, True
        if size == 0:
            return updates, True
        if size < 4 or pos + size > len(data):
            return updates, False
        line = data[pos + 4 : pos + size].split(b"\x00", 1)[0].rstrip(b"\n").decode("utf-8", "replace")
        pos += size
        parts = line.split(" ")
        if len(parts) == 3 and parts[0] not in ("shallow", "push-cert"):
            updates.append(RefUpdate(parts[0], parts[1], parts[2]))
    return updates, False


def _pkt_lines(data: bytes, *, to_flush: bool = False) -> tuple[list[bytes], bool] | None:
    """The complete pkt-lines of ``data`` (flushes skipped) and whether a flush was seen; with ``to_flush``
    it stops at the first flush. None when ``data`` is not pkt-lines."""
    lines: list[bytes] = []
    pos = 0
    while pos + 4 <= len(data):
        try:
            size = int(data[pos : pos + 4], 16)
        except ValueError:
            return None
        if size == 0:
            pos += 4
            if to_flush:
                return lines, True
            continue
        if size < 4:
            return None
        if pos + size > len(data):
            break  # an incomplete last line: more is coming
        lines.append(data[pos + 4 : pos + size])
        pos += size
    return lines, False


def _report(request_head: bytes, response: bytes, *, finished: bool) -> dict[str, bool] | None:
    first = request_head[4:].split(b"\n", 1)[0]
    caps = first.split(b"\x00", 1)[1].split() if b"\x00" in first else []
    if b"report-status" not in caps and b"report-status-v2" not in caps:
        return None
    parsed = _pkt_lines(response)
    if parsed is None:
        return None
    lines = parsed[0]
    if b"side-band-64k" in caps or b"side-band" in caps:
        parsed = _pkt_lines(b"".join(line[1:] for line in lines if line[:1] == b"\x01"), to_flush=True)
    else:
        parsed = _pkt_lines(response, to_flush=True)
    if parsed is None:
        return None
    lines, ended = parsed
    if finished and not ended:
        return None
    result: dict[str, bool] = {}
    for raw in lines:
        line = raw.rstrip(b"\n").decode("utf-8", "replace")
        if line.startswith("ok "):
            result[line[3:]] = True
        elif line.startswith("ng "):
            result[line[3:].split(" ", 1)[0]] = False
    return result if lines and lines[0].startswith(b"unpack") else None


def report_status(request_head: bytes, response: bytes) -> dict[str, bool] | None:
    """Which refs receive-pack reported as updated (``ok``) or refused (``ng``), from its response.

    None when the client asked for no report or the response cannot be read (callers then look at the refs).
    """
    return _report(request_head, response, finished=False)


def finished_report(request_head: bytes, response: bytes) -> dict[str, bool] | None:
    """As ``report_status``, from the first bytes of receive-pack's answer: None until the whole report
    (its closing flush) is there. receive-pack reports after the refs moved and before it runs ``gc --auto``
    and ends its answer, so the push can be recorded while git finishes."""
    return _report(request_head, response, finished=True)


async def _audit_push(
    uow: UnitOfWork, project: Project, actor: Actor, updates: list[RefUpdate], clock: Clock,
    bypassed: Sequence[tuple[BranchProtection, str]],
) -> None:
    await uow.audit.record(AuditEntry(
        id=uuid7(), actor_id=actor.id, actor_name=actor.name, action="repo.push", resource="project",
        created_at=clock.now(), resource_id=project.id, project_id=project.id,
        detail={"refs": [{"ref": u.ref, "before": u.old, "after": u.new} for u in updates]},
    ))
    for update in updates:
        branch = update.branch
        for rule, reason in bypassed:
            if branch is not None and rule.matches(branch):
                await uow.audit.record(AuditEntry(
                    id=uuid7(), actor_id=actor.id, actor_name=actor.name, action="branch_protection.bypass",
                    resource="branch_protection", created_at=clock.now(), resource_id=rule.id,
                    project_id=project.id,
                    detail={"pattern": rule.pattern, "ref": update.ref, "before": update.old,
                            "after": update.new, "reason": reason},
                ))
                break


async def record_push(
    uow: UnitOfWork, project: Project, actor: Actor, updates: list[RefUpdate],
    *, via: str = "push", clock: Clock | None = None, bypassed: Sequence[tuple[BranchProtection, str]] = (),
    intent_id: uuid.UUID | None = None, since: datetime | None = None, at: datetime | None = None,
) -> bool:
    """Write one ``push`` outbox event per moved ref (webhooks, pipelines and notifications consume them): the
    ref, before/after, the pusher and the project; a consumer that needs the commits reads them with
    ``push_history`` (no git process runs while the push waits for its record).

    With ``clock`` (a push through git, not a merge that audits itself) an audit entry records the refs, and
    one ``branch_protection.bypass`` entry is written per ref that moved on a merge-request-only branch
    whose rule the pusher bypassed (``bypassed``: (rule, reason) pairs). With ``intent_id`` the push's
    intent is claimed first; if another unit took it (a recovery, corral.core.git.recovery), nothing is
    written and False is returned.

    The moves are remembered (at ``at``, default ``clock.now()``) under the project's record lock; with
    ``since`` (when the push announced its intent) a move recorded since then by another unit (a recovery of
    an abandoned intent asking for the same old → new: the client retried a push whose first attempt a crash
    cut off) is not recorded again.
    """
    if intent_id is not None and not await uow.push_intents.claim(intent_id):
        return False
    when = at if at is not None else clock.now() if clock is not None else None
    if when is not None:
        await uow.push_intents.lock_moves(project.id)
        if since is not None:
            done = {(m.ref, m.old, m.new)
                    for m in await uow.push_intents.moves_since(project.id, [u.ref for u in updates], since)}
            updates = [u for u in updates if (u.ref, u.old, u.new) not in done]
            if not updates:
                return True
        await uow.push_intents.add_moves(project.id, updates, when)
    if clock is not None:
        await _audit_push(uow, project, actor, updates, clock, bypassed)
    for update in updates:
        payload: dict[str, Any] = {
            "ref": update.ref,
            "branch": update.branch,
            "before": update.old,
            "after": update.new,
            "created": update.is_create,
            "deleted": update.is_delete,
            "via": via,
            "project": project_json(project),
            "repository": {"id": str(project.id), "full_name": project.full_name, "name": project.name,
                           "owner": project.owner_name, "default_branch": project.default_branch},
            "pusher": {"id": str(actor.id), "name": actor.name},
            "sender": {"id": str(actor.id), "name": actor.name},
        }
        await uow.outbox.add(topics.PUSH, payload, project_id=project.id)
    return True


async def push_history(repos: GitRepositories, project: Project, payload: dict[str, Any]) -> dict[str, Any]:
    """The ``commits`` (newest first, at most PUSH_EVENT_COMMITS) and ``head_commit`` members of a push's
    webhook payload (as Gitea's), read from the repository for a ``push`` event's payload."""
    after = payload.get("after")
    if payload.get("deleted") or not isinstance(after, str):
        return {"commits": [], "head_commit": None}
    before = payload.get("before")
    old = None if payload.get("created") or not isinstance(before, str) else before
    commits = await repos.commits_between(project.repo_path, old, after, limit=PUSH_EVENT_COMMITS)
    return {"commits": [commit_json(c) for c in commits], "head_commit": commit_json(commits[0]) if commits else None}


def _clean(path: str) -> str:
    path = path.strip("/")
    if not path:
        return ""
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise InvalidInput("path must not contain empty, '.' or '..' segments", field="path")
    return posixpath.normpath(path)


def _after(cursor: str | None) -> str | None:
    return cursor_str(decode_cursor(cursor), "after")


@attrs.define
class RepoBrowser:
    """Read-only views of a project's repository. Callers have already checked project:read."""

    repos: GitRepositories

    async def split_ref(self, project: Project, spec: str) -> tuple[str, str]:
        """``feature/x/src/app.py`` → (``feature/x``, ``src/app.py``): the shortest leading segments naming a
        branch, tag or commit (git forbids both ``a`` and ``a/b`` as refs, so the split is unambiguous)."""
        parts = spec.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            candidate = "/".join(parts[:i])
            try:
                found = await self.repos.resolve(project.repo_path, candidate)
            except InvalidInput:
                found = None
            if found is not None:
                return candidate, "/".join(parts[i:])
        raise NotFound(f"no branch, tag or commit at the start of {spec!r}")

    async def branches(self, project: Project, *, limit: int | None = None, cursor: str | None = None) -> Page[Branch]:
        """One page of branches in name order; ``next_cursor`` carries the last name returned."""
        size = clamp_limit(limit)
        found = await self.repos.list_branches(project.repo_path, after=_after(cursor), limit=size + 1)
        return Page(found[:size], encode_cursor({"after": found[size - 1].name}) if len(found) > size else None)

    async def tags(self, project: Project, *, limit: int | None = None, cursor: str | None = None) -> Page[Tag]:
        """One page of tags in name order (cursor as for branches)."""
        size = clamp_limit(limit)
        found = await self.repos.list_tags(project.repo_path, after=_after(cursor), limit=size + 1)
        return Page(found[:size], encode_cursor({"after": found[size - 1].name}) if len(found) > size else None)

    async def tree(self, project: Project, ref: str, path: str) -> list[TreeEntry]:
        return await self.repos.tree(project.repo_path, ref, _clean(path))

    async def blob(self, project: Project, ref: str, path: str) -> Blob:
        return await self.repos.blob(project.repo_path, ref, _clean(path), limit=MAX_BLOB_JSON)

    async def commits(
        self, project: Project, ref: str | None, *, path: str | None = None, limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Commit]:
        size = clamp_limit(limit)
        skip = cursor_int(decode_cursor(cursor), "skip", maximum=2**31 - 1) or 0
        rev = ref or project.default_branch
        if await self.repos.resolve(project.repo_path, rev) is None:
            if ref is None:
                return Page([])  # empty repository
            raise NotFound(f"ref {rev!r} names no commit in {project.full_name}")
        items = await self.repos.log(project.repo_path, rev, path=_clean(path or "") or None, skip=skip,
                                     limit=size + 1)
        more = len(items) > size
        return Page(items[:size], encode_cursor({"skip": skip + size}) if more else None)

    async def commit(self, project: Project, sha: str) -> tuple[Commit, Comparison]:
        return await self.repos.show(project.repo_path, sha, max_patch_bytes=MAX_PATCH_BYTES)

    async def compare(self, project: Project, base: str, head: str) -> Comparison:
        return await self.repos.compare(project.repo_path, base, head, max_patch_bytes=MAX_PATCH_BYTES)

    async def docs(self, project: Project) -> list[TreeEntry]:
        """Markdown files under docs/ of the default branch (recursively); empty when there are none."""
        if await self.repos.resolve(project.repo_path, project.default_branch) is None:
            return []
        found: list[TreeEntry] = []
        pending = ["docs"]
        while pending and len(found) < 1000:
            directory = pending.pop()
            try:
                entries = await self.repos.tree(project.repo_path, project.default_branch, directory)
            except NotFound:
                continue
            for entry in entries:
                if entry.type == "tree":
                    pending.append(entry.path)
                elif entry.type == "blob" and entry.name.lower().endswith(".md"):
                    found.append(entry)
        return sorted(found, key=lambda e: e.path)

    async def doc(self, project: Project, path: str) -> Blob:
        clean = _clean(path)
        if not clean.lower().endswith(".md"):
            raise NotFound("docs serves Markdown files (*.md) under docs/")
        return await self.repos.blob(project.repo_path, project.default_branch, f"docs/{clean}",
                                     limit=MAX_BLOB_JSON)


__all__ += ["ZERO_SHA"]
