"""TOTP codes are regulated like passwords: at login, at enrolment confirmation, and with a daily cap."""

from __future__ import annotations

from datetime import timedelta

import pytest

from corral.core.errors import InvalidInput, RateLimited, Unauthenticated
from corral.core.identity import totp
from corral.core.identity.commands import Credentials, NewUser, TotpCode

PW = "correct horse battery"


def wrong_code(secret: str, now: float) -> str:
    """A 6-digit code no step of the ±1 window accepts."""
    for candidate in ("000000", "111111", "222222", "333333"):
        if totp.matching_step(secret, candidate, now) is None:
            return candidate
    raise AssertionError("unreachable")


async def _enrol(ids, system, clock, confirm=True):
    await ids.users.create(system, NewUser(name="alice", email="a@example.com", password=PW))
    session = await ids.sessions.login(Credentials(name="alice", password=PW), ip=None, user_agent=None)
    principal, _ = await ids.sessions.authenticate(session.cookie, ip_addr=None)
    enrolment = await ids.totp.enrol(principal)
    if confirm:
        await ids.totp.confirm(principal, TotpCode(code=totp.code_at(enrolment.secret, clock.now().timestamp())))
    return enrolment.secret, principal


async def test_guessing_the_enrolment_code_gets_banned(ids, system, clock, memory):
    secret, principal = await _enrol(ids, system, clock, confirm=False)
    for _ in range(ids.policy.max_failures_per_user):
        with pytest.raises(InvalidInput):
            await ids.totp.confirm(principal, TotpCode(code=wrong_code(secret, clock.now().timestamp())))
    with pytest.raises(RateLimited) as banned:  # even the right code, while banned
        await ids.totp.confirm(principal, TotpCode(code=totp.code_at(secret, clock.now().timestamp())))
    assert banned.value.retry_after > 0
    actions = [e.action for e in memory.audit]
    assert actions.count("totp.confirm_failed") == ids.policy.max_failures_per_user
    assert [e.detail["key"] for e in memory.audit if e.action == "auth.ban"] == ["totp"]
    assert "totp.enable" not in actions
    clock.advance(ids.policy.ban_time.total_seconds() + 1)
    assert len(await ids.totp.confirm(principal, TotpCode(code=totp.code_at(secret, clock.now().timestamp())))) == 10


async def test_guessing_codes_at_login_hits_a_daily_cap(ids, system, clock, memory):
    secret, principal = await _enrol(ids, system, clock)
    policy = ids.policy
    rounds = policy.totp_daily_failures // policy.max_failures_per_user
    for round_ in range(rounds):
        clock.advance(policy.ban_time.total_seconds() + 1)  # past the short ban (and the code already used)
        for i in range(policy.max_failures_per_user):
            with pytest.raises(Unauthenticated):  # a fresh IP every time: the IP limit never triggers
                await ids.sessions.login(Credentials(name="alice", password=PW,
                                                     totp_code=wrong_code(secret, clock.now().timestamp())),
                                         ip=f"10.{round_}.0.{i}", user_agent=None)
        with pytest.raises(RateLimited):
            await ids.sessions.login(Credentials(name="alice", password=PW,
                                                 totp_code=totp.code_at(secret, clock.now().timestamp())),
                                     ip="10.99.0.1", user_agent=None)
    # the daily cap is reached: the short ban has passed, yet the user stays locked for a day
    clock.advance(policy.ban_time.total_seconds() + 1)
    for password in (PW, "a wrong password"):  # the same answer either way: the lock reveals no password
        with pytest.raises(RateLimited) as locked:
            await ids.sessions.login(Credentials(name="alice", password=password,
                                                 totp_code=totp.code_at(secret, clock.now().timestamp())),
                                     ip="10.99.0.2", user_agent=None)
        assert locked.value.retry_after > timedelta(hours=23).total_seconds()
    failed = [e for e in memory.audit if e.action == "auth.login_failed"]
    assert len(failed) == rounds * policy.max_failures_per_user
    assert all(e.detail["reason"] == "bad_totp" for e in failed)
    # disabling TOTP with a code is locked too
    with pytest.raises(RateLimited):
        await ids.totp.disable(principal, TotpCode(code=totp.code_at(secret, clock.now().timestamp())))
    clock.advance(policy.totp_lockout.total_seconds())
    await ids.sessions.login(Credentials(name="alice", password=PW,
                                         totp_code=totp.code_at(secret, clock.now().timestamp())),
                             ip="10.99.0.3", user_agent=None)


async def test_purge_keeps_failures_the_daily_cap_counts(ids, system, clock, memory):
    secret, _ = await _enrol(ids, system, clock)
    for i in range(ids.policy.max_failures_per_user):
        with pytest.raises(Unauthenticated):
            await ids.sessions.login(Credentials(name="alice", password=PW,
                                                 totp_code=wrong_code(secret, clock.now().timestamp())),
                                     ip=f"10.0.0.{i}", user_agent=None)
    clock.advance(timedelta(hours=1).total_seconds())
    await ids.sessions.purge()
    user = await ids.users.get("alice")
    async with ids.uow_factory() as uow:
        kept = await uow.login_throttle.failures_since(f"totp:{user.id}", clock.now() - timedelta(days=1))
    assert kept == ids.policy.max_failures_per_user
