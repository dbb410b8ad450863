"""The punq bootstrap: the ONLY place that picks adapters.

``Platform.start(settings)`` chooses, from settings alone, between the
in-memory profile (every port on fakes), the embedded default (PostgreSQL
and Valkey as child processes from wheels, objects on local disk) and
external services (``CORRAL_DATABASE_URL``, ``CORRAL_VALKEY_URL``,
``CORRAL_S3_ENDPOINT``). Each domain then wires its services through a
function in ``WIRINGS``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import punq

from corral.core.clock import Clock
from corral.core.storage.ports import ObjectStore
from corral.core.uow import UnitOfWorkFactory
from corral.entrypoints.child_watcher import install_child_watcher
from corral.entrypoints.config import Settings

__all__ = ["WIRINGS", "Platform"]

log = logging.getLogger("corral.bootstrap")

Closer = Callable[[], Awaitable[None]]
HealthCheck = Callable[[], Awaitable[None]]


@attrs.define
class Platform:
    """Everything a running Corral holds: settings, the container, health checks, what to close."""

    settings: Settings
    container: punq.Container = attrs.field(factory=punq.Container)
    health_checks: dict[str, HealthCheck] = attrs.field(factory=dict)
    background: list[Callable[[], Awaitable[None]]] = attrs.field(factory=list)  # long-running loops
    app_hooks: list[Callable[[Any], None]] = attrs.field(factory=list)  # called with the aiohttp app
    closers: list[Closer] = attrs.field(factory=list)
    database_url: str | None = None
    valkey_url: str | None = None
    _tasks: list[asyncio.Task[None]] = attrs.field(factory=list)
    _attach: bool = False
    published_runtime: bool = False  # this process owns the embedded services and published runtime.json

    @classmethod
    async def start(cls, settings: Settings, *, migrate: bool = True, attach: bool = False) -> Platform:
        """Bring up every adapter chosen by ``settings`` and wire the domains.

        ``attach`` (for CLI tools such as ``corral admin``): when a running ``corral serve`` owns the
        embedded PostgreSQL and Valkey of this data directory, connect to them instead of refusing.
        """
        install_child_watcher()  # git runs for most repository requests: reap it on the loop, not a thread
        platform = cls(settings=settings)
        platform._attach = attach
        platform.container.register(Settings, instance=settings)
        try:
            if settings.profile == "memory":
                await platform._wire_memory()
            else:
                await platform._wire_services(migrate=migrate)
            for wiring in WIRINGS:
                await wiring(platform)
        except BaseException:
            await platform.aclose()
            raise
        return platform

    def resolve(self, key: Any) -> Any:
        """The component registered for ``key``."""
        return self.container.resolve(key)

    def register(self, key: Any, instance: Any) -> None:
        """Register ``instance`` for ``key`` (a port type)."""
        self.container.register(key, instance=instance)

    async def _wire_memory(self) -> None:
        from corral.fakes.clock import FakeClock
        from corral.fakes.objectstore import InMemoryObjectStore
        from corral.fakes.uow import InMemoryUnitOfWorkFactory

        clock = FakeClock.real_time()
        self.register(Clock, clock)
        self.register(UnitOfWorkFactory, InMemoryUnitOfWorkFactory(clock=clock))
        self.register(ObjectStore, InMemoryObjectStore())

    async def _wire_services(self, *, migrate: bool) -> None:
        from corral.adapters.clock import SystemClock
        from corral.adapters.postgres.pool import create_pool
        from corral.adapters.postgres.uow import PostgresUnitOfWorkFactory
        from corral.adapters.valkey import connect_valkey

        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        clock = SystemClock()
        self.register(Clock, clock)

        running = read_runtime(settings.data_dir) if self._attach else None
        if running is not None:
            log.info("attached to the embedded services of the running corral serve", extra={"pid": running["pid"]})
        self.database_url = (
            settings.database_url or (running or {}).get("database_url") or await self._embedded_postgres()
        )
        pool = await create_pool(self.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max)
        self.closers.append(pool.close)
        self.container.register("pg_pool", instance=pool)
        if migrate:
            from corral.adapters.postgres.migrator import apply_migrations

            async with pool.acquire() as conn:
                applied = await apply_migrations(conn)
            if applied:
                log.info("applied migrations", extra={"migrations": applied})
        self.register(UnitOfWorkFactory, PostgresUnitOfWorkFactory(pool, clock))

        async def check_pg() -> None:
            async with pool.acquire(timeout=2) as conn:
                await conn.fetchval("SELECT 1")

        self.health_checks["postgresql"] = check_pg

        self.valkey_url = settings.valkey_url or (running or {}).get("valkey_url") or await self._embedded_valkey()
        if running is None and not (settings.database_url and settings.valkey_url):
            self._publish_runtime()
        valkey = connect_valkey(self.valkey_url)
        self.closers.append(valkey.aclose)
        self.container.register("valkey", instance=valkey)

        async def check_valkey() -> None:
            await valkey.ping()

        self.health_checks["valkey"] = check_valkey
        if settings.valkey_url:
            from corral.adapters.valkey import unsafe_eviction_policy

            if policy := await unsafe_eviction_policy(valkey):
                log.warning("Valkey's maxmemory-policy %s may evict Corral's authz epoch key (stale permissions "
                            "for up to CORRAL_AUTHZ_CACHE_TTL_SECONDS after a revocation); use volatile-lru", policy)

        store = self._object_store()
        self.register(ObjectStore, store)
        self.health_checks["object_store"] = store.ping

    def _object_store(self) -> ObjectStore:
        settings = self.settings
        if settings.s3_endpoint:
            from corral.adapters.s3 import S3ObjectStore

            store = S3ObjectStore(
                endpoint=settings.s3_endpoint, bucket=settings.s3_bucket, access_key=settings.s3_access_key,
                secret_key=settings.s3_secret_key, region=settings.s3_region,
            )
            closer = getattr(store, "aclose", None)
            if closer is not None:
                self.closers.append(closer)
            return store
        from corral.adapters.localfs import LocalFsObjectStore

        root = settings.data_dir / "objects"
        return LocalFsObjectStore(root, signing_key=self._local_signing_key(), base_url=settings.public_url())

    def _local_signing_key(self) -> bytes:
        path = self.settings.data_dir / "object-signing.key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(os.urandom(32))
        return hashlib.sha256(path.read_bytes()).digest()

    def _publish_runtime(self) -> None:
        """Tell local CLI tools (same data directory) how to reach the embedded services we own."""
        path = runtime_file(self.settings.data_dir)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"pid": os.getpid(), "database_url": self.database_url, "valkey_url": self.valkey_url}, fh)
        os.replace(tmp, path)
        self.published_runtime = True

        async def withdraw() -> None:
            current = _load_runtime(path)
            if current is not None and current.get("pid") == os.getpid():
                path.unlink(missing_ok=True)

        self.closers.append(withdraw)

    async def _embedded_postgres(self) -> str:
        from corral.adapters.embedded.postgres import EmbeddedPostgres

        server = EmbeddedPostgres(self.settings.data_dir / "postgres")
        log.info("starting embedded PostgreSQL", extra={"dir": str(self.settings.data_dir / "postgres")})
        dsn = await server.start()
        self.closers.append(server.stop)
        return dsn

    async def _embedded_valkey(self) -> str:
        from corral.adapters.embedded.valkey import EmbeddedValkey

        server = EmbeddedValkey(self.settings.data_dir / "valkey",
                                maxmemory_bytes=self.settings.valkey_maxmemory_mb * 1024 * 1024,
                                maxmemory_policy=self.settings.valkey_maxmemory_policy)
        url = await server.start()
        self.closers.append(server.stop)
        return url

    def start_background(self) -> None:
        """Start the long-running loops (outbox relay, deliveries, rotations, evaluators)."""
        for loop in self.background:
            self._tasks.append(asyncio.create_task(_supervised(loop), name=getattr(loop, "__name__", "loop")))

    async def aclose(self) -> None:
        """Stop background loops, then close every resource in reverse order of opening."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        while self.closers:
            closer = self.closers.pop()
            try:
                await closer()
            except Exception:
                log.exception("error while closing %s", getattr(closer, "__qualname__", closer))


