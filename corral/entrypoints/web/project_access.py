"""What the projects/git routes share: the services kit, the caller as an Actor, the project of the path,
and the WebAuth decorator that adds project visibility and ownership to the RBAC decision."""

from __future__ import annotations

import uuid
from typing import Any

import attrs
from aiohttp import web

from corral.core.clock import Clock
from corral.core.errors import NotFound, PermissionDenied, Unauthenticated
from corral.core.git.service import RepoBrowser
from corral.core.git.transport import GitServer
from corral.core.projects.issues import IssueService
from corral.core.projects.labels import LabelService
from corral.core.projects.merge_requests import MergeRequestService
from corral.core.projects.model import Actor, Project, Visibility, check_owner_name
from corral.core.projects.ownership import OWNER_PERMISSIONS
from corral.core.projects.ports import UserDirectory
from corral.core.projects.protections import BranchProtectionService
from corral.core.projects.service import ProjectService, StoreProjectResolver
from corral.core.projects.webhooks import WebhookService
from corral.core.storage.ports import ObjectStore
from corral.core.uow import UnitOfWorkFactory
from corral.entrypoints.web.git_sequence import ConnectionMemo
from corral.entrypoints.web.keys import AUTH_CHALLENGE, PLATFORM, principal_of, project_id_of, require_principal
from corral.entrypoints.web.security import WebAuth

__all__ = [
    "PROJECT_PATH",
    "PROJECT_READ",
    "PROJECT_WRITE",
    "ProjectAwareLookup",
    "ProjectAwareWebAuth",
    "ProjectsKit",
    "actor_of",
    "can",
    "kit",
    "project_of",
]

# the path of a project's routes, and the access of their reads (anonymous on a public project) and writes
PROJECT_PATH = "/api/v1/projects/{owner}/{name}"
PROJECT_READ: dict[str, Any] = {"permission": "project:read", "project": "path", "anonymous": True}
PROJECT_WRITE: dict[str, Any] = {"permission": "project:write", "project": "path"}

_PROJECT: web.RequestKey[Project] = web.RequestKey("corral_project", Project)


@attrs.define
class ProjectsKit:
    """Every service the projects/git routes use (registered in the container by the projects wiring)."""

    uow_factory: UnitOfWorkFactory
    projects: ProjectService
    issues: IssueService
    merge_requests: MergeRequestService
    labels: LabelService
    protections: BranchProtectionService
    webhooks: WebhookService
    browser: RepoBrowser
    users: UserDirectory
    git: GitServer  # the repositories, and their side of git's smart HTTP protocol
    objects: ObjectStore
    clock: Clock
    base_url: str
    configured_base_url: str | None = None  # CORRAL_BASE_URL; None: links follow the request's origin
    max_lfs_object_bytes: int = 5 * 1024**3
    lfs_direct_transfer: bool = True  # hand LFS clients signed object-store URLs when the store makes them
    git_memo: ConnectionMemo = attrs.field(factory=ConnectionMemo)  # one git operation's requests share reads
    # corral.adapters.git_maintenance.GitMaintenance: pack maintenance after a push has been answered
    # (None: receive-pack runs it itself while the client waits)
    maintenance: Any = None
    # ids of this process's pushes between their intent and their record (the recovery loop leaves them alone)
    pushes_in_flight: set[uuid.UUID] = attrs.field(factory=set)


def kit(request: web.Request) -> ProjectsKit:
    found: ProjectsKit = request.app[PLATFORM].resolve(ProjectsKit)
    return found


def actor_of(request: web.Request) -> Actor:
    principal = require_principal(request)
    return Actor(principal.user_id, principal.name)


async def project_of(request: web.Request) -> Project:
    """The project named by the path (already resolved and authorized by the security middleware)."""
    cached = request.get(_PROJECT)
    if cached is not None:
        return cached
    project_id = project_id_of(request)
    if project_id is None:
        raise NotFound("project not found")
    project = await kit(request).projects.get_by_id(project_id)
    request[_PROJECT] = project
    return project


