"""Two app instances sharing one Valkey: a revocation on one holds on the very next request on the other."""

from __future__ import annotations

import pytest

from corral.adapters.valkey import connect_valkey
from corral.adapters.valkey_authz import ValkeyAuthzCache
from corral.core.identity.commands import NewToken
from corral.core.identity.service import SYSTEM
from corral.fakes.clock import FakeClock
from corral.fakes.identity_uow import IdentityMemory
from tests.unit.identity.webkit import identity_client, user_with_token

pytestmark = pytest.mark.integration


class RealTimeClock(FakeClock):
    """Valkey TTLs run on real time; keep the clock's 'now' close to it."""

    def now(self):
        from datetime import UTC, datetime

        return datetime.now(UTC)


@pytest.fixture
async def replicas(valkey_url):
    memory = IdentityMemory()  # the shared database
    clock = RealTimeClock()
    made = []
    for _ in range(2):
        client = connect_valkey(valkey_url)
        cache = ValkeyAuthzCache(client, clock)
        await cache.start()
        web, ids, _ = await identity_client(clock=clock, memory=memory, cache=cache)
        made.append((web, ids, cache, client))
    yield made
    for web, _ids, cache, client in made:
        await web.close()
        await cache.aclose()
        await client.aclose()


async def test_token_revocation_holds_on_the_next_request_on_the_other_replica(replicas):
    (a, ids_a, _cache_a, _), (b, _ids_b, cache_b, _) = replicas
    token = await user_with_token(ids_a, "root", admin=True)
    auth = {"Authorization": f"Bearer {token}"}
    for _ in range(3):  # warm B's LRU
        assert (await b.get("/api/v1/users", headers=auth)).status == 200
    assert cache_b.lru_hits > 0
    listed = await (await a.get("/api/v1/tokens", headers=auth)).json()
    token_id = listed["items"][0]["id"]
    # a second admin token to revoke the first with
    other = (await ids_a.tokens.create(SYSTEM, NewToken(name="o", scopes=["admin:users"], user="root"))).secret
    assert (await a.delete(f"/api/v1/tokens/{token_id}", headers={"Authorization": f"Bearer {other}"})).status \
        == 204
    assert (await b.get("/api/v1/users", headers=auth)).status == 401


async def test_permission_revocation_holds_on_the_next_request_on_the_other_replica(replicas):
    (a, ids_a, _, _), (b, _ids_b, cache_b, _) = replicas
    admin = {"Authorization": f"Bearer {await user_with_token(ids_a, 'root', admin=True)}"}
    resp = await a.post("/api/v1/roles", headers=admin, json={"name": "useradmin", "permissions": ["admin:users"]})
    assert resp.status == 201
    await user_with_token(ids_a, "olga", "viewer")
    resp = await a.post("/api/v1/role-bindings", headers=admin, json={"user": "olga", "role": "useradmin"})
    assert resp.status == 201
    binding = (await resp.json())["id"]
    issued = await ids_a.tokens.create(SYSTEM, NewToken(name="u", scopes=["admin:users"], user="olga"))
    olga = {"Authorization": f"Bearer {issued.secret}"}
    for _ in range(3):  # B resolves once, then answers from its LRU
        assert (await b.get("/api/v1/users", headers=olga)).status == 200
    assert cache_b.lru_hits > 0
    assert (await a.delete(f"/api/v1/role-bindings/{binding}", headers=admin)).status == 204
    assert (await b.get("/api/v1/users", headers=olga)).status == 403


async def test_an_eviction_policy_that_may_drop_the_epoch_is_reported(valkey_url):
    from corral.adapters.valkey import unsafe_eviction_policy

    client = connect_valkey(valkey_url)
    before = (await client.config_get("maxmemory-policy"))["maxmemory-policy"]
    try:
        await client.config_set("maxmemory-policy", "allkeys-lru")
        assert await unsafe_eviction_policy(client) == "allkeys-lru"
        await client.config_set("maxmemory-policy", "volatile-lru")
        assert await unsafe_eviction_policy(client) is None
    finally:
        await client.config_set("maxmemory-policy", before)
        await client.aclose()
