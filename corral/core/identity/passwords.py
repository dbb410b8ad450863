"""Self-service password change: a user proves the current password and sets a new one."""

from __future__ import annotations

import attrs

from corral.core.clock import Clock
from corral.core.errors import InvalidInput, NotFound, PermissionDenied
from corral.core.identity.commands import PasswordChange
from corral.core.identity.model import AuthMethod, Principal
from corral.core.identity.ports import AuthzCache, PasswordHasher
from corral.core.identity.recording import record
from corral.core.identity.regulation import LoginRegulator
from corral.core.identity.sessions import LoginResult, start_session
from corral.core.identity.users import UNUSABLE_PASSWORD, check_password
from corral.core.uow import UnitOfWorkFactory

__all__ = ["PasswordService"]


@attrs.define
class PasswordService:
    uow_factory: UnitOfWorkFactory
    hasher: PasswordHasher
    cache: AuthzCache
    clock: Clock
    regulator: LoginRegulator

    async def change_own(
        self,
        principal: Principal,
        command: PasswordChange,
        *,
        user_agent: str | None,
    ) -> LoginResult:
        """Replace the caller's password after checking the current one; returns a fresh session.

        Only from a login session (not with an API token; agents have no password). A wrong current password
        is a failed login for the regulator (same keys and limits as ``SessionService.login``): past the limit
        the change and logins are refused (RateLimited) for the ban time. On success every session of the user
        ends, the calling one included, and a new session replaces it (its cookie and CSRF token are returned).
        API tokens stay valid: they are revoked one by one (``DELETE /api/v1/tokens/{id}``)."""
        if principal.method is not AuthMethod.SESSION or principal.session_id is None:
            raise PermissionDenied("change your password from a login session, not with an API token")
        current_password = command.current_password
        if not current_password:
            raise InvalidInput("current_password must be your current password", field="current_password")
        new = check_password(command.new_password, field="new_password")
        if new == current_password:
            raise InvalidInput("new_password must differ from the current password", field="new_password")
        keys = self.regulator.keys(principal.name, principal.ip_addr)
        async with self.uow_factory() as uow:
            await self.regulator.ensure_allowed(uow, keys, "failed password checks")
            user = await uow.users.get(principal.user_id)
        if user is None:
            raise NotFound("your user no longer exists")
        if user.password_hash == UNUSABLE_PASSWORD:
            raise PermissionDenied("this account has no password (agents authenticate with API tokens only)")
        if not await self.hasher.verify(user.password_hash, current_password):
            await self.regulator.fail(
                principal, keys, "auth.password_change_failed", {"reason": "bad_current_password"},
                resource="user", resource_id=user.id,
            )
            raise InvalidInput("current_password is wrong", field="current_password")
        new_hash = await self.hasher.hash(new)
        now = self.clock.now()
        async with self.uow_factory() as uow:
            fresh = await uow.users.get(user.id)
            if fresh is None or fresh.password_hash != user.password_hash:  # changed meanwhile: check again
                raise InvalidInput("your password was changed meanwhile; try again", field="current_password")
            updated = attrs.evolve(fresh, password_hash=new_hash, updated_at=now)
            await uow.users.update(updated)
            ended = await uow.sessions.delete_for_user(user.id)
            session, cookie, csrf = await start_session(
                uow, updated, now, self.regulator.policy, principal.ip_addr, user_agent
            )
            await record(
                uow, self.clock, principal, "user.password_change", "user", resource_id=user.id,
                detail={"name": user.name, "sessions_ended": ended, "tokens_kept": True},
            )
            await uow.commit()
        await self.cache.invalidate("user.password_change")
        return LoginResult(user=updated, session=session, cookie=cookie, csrf_token=csrf)