class ProjectAwareLookup:
    """The project lookup of the web layer: ``owner/name`` → id like ``StoreProjectResolver``, and for a
    request it keeps the loaded project on the request, so the authorization and the handler reuse it
    (one database read per request instead of three), and with ``memo`` the git requests that follow on the
    same connection reuse it too (see corral.entrypoints.web.git_sequence)."""

    def __init__(self, uow_factory: UnitOfWorkFactory, memo: ConnectionMemo | None = None) -> None:
        self.uow_factory = uow_factory
        self.memo = memo
        self.store = StoreProjectResolver(uow_factory)

    async def project_id(self, owner: str, name: str) -> uuid.UUID:
        return await self.store.project_id(owner, name)

    async def project_ref(self, ref: str) -> uuid.UUID:
        return await self.store.project_ref(ref)

    async def project_names(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        return await self.store.project_names(ids)

    async def project_id_for(self, request: web.Request, owner: str, name: str) -> uuid.UUID:
        if name.endswith(".git"):
            name = name[:-4]
        if not check_owner_name(owner) or not name:
            raise NotFound(f"project {owner}/{name} not found")
        key = ("project", owner, name)
        project = self.memo.get(request, key) if self.memo is not None else None
        if project is None:
            async with self.uow_factory() as uow:
                project = await uow.projects.get_by_slug(owner, name)
            if project is None:
                raise NotFound(f"project {owner}/{name} not found")
            if self.memo is not None:
                self.memo.put(request, key, project)
        request[_PROJECT] = project
        return project.id


def _token_allows(principal: Any, permission: str, project_id: uuid.UUID) -> bool:
    scopes = getattr(principal, "scopes", None)
    token_project = getattr(principal, "token_project_id", None)
    return (scopes is None or permission in scopes) and token_project in (None, project_id)


class ProjectAwareWebAuth:
    """Decorates the identity WebAuth for project-scoped ``project:*`` checks.

    - ``project:read`` on a public project: everyone, also anonymous callers;
      on an internal project: every authenticated caller (within its token's limits).
    - The owner of a project holds every ``project:*`` permission on it (within its token's limits): a fast
      path for the same rule the identity core applies through its ImplicitRights port (ProjectOwnership).
    - Everything else goes to the RBAC resolver unchanged.
    - A caller who may not see a project (``project:read``) gets the same 404 as for a missing project,
      whatever was asked; one who may see it but lacks the permission gets the 403.
    """

    def __init__(self, inner: WebAuth, uow_factory: UnitOfWorkFactory) -> None:
        self.inner = inner
        self.uow_factory = uow_factory

    async def authenticate(self, request: web.Request) -> Any | None:
        return await self.inner.authenticate(request)

    async def authorize(
        self, request: web.Request, principal: Any | None, permission: str, project_id: uuid.UUID | None
    ) -> None:
        if project_id is not None and permission.startswith("project:"):
            project = request.get(_PROJECT)
            if project is None or project.id != project_id:
                async with self.uow_factory() as uow:
                    project = await uow.projects.get(project_id)
                if project is not None:
                    request[_PROJECT] = project
            if project is not None:
                if permission == "project:read" and project.visibility is Visibility.PUBLIC:
                    return
                if principal is not None and _token_allows(principal, permission, project_id):
                    if permission == "project:read" and project.visibility is Visibility.INTERNAL:
                        return
                    if principal.user_id == project.owner_id and permission in OWNER_PERMISSIONS:
                        return
        try:
            await self.inner.authorize(request, principal, permission, project_id)
        except Unauthenticated:
            await self._hide_from_anonymous(request, principal, project_id)
            raise
        except PermissionDenied:
            await self._hide_from_outsider(request, principal, permission, project_id)
            raise

    async def _hide_from_outsider(self, request: web.Request, principal: Any | None, permission: str,
                                  project_id: uuid.UUID | None) -> None:
        """A signed-in caller who may not read the project learns nothing about it either: 404, as for a missing
        one (no enumeration of private project names). Git routes too: git says "repository not found"."""
        if principal is None or project_id is None or getattr(principal, "needs_totp_enrolment", False):
            return
        if permission != "project:read":
            try:
                await self.authorize(request, principal, "project:read", project_id)
                return
            except NotFound:
                raise
            except (PermissionDenied, Unauthenticated):
                pass
        raise self._not_found(request, request.get(_PROJECT), project_id)

    @staticmethod
    def _not_found(request: web.Request, project: Project | None, project_id: uuid.UUID) -> NotFound:
        match = getattr(request, "match_info", None) or {}
        if "owner" in match and "name" in match:
            name = match["name"]
            shown = f"{match['owner']}/{name[:-4] if name.endswith('.git') else name}"
        else:
            shown = project.full_name if project is not None and project.id == project_id else str(project_id)
        return NotFound(f"project {shown} not found")

    async def _hide_from_anonymous(self, request: web.Request, principal: Any | None,
                                   project_id: uuid.UUID | None) -> None:
        """On the REST API an anonymous caller gets the same 404 for a project it may not see as for a
        missing one (like Gitea). Git's smart HTTP routes declare a challenge and keep their 401 so git
        prompts for credentials."""
        if principal is None and project_id is not None and not request.get(AUTH_CHALLENGE):
            project = request.get(_PROJECT)
            if project is None or project.id != project_id:
                async with self.uow_factory() as uow:
                    project = await uow.projects.get(project_id)
            if project is None or project.visibility is not Visibility.PUBLIC:
                raise self._not_found(request, project, project_id) from None


async def can(request: web.Request, permission: str, project: Project) -> bool:
    """Whether the caller holds ``permission`` on ``project`` (no exception)."""
    from corral.entrypoints.web.keys import WEB_AUTH

    try:
        await request.app[WEB_AUTH].authorize(request, principal_of(request), permission, project.id)
    except (PermissionDenied, Unauthenticated, NotFound):
        return False
    return True
