"""Writing to a repository through the API: files (Gitea's contents API), branches and tags.

Each write is a push in all but transport: the branch protection the pre-receive hook enforces is checked here
with the hook's own words, the commit is built with git plumbing (``GitRepositories.write_commit``), a push
intent is committed before the ref moves (corral.core.git.recovery), the ref moves by compare-and-swap
(``update_ref``), and ``record_push`` writes the ``push`` event and the ``repo.push`` audit row once, claiming
the intent. A branch that moved between the read and the swap is read again and the write retried; a file whose
blob changed meanwhile is a 409 (its ``sha`` is stale).
"""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import Sequence

import attrs

from corral.core.clock import Clock
from corral.core.errors import Conflict, InvalidInput, InvalidTransition, NotFound, PermissionDenied
from corral.core.git.model import ZERO_SHA, FileWrite, PushIntent, PushRule, RefUpdate, Signature
from corral.core.git.ports import GitRepositories
from corral.core.git.service import push_rules, record_push
from corral.core.ids import uuid7
from corral.core.projects.model import Actor, BranchProtection, Project, check_branch_name
from corral.core.projects.ports import UserDirectory
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["FileEdit", "FilesWritten", "RepoWriter", "refusal"]

_UNWRITTEN = "f" * 40  # the new value of a ref update whose commit is not written yet (only its kind matters)
_ATTEMPTS = 3  # the branch moved between our read and the swap: read again and retry (the files' shas decide)


def refusal(rules: Sequence[PushRule], update: RefUpdate, *, fast_forward: bool) -> str | None:
    """Why the pre-receive hook would refuse ``update`` (its very words), or None; tags are never refused."""
    branch = update.branch
    if branch is None:
        return None
    for rule in rules:
        if not (branch == rule.pattern or _glob(branch, rule.pattern)):
            continue
        if update.is_delete:
            if not rule.allow_deletion:
                return f"Corral: branch '{branch}' is protected: it cannot be deleted"
        elif not update.is_create and not fast_forward and not rule.allow_force_push:
            return (f"Corral: branch '{branch}' is protected: force-push (a non-fast-forward update) "
                    "is not allowed")
        if rule.require_merge_request:
            return f"Corral: branch '{branch}' is protected: changes must go through a merge request"
        return None  # the hook stops at the first matching rule
    return None


def _glob(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern)


@attrs.frozen
class FileEdit:
    """One file operation: ``create`` (refused if the file exists), ``update``/``delete`` (the file must exist and
    ``sha`` name its current blob), or ``upsert`` (the contents PUT: update when the file exists, create if not)."""

    operation: str  # create | update | delete | upsert
    path: str
    content: bytes | None = None
    sha: str | None = None


@attrs.frozen
class FilesWritten:
    commit: str
    branch: str
    files: tuple[tuple[str, str | None], ...]  # (path, new blob sha; None when deleted)
    created: bool  # every file was new (the contents PUT answers 201)


def _default_message(edits: Sequence[FileEdit], kinds: dict[str, str]) -> str:
    if len(edits) == 1:
        verb = {"create": "Add", "update": "Update", "delete": "Delete"}[kinds[edits[0].path]]
        return f"{verb} {edits[0].path}\n"
    return f"Change {len(edits)} files\n"


