"""An aiohttp app over the in-memory identity services, for web-layer tests (``identity_client``), and one with
the projects domain and notifications wired as the platform wires them (``projects_app``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

import attrs
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from corral.core.identity.commands import NewBinding, NewToken, NewUser
from corral.core.identity.kit import IdentityServices
from corral.core.identity.ports import AuthzCache
from corral.core.identity.service import SYSTEM, ensure_system_roles
from corral.core.notify.service import NotificationService
from corral.entrypoints.config import Settings
from corral.entrypoints.projects_wiring import UowUserDirectory, build_kit, install_web
from corral.entrypoints.web.app import create_app
from corral.entrypoints.web.identity_auth import IdentityWebAuth, install
from corral.entrypoints.web.security import ProjectLookup, WebAuth
from corral.fakes.clock import FakeClock
from corral.fakes.git import InMemoryGitRepositories
from corral.fakes.identity_services import InMemoryAuthzCache, InMemoryPasswordHasher, fake_totp_sealer
from corral.fakes.identity_uow import IdentityMemory
from corral.fakes.objectstore import InMemoryObjectStore
from corral.fakes.uow import InMemoryUnitOfWorkFactory
from corral.fakes.webhooks import RecordingWebhookTransport
from tests.unit.webstub import StubPlatform

PROJECT = uuid.UUID("01900000-0000-7000-8000-000000000001")
PW = "correct horse battery"


class OneProject:
    """Every project reference resolves to PROJECT."""

    async def project_id(self, owner: str, name: str) -> uuid.UUID:
        return PROJECT

    async def project_ref(self, ref: str) -> uuid.UUID:
        return PROJECT

    async def project_names(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        return {PROJECT: "acme/app"} if PROJECT in ids else {}


async def identity_client(
    clock: FakeClock | None = None, memory: IdentityMemory | None = None, cache: AuthzCache | None = None,
    settings: Settings | None = None, lookup: object | None = None,
    hooks: Iterable[Callable[[web.Application], None]] = (),
) -> tuple[TestClient, IdentityServices, IdentityMemory]:
    """A test client of an app over ``memory`` (shared by several apps = several replicas of one database);
    ``hooks`` run on the application before it starts, as the wirings' app hooks do."""
    clock = clock or FakeClock()
    memory = memory or IdentityMemory()
    ids = IdentityServices(memory, cache or InMemoryAuthzCache(clock), InMemoryPasswordHasher(), clock,
                           totp_sealer=fake_totp_sealer())
    await ensure_system_roles(memory, clock)
    # every JSON answer is checked against its route's response class, as the e2e servers do
    platform = StubPlatform(settings=settings or Settings(profile="memory", validate_responses=True))
    platform.container.register(WebAuth, instance=IdentityWebAuth(ids))
    platform.container.register(ProjectLookup, instance=lookup or OneProject())
    platform.app_hooks.append(install(ids))
    platform.app_hooks.extend(hooks)
    client = TestClient(TestServer(create_app(platform)))
    await client.start_server()
    return client, ids, memory


@attrs.define
class ProjectsApp:
    """A started test client over identity + projects + notifications on one in-memory database."""

    client: TestClient
    ids: IdentityServices
    db: InMemoryUnitOfWorkFactory
    kit: Any
    repos: InMemoryGitRepositories


async def projects_app(settings: Settings | None = None,
                       hooks: Iterable[Callable[[web.Application], None]] = ()) -> ProjectsApp:
    """The web stack over fakes wired as the platform wires it (``hooks`` are installed last); close its client."""
    clock = FakeClock()
    db = InMemoryUnitOfWorkFactory(clock=clock)
    ids = IdentityServices(db, InMemoryAuthzCache(clock), InMemoryPasswordHasher(), clock,
                           totp_sealer=fake_totp_sealer())
    await ensure_system_roles(db, clock)
    platform = StubPlatform(settings=settings or Settings(profile="memory", validate_responses=True))
    platform.register(IdentityServices, ids)
    platform.register(WebAuth, IdentityWebAuth(ids, "https://corral.example"))
    platform.app_hooks.append(install(ids))
    platform.register(NotificationService, NotificationService(db, clock))
    repos = InMemoryGitRepositories()
    kit = build_kit(platform.settings, db, clock, InMemoryObjectStore(), UowUserDirectory(db),
                    RecordingWebhookTransport(), repos)
    install_web(platform, kit)  # the project-aware WebAuth, and ownership into the identity core
    platform.app_hooks.extend(hooks)
    client = TestClient(TestServer(create_app(platform)))
    await client.start_server()
    return ProjectsApp(client, ids, db, kit, repos)


async def user_with_token(ids: IdentityServices, name: str, *roles: str, scopes: list[str] | None = None,
                          admin: bool = False) -> str:
    await ids.users.create(SYSTEM, NewUser(name=name, email=f"{name}@example.com", password=PW, admin=admin))
    for role in roles:
        await ids.rbac.bind(SYSTEM, NewBinding(user=name, role=role))
    held = await ids.authorizer.user_permissions((await ids.users.get(name)).id, None)
    issued = await ids.tokens.create(SYSTEM, NewToken(name="t", scopes=scopes or sorted(held) or ["project:read"],
                                                      user=name))
    return issued.secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
