"""Login regulation (Authelia's regulation): failures are counted per key; past a limit the key is banned.

One regulator guards every place a secret of the user is guessed: the password at login and at a password
change (keys ``user:NAME`` and ``ip:ADDR``), and TOTP codes at login, at enrolment confirmation and when
turning TOTP off (key ``totp:USER_ID``, on top of the others at login).

TOTP keys have a second, longer limit: a 6-digit code with the ±1 step window accepts 3 of 10**6 guesses, so
``max_failures_per_user`` per ``find_time`` alone (about 1,000 guesses a day) would let a patient attacker who
holds the password through in months. With at most ``totp_daily_failures`` wrong codes per
``totp_lockout`` (20 a day by default) the expected wait for one accepted guess is about 46 years.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import attrs

from corral.core.clock import Clock
from corral.core.errors import RateLimited
from corral.core.identity.model import Principal
from corral.core.identity.recording import record
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["AuthPolicy", "LoginRegulator", "ip_key", "totp_key", "user_key"]


@attrs.frozen
class AuthPolicy:
    """Session lifetimes and login regulation (Authelia's max_retries / find_time / ban_time)."""

    session_idle: timedelta = timedelta(hours=2)
    session_max: timedelta = timedelta(hours=24)
    max_failures_per_user: int = 5
    max_failures_per_ip: int = 20
    find_time: timedelta = timedelta(minutes=2)
    ban_time: timedelta = timedelta(minutes=5)
    require_totp_for_admins: bool = False
    totp_daily_failures: int = 20  # wrong TOTP codes of one user within totp_lockout before a long ban
    totp_lockout: timedelta = timedelta(hours=24)  # that window, and the ban's length


def user_key(name: str) -> str:
    return f"user:{name}"


def ip_key(ip: str) -> str:
    return f"ip:{ip}"


def totp_key(user_id: uuid.UUID) -> str:
    return f"totp:{user_id}"


@attrs.define
class LoginRegulator:
    uow_factory: UnitOfWorkFactory
    clock: Clock
    policy: AuthPolicy

    def keys(self, name: str, ip: str | None) -> list[str]:
        """The keys a password guess by ``name`` from ``ip`` counts against."""
        return [user_key(name)] + ([ip_key(ip)] if ip else [])

    def horizon(self) -> timedelta:
        """How long failures and bans must be kept for every limit to see them."""
        p = self.policy
        return max(p.find_time, p.ban_time, p.totp_lockout)

    async def ensure_allowed(self, uow: UnitOfWork, keys: list[str], what: str) -> None:
        """RateLimited (with Retry-After) while any of ``keys`` is banned; ``what`` names the failures."""
        now = self.clock.now()
        banned = await uow.login_throttle.banned_until(keys, now)
        if banned is not None:
            raise RateLimited(
                f"too many {what}; try again later", retry_after=max(1, int((banned - now).total_seconds()))
            )

    def _limits(self, key: str) -> list[tuple[timedelta, int, timedelta]]:
        """(window, failures allowed in it, ban length) for one key."""
        p = self.policy
        kind = key.split(":", 1)[0]
        if kind == "ip":
            return [(p.find_time, p.max_failures_per_ip, p.ban_time)]
        limits = [(p.find_time, p.max_failures_per_user, p.ban_time)]
        if kind == "totp":
            limits.append((p.totp_lockout, p.totp_daily_failures, p.totp_lockout))
        return limits

    async def fail(
        self, actor: Principal, keys: list[str], action: str, detail: dict[str, object], *,
        resource: str = "session", resource_id: uuid.UUID | None = None,
    ) -> None:
        """Count one failure against ``keys``, audit it as ``action``, and ban (audited) every key over a limit.

        Runs in its own unit of work so the failure is kept when the caller's work is rolled back."""
        now = self.clock.now()
        async with self.uow_factory() as uow:
            await uow.login_throttle.record_failure(keys, now)
            await record(uow, self.clock, actor, action, resource, resource_id=resource_id, detail=detail)
            for key in keys:
                until = None
                for window, limit, ban in self._limits(key):
                    if await uow.login_throttle.failures_since(key, now - window) >= limit:
                        until = max(until or now, now + ban)
                if until is not None:
                    await uow.login_throttle.ban(key, until)
                    await record(
                        uow, self.clock, actor, "auth.ban", "login",
                        detail={"key": key.split(":", 1)[0], "name": actor.name[:64], "until": until.isoformat()},
                    )
            await uow.commit()
