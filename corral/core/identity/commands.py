"""Typed commands of the identity use cases (see ``corral.core.commands``).

The classes check the shape of a request (types, unknown and missing fields); the services keep checking
the values (name rules, lengths, permission names, times in the future).
A ``project`` field names a project ("owner/name" or its id); the edge resolves it and passes the id along.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from corral.core.commands import UNSET, Unset

__all__ = ["Credentials", "IdentitySettingsChanges", "NewBinding", "NewDelegation", "NewRole", "NewToken",
           "NewUser", "PasswordChange", "RolePermissions", "TotpCode", "UserChanges"]


def _doc(text: str) -> dict[str, object]:
    return {"doc": text}


@attrs.frozen(kw_only=True)
class Credentials:
    """Log in with a name and a password (and the TOTP or a recovery code when TOTP is on)."""

    name: str = attrs.field(metadata=_doc("user name"))
    password: str = attrs.field(repr=False)
    totp_code: str | None = attrs.field(default=None, repr=False,
                                        metadata=_doc("TOTP code or recovery code, when TOTP is on"))


@attrs.frozen(kw_only=True)
class PasswordChange:
    """Change your own password."""

    current_password: str = attrs.field(repr=False)
    new_password: str = attrs.field(repr=False, metadata=_doc("8 to 1024 characters"))


@attrs.frozen(kw_only=True)
class TotpCode:
    """A code of your authenticator app (or, to turn TOTP off, a recovery code)."""

    code: str = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class NewToken:
    """Create an API token."""

    name: str = attrs.field(metadata=_doc("1-100 characters"))
    scopes: list[str] = attrs.field(metadata=_doc("permission names the token may use (at least one)"))
    project: str | None = attrs.field(default=None, metadata=_doc("owner/name or project id: restrict the token "
                                                                  "to one project"))
    expires_at: datetime | None = attrs.field(default=None, metadata=_doc("ISO-8601 time with a timezone"))
    user: str | None = attrs.field(default=None, metadata=_doc("the owner's name (default: you; others need "
                                                               "admin:users)"))


@attrs.frozen(kw_only=True)
class NewUser:
    """Create a user; ``agent``: an agent (tokens only, no password)."""

    name: str = attrs.field(metadata=_doc("1-63 letters, digits, '.', '_' or '-'"))
    email: str
    password: str | None = attrs.field(default=None, repr=False, metadata=_doc("8 to 1024 characters; omit "
                                                                               "for an agent"))
    display_name: str | None = None
    agent: bool = False
    admin: bool = attrs.field(default=False, metadata=_doc("bind the admin role globally"))


@attrs.frozen(kw_only=True)
class UserChanges:
    """Change a user: only the fields sent change; is_active false (or a new password) ends their sessions."""

    display_name: str | Unset | None = UNSET
    email: str | Unset = UNSET
    is_active: bool | Unset = UNSET
    password: str | Unset = attrs.field(default=UNSET, repr=False)


@attrs.frozen(kw_only=True)
class NewRole:
    """Create a custom role."""

    name: str = attrs.field(metadata=_doc("lowercase letters, digits, '-' or '_', starting with a letter"))
    permissions: list[str] = attrs.field(factory=list)
    description: str | None = None


@attrs.frozen(kw_only=True)
class RolePermissions:
    """A role's permissions (replacing the current ones)."""

    permissions: list[str]


@attrs.frozen(kw_only=True)
class NewBinding:
    """Give a user a role, globally or in one project."""

    user: str = attrs.field(metadata=_doc("user name"))
    role: str = attrs.field(metadata=_doc("role name"))
    project: str | None = attrs.field(default=None, metadata=_doc("owner/name or project id; omit for global"))


@attrs.frozen(kw_only=True)
class NewDelegation:
    """Delegate permissions you hold to another user or agent (one delegation per permission)."""

    delegate: str = attrs.field(metadata=_doc("user name"))
    permissions: list[str]
    project: str | None = attrs.field(default=None, metadata=_doc("owner/name or project id; omit for global"))
    expires_at: datetime | None = attrs.field(default=None, metadata=_doc("ISO-8601 time with a timezone"))
    reason: str | None = attrs.field(default=None, metadata=_doc("at most 500 characters"))


@attrs.frozen(kw_only=True)
class IdentitySettingsChanges:
    """The identity settings an admin changes at run time."""

    require_totp_for_admins: bool