@attrs.define
class RepoWriter:
    """Files, branches and tags written through the API. Callers have already checked project:write;
    ``is_admin`` says whether the caller holds project:admin (it may bypass merge-request-only rules that allow
    admins)."""

    uow_factory: UnitOfWorkFactory
    repos: GitRepositories
    clock: Clock
    users: UserDirectory | None = None

    async def _policy(self, project: Project, actor: Actor, is_admin: bool,
                      ) -> tuple[list[PushRule], list[tuple[BranchProtection, str]]]:
        async with self.uow_factory() as uow:
            protections = await uow.branch_protections.list(project.id)
        bypassed = [(p, why) for p in protections if (why := p.bypassed_by(actor.id, is_admin=is_admin)) is not None]
        return push_rules(protections, [p for p, _ in bypassed]), bypassed

    @staticmethod
    def _writable(project: Project) -> None:
        if project.archived:
            raise InvalidTransition("the project is archived: its repository is read-only")

    async def _email(self, actor: Actor) -> str:
        if actor.email:
            return actor.email
        if self.users is not None:
            found = (await self.users.by_ids({actor.id})).get(actor.id)
            if found is not None and found.email:
                return found.email
        return f"{actor.name}@corral.invalid"

    async def _move(self, project: Project, actor: Actor, update: RefUpdate,
                    bypassed: list[tuple[BranchProtection, str]]) -> bool:
        """Announce, swap, record. False (nothing recorded, the intent dropped) when the ref moved meanwhile."""
        intent = PushIntent(uuid7(), project.id, actor.id, actor.name, (update,), self.clock.now(),
                            bypassed=tuple((rule.id, why) for rule, why in bypassed))
        async with self.uow_factory() as uow:
            await uow.push_intents.add(intent)
            await uow.commit()
        try:
            await self.repos.update_ref(project.repo_path, update.ref, new=update.new, old=update.old)
        except BaseException as exc:
            async with self.uow_factory() as uow:  # the ref did not move: the intent is void
                await uow.push_intents.claim(intent.id)
                await uow.commit()
            if isinstance(exc, Conflict):
                return False
            raise
        async with self.uow_factory() as uow:
            await self._record(uow, project, actor, update, bypassed, intent.id)
            await uow.commit()
        return True

    async def _record(self, uow: UnitOfWork, project: Project, actor: Actor, update: RefUpdate,
                      bypassed: list[tuple[BranchProtection, str]], intent_id: uuid.UUID) -> None:
        branch = update.branch
        relevant = [(r, why) for r, why in bypassed if branch is not None and r.matches(branch)]
        await record_push(uow, project, actor, [update], via="api", clock=self.clock, bypassed=relevant,
                          intent_id=intent_id)

    # ---- files ---------------------------------------------------------------------------------------------
    async def _current(self, project: Project, head: str | None, path: str) -> str | None:
        """The blob sha of ``path`` at ``head`` (None: no such file); InvalidInput when it is a directory."""
        if head is None:
            return None
        try:
            return (await self.repos.blob(project.repo_path, head, path, limit=0)).sha
        except NotFound:
            return None

    async def write_files(
        self, actor: Actor, project: Project, edits: Sequence[FileEdit], *, branch: str | None,
        new_branch: str | None, message: str | None, author: tuple[str, str] | None, is_admin: bool,
    ) -> FilesWritten:
        """One commit with ``edits`` on ``branch`` (default: the default branch), or on ``new_branch`` created
        from it; ``author``: (name, email), default the caller (always the committer)."""
        self._writable(project)
        if not edits:
            raise InvalidInput("files must name at least one file", field="files")
        if len(edits) > 1000:
            raise InvalidInput("at most 1000 files in one commit", field="files")
        base = check_branch_name(branch if branch is not None else project.default_branch, "branch")
        target = check_branch_name(new_branch, "new_branch") if new_branch is not None else base
        if message is not None and (not message.strip() or len(message) > 65536):
            raise InvalidInput("message must be 1-65536 characters", field="message")
        email = await self._email(actor)
        now = self.clock.now()
        committer = Signature(actor.name, email, now)
        signature = Signature(author[0], author[1], now) if author is not None else committer
        rules, bypassed = await self._policy(project, actor, is_admin)
        for _ in range(_ATTEMPTS):
            head = await self.repos.resolve(project.repo_path, f"refs/heads/{base}")
            if head is None and (base != project.default_branch or await self.repos.list_branches(
                    project.repo_path, limit=1)):
                raise NotFound(f"branch {base!r} does not exist in {project.full_name}")
            old = head or ZERO_SHA
            if new_branch is not None:
                if await self.repos.resolve(project.repo_path, f"refs/heads/{target}") is not None:
                    raise Conflict(f"branch {target!r} already exists", field="new_branch")
                old = ZERO_SHA
            # refused before anything is written (a commit on top of the head is always a fast-forward)
            why = refusal(rules, RefUpdate(old, _UNWRITTEN, f"refs/heads/{target}"), fast_forward=True)
            if why is not None:
                raise PermissionDenied(why)
            kinds: dict[str, str] = {}
            changes: list[FileWrite] = []
            for edit in edits:
                current = await self._current(project, head, edit.path)
                kinds[edit.path] = self._check(edit, current)
                changes.append(FileWrite(edit.path, None if edit.operation == "delete" else edit.content or b""))
            new = await self.repos.write_commit(project.repo_path, parent=head, changes=changes, author=signature,
                                                message=message or _default_message(edits, kinds),
                                                committer=committer)
            update = RefUpdate(old, new, f"refs/heads/{target}")
            if await self._move(project, actor, update, bypassed):
                shas = []
                for edit in edits:
                    shas.append((edit.path, None if edit.operation == "delete" else
                                 (await self.repos.blob(project.repo_path, new, edit.path, limit=0)).sha))
                created = all(k == "create" for k in kinds.values())
                return FilesWritten(new, target, tuple(shas), created)
        raise Conflict(f"branch {target!r} keeps moving; try again", detail={"reason": "ref_moved"})

    @staticmethod
    def _check(edit: FileEdit, current: str | None) -> str:
        """What the edit does (create | update | delete) given the file's current blob sha; 409 when stale."""
        op = edit.operation
        if op == "upsert":
            op = "create" if current is None and edit.sha is None else "update"
        if op == "create":
            if current is not None:
                raise Conflict(f"{edit.path} already exists; send its sha to replace it",
                               detail={"reason": "exists", "path": edit.path, "sha": current})
            return op
        if op not in ("update", "delete"):
            raise InvalidInput("operation must be create, update or delete", field="operation")
        if current is None:  # as Gitea: a missing file is a 404, also when it was deleted meanwhile
            raise NotFound(f"no file {edit.path!r} on the branch")
        if edit.sha is None:
            raise Conflict(f"{edit.path} exists; send its current sha to {op} it",
                           detail={"reason": "sha_required", "path": edit.path, "sha": current})
        if edit.sha != current:
            raise Conflict(f"{edit.path} changed meanwhile (its blob is {current}, not {edit.sha}); read it again",
                           detail={"reason": "stale_sha", "path": edit.path, "sha": current})
        return op

    # ---- branches and tags ---------------------------------------------------------------------------------
    async def create_ref(self, actor: Actor, project: Project, kind: str, name: str, source: str | None, *,
                         is_admin: bool) -> str:
        """Create branch or tag ``name`` (``kind``) at ``source`` (default: the default branch); its commit."""
        self._writable(project)
        check_branch_name(name, "name")
        rev = source or project.default_branch
        sha = await self.repos.resolve(project.repo_path, rev)
        if sha is None:
            raise NotFound(f"{rev!r} names no commit in {project.full_name}", field="from")
        ref = f"refs/{'heads' if kind == 'branch' else 'tags'}/{name}"
        if await self.repos.resolve(project.repo_path, ref) is not None:
            raise Conflict(f"{kind} {name!r} already exists", field="name")
        rules, bypassed = await self._policy(project, actor, is_admin)
        update = RefUpdate(ZERO_SHA, sha, ref)
        why = refusal(rules, update, fast_forward=True)
        if why is not None:
            raise PermissionDenied(why)
        if not await self._move(project, actor, update, bypassed):
            raise Conflict(f"{kind} {name!r} already exists", field="name")
        return sha

    async def delete_ref(self, actor: Actor, project: Project, kind: str, name: str, *, is_admin: bool,
                         expected: str | None = None) -> str:
        """Delete branch or tag ``name``; its last commit. The default branch and protected branches refuse."""
        self._writable(project)
        ref = f"refs/{'heads' if kind == 'branch' else 'tags'}/{name}"
        if kind == "branch" and name == project.default_branch:
            raise Conflict(f"{name!r} is the default branch; make another branch the default first",
                           detail={"reason": "default_branch"})
        values = await self.repos.ref_values(project.repo_path, [ref])
        if ref not in values:
            raise NotFound(f"{kind} {name!r} not found in {project.full_name}")
        old = values[ref]
        if expected is not None and old != expected:
            raise Conflict(f"{kind} {name!r} moved meanwhile", detail={"reason": "ref_moved"})
        rules, bypassed = await self._policy(project, actor, is_admin)
        update = RefUpdate(old, ZERO_SHA, ref)
        why = refusal(rules, update, fast_forward=False)
        if why is not None:
            raise PermissionDenied(why)
        if not await self._move(project, actor, update, bypassed):
            raise Conflict(f"{kind} {name!r} moved meanwhile; nothing was deleted", detail={"reason": "ref_moved"})
        return old
