"""The running platform: its shared parts as typed fields, the punq container (registrations by type only),
what to run in the background and what to close.

The bootstrap (corral.entrypoints.bootstrap) builds the shared parts once, then calls each domain's
``<domain>_wiring.wire_<domain>(platform)``, which only adds that domain's services, consumers, loops and web
hooks. This module is apart from the bootstrap so that wirings can import the type without an import cycle
(the bootstrap imports the wirings).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs
import punq

from corral.core.clock import Clock
from corral.core.identity.access import Authorizer
from corral.core.identity.ports import AuthzCache
from corral.core.outbox.relay import OutboxRelay
from corral.core.storage.ports import ObjectStore
from corral.core.uow import UnitOfWorkFactory
from corral.entrypoints.config import Settings

if TYPE_CHECKING:
    import asyncpg
    import redis.asyncio as redis

    from corral.adapters.crypto import AesGcmKeyWrapper

__all__ = ["Closer", "HealthCheck", "LivenessCheck", "Platform", "Wiring", "resolve_optional"]

log = logging.getLogger("corral.bootstrap")

Closer = Callable[[], Awaitable[None]]
HealthCheck = Callable[[], Awaitable[None]]
LivenessCheck = Callable[[], str | None]  # the reason the process cannot make progress, or None


def resolve_optional(container: punq.Container, key: Any) -> Any:
    """The component registered for ``key`` (a type), or None when nothing is (an error while building it
    propagates)."""
    try:
        return container.resolve(key)
    except punq.MissingDependencyError:
        return None


@attrs.define
class Platform:
    """Everything a running Corral holds.

    The shared parts below are set once by the bootstrap (before any wiring runs) and registered in
    ``container`` under their type; a wiring reads them as fields (``platform.relay``) and registers its own
    services by type (``platform.register(SecretsService, service)``).
    """

    settings: Settings
    container: punq.Container = attrs.field(factory=punq.Container)
    # -- the shared parts (bootstrap) --
    clock: Clock = attrs.field(init=False)
    uow_factory: UnitOfWorkFactory = attrs.field(init=False)
    objects: ObjectStore = attrs.field(init=False)
    authz_cache: AuthzCache = attrs.field(init=False)
    relay: OutboxRelay = attrs.field(init=False)  # the one outbox relay: domains append their consumers
    key_ring: AesGcmKeyWrapper = attrs.field(init=False)  # the master key ring every sealing domain shares
    key_rewraps: list[Any] = attrs.field(factory=list)  # sealed data master-key rotation covers besides secrets
    pg_pool: asyncpg.Pool | None = None  # None on the memory profile
    valkey: redis.Redis | None = None  # None on the memory profile
    database_url: str | None = None
    valkey_url: str | None = None
    # provided by the identity wiring (the first); None when it is not wired (other domains then fail closed)
    authorizer: Authorizer | None = None
    # -- lifecycle --
    health_checks: dict[str, HealthCheck] = attrs.field(factory=dict)  # readiness (/readyz)
    liveness_checks: dict[str, LivenessCheck] = attrs.field(factory=dict)  # liveness (/healthz)
    background: list[Callable[[], Awaitable[None]]] = attrs.field(factory=list)  # long-running loops
    app_hooks: list[Callable[[Any], None]] = attrs.field(factory=list)  # called with the aiohttp app
    closers: list[Closer] = attrs.field(factory=list)
    published_runtime: bool = False  # this process owns the embedded services and published runtime.json
    _tasks: list[asyncio.Task[None]] = attrs.field(factory=list)

    # keys are types (often Protocols, which mypy refuses as ``type[T]``): callers annotate what they resolve
    def register(self, key: Any, instance: object) -> None:
        """Register ``instance`` for ``key`` (a port or service type)."""
        self.container.register(key, instance=instance)

    def resolve(self, key: Any) -> Any:
        """The component registered for ``key`` (punq.MissingDependencyError when none is)."""
        return self.container.resolve(key)

    def resolve_optional(self, key: Any) -> Any:
        """The component registered for ``key``, or None when nothing is."""
        return resolve_optional(self.container, key)

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


Wiring = Callable[[Platform], Awaitable[None]]


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
