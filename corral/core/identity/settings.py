"""Identity settings an admin changes at run time (on top of the configuration, which can force them on)."""

from __future__ import annotations

import attrs

from corral.core.clock import Clock
from corral.core.identity.commands import IdentitySettingsChanges
from corral.core.identity.model import Principal
from corral.core.identity.ports import AuthzCache
from corral.core.identity.recording import record
from corral.core.identity.sessions import REQUIRE_TOTP_FOR_ADMINS, AuthPolicy, totp_required_for_admins
from corral.core.uow import UnitOfWorkFactory

__all__ = ["REQUIRE_TOTP_FOR_ADMINS", "IdentitySettingsService", "totp_required_for_admins"]

@attrs.define
class IdentitySettingsService:
    uow_factory: UnitOfWorkFactory
    cache: AuthzCache
    clock: Clock
    policy: AuthPolicy

    async def get(self) -> dict[str, object]:
        async with self.uow_factory() as uow:
            stored = await uow.identity_settings.get(REQUIRE_TOTP_FOR_ADMINS)
        return {
            REQUIRE_TOTP_FOR_ADMINS: self.policy.require_totp_for_admins or stored is True,
            "forced_by_configuration": {REQUIRE_TOTP_FOR_ADMINS: self.policy.require_totp_for_admins},
        }

    async def update(self, actor: Principal, changes: IdentitySettingsChanges) -> dict[str, object]:
        """Change settings; admins without TOTP are then limited to enrolling it (at their next request)."""
        value = changes.require_totp_for_admins
        async with self.uow_factory() as uow:
            before = await uow.identity_settings.get(REQUIRE_TOTP_FOR_ADMINS)
            await uow.identity_settings.put(REQUIRE_TOTP_FOR_ADMINS, value, by=actor.user_id, at=self.clock.now())
            await record(uow, self.clock, actor, "settings.update", "identity_settings",
                         detail={"key": REQUIRE_TOTP_FOR_ADMINS, "before": before, "after": value})
            await uow.commit()
        await self.cache.invalidate("settings.update")
        return await self.get()
