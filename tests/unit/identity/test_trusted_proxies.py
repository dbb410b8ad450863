"""X-Forwarded-For / X-Forwarded-Proto are believed only from CORRAL_TRUSTED_PROXIES."""

from __future__ import annotations

import pytest

from corral.entrypoints.config import ConfigError, Settings, load_settings
from corral.entrypoints.web.forwarded import TrustedProxies
from tests.unit.identity.webkit import PW, identity_client, user_with_token

# the test client connects from 127.0.0.1
TRUSTING_LOOPBACK = Settings(profile="memory", trusted_proxies="127.0.0.0/8, ::1")


async def _client(settings: Settings | None = None):
    return await identity_client(settings=settings)


async def _fail_logins(client, n: int, headers: dict[str, str], first: int = 0) -> list[int]:
    out = []
    for i in range(first, first + n):
        resp = await client.post("/api/v1/auth/login", json={"name": f"nobody{i}", "password": "wrong"},
                                 headers=headers)
        out.append(resp.status)
    return out


async def test_untrusted_peer_cannot_escape_the_ip_ban_with_a_spoofed_forwarded_for():
    client, ids, memory = await _client()
    try:
        limit = ids.policy.max_failures_per_ip
        for i in range(limit):  # a different spoofed address each time: all keyed on the real peer
            assert await _fail_logins(client, 1, {"X-Forwarded-For": f"198.51.100.{i}"}, first=i) == [401]
        await user_with_token(ids, "alice", "viewer")
        resp = await client.post("/api/v1/auth/login", json={"name": "alice", "password": PW},
                                 headers={"X-Forwarded-For": "203.0.113.77"})
        assert resp.status == 429
        failed = [e for e in memory.audit if e.action == "auth.login_failed"]
        assert failed and {e.ip_addr for e in failed} == {"127.0.0.1"}
    finally:
        await client.close()


async def test_trusted_proxy_bans_the_client_not_everyone_behind_the_proxy():
    client, ids, memory = await _client(TRUSTING_LOOPBACK)
    try:
        limit = ids.policy.max_failures_per_ip
        attacker = {"X-Forwarded-For": "spoofed-by-client, 198.51.100.9, 10.0.0.3"}  # 10.0.0.3 is untrusted
        assert await _fail_logins(client, limit, attacker) == [401] * limit
        await user_with_token(ids, "alice", "viewer")
        banned = await client.post("/api/v1/auth/login", json={"name": "alice", "password": PW}, headers=attacker)
        assert banned.status == 429
        other = await client.post("/api/v1/auth/login", json={"name": "alice", "password": PW},
                                  headers={"X-Forwarded-For": "203.0.113.5"})
        assert other.status == 200
        failed = {e.ip_addr for e in memory.audit if e.action == "auth.login_failed"}
        assert failed == {"10.0.0.3"}
        login = [e for e in memory.audit if e.action == "auth.login"]
        assert login[-1].ip_addr == "203.0.113.5"
    finally:
        await client.close()


async def test_audit_ip_of_token_calls_behind_a_trusted_proxy():
    client, ids, memory = await _client(TRUSTING_LOOPBACK)
    try:
        token = await user_with_token(ids, "dev", "developer")
        resp = await client.post("/api/v1/tokens", json={"name": "t2", "scopes": ["project:read"]},
                                 headers={"Authorization": f"Bearer {token}",
                                          "X-Forwarded-For": "203.0.113.8, 127.0.0.1"})
        assert resp.status == 201
        created = [e for e in memory.audit if e.action == "token.create"]
        assert created[-1].ip_addr == "203.0.113.8"
    finally:
        await client.close()


@pytest.mark.parametrize(("settings", "secure"), [(None, False), (TRUSTING_LOOPBACK, True)])
async def test_secure_cookie_flag_from_forwarded_proto_only_when_trusted(settings, secure):
    client, ids, _ = await _client(settings)
    try:
        await user_with_token(ids, "alice", "viewer")
        resp = await client.post("/api/v1/auth/login", json={"name": "alice", "password": PW},
                                 headers={"X-Forwarded-Proto": "https"})
        assert resp.status == 200
        assert ("Secure" in resp.headers["Set-Cookie"]) is secure
    finally:
        await client.close()


def test_rightmost_untrusted_hop():
    proxies = TrustedProxies.parse("10.0.0.0/8,fd00::/8")
    assert proxies.client("10.1.1.1", ["1.1.1.1, 2.2.2.2, 10.2.2.2"]) == "2.2.2.2"
    assert proxies.client("10.1.1.1", ["1.1.1.1", "2.2.2.2"]) == "2.2.2.2"  # several header lines
    assert proxies.client("10.1.1.1", ["10.3.3.3, 10.2.2.2"]) == "10.3.3.3"  # all trusted: the leftmost
    assert proxies.client("10.1.1.1", []) == "10.1.1.1"
    assert proxies.client("10.1.1.1", ["2.2.2.2, garbage"]) == "10.1.1.1"  # nothing beyond garbage is believed
    assert proxies.client("fd00::1", ["[2001:db8::5]:443"]) == "2001:db8::5"
    assert proxies.client("::ffff:10.0.0.1", ["1.2.3.4:5678"]) == "1.2.3.4"
    assert proxies.client("192.0.2.1", ["1.1.1.1"]) == "192.0.2.1"  # untrusted peer: header ignored
    assert TrustedProxies().client("10.1.1.1", ["1.1.1.1"]) == "10.1.1.1"


def test_trusted_proxies_setting_is_validated():
    assert load_settings({"CORRAL_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7"}).trusted_proxies
    with pytest.raises(ConfigError, match="CORRAL_TRUSTED_PROXIES"):
        load_settings({"CORRAL_TRUSTED_PROXIES": "10.0.0.0/8,traefik"})
