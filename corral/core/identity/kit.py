"""Every identity service wired over one unit-of-work factory, cache, hasher and clock."""

from __future__ import annotations

import attrs

from corral.core.clock import Clock
from corral.core.identity.access import Authorizer
from corral.core.identity.mfa import TotpService
from corral.core.identity.passwords import PasswordService
from corral.core.identity.ports import AuthzCache, ImplicitRights, PasswordHasher
from corral.core.identity.rbac import RbacService
from corral.core.identity.sessions import AuthPolicy, SessionService
from corral.core.identity.settings import IdentitySettingsService
from corral.core.identity.tokens import TokenService, UsageRecorder
from corral.core.identity.totp_seal import TotpSealer
from corral.core.identity.users import UserService
from corral.core.uow import UnitOfWorkFactory

__all__ = ["IdentityServices"]


@attrs.define
class IdentityServices:
    """The identity use cases sharing their collaborators (what bootstrap builds once per app)."""

    uow_factory: UnitOfWorkFactory
    cache: AuthzCache
    hasher: PasswordHasher
    clock: Clock
    policy: AuthPolicy = attrs.field(factory=AuthPolicy)
    usage: UsageRecorder = attrs.field(factory=UsageRecorder)
    totp_sealer: TotpSealer | None = None  # TOTP secrets at rest (the secrets envelope's cipher and key ring)
    implicit: ImplicitRights | None = None  # rights without a binding (project ownership; see Authorizer)
    authorizer: Authorizer = attrs.field(init=False)
    users: UserService = attrs.field(init=False)
    rbac: RbacService = attrs.field(init=False)
    tokens: TokenService = attrs.field(init=False)
    sessions: SessionService = attrs.field(init=False)
    totp: TotpService = attrs.field(init=False)
    passwords: PasswordService = attrs.field(init=False)
    settings: IdentitySettingsService = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.authorizer = Authorizer(self.uow_factory, self.cache, self.clock, implicit=self.implicit)
        self.users = UserService(self.uow_factory, self.hasher, self.cache, self.clock, self.authorizer)
        self.rbac = RbacService(self.uow_factory, self.authorizer, self.cache, self.clock)
        self.tokens = TokenService(self.uow_factory, self.authorizer, self.cache, self.clock, self.usage)
        self.sessions = SessionService(
            self.uow_factory, self.hasher, self.cache, self.clock, self.usage, self.policy, self.totp_sealer
        )
        self.totp = TotpService(
            self.uow_factory, self.cache, self.clock, self.sessions.regulator, self.totp_sealer
        )
        self.passwords = PasswordService(
            self.uow_factory, self.hasher, self.cache, self.clock, self.sessions.regulator
        )
        self.settings = IdentitySettingsService(self.uow_factory, self.cache, self.clock, self.policy)
