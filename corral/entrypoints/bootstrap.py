"""The punq bootstrap: the ONLY place that picks adapters.

``start_platform(settings)`` chooses, from settings alone, between the in-memory profile (every port on fakes),
the embedded default (PostgreSQL and Valkey as child processes from wheels, objects on local disk) and external
services (``CORRAL_DATABASE_URL``, ``CORRAL_VALKEY_URL``, ``CORRAL_S3_ENDPOINT``). It builds the platform's
shared parts once (clock, units of work, PostgreSQL pool, Valkey client, object store, authz cache, master key
ring, the one outbox relay), sets them as typed fields of the Platform and registers them in punq by type; then
each domain's wiring in ``WIRINGS`` adds only its own services, outbox consumers, loops and web hooks.

A new domain: ``corral/entrypoints/<domain>_wiring.py`` with ``async def wire_<domain>(platform: Platform)``,
appended to ``WIRINGS`` below. An error anywhere stops the start (nothing falls back silently).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, cast

from corral.core.clock import Clock
from corral.core.identity.ports import AuthzCache
from corral.core.outbox.relay import OutboxRelay
from corral.core.storage.ports import ObjectStore
from corral.core.uow import UnitOfWorkFactory
from corral.entrypoints import (
    agents_wiring,
    deploy_wiring,
    housekeeping_wiring,
    identity_wiring,
    notify_wiring,
    observe_wiring,
    pipelines_wiring,
    projects_wiring,
    secrets_wiring,
    workloads_wiring,
)
from corral.entrypoints.child_watcher import install_child_watcher
from corral.entrypoints.config import Settings
from corral.entrypoints.outages import LoopErrors
from corral.entrypoints.platform import Platform, Wiring

__all__ = ["RELAY_IDLE_SECONDS", "WIRINGS", "Platform", "read_runtime", "runtime_file", "start_platform"]

log = logging.getLogger("corral.bootstrap")
RELAY_IDLE_SECONDS = 0.5

# Each domain's wiring, in order; each adds its services, outbox consumers, loops and web hooks to the platform.
WIRINGS: list[Wiring] = [
    identity_wiring.wire_identity,  # first: provides the authorizer and the WebAuth other domains build on
    secrets_wiring.wire_secrets,
    observe_wiring.wire_observe,
    notify_wiring.wire_notify,
    projects_wiring.wire_projects,  # wraps identity's WebAuth (visibility, owners)
    housekeeping_wiring.wire_housekeeping,
    workloads_wiring.wire_workloads,  # the Executor that pipeline steps (and agent sessions) run through
    pipelines_wiring.wire_pipelines,
    agents_wiring.wire_agents,  # after workloads and projects: sessions run through the Executor
    deploy_wiring.wire_deploy,  # after projects: joins the outbox relay (pushes to ops repositories)
]


async def start_platform(settings: Settings, *, migrate: bool = True, attach: bool = False) -> Platform:
    """Bring up every adapter chosen by ``settings``, build the shared parts and wire the domains.

    ``attach`` (for CLI tools such as ``corral admin``): when a running ``corral serve`` owns the
    embedded PostgreSQL and Valkey of this data directory, connect to them instead of refusing.
    """
    install_child_watcher()  # git runs for most repository requests: reap it on the loop, not a thread
    platform = Platform(settings=settings)
    try:
        if settings.profile == "memory":
            _memory_parts(platform)
        else:
            await _service_parts(platform, migrate=migrate, attach=attach)
        _shared_parts(platform)
        for wiring in WIRINGS:
            await wiring(platform)
        _install_cursor_key(platform)
    except BaseException:
        await platform.aclose()
        raise
    return platform


def _memory_parts(platform: Platform) -> None:
    from corral.fakes.clock import FakeClock
    from corral.fakes.identity_services import InMemoryAuthzCache
    from corral.fakes.objectstore import InMemoryObjectStore
    from corral.fakes.uow import InMemoryUnitOfWorkFactory

    platform.clock = clock = FakeClock.real_time()
    platform.uow_factory = cast(UnitOfWorkFactory, InMemoryUnitOfWorkFactory(clock=clock))
    platform.objects = InMemoryObjectStore()
    platform.authz_cache = InMemoryAuthzCache(clock)


async def _service_parts(platform: Platform, *, migrate: bool, attach: bool) -> None:
    from corral.adapters.clock import SystemClock
    from corral.adapters.postgres.pool import create_pool
    from corral.adapters.postgres.uow import PostgresUnitOfWorkFactory
    from corral.adapters.valkey import connect_valkey

    settings = platform.settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    platform.clock = clock = SystemClock()

    running = read_runtime(settings.data_dir) if attach else None
    if running is not None:
        log.info("attached to the embedded services of the running corral serve", extra={"pid": running["pid"]})
    platform.database_url = (
        settings.database_url or (running or {}).get("database_url") or await _embedded_postgres(platform)
    )
    pool = await create_pool(platform.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max)
    platform.closers.append(pool.close)
    platform.pg_pool = pool
    from corral.adapters.postgres.errors import CONNECTION_ERRORS
    from corral.adapters.valkey import CONNECTION_ERRORS as VALKEY_CONNECTION_ERRORS

    platform.transient_errors = CONNECTION_ERRORS + VALKEY_CONNECTION_ERRORS
    if migrate:
        from corral.adapters.postgres.migrator import apply_migrations

        async with pool.acquire() as conn:
            applied = await apply_migrations(conn)
        if applied:
            log.info("applied migrations", extra={"migrations": applied})
    platform.uow_factory = cast(UnitOfWorkFactory, PostgresUnitOfWorkFactory(pool, clock))

    async def check_pg() -> None:
        async with pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1")

    platform.health_checks["postgresql"] = check_pg

    platform.valkey_url = settings.valkey_url or (running or {}).get("valkey_url") or await _embedded_valkey(platform)
    if running is None and not (settings.database_url and settings.valkey_url):
        _publish_runtime(platform)
    valkey = connect_valkey(platform.valkey_url)
    platform.closers.append(valkey.aclose)
    platform.valkey = valkey

    async def check_valkey() -> None:
        await valkey.ping()

    platform.health_checks["valkey"] = check_valkey
    if settings.valkey_url:
        from corral.adapters.valkey import unsafe_eviction_policy

        if policy := await unsafe_eviction_policy(valkey):
            log.warning("Valkey's maxmemory-policy %s may evict Corral's authz epoch key (stale permissions "
                        "for up to CORRAL_AUTHZ_CACHE_TTL_SECONDS after a revocation); use volatile-lru", policy)

    platform.objects = store = _object_store(platform)
    platform.health_checks["object_store"] = store.ping
    platform.authz_cache = await _valkey_authz_cache(platform)


async def _valkey_authz_cache(platform: Platform) -> AuthzCache:
    from corral.adapters.valkey_authz import ValkeyAuthzCache

    assert platform.valkey is not None
    cache = ValkeyAuthzCache(platform.valkey, platform.clock,
                             ttl_seconds=float(platform.settings.authz_cache_ttl_seconds))
    await cache.start()
    platform.closers.append(cache.aclose)
    return cache


def _shared_parts(platform: Platform) -> None:
    """What every profile shares: the master key ring, the one outbox relay and its loop; then register every
    shared part in the container under its type."""
    from corral.entrypoints.masterkey import load_key_wrapper

    settings = platform.settings
    platform.key_ring = load_key_wrapper(settings, persist=settings.profile != "memory")
    platform.relay = _outbox_relay(platform)
    register_shared(platform)


def register_shared(platform: Platform) -> None:
    """Register the platform's shared parts in its container, by type (and the optional ones only when set)."""
    from corral.adapters.crypto import AesGcmKeyWrapper

    platform.register(Settings, platform.settings)
    platform.register(Clock, platform.clock)
    platform.register(UnitOfWorkFactory, platform.uow_factory)
    platform.register(ObjectStore, platform.objects)
    platform.register(AuthzCache, platform.authz_cache)
    platform.register(OutboxRelay, platform.relay)
    platform.register(AesGcmKeyWrapper, platform.key_ring)
    if platform.pg_pool is not None:
        import asyncpg

        platform.register(asyncpg.Pool, platform.pg_pool)
    if platform.valkey is not None:
        import redis.asyncio as redis

        platform.register(redis.Redis, platform.valkey)


