"""TOTP second factor: enrol, confirm (which issues recovery codes), verify at login, disable."""

from __future__ import annotations

from datetime import datetime

import attrs

from corral.core.clock import Clock
from corral.core.errors import Conflict, InvalidInput, PermissionDenied, Unavailable
from corral.core.identity import totp
from corral.core.identity.commands import TotpCode
from corral.core.identity.credentials import digest, new_recovery_code
from corral.core.identity.model import Principal, TotpEnrolment
from corral.core.identity.ports import AuthzCache
from corral.core.identity.recording import record
from corral.core.identity.regulation import LoginRegulator, totp_key
from corral.core.identity.totp_seal import TotpSealer
from corral.core.uow import UnitOfWorkFactory

__all__ = ["RECOVERY_CODES", "Enrolment", "TotpService", "check_second_factor", "sealer_of"]

RECOVERY_CODES = 10


def sealer_of(sealer: TotpSealer | None) -> TotpSealer:
    if sealer is None:
        raise Unavailable("TOTP needs the master key, which is not configured for the identity services")
    return sealer


def check_second_factor(
    enrolment: TotpEnrolment, code: str, now: datetime, sealer: TotpSealer | None
) -> TotpEnrolment | None:
    """The enrolment after accepting ``code`` (a TOTP code or an unused recovery code), or None if wrong.

    An accepted TOTP step is remembered so the same code is not accepted twice; a recovery code is used up.
    Recovery codes are checked first: they are hashes, so they work even if the sealed secret cannot be opened.
    """
    hashed = digest(code.strip().lower())
    if hashed in enrolment.recovery_hashes:
        return attrs.evolve(enrolment, recovery_hashes=enrolment.recovery_hashes - {hashed})
    secret = sealer_of(sealer).open(enrolment.user_id, enrolment.secret)
    step = totp.matching_step(secret, code, now.timestamp(), after_step=enrolment.last_step)
    if step is not None:
        return attrs.evolve(enrolment, last_step=step)
    return None


@attrs.frozen
class Enrolment:
    secret: str = attrs.field(repr=False)
    uri: str = attrs.field(repr=False)


@attrs.define
class TotpService:
    uow_factory: UnitOfWorkFactory
    cache: AuthzCache
    clock: Clock
    # wrong codes count against the user's TOTP key, shared with the codes tried at login
    regulator: LoginRegulator
    sealer: TotpSealer | None = None  # the secrets envelope's cipher and master key ring

    async def enrol(self, principal: Principal) -> Enrolment:
        """Start (or restart, while unconfirmed) enrolment: a new secret for the authenticator app."""
        if principal.is_agent or principal.scopes is not None:
            raise PermissionDenied("TOTP is enrolled by a human in a browser session, not with an API token")
        async with self.uow_factory() as uow:
            current = await uow.totp.get(principal.user_id)
            if current is not None and current.confirmed_at is not None:
                raise Conflict("TOTP is already enabled; disable it first to enrol a new device")
            secret = totp.new_secret()
            sealed = sealer_of(self.sealer).seal(principal.user_id, secret)
            await uow.totp.put(
                TotpEnrolment(user_id=principal.user_id, secret=sealed, created_at=self.clock.now())
            )
            await record(uow, self.clock, principal, "totp.enrol", "user", resource_id=principal.user_id)
            await uow.commit()
        return Enrolment(secret=secret, uri=totp.provisioning_uri(secret, principal.name))

    async def confirm(self, principal: Principal, command: TotpCode) -> list[str]:
        """Turn TOTP on with a first valid code; returns the recovery codes (shown once).

        Wrong codes are regulated like wrong TOTP codes at login (same key, same limits)."""
        code = command.code
        key = totp_key(principal.user_id)
        now = self.clock.now()
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        async with self.uow_factory() as uow:
            await self.regulator.ensure_allowed(uow, [key], "wrong TOTP codes")
            current = await uow.totp.get(principal.user_id)
            if current is None:
                raise Conflict("start with POST /api/v1/auth/totp to get a secret")
            if current.confirmed_at is not None:
                raise Conflict("TOTP is already enabled")
            secret = sealer_of(self.sealer).open(principal.user_id, current.secret)
            step = totp.matching_step(secret, code, now.timestamp())
            if step is not None:
                enabled = attrs.evolve(
                    current, confirmed_at=now, last_step=step, recovery_hashes=frozenset(digest(c) for c in codes)
                )
                await uow.totp.put(enabled)
                await record(uow, self.clock, principal, "totp.enable", "user", resource_id=principal.user_id)
                await uow.commit()
        if step is None:  # counted after that unit of work ended: its rollback must not undo the count
            await self._fail(principal, key, "totp.confirm_failed")
            raise InvalidInput("wrong code: check the device clock and the secret", field="code")
        await self.cache.invalidate("totp.enable")
        return codes

    async def disable(self, principal: Principal, command: TotpCode) -> None:
        """Turn TOTP off; needs a current code or a recovery code.

        Wrong codes are regulated like wrong TOTP codes at login (same key, same limits), so a stolen session
        cannot guess its way through."""
        code = command.code
        key = totp_key(principal.user_id)
        now = self.clock.now()
        wrong = False
        async with self.uow_factory() as uow:
            await self.regulator.ensure_allowed(uow, [key], "wrong TOTP codes")
            current = await uow.totp.get(principal.user_id)
            if current is None:
                raise Conflict("TOTP is not enabled")
            wrong = current.confirmed_at is not None and check_second_factor(current, code, now, self.sealer) is None
            if not wrong:
                await uow.totp.delete(principal.user_id)
                await record(uow, self.clock, principal, "totp.disable", "user", resource_id=principal.user_id)
                await uow.commit()
        if wrong:  # counted after that unit of work ended: its rollback must not undo the count
            await self._fail(principal, key, "totp.disable_failed")
            raise InvalidInput("wrong code", field="code")
        await self.cache.invalidate("totp.disable")

    async def _fail(self, principal: Principal, key: str, action: str) -> None:
        await self.regulator.fail(
            principal, [key], action, {"reason": "bad_totp"}, resource="user", resource_id=principal.user_id
        )
