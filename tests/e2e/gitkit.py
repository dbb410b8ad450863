"""A running Corral web app (identity + projects on in-memory stores, real git repositories on disk) served on
a random local port, and helpers that drive the real ``git`` / ``git lfs`` CLIs against it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import punq
from aiohttp import web

from corral.adapters.git_cli import GitCli
from corral.adapters.webhooks import AiohttpWebhookTransport
from corral.core.identity.commands import NewBinding, NewToken, NewUser
from corral.core.identity.kit import IdentityServices
from corral.core.identity.service import SYSTEM, ensure_system_roles
from corral.core.outbox.relay import OutboxRelay
from corral.core.storage.ports import ObjectStore
from corral.entrypoints.config import Settings
from corral.entrypoints.projects_wiring import UowUserDirectory, build_kit, install_web
from corral.entrypoints.web.app import create_app
from corral.entrypoints.web.identity_auth import IdentityWebAuth, install
from corral.entrypoints.web.security import WebAuth
from corral.fakes.clock import FakeClock
from corral.fakes.identity_services import InMemoryAuthzCache, InMemoryPasswordHasher
from corral.fakes.identity_uow import IdentityMemory
from corral.fakes.objectstore import InMemoryObjectStore
from corral.fakes.projects_uow import ProjectsMemory

PW = "correct horse battery"
_HOME: list[Path] = []  # the HOME of the git CLI for the running test (set by start_corral)


class RealClock(FakeClock):
    """Wall time (webhook retries are scheduled against it)."""

    def now(self):  # type: ignore[no-untyped-def]
        from datetime import UTC, datetime

        return datetime.now(UTC)

    def monotonic(self) -> float:
        import time

        return time.monotonic()


@attrs.define
class GitPlatform:
    settings: Settings
    container: punq.Container = attrs.field(factory=punq.Container)
    health_checks: dict = attrs.field(factory=dict)
    app_hooks: list = attrs.field(factory=list)
    background: list = attrs.field(factory=list)
    closers: list = attrs.field(factory=list)

    def register(self, key: Any, instance: Any) -> None:
        self.container.register(key, instance=instance)

    def resolve(self, key: Any) -> Any:
        return self.container.resolve(key)


@attrs.define
class Corral:
    """The running app and what tests inspect."""

    base: str
    ids: IdentityServices
    memory: ProjectsMemory
    kit: Any
    tmp: Path
    runner: web.AppRunner
    tasks: list[asyncio.Task[None]] = attrs.field(factory=list)
    requests: list[tuple[str, str]] = attrs.field(factory=list)  # (method, path) of every answered request

    async def user(self, name: str, *roles: str, admin: bool = False) -> str:
        """Create a user holding ``roles`` globally; returns an API token with every permission they hold."""
        await self.ids.users.create(SYSTEM, NewUser(name=name, email=f"{name}@example.com", password=PW, admin=admin))
        for role in roles:
            await self.ids.rbac.bind(SYSTEM, NewBinding(user=name, role=role))
        held = await self.ids.authorizer.user_permissions((await self.ids.users.get(name)).id, None)
        issued = await self.ids.tokens.create(SYSTEM, NewToken(name="t", scopes=sorted(held) or ["project:read"],
                                                               user=name))
        return issued.secret

    def url(self, slug: str) -> str:
        return f"{self.base}/{slug}.git"

    async def project(self, token: str, name: str = "app") -> str:
        """Create project ``name`` as the token's user through the API; returns its git remote URL."""
        async with aiohttp.ClientSession() as s, s.post(
            f"{self.base}/api/v1/projects", json={"name": name}, headers={"Authorization": f"Bearer {token}"},
        ) as r:
            assert r.status == 201, await r.text()
            body = await r.json()
        return self.url(f"{body['owner']}/{body['name']}")

    async def relay(self) -> None:
        """Run the outbox relay until it is idle (merge requests merged by a push, webhook fan-out), with the
        consumers the platform wires (corral.entrypoints.projects_wiring.start_webhook_loops)."""
        relay = OutboxRelay(self.memory, [self.kit.merge_requests.on_push, self.kit.webhooks.fan_out])
        while await relay.run_once():
            pass


async def start_corral(tmp: Path, *, retry_base: float = 0.05, objects: Any = None,
                       validate_responses: bool = False) -> Corral:
    """``objects``: a callable taking the server's base URL and returning the object store (default: in memory,
    whose memory:// links make LFS stream through Corral). ``validate_responses``: every JSON answer is checked
    against the OpenAPI document (a mismatch is a 500)."""
    _HOME[:] = [tmp / ".home"]
    clock = RealClock()
    identity = IdentityMemory()
    ids = IdentityServices(identity, InMemoryAuthzCache(clock), InMemoryPasswordHasher(), clock)
    await ensure_system_roles(identity, clock)
    settings = Settings(profile="memory", data_dir=tmp / "data", webhook_allow_private_targets=True,
                        webhook_retry_base_seconds=retry_base, webhook_max_attempts=4,
                        validate_responses=validate_responses)
    platform = GitPlatform(settings)
    platform.register(WebAuth, IdentityWebAuth(ids))
    platform.app_hooks.append(install(ids))
    memory = ProjectsMemory()
    transport = AiohttpWebhookTransport(allow_private=True, timeout=5)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    store = objects(base) if objects is not None else InMemoryObjectStore()
    kit = build_kit(settings, memory, clock, store, UowUserDirectory(identity), transport, GitCli(tmp / "repos"))
    install_web(platform, kit)
    platform.register(ObjectStore, store)  # the signed-link routes (/api/v1/objects/...) serve this store
    app = create_app(platform)
    seen: list[tuple[str, str]] = []

    async def record(request: web.Request, _response: web.StreamResponse) -> None:
        seen.append((request.method, request.path))

    app.on_response_prepare.append(record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    corral = Corral(base, ids, memory, kit, tmp, runner, requests=seen)
    corral.tasks.append(asyncio.create_task(_loop(corral)))
    return corral


async def _loop(corral: Corral) -> None:
    """What the platform's background loops do: relay the outbox, deliver webhooks."""
    while True:
        await corral.relay()
        await corral.kit.webhooks.deliver_due()
        await asyncio.sleep(0.02)


async def stop_corral(corral: Corral) -> None:
    for task in corral.tasks:
        task.cancel()
    await asyncio.gather(*corral.tasks, return_exceptions=True)
    await corral.kit.webhooks.transport.aclose()
    await corral.runner.cleanup()
    await corral.kit.maintenance.aclose()


def git_env(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0", "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.com", "LC_ALL": "C",
    }


async def git(cwd: Path, *args: str, token: str | None = None, check: bool = True,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real git CLI (off the event loop, which serves the app); ``token`` is sent via HTTP Basic."""
    cred: list[str] = ["-c", "credential.helper="]
    if token is not None:
        cred += ["-c", f"credential.helper=!f() {{ echo username=git; echo password={token}; }}; f"]
    cwd.mkdir(parents=True, exist_ok=True)
    run_env = env or git_env(_HOME[0] if _HOME else cwd.parent / ".home")
    result = await asyncio.to_thread(
        subprocess.run, ["git", *cred, *args], cwd=cwd, env=run_env, capture_output=True, text=True, timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
