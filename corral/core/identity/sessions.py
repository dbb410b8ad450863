"""Login, logout, session cookies, CSRF, and login regulation (temporary bans after repeated failures)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import attrs

from corral.core.audit.model import SYSTEM_ACTOR_ID
from corral.core.clock import Clock
from corral.core.errors import InvalidInput, NotFound, Unauthenticated
from corral.core.identity.catalogue import ADMIN_ROLE, AGENT_ROLE
from corral.core.identity.commands import Credentials
from corral.core.identity.credentials import digest, matches, new_secret
from corral.core.identity.mfa import check_second_factor
from corral.core.identity.model import AuthMethod, AuthSession, Principal, TotpEnrolment, User
from corral.core.identity.ports import AuthzCache, CachedCredential, PasswordHasher
from corral.core.identity.recording import record
from corral.core.identity.regulation import AuthPolicy, LoginRegulator, totp_key
from corral.core.identity.tokens import UsageRecorder
from corral.core.identity.totp_seal import TotpSealer
from corral.core.identity.users import UNUSABLE_PASSWORD
from corral.core.ids import uuid7
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = [
    "REQUIRE_TOTP_FOR_ADMINS",
    "AuthPolicy",
    "LoginResult",
    "SessionService",
    "check_csrf",
    "start_session",
    "totp_required_for_admins",
]

# verified against when the user does not exist, so timing does not reveal which names exist
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$7lvmlrDFw/N4mMEUJ5y+0ElvUvzuVb0o2Xw6ZRfPKm4"
)


REQUIRE_TOTP_FOR_ADMINS = "require_totp_for_admins"  # the identity setting's key


async def totp_required_for_admins(uow: UnitOfWork, policy: AuthPolicy) -> bool:
    """The configuration forces it on; otherwise the admin setting decides (off by default)."""
    return policy.require_totp_for_admins or await uow.identity_settings.get(REQUIRE_TOTP_FOR_ADMINS) is True


@attrs.frozen
class LoginResult:
    user: User
    session: AuthSession
    cookie: str = attrs.field(repr=False)  # the session cookie value (shown once)
    csrf_token: str = attrs.field(repr=False)


async def start_session(
    uow: UnitOfWork, user: User, now: datetime, policy: AuthPolicy, ip: str | None, user_agent: str | None
) -> tuple[AuthSession, str, str]:
    """Add a new session of ``user``; returns it with its cookie value and CSRF token (both shown once)."""
    cookie, csrf = new_secret(), new_secret()
    session = AuthSession(
        id=uuid7(),
        user_id=user.id,
        token_hash=digest(cookie),
        csrf_hash=digest(csrf),
        created_at=now,
        last_seen_at=now,
        expires_at=now + policy.session_max,
        ip_addr=ip,
        user_agent=(user_agent or "")[:300] or None,
    )
    await uow.sessions.add(session)
    return session, cookie, csrf


def _anonymous(name: str, ip: str | None) -> Principal:
    return Principal(
        user_id=SYSTEM_ACTOR_ID, name=name[:64] or "anonymous", method=AuthMethod.SESSION, ip_addr=ip
    )


@attrs.define
class SessionService:
    uow_factory: UnitOfWorkFactory
    hasher: PasswordHasher
    cache: AuthzCache
    clock: Clock
    usage: UsageRecorder
    policy: AuthPolicy = attrs.field(factory=AuthPolicy)
    totp_sealer: TotpSealer | None = None
    regulator: LoginRegulator = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.regulator = LoginRegulator(self.uow_factory, self.clock, self.policy)

    async def login(
        self,
        credentials: Credentials,
        *,
        ip: str | None,
        user_agent: str | None,
    ) -> LoginResult:
        """Check credentials (and the second factor when enrolled); start a session.

        Failures are counted per user name and per IP; past the limit within ``find_time`` the name or IP
        is banned for ``ban_time`` (RateLimited) — also for correct credentials — and the ban is audited."""
        name, password, totp_code = credentials.name, credentials.password, credentials.totp_code
        if not name or len(name) > 200:
            raise InvalidInput("name must be your user name", field="name")
        if not password or len(password) > 1024:
            raise InvalidInput("password must be a non-empty string", field="password")
        keys = self.regulator.keys(name, ip)
        now = self.clock.now()
        async with self.uow_factory() as uow:
            user = await uow.users.get_by_name(name)
            # a user whose TOTP is locked is refused before the password is checked (a 429 only after a
            # correct password would confirm the password)
            await self.regulator.ensure_allowed(
                uow, keys + ([totp_key(user.id)] if user is not None else []), "failed logins"
            )
        usable = user is not None and user.is_active and user.password_hash != UNUSABLE_PASSWORD
        ok = await self.hasher.verify(user.password_hash if usable and user else _DUMMY_HASH, password)
        if not (usable and ok):
            await self._fail(name, keys, ip, user, "bad_credentials")
            raise Unauthenticated("wrong user name or password")
        assert user is not None
        failure: str | None = None
        async with self.uow_factory() as uow:
            bindings = await uow.roles.bindings_of(user.id)
            enrolment = await uow.totp.get(user.id)
            if any(b.role_name == AGENT_ROLE and b.project_id is None for b in bindings):
                failure = "agent_password_login"
            elif enrolment is not None and enrolment.confirmed_at is not None:
                if totp_code is None:
                    raise Unauthenticated(
                        "this account needs a TOTP code: send totp_code (or a recovery code)",
                        detail={"totp_required": True},
                    )
                updated = check_second_factor(enrolment, totp_code, now, self.totp_sealer)
                if updated is None:
                    failure = "bad_totp"
                else:
                    await uow.totp.put(updated)
            if failure is None:
                result = await self._start(uow, user, enrolment, now, keys, ip, user_agent)
        # failures are counted after that unit of work ended: its rollback must not undo the count
        if failure == "agent_password_login":
            await self._fail(name, keys, ip, user, failure)
            raise Unauthenticated("agents authenticate with API tokens only")
        if failure == "bad_totp":
            await self._fail(name, [*keys, totp_key(user.id)], ip, user, failure)
            raise Unauthenticated("wrong TOTP or recovery code", detail={"totp_required": True})
        return result

    async def _start(
        self, uow: UnitOfWork, user: User, enrolment: TotpEnrolment | None, now: datetime, keys: list[str],
        ip: str | None, user_agent: str | None,
    ) -> LoginResult:
        """Open the session of a login that passed every check, in ``uow``, and commit."""
        session, cookie, csrf = await start_session(uow, user, now, self.policy, ip, user_agent)
        await uow.login_throttle.clear(keys[0])
        actor = Principal(user_id=user.id, name=user.name, method=AuthMethod.SESSION, ip_addr=ip)
        await record(
            uow,
            self.clock,
            actor,
            "auth.login",
            "session",
            resource_id=session.id,
            detail={"method": "password" + ("+totp" if enrolment and enrolment.confirmed_at else "")},
        )
        await uow.commit()
        return LoginResult(user=user, session=session, cookie=cookie, csrf_token=csrf)

    async def _fail(self, name: str, keys: list[str], ip: str | None, user: User | None, why: str) -> None:
        actor = (
            _anonymous(name, ip)
            if user is None
            else Principal(user_id=user.id, name=user.name, method=AuthMethod.SESSION, ip_addr=ip)
        )
        await self.regulator.fail(
            actor, keys, "auth.login_failed", {"name": name[:64], "reason": why},
            resource_id=user.id if user else None,
        )

    async def purge(self) -> int:
        """Delete expired sessions and login failures no window counts any more; returns sessions deleted."""
        now = self.clock.now()
        async with self.uow_factory() as uow:
            deleted = await uow.sessions.delete_expired(now, now - self.policy.session_idle)
            await uow.login_throttle.prune(now - self.regulator.horizon())
            await uow.commit()
        return deleted

    async def logout(self, principal: Principal) -> None:
        if principal.session_id is None:
            raise InvalidInput(
                "logout ends a cookie session; revoke API tokens with DELETE /api/v1/tokens/{id}"
            )
        async with self.uow_factory() as uow:
            await uow.sessions.delete(principal.session_id)
            await record(
                uow, self.clock, principal, "auth.logout", "session", resource_id=principal.session_id
            )
            await uow.commit()
        await self.cache.invalidate("auth.logout")

    async def list_sessions(self, principal: Principal) -> list[AuthSession]:
        async with self.uow_factory() as uow:
            return await uow.sessions.list_for_user(principal.user_id)

    async def revoke_session(self, principal: Principal, session_id: uuid.UUID) -> None:
        async with self.uow_factory() as uow:
            session = await uow.sessions.get(session_id)
            if session is None or session.user_id != principal.user_id:
                raise NotFound(f"you have no session {session_id}")
            await uow.sessions.delete(session_id)
            await record(uow, self.clock, principal, "session.revoke", "session", resource_id=session_id)
            await uow.commit()
        await self.cache.invalidate("session.revoke")

    async def authenticate(self, cookie: str, *, ip_addr: str | None) -> tuple[Principal, str]:
        """The principal of a session cookie and the session's CSRF digest; Unauthenticated when unknown,
        past its absolute expiry or idle longer than the inactivity timeout."""
        if not cookie or len(cookie) > 200:
            raise Unauthenticated("no valid session")
        key = "ses:" + digest(cookie)
        now = self.clock.now()
        cred = await self.cache.get_credential(key)
        if cred is None:
            generation = self.cache.generation()
            cred = await self._load(key[4:])
            if cred is None:
                raise Unauthenticated("your session has ended; log in again")
            assert cred.expires_at is not None
            await self.cache.put_credential(
                key, cred, min(cred.expires_at, now + timedelta(minutes=5)), generation
            )
        session_id = cred.principal.session_id
        assert session_id is not None
        assert cred.expires_at is not None
        assert cred.last_seen_at is not None
        last = max(cred.last_seen_at, self.usage.last_seen(session_id) or cred.last_seen_at)
        if cred.expires_at <= now or now - last > self.policy.session_idle:
            raise Unauthenticated("your session has expired; log in again")
        self.usage.touch_session(session_id, now)
        p = (
            cred.principal
            if cred.principal.ip_addr == ip_addr
            else attrs.evolve(cred.principal, ip_addr=ip_addr)
        )
        return p, cred.csrf_digest or ""

    async def _load(self, token_hash: str) -> CachedCredential | None:
        async with self.uow_factory() as uow:
            session = await uow.sessions.get_by_hash(token_hash)
            if session is None:
                return None
            user = await uow.users.get(session.user_id)
            if user is None or not user.is_active:
                return None
            needs_totp = await self._needs_totp(uow, user)
            bindings = await uow.roles.bindings_of(user.id)
        principal = Principal(
            user_id=user.id,
            name=user.name,
            method=AuthMethod.SESSION,
            session_id=session.id,
            needs_totp_enrolment=needs_totp,
            email=user.email,
            display_name=user.display_name,
            roles=tuple((b.role_name, b.project_id) for b in bindings),
        )
        return CachedCredential(
            principal=principal,
            expires_at=session.expires_at,
            last_seen_at=session.last_seen_at,
            csrf_digest=session.csrf_hash,
        )

    async def _needs_totp(self, uow: UnitOfWork, user: User) -> bool:
        if not await totp_required_for_admins(uow, self.policy):
            return False
        bindings = await uow.roles.bindings_of(user.id)
        if not any(b.role_name == ADMIN_ROLE for b in bindings):
            return False
        enrolment = await uow.totp.get(user.id)
        return enrolment is None or enrolment.confirmed_at is None


def check_csrf(csrf_digest: str, presented: str | None) -> bool:
    """A cookie-authenticated mutation must echo the login's csrf_token in X-CSRF-Token."""
    return bool(presented) and bool(csrf_digest) and matches(presented or "", csrf_digest)