def _outbox_relay(platform: Platform) -> OutboxRelay:
    """The one outbox relay of the process (a second relay would steal other consumers' events): domains append
    their consumers to ``platform.relay.consumers``; its loop is the platform's."""
    relay = OutboxRelay(platform.uow_factory, [])
    errors = LoopErrors("outbox relay")

    async def outbox_relay() -> None:
        while True:
            try:
                busy = await relay.run_once()
            except Exception as exc:
                await asyncio.sleep(errors.failed(exc))
                continue
            errors.succeeded()
            if not busy:
                await asyncio.sleep(RELAY_IDLE_SECONDS)

    platform.background.append(outbox_relay)
    return relay


def _object_store(platform: Platform) -> ObjectStore:
    settings = platform.settings
    if settings.s3_endpoint:
        from corral.adapters.s3 import CONNECTION_ERRORS, S3ObjectStore

        platform.transient_errors = (*platform.transient_errors, *CONNECTION_ERRORS)
        store = S3ObjectStore(
            endpoint=settings.s3_endpoint, bucket=settings.s3_bucket, access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key, region=settings.s3_region,
        )
        closer = getattr(store, "aclose", None)
        if closer is not None:
            platform.closers.append(closer)
        return store
    from corral.adapters.localfs import LocalFsObjectStore

    root = settings.data_dir / "objects"
    return LocalFsObjectStore(root, signing_key=_local_signing_key(settings.data_dir),
                              base_url=settings.public_url())


