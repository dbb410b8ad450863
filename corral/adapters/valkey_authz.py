"""The authz cache on Valkey: an in-process LRU in front of shared Valkey entries, invalidated by pub/sub.

Every change bumps a shared epoch (``INCR``) that is part of every Valkey key,
so entries of older epochs are never read again (they expire by TTL), and is
PUBLISHed; each replica's subscriber drops its LRU and pushes an
acknowledgement. ``invalidate`` returns once every subscriber PUBLISH reached
has acknowledged (bounded by ``ack_timeout``), so a revocation holds on the
very next request on any replica without any Valkey round trip on a warm
cache. A replica whose subscription is down serves nothing from its LRU.

Valkey outages: while the subscription is down (Valkey unreachable or restarting) the cache is bypassed
altogether, neither the LRU nor Valkey's entries are read, so every check asks PostgreSQL and a
revocation made meanwhile holds at once. A revocation during the outage could not bump the shared epoch,
so entries Valkey kept from before the outage may be stale: the first thing a replica does when its
subscription comes back is bump the epoch (and tell the others), which retires all of them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import redis.asyncio as redis

from corral.core.clock import Clock
from corral.core.identity.model import AuthMethod, Principal
from corral.core.identity.ports import CachedCredential
from corral.core.ids import uuid7
from corral.core.lru import ExpiringLru

__all__ = ["ValkeyAuthzCache"]

log = logging.getLogger("corral.authz_cache")

CHANNEL = "corral:authz:invalidate"
EPOCH_KEY = "corral:authz:epoch"


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse_dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _uuid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


def credential_to_json(c: CachedCredential) -> str:
    p = c.principal
    return json.dumps({
        "user_id": str(p.user_id), "name": p.name, "method": p.method.value, "is_agent": p.is_agent,
        "scopes": sorted(p.scopes) if p.scopes is not None else None,
        "token_project_id": str(p.token_project_id) if p.token_project_id else None,
        "token_id": str(p.token_id) if p.token_id else None,
        "session_id": str(p.session_id) if p.session_id else None,
        "needs_totp_enrolment": p.needs_totp_enrolment, "email": p.email, "display_name": p.display_name,
        "roles": [[r, str(pid) if pid else None] for r, pid in p.roles],
        "expires_at": _dt(c.expires_at), "last_seen_at": _dt(c.last_seen_at), "csrf_digest": c.csrf_digest,
    })


def credential_from_json(raw: str | bytes) -> CachedCredential:
    d: dict[str, Any] = json.loads(raw)
    principal = Principal(
        user_id=uuid.UUID(d["user_id"]), name=d["name"], method=AuthMethod(d["method"]), is_agent=d["is_agent"],
        scopes=frozenset(d["scopes"]) if d["scopes"] is not None else None,
        token_project_id=_uuid(d["token_project_id"]), token_id=_uuid(d["token_id"]),
        session_id=_uuid(d["session_id"]), needs_totp_enrolment=d["needs_totp_enrolment"], email=d["email"],
        display_name=d["display_name"], roles=tuple((r, _uuid(pid)) for r, pid in d["roles"]),
    )
    return CachedCredential(principal=principal, expires_at=_parse_dt(d["expires_at"]),
                            last_seen_at=_parse_dt(d["last_seen_at"]), csrf_digest=d["csrf_digest"])


class ValkeyAuthzCache:
    """AuthzCache over one Valkey shared by every replica. Call ``start()`` before use, ``aclose()`` after."""

    def __init__(
        self,
        client: redis.Redis,
        clock: Clock,
        *,
        lru_size: int = 50_000,
        ttl_seconds: float = 300.0,
        ack_timeout: float = 2.0,
    ) -> None:
        self._client = client
        self._clock = clock
        self._lru: ExpiringLru[str, Any] = ExpiringLru(lru_size)
        self._ttl = ttl_seconds
        self._ack_timeout = ack_timeout
        self._replica = str(uuid7())
        self._epoch = 0
        self._generation = 0  # local: bumps on every invalidation seen (ours or another replica's)
        self._live = False
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self.lru_hits = 0
        self.valkey_hits = 0
        self.misses = 0

    # --- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Read the shared epoch and subscribe to invalidations (returns once subscribed)."""
        self._epoch = int(await self._client.get(EPOCH_KEY) or 0)
        self._task = asyncio.create_task(self._listen(), name="authz-cache-invalidations")
        try:
            await asyncio.wait_for(self._subscribed.wait(), 5)
        except TimeoutError:
            log.warning("authz cache: not subscribed to invalidations yet; serving without the local LRU")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        self._live = False

    async def _listen(self) -> None:
        lost = False
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                # anything may have changed while we were not listening
                if lost:
                    # a revocation during the outage could not bump the epoch: retire every shared entry
                    # cached before it, on every replica (nobody waits for the acknowledgements)
                    epoch = int(await self._client.incr(EPOCH_KEY))
                    await self._client.publish(CHANNEL, json.dumps(
                        {"epoch": epoch, "ack": f"corral:authz:ack:{uuid7()}", "reason": "valkey reconnected"}))
                    log.warning("authz cache: Valkey reachable again; cache epoch bumped to %d", epoch)
                else:
                    epoch = int(await self._client.get(EPOCH_KEY) or 0)
                self._epoch = epoch  # Valkey's, even if lower: a Valkey that lost its data starts again
                self._drop(epoch)
                self._live = True
                self._subscribed.set()
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    await self._on_message(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not lost:
                    log.warning("authz cache: invalidation subscription lost (%s); serving without the cache "
                                "until Valkey is back", type(exc).__name__)
                lost = True
                self._live = False
                await asyncio.sleep(0.5)
            finally:
                self._live = False
                self._lru.clear()
                try:
                    await pubsub.aclose()
                except Exception:
                    pass

    async def _on_message(self, data: bytes | str) -> None:
        try:
            msg = json.loads(data)
            epoch, ack = int(msg["epoch"]), str(msg["ack"])
        except (ValueError, KeyError, TypeError):
            return
        self._drop(epoch)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.rpush(ack, self._replica)
                pipe.expire(ack, 30)
                await pipe.execute()
        except Exception as exc:
            log.warning("authz cache: could not acknowledge an invalidation (%s)", type(exc).__name__)

    def _drop(self, epoch: int) -> None:
        self._lru.clear()
        self._generation += 1
        if epoch > self._epoch:
            self._epoch = epoch

    # --- AuthzCache ---------------------------------------------------------------------------------
    def generation(self) -> int:
        return self._generation

    async def invalidate(self, reason: str) -> None:
        ack = f"corral:authz:ack:{uuid7()}"
        try:
            epoch = int(await self._client.incr(EPOCH_KEY))
            self._drop(epoch)
            receivers = int(await self._client.publish(CHANNEL, json.dumps({"epoch": epoch, "ack": ack,
                                                                             "reason": reason})))
            deadline = time.monotonic() + self._ack_timeout
            acked = 0
            while acked < receivers:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("authz cache: %d of %d replicas acknowledged invalidation %s in time",
                                acked, receivers, reason)
                    break
                got = await self._client.blpop([ack], timeout=max(left, 0.01))
                if got is not None:
                    acked += 1
        except Exception as exc:
            # Valkey down: we cannot reach other replicas; their entries expire by TTL
            self._drop(self._epoch)
            log.error("authz cache: invalidation %s not published (%s)", reason, type(exc).__name__)

    def _expiry(self, valid_until: datetime) -> float:
        seconds = min((valid_until - self._clock.now()).total_seconds(), self._ttl)
        return time.monotonic() + seconds

    async def get_permissions(self, user_id: uuid.UUID, project_id: uuid.UUID | None) -> frozenset[str] | None:
        key = f"p:{user_id}:{project_id or '-'}"
        perms: frozenset[str] | None = await self._get(key, lambda data: frozenset(data["perms"]))
        return perms

    async def put_permissions(
        self,
        user_id: uuid.UUID,
        project_id: uuid.UUID | None,
        permissions: frozenset[str],
        valid_until: datetime,
        generation: int,
    ) -> None:
        await self._put(f"p:{user_id}:{project_id or '-'}", permissions, {"perms": sorted(permissions)},
                        valid_until, generation)

    async def get_credential(self, key: str) -> CachedCredential | None:
        cred: CachedCredential | None = await self._get(f"c:{key}", lambda data: credential_from_json(data["cred"]))
        return cred

    async def put_credential(
        self, key: str, credential: CachedCredential, valid_until: datetime, generation: int
    ) -> None:
        await self._put(f"c:{key}", credential, {"cred": credential_to_json(credential)}, valid_until, generation)

    async def _get(self, key: str, decode: Callable[[dict[str, Any]], Any]) -> Any:
        """The local LRU's entry for ``key``, else Valkey's (then kept locally until its own expiry)."""
        value = self._lookup_local(key)
        if value is not None:
            return value
        raw = await self._get_shared(key)
        if raw is None:
            return None
        data = json.loads(raw)
        value = decode(data)
        self._store_local(key, value, datetime.fromisoformat(data["until"]))
        return value

    async def _put(
        self, key: str, value: Any, shared: dict[str, Any], valid_until: datetime, generation: int
    ) -> None:
        """Cache ``value`` locally and ``shared`` (its JSON form) in Valkey, unless an invalidation happened
        since ``generation`` was read (the value may be stale then)."""
        if generation != self._generation:
            return
        self._store_local(key, value, valid_until)
        await self._set_shared(key, json.dumps({**shared, "until": valid_until.isoformat()}), valid_until)

    # --- internals ---------------------------------------------------------------------------------
    def _lookup_local(self, key: str) -> Any:
        if not self._live:
            return None
        value = self._lru.get(key, time.monotonic())
        if value is not None:
            self.lru_hits += 1
        return value

    def _store_local(self, key: str, value: Any, valid_until: datetime) -> None:
        if self._live:
            self._lru.put(key, value, self._expiry(valid_until))

    async def _get_shared(self, key: str) -> bytes | None:
        if not self._live:  # Valkey's entries may predate a revocation made while it was unreachable
            self.misses += 1
            return None
        try:
            raw = await self._client.get(f"corral:authz:{self._epoch}:{key}")
        except Exception as exc:
            log.warning("authz cache: Valkey read failed (%s); resolving from the database", type(exc).__name__)
            raw = None
        if raw is None:
            self.misses += 1
        else:
            self.valkey_hits += 1
        return raw if raw is None or isinstance(raw, bytes) else raw.encode()

    async def _set_shared(self, key: str, value: str, valid_until: datetime) -> None:
        ms = int(min((valid_until - self._clock.now()).total_seconds(), self._ttl) * 1000)
        if ms <= 0 or not self._live:
            return
        try:
            await self._client.set(f"corral:authz:{self._epoch}:{key}", value, px=ms)
        except Exception as exc:
            log.warning("authz cache: Valkey write failed (%s)", type(exc).__name__)
