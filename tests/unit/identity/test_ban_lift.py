"""An admin lifts a user's login ban: password and TOTP keys, audited; IP bans stay."""

from __future__ import annotations

import pytest

from corral.core.errors import NotFound, RateLimited, Unauthenticated
from corral.core.identity.commands import Credentials, NewUser
from tests.unit.identity.webkit import PW


async def test_admin_lifts_a_users_ban_and_ip_bans_stay(ids, system, memory):
    await ids.users.create(system, NewUser(name="alice", email="a@example.com", password=PW))
    for i in range(ids.policy.max_failures_per_user):  # from many addresses: only the user key is banned
        with pytest.raises(Unauthenticated):
            await ids.sessions.login(Credentials(name="alice", password="wrong"), ip=f"10.0.1.{i}", user_agent=None)
    with pytest.raises(RateLimited):
        await ids.sessions.login(Credentials(name="alice", password=PW), ip="10.0.2.1", user_agent=None)

    assert await ids.users.lift_login_ban(system, "alice") == 1

    await ids.sessions.login(Credentials(name="alice", password=PW), ip="10.0.2.1",
                             user_agent=None)  # banned no more, failures forgotten
    entry = next(e for e in memory.audit if e.action == "auth.ban_lift")
    assert entry.detail == {"name": "alice", "bans_removed": 1}
    assert await ids.users.lift_login_ban(system, "alice") == 0  # nothing left to lift

    await ids.users.create(system, NewUser(name="bob", email="b@example.com", password=PW))
    for i in range(ids.policy.max_failures_per_ip):  # one address guessing many names: the IP is banned
        with pytest.raises(Unauthenticated):
            await ids.sessions.login(Credentials(name=f"nobody{i}", password="wrong"), ip="10.0.3.1", user_agent=None)
    await ids.users.lift_login_ban(system, "bob")
    with pytest.raises(RateLimited):
        await ids.sessions.login(Credentials(name="bob", password=PW), ip="10.0.3.1", user_agent=None)


async def test_lifting_the_ban_of_an_unknown_user_is_not_found(ids, system, memory):
    with pytest.raises(NotFound):
        await ids.users.lift_login_ban(system, "ghost")
    assert not [e for e in memory.audit if e.action == "auth.ban_lift"]