def _local_signing_key(data_dir: Path) -> bytes:
    path = data_dir / "object-signing.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(32))
    return hashlib.sha256(path.read_bytes()).digest()


def _publish_runtime(platform: Platform) -> None:
    """Tell local CLI tools (same data directory) how to reach the embedded services we own."""
    path = runtime_file(platform.settings.data_dir)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"pid": os.getpid(), "database_url": platform.database_url, "valkey_url": platform.valkey_url},
                  fh)
    os.replace(tmp, path)
    platform.published_runtime = True

    async def withdraw() -> None:
        current = _load_runtime(path)
        if current is not None and current.get("pid") == os.getpid():
            path.unlink(missing_ok=True)

    platform.closers.append(withdraw)


async def _embedded_postgres(platform: Platform) -> str:
    from corral.adapters.embedded.postgres import EmbeddedPostgres

    settings = platform.settings
    server = EmbeddedPostgres(settings.data_dir / "postgres",
                              restart_giveup_seconds=settings.embedded_restart_giveup_seconds)
    log.info("starting embedded PostgreSQL", extra={"dir": str(settings.data_dir / "postgres")})
    dsn = await server.start()
    platform.closers.append(server.stop)
    platform.liveness_checks["postgresql"] = server.supervisor.failure
    return dsn


async def _embedded_valkey(platform: Platform) -> str:
    from corral.adapters.embedded.valkey import EmbeddedValkey

    settings = platform.settings
    server = EmbeddedValkey(settings.data_dir / "valkey",
                            maxmemory_bytes=settings.valkey_maxmemory_mb * 1024 * 1024,
                            maxmemory_policy=settings.valkey_maxmemory_policy,
                            restart_giveup_seconds=settings.embedded_restart_giveup_seconds)
    url = await server.start()
    platform.closers.append(server.stop)
    platform.liveness_checks["valkey"] = server.supervisor.failure
    return url


def _install_cursor_key(platform: Platform) -> None:
    """Sign pagination cursors with a key derived from the master key: every replica accepts the others'
    cursors, and they survive restarts (a master key rotation invalidates the cursors in flight)."""
    from corral.core.pagination import configure_cursor_key

    configure_cursor_key(platform.key_ring.derive_key("pagination cursors v1"))


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
