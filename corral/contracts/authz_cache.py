"""AuthzCacheContract: what every AuthzCache does.

Needs a fixture ``authz_caches``: two AuthzCache replicas sharing one invalidation channel, running on the clock
given by the fixture ``authz_clock``, and a method ``async let_time_pass(seconds)`` on the test class that makes
that much time pass for them (a fake clock moved, or a real sleep when entries expire on real time).

Whether one replica's entries are served by another is not part of the contract (Valkey shares them, the
in-memory fake keeps one cache per replica); invalidation always reaches every replica.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from corral.core.identity.model import AuthMethod, Principal
from corral.core.identity.ports import CachedCredential

__all__ = ["AuthzCacheContract"]

PERMS = frozenset({"project:read", "project:write"})


def _credential() -> CachedCredential:
    project = uuid.uuid4()
    principal = Principal(
        user_id=uuid.uuid4(), name="olga", method=AuthMethod.SESSION, is_agent=True,
        scopes=frozenset({"project:read"}), token_project_id=project, token_id=uuid.uuid4(), session_id=uuid.uuid4(),
        needs_totp_enrolment=True, email="olga@example.org", display_name="Olga Ü",
        roles=(("developer", project), ("viewer", None)),
    )
    return CachedCredential(principal, expires_at=datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC),
                            last_seen_at=datetime(2026, 12, 1, tzinfo=UTC), csrf_digest="ab" * 32)


class AuthzCacheContract:
    async def let_time_pass(self, seconds: float) -> None:
        raise NotImplementedError

    async def test_permissions_are_cached_per_user_and_project(self, authz_caches: Any, authz_clock: Any) -> None:
        a, _ = authz_caches
        user, other, project = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        until = authz_clock.now() + timedelta(minutes=5)
        assert await a.get_permissions(user, None) is None
        await a.put_permissions(user, None, PERMS, until, a.generation())
        await a.put_permissions(user, project, frozenset({"project:read"}), until, a.generation())
        await a.put_permissions(other, project, frozenset(), until, a.generation())
        assert await a.get_permissions(user, None) == PERMS
        assert await a.get_permissions(user, project) == frozenset({"project:read"})
        assert await a.get_permissions(other, project) == frozenset()  # empty is cached, not a miss
        assert await a.get_permissions(other, None) is None
        assert await a.get_permissions(user, uuid.uuid4()) is None

    async def test_credentials_round_trip_whole(self, authz_caches: Any, authz_clock: Any) -> None:
        a, _ = authz_caches
        cred = _credential()
        minimal = CachedCredential(Principal(user_id=uuid.uuid4(), name="bot", method=AuthMethod.TOKEN))
        until = authz_clock.now() + timedelta(minutes=5)
        assert await a.get_credential("token:abc") is None
        await a.put_credential("token:abc", cred, until, a.generation())
        await a.put_credential("token:def", minimal, until, a.generation())
        assert await a.get_credential("token:abc") == cred
        assert await a.get_credential("token:def") == minimal
        assert await a.get_credential("token:ab") is None

    async def test_invalidate_drops_every_entry_on_every_replica(self, authz_caches: Any, authz_clock: Any) -> None:
        a, b = authz_caches
        user = uuid.uuid4()
        until = authz_clock.now() + timedelta(minutes=5)
        for cache in (a, b):
            await cache.put_permissions(user, None, PERMS, until, cache.generation())
            await cache.put_credential("session:x", _credential(), until, cache.generation())
            assert await cache.get_permissions(user, None) == PERMS
        generations = (a.generation(), b.generation())
        await a.invalidate("role binding removed")
        assert a.generation() != generations[0] and b.generation() != generations[1]
        for cache in (a, b):
            assert await cache.get_permissions(user, None) is None
            assert await cache.get_credential("session:x") is None
        await b.put_permissions(user, None, frozenset({"project:read"}), until, b.generation())  # works again
        assert await b.get_permissions(user, None) == frozenset({"project:read"})

    async def test_a_value_loaded_before_an_invalidation_is_not_cached(
        self, authz_caches: Any, authz_clock: Any
    ) -> None:
        a, b = authz_caches
        user = uuid.uuid4()
        until = authz_clock.now() + timedelta(minutes=5)
        read_a = a.generation()  # a starts loading from the database ...
        await b.invalidate("token revoked")  # ... while another replica commits a change
        await a.put_permissions(user, None, PERMS, until, read_a)
        await a.put_credential("token:abc", _credential(), until, read_a)
        assert await a.get_permissions(user, None) is None
        assert await a.get_credential("token:abc") is None

    async def test_entries_are_not_served_after_valid_until(self, authz_caches: Any, authz_clock: Any) -> None:
        a, _ = authz_caches
        user = uuid.uuid4()
        now = authz_clock.now()
        await a.put_permissions(user, None, PERMS, now - timedelta(seconds=1), a.generation())
        await a.put_credential("expired", _credential(), now - timedelta(seconds=1), a.generation())
        assert await a.get_permissions(user, None) is None
        assert await a.get_credential("expired") is None
        await a.put_permissions(user, None, PERMS, now + timedelta(seconds=1), a.generation())
        await a.put_credential("short", _credential(), now + timedelta(seconds=1), a.generation())
        kept = _credential()
        await a.put_credential("long", kept, now + timedelta(minutes=5), a.generation())
        assert await a.get_permissions(user, None) == PERMS
        await self.let_time_pass(1.5)
        assert await a.get_permissions(user, None) is None
        assert await a.get_credential("short") is None
        assert await a.get_credential("long") == kept
