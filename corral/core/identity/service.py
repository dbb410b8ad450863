"""The identity domain's use cases, in one place for wiring."""

from __future__ import annotations

from corral.core.identity.access import Authorizer
from corral.core.identity.bootstrap import SYSTEM, ensure_first_admin, ensure_system_roles
from corral.core.identity.mfa import TotpService
from corral.core.identity.rbac import RbacService
from corral.core.identity.sessions import AuthPolicy, LoginResult, SessionService, check_csrf
from corral.core.identity.tokens import TokenService, UsageRecorder
from corral.core.identity.users import UserService

__all__ = [
    "SYSTEM",
    "AuthPolicy",
    "Authorizer",
    "LoginResult",
    "RbacService",
    "SessionService",
    "TokenService",
    "TotpService",
    "UsageRecorder",
    "UserService",
    "check_csrf",
    "ensure_first_admin",
    "ensure_system_roles",
]
