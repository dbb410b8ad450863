"""Project use cases: create (with its bare repository), list, get, update, archive, delete."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from corral.core.audit.model import AuditEntry
from corral.core.clock import Clock
from corral.core.commands import sent_fields
from corral.core.errors import Conflict, InvalidInput, NotFound
from corral.core.git.ports import GitRepositories
from corral.core.ids import uuid7
from corral.core.pagination import Page, clamp_limit, decode_cursor, encode_cursor
from corral.core.projects.commands import NewProject, ProjectChanges
from corral.core.projects.model import (
    Actor,
    Project,
    Visibility,
    check_branch_name,
    check_owner_name,
    check_project_name,
)
from corral.core.projects.ports import UserDirectory, UserRef
from corral.core.projects.purge import ProjectPurger, plan_purge
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["ProjectService", "StoreProjectResolver", "audit", "text_field", "user_refs"]

log = logging.getLogger("corral.projects")

MAX_TEXT = 65_536


async def audit(
    uow: UnitOfWork, clock: Clock, actor: Actor, action: str, resource: str, *,
    resource_id: uuid.UUID | None = None, project_id: uuid.UUID | None = None, detail: dict[str, Any] | None = None,
) -> None:
    """Record one audit entry in the caller's transaction."""
    await uow.audit.record(
        AuditEntry(
            id=uuid7(), actor_id=actor.id, actor_name=actor.name, action=action, resource=resource,
            created_at=clock.now(), resource_id=resource_id, project_id=project_id, detail=detail or {},
        )
    )


async def user_refs(uow: UnitOfWork, directory: UserDirectory, ids: set[uuid.UUID | None]) -> dict[uuid.UUID, UserRef]:
    """Users by id, read inside ``uow`` when it carries the user store (no second connection while the
    unit holds one: a pool of N units each waiting for a connection would deadlock)."""
    wanted = {i for i in ids if i is not None}
    store = getattr(uow, "users", None)
    if store is None:
        return await directory.by_ids(wanted)
    out: dict[uuid.UUID, UserRef] = {}
    for user_id in wanted:
        user = await store.get(user_id)
        if user is not None:
            out[user_id] = UserRef(user.id, user.name, user.email)
    return out