async def _supervised(loop: Callable[[], Awaitable[None]]) -> None:
    """Run a background loop forever; a crash is logged and the loop restarts after a pause."""
    while True:
        try:
            await loop()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background loop %s crashed; restarting in 1 s", getattr(loop, "__name__", loop))
            await asyncio.sleep(1)


def runtime_file(data_dir: Path) -> Path:
    """Where a running server publishes its embedded services' URLs (mode 0600: they carry a password)."""
    return data_dir / "runtime.json"


def _load_runtime(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_runtime(data_dir: Path) -> dict[str, Any] | None:
    """The embedded services of another live Corral process on ``data_dir``, or None."""
    data = _load_runtime(runtime_file(data_dir))
    if data is None:
        return None
    pid = data.get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by another account
    return data


Wiring = Callable[[Platform], Awaitable[None]]

# Each domain appends one async function that registers its services, routes' dependencies and loops.
WIRINGS: list[Wiring] = []


def _wirings() -> None:
    from corral.entrypoints.housekeeping import wire_housekeeping
    from corral.entrypoints.identity_wiring import wire_identity
    from corral.entrypoints.notify_wiring import wire_notifications
    from corral.entrypoints.observe import wire_observe
    from corral.entrypoints.pipelines_wiring import wire_pipelines
    from corral.entrypoints.projects_wiring import wire_projects
    from corral.entrypoints.secrets import wire_secrets
    from corral.entrypoints.workloads_wiring import wire_workloads

    WIRINGS.append(wire_identity)  # first: other domains authorize through it
    WIRINGS.append(wire_secrets)
    WIRINGS.append(wire_observe)
    WIRINGS.append(wire_notifications)
    WIRINGS.append(wire_projects)  # after the outbox relay exists; wraps identity's WebAuth (visibility, owners)
    WIRINGS.append(wire_housekeeping)
    WIRINGS.append(wire_workloads)  # the Executor port, before the pipeline engine resolves it
    WIRINGS.append(wire_pipelines)


_wirings()
