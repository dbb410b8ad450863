"""Response shapes of the identity API: you, users, tokens, roles, bindings, delegations, sessions, audit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import attrs

__all__ = [
    "AuditEntryOut",
    "BanLiftOut",
    "BindingOut",
    "DelegationOut",
    "DelegationsOut",
    "ExplanationOut",
    "ForcedSettingsOut",
    "GrantOut",
    "IdentitySettingsOut",
    "IssuedTokenOut",
    "MeOut",
    "MeRoleOut",
    "MemberOut",
    "PermissionOut",
    "RecoveryCodesOut",
    "RoleOut",
    "SessionOut",
    "SessionStartedOut",
    "TokenOut",
    "TotpEnrolmentOut",
    "UserDetailOut",
    "UserOut",
    "UserRoleOut",
    "UserSummaryOut",
]


@attrs.frozen
class UserOut:
    """A user (human or agent)."""

    id: uuid.UUID
    name: str
    email: str
    display_name: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


@attrs.frozen
class UserSummaryOut:
    """A user as any signed-in user may see them (search results, project members)."""

    id: uuid.UUID
    name: str
    display_name: str | None


@attrs.frozen
class MemberOut:
    """A member of a project: roles applying there, effective permissions there, and why they are a member."""

    user: UserSummaryOut
    roles: list[str]
    permissions: list[str]
    via: list[Literal["owner", "binding", "delegation"]]


@attrs.frozen
class UserRoleOut:
    """A role binding of a user."""

    id: uuid.UUID
    role: str
    project: str | None
    project_id: uuid.UUID | None


@attrs.frozen
class UserDetailOut(UserOut):
    """A user with their role bindings."""

    roles: list[UserRoleOut]


@attrs.frozen
class MeRoleOut:
    """A role you hold, globally (project null) or in a project."""

    role: str
    project: str | None


@attrs.frozen
class MeOut:
    """Who you are and what you may do globally (for a token: what the token can do)."""

    name: str
    email: str | None
    display_name: str | None
    is_active: bool
    is_agent: bool
    auth_method: str
    roles: list[MeRoleOut]
    permissions: list[str]
    totp_enrolment_required: bool


@attrs.frozen
class PermissionOut:
    """A permission of the catalogue."""

    name: str
    description: str


@attrs.frozen
class GrantOut:
    """One step of an explanation: a role binding, an ownership, a delegation or a token restriction."""

    kind: str
    role: str | None
    delegation_id: uuid.UUID | None
    delegator_id: uuid.UUID | None
    project: str | None
    expires_at: datetime | None


@attrs.frozen
class ExplanationOut:
    """Why a user holds (one path) or lacks (what was looked at) a permission."""

    allowed: bool
    because: list[str]
    path: list[GrantOut]


@attrs.frozen
class TokenOut:
    """An API token (never its secret)."""

    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    project: str | None
    project_id: uuid.UUID | None
    expires_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


@attrs.frozen
class IssuedTokenOut(TokenOut):
    """A new API token with its secret (shown once)."""

    token: str


@attrs.frozen
class BanLiftOut:
    """The login bans lifted for a user."""

    user: str
    bans_removed: int


@attrs.frozen
class RoleOut:
    """A role and the permissions a binding to it grants."""

    id: uuid.UUID
    name: str
    description: str | None
    is_system: bool
    permissions: list[str]


@attrs.frozen
class BindingOut:
    """A role binding: a user holds a role, globally (project null) or in one project."""

    id: uuid.UUID
    user: str
    user_id: uuid.UUID
    role: str
    project: str | None
    project_id: uuid.UUID | None
    granted_by: str | None
    created_at: datetime


@attrs.frozen
class DelegationOut:
    """One delegated permission."""

    id: uuid.UUID
    delegator_id: uuid.UUID
    delegate_id: uuid.UUID
    permission: str
    project: str | None
    project_id: uuid.UUID | None
    expires_at: datetime | None
    reason: str | None
    created_at: datetime
    revoked_at: datetime | None


@attrs.frozen
class DelegationsOut:
    """The delegations made by one request (one per permission); ``id`` is the first one's."""

    id: uuid.UUID
    ids: list[uuid.UUID]
    delegate: str
    permissions: list[str]
    project: str | None
    project_id: uuid.UUID | None
    expires_at: datetime | None
    reason: str | None
    items: list[DelegationOut]


@attrs.frozen
class ForcedSettingsOut:
    """Which settings the configuration forces on (the admin setting cannot turn them off)."""

    require_totp_for_admins: bool


@attrs.frozen
class IdentitySettingsOut:
    """The identity settings in effect."""

    require_totp_for_admins: bool
    forced_by_configuration: ForcedSettingsOut


@attrs.frozen
class AuditEntryOut:
    """Who did what to which resource, from where."""

    id: uuid.UUID
    actor_id: uuid.UUID
    actor: str
    action: str
    resource: str
    resource_id: uuid.UUID | None
    project: str | None
    project_id: uuid.UUID | None
    detail: dict[str, Any]
    ip_addr: str | None
    created_at: datetime


@attrs.frozen
class SessionStartedOut:
    """A new login session: send its csrf_token in X-CSRF-Token with cookie-authenticated changes."""

    user: UserOut
    csrf_token: str
    expires_at: datetime


@attrs.frozen
class SessionOut:
    """One of your login sessions."""

    id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip_addr: str | None
    user_agent: str | None
    current: bool


@attrs.frozen
class TotpEnrolmentOut:
    """The TOTP secret for your authenticator app (shown once)."""

    secret: str
    otpauth_uri: str


@attrs.frozen
class RecoveryCodesOut:
    """Recovery codes, each usable once instead of a TOTP code (shown once)."""

    recovery_codes: list[str]