def text_field(value: object, field: str, *, required: bool = False, max_len: int = MAX_TEXT) -> str | None:
    """Validate an optional (or required, non-blank) text input."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInput(f"{field} must be {'a non-empty' if required else 'a'} string", field=field)
    if len(value) > max_len:
        raise InvalidInput(f"{field} must be at most {max_len} characters", field=field)
    return value


def _visibility(value: object) -> Visibility:
    try:
        return Visibility(str(value))
    except ValueError:
        raise InvalidInput("visibility must be one of private, internal, public", field="visibility") from None


@attrs.define
class ProjectService:
    """Projects and their repositories. Callers have already checked the caller's permissions."""

    uow_factory: UnitOfWorkFactory
    repos: GitRepositories
    clock: Clock
    purger: ProjectPurger | None = None  # deletes what a deleted project kept outside PostgreSQL

    async def create(self, actor: Actor, command: NewProject) -> Project:
        project_name = check_project_name(command.name)
        vis = _visibility(command.visibility)
        branch = check_branch_name(command.default_branch, "default_branch")
        now = self.clock.now()
        pid = uuid7()
        project = Project(
            id=pid, owner_id=actor.id, owner_name=actor.name, name=project_name, visibility=vis,
            default_branch=branch, repo_path=f"{pid}.git", created_at=now, updated_at=now,
            description=text_field(command.description, "description", max_len=2000),
            display_name=text_field(command.display_name, "display_name", max_len=200),
        )
        async with self.uow_factory() as uow:
            if await uow.projects.get_by_slug(actor.name, project_name) is not None:
                raise Conflict(f"you already have a project named {project_name}", field="name")
            await uow.projects.add(project)
            await uow.projects.drop_redirect(actor.id, project_name)  # the name now means this project
            await audit(uow, self.clock, actor, "project.create", "project", resource_id=pid, project_id=pid,
                        detail={"name": project.full_name, "visibility": vis.value})
            await self.repos.create(project.repo_path, branch)
            try:
                await uow.commit()
            except BaseException:
                await self.repos.delete(project.repo_path)
                raise
        return project

    async def get(self, owner: str, name: str) -> Project:
        """The active project ``owner/name``; NotFound otherwise."""
        if not check_owner_name(owner) or not name:
            raise NotFound(f"project {owner}/{name} not found")
        async with self.uow_factory() as uow:
            project = await uow.projects.get_by_slug(owner, name)
        if project is None:
            raise NotFound(f"project {owner}/{name} not found")
        return project

    async def redirect(self, owner: str, name: str) -> Project | None:
        """The project an old name ``owner/name`` now redirects to (after a rename), or None."""
        if not check_owner_name(owner) or not name:
            return None
        async with self.uow_factory() as uow:
            return await uow.projects.redirect(owner, name)

    async def get_by_id(self, project_id: uuid.UUID) -> Project:
        async with self.uow_factory() as uow:
            project = await uow.projects.get(project_id)
        if project is None:
            raise NotFound(f"project {project_id} not found")
        return project

    async def list(
        self, can_read: Callable[[Project], Awaitable[bool]], *, limit: int | None = None, cursor: str | None = None,
    ) -> Page[Project]:
        """Projects the caller may read (``can_read``), by creation order, cursor-paginated."""
        size = clamp_limit(limit)
        decoded = decode_cursor(cursor)
        after: uuid.UUID | None = None
        if decoded is not None:
            try:
                after = uuid.UUID(str(decoded.get("after")))
            except ValueError:
                raise InvalidInput("cursor is not a cursor returned by this API", field="cursor") from None
        items: list[Project] = []
        while True:
            async with self.uow_factory() as uow:
                batch = await uow.projects.list(after=after, limit=100)
            for project in batch:
                after = project.id
                if await can_read(project):
                    items.append(project)
                    if len(items) > size:
                        break
            if len(items) > size or len(batch) < 100:
                break
        more = len(items) > size
        items = items[:size]
        next_cursor = encode_cursor({"after": str(items[-1].id)}) if more else None
        return Page(items, next_cursor)

    async def update(self, actor: Actor, project: Project, command: ProjectChanges) -> Project:
        """Apply the sent fields of ``command`` (name, description, display_name, visibility, default_branch,
        archived)."""
        changes = sent_fields(command)
        values: dict[str, Any] = {}
        if "name" in changes:
            values["name"] = check_project_name(changes["name"])
        if "description" in changes:
            values["description"] = text_field(changes["description"], "description", max_len=2000)
        if "display_name" in changes:
            values["display_name"] = text_field(changes["display_name"], "display_name", max_len=200)
        if "visibility" in changes:
            values["visibility"] = _visibility(changes["visibility"])
        if "default_branch" in changes:
            values["default_branch"] = check_branch_name(changes["default_branch"], "default_branch")
        if "archived" in changes:
            values["archived"] = bool(changes["archived"])
        updated = attrs.evolve(project, updated_at=self.clock.now(), **values)
        async with self.uow_factory() as uow:
            if (
                "name" in values
                and values["name"] != project.name
                and await uow.projects.get_by_slug(project.owner_name, values["name"]) is not None
            ):
                raise Conflict(f"{project.owner_name} already has a project named {values['name']}", field="name")
            await uow.projects.update(updated)
            shown: dict[str, Any] = {k: (v.value if isinstance(v, Visibility) else v) for k, v in values.items()}
            if values.get("name", project.name) != project.name:
                # the repository lives at repo_path (named by the project id), so nothing moves on disk: the
                # rename is this one transaction; old URLs redirect to the new name
                await uow.projects.set_redirect(project.owner_id, project.name, project.id)
                await uow.projects.drop_redirect(project.owner_id, values["name"])
                shown["renamed_from"] = project.full_name
            action = "project.update"
            if values.get("archived") is True and not project.archived:
                action = "project.archive"
            await audit(uow, self.clock, actor, action, "project", resource_id=project.id, project_id=project.id,
                        detail={"changes": shown})
            if "default_branch" in values:
                await self.repos.set_default_branch(project.repo_path, values["default_branch"])
            await uow.commit()
        return updated

    async def delete(self, actor: Actor, project: Project) -> None:
        """Delete the project and its metadata. What it keeps outside PostgreSQL (its repository, objects and
        workspaces: corral.core.projects.purge) is recorded in the same transaction and purged at once; a
        failure (or a crash) leaves the record to the purge loop, which retries until everything is gone."""
        async with self.uow_factory() as uow:
            purge = await (self.purger.plan(uow, project) if self.purger is not None
                           else plan_purge(uow, project, [], self.clock))
            await uow.projects.delete(project.id)
            await uow.project_purges.add(purge)
            await audit(uow, self.clock, actor, "project.delete", "project", resource_id=project.id,
                        project_id=project.id, detail={"name": project.full_name})
            await uow.commit()
        if self.purger is None:  # no purge job (tools and tests without one): the repository at least
            await self.repos.delete(project.repo_path)
            return
        try:
            await self.purger.run_once(project_id=project.id)
        except Exception:  # the record stays: the purge loop retries
            log.warning("purging deleted project %s failed; the purge loop retries", project.full_name,
                        exc_info=True)


@attrs.define
class StoreProjectResolver:
    """ProjectResolver over the project store (for RBAC and other domains)."""

    uow_factory: UnitOfWorkFactory

    async def project_id(self, owner: str, name: str) -> uuid.UUID:
        if name.endswith(".git"):
            name = name[:-4]
        if not check_owner_name(owner) or not name:
            raise NotFound(f"project {owner}/{name} not found")
        async with self.uow_factory() as uow:
            project = await uow.projects.get_by_slug(owner, name)
        if project is None:
            raise NotFound(f"project {owner}/{name} not found")
        return project.id

    async def project_ref(self, ref: str) -> uuid.UUID:
        owner, sep, name = ref.partition("/")
        if sep:
            return await self.project_id(owner, name)
        try:
            project_id = uuid.UUID(ref)
        except ValueError:
            raise NotFound(f"project {ref} not found (use owner/name)") from None
        async with self.uow_factory() as uow:
            project = await uow.projects.get(project_id)
        if project is None:
            raise NotFound(f"project {ref} not found")
        return project_id

    async def project_names(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        """"owner/name" of each project id that exists (deleted projects keep their last name)."""
        out: dict[uuid.UUID, str] = {}
        if not ids:
            return out
        async with self.uow_factory() as uow:
            for project_id in ids:
                project = await uow.projects.get(project_id)
                if project is not None:
                    out[project_id] = project.full_name
        return out
