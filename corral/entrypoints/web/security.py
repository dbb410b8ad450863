"""The authentication/authorization hook between the web layer and the identity domain.

The web layer knows nothing about users or roles: it asks a ``WebAuth`` who is
calling and whether they may do what the matched route declares. The identity
domain supplies the real implementation through the bootstrap; until then the
app runs with ``DenyAllAuth`` and every non-public route answers 401.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from aiohttp import web

from corral.core.errors import NotFound, PermissionDenied, Unauthenticated

__all__ = ["DenyAllAuth", "ProjectLookup", "RequestProjectLookup", "UuidProjectLookup", "WebAuth"]


class WebAuth(Protocol):
    """Authentication and authorization for HTTP requests."""

    async def authenticate(self, request: web.Request) -> Any | None:
        """The principal behind the request's credentials, or None when it carries none.

        Credentials that are present but invalid (unknown or expired token,
        bad session) raise Unauthenticated.
        """
        ...

    async def authorize(
        self, request: web.Request, principal: Any | None, permission: str, project_id: uuid.UUID | None
    ) -> None:
        """Raise PermissionDenied (or Unauthenticated for an anonymous caller) unless allowed.

        ``project_id`` None means a global check. Every decision goes through the RBAC resolver.
        """
        ...


class ProjectLookup(Protocol):
    """Resolves the project scope of a request: "owner/name" (or a project id) → project id."""

    async def project_id(self, owner: str, name: str) -> uuid.UUID:
        """The id of ``owner/name``; NotFound if there is no such project."""
        ...

    async def project_ref(self, ref: str) -> uuid.UUID:
        """The id of "owner/name" or of a project id given as a string; NotFound otherwise."""
        ...

    async def project_names(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The reverse lookup for listings: "owner/name" of each known id (unknown ids are left out)."""
        ...


class RequestProjectLookup(Protocol):
    """Optional extension of a ProjectLookup: resolve the path's project for one request.

    The security middleware prefers it when the lookup offers it, so an implementation can keep what it
    loaded on the request (the authorization and the handler then do not load the project again).
    """

    async def project_id_for(self, request: web.Request, owner: str, name: str) -> uuid.UUID:
        """As ``ProjectLookup.project_id``, for ``request``."""
        ...


class DenyAllAuth:
    """No identity domain wired: nobody is authenticated, nothing is allowed."""

    async def authenticate(self, request: web.Request) -> Any | None:
        return None

    async def authorize(
        self, request: web.Request, principal: Any | None, permission: str, project_id: uuid.UUID | None
    ) -> None:
        if principal is None:
            raise Unauthenticated("authentication required")
        raise PermissionDenied(f"{permission} is not granted")


class UuidProjectLookup:
    """Project references by id only (before the projects domain is wired)."""

    async def project_id(self, owner: str, name: str) -> uuid.UUID:
        raise NotFound(f"project {owner}/{name} not found")

    async def project_ref(self, ref: str) -> uuid.UUID:
        try:
            return uuid.UUID(ref)
        except ValueError:
            raise NotFound(f"project {ref} not found") from None

    async def project_names(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        return {}
