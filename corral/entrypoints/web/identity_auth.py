"""The real WebAuth: bearer tokens, HTTP Basic with a token as password, session cookies with CSRF."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable

from aiohttp import web

from corral.core.errors import PermissionDenied, Unauthenticated
from corral.core.identity.kit import IdentityServices
from corral.core.identity.model import AuthMethod, Principal
from corral.core.identity.sessions import check_csrf
from corral.entrypoints.web.forwarded import client_ip

__all__ = ["CSRF_HEADER", "IDENTITY", "SESSION_COOKIE", "IdentityWebAuth", "client_ip", "install"]

SESSION_COOKIE = "corral_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
IDENTITY: web.AppKey[IdentityServices] = web.AppKey("corral_identity", IdentityServices)


def install(identity: IdentityServices) -> Callable[[web.Application], None]:
    """An app hook making the identity services available to handlers as ``request.app[IDENTITY]``."""

    def hook(app: web.Application) -> None:
        app[IDENTITY] = identity

    return hook


class IdentityWebAuth:
    """Authenticates from ``Authorization: Bearer``, ``Authorization: Basic`` (token as password, any user
    name, for git clients) or the session cookie; cookie-authenticated mutations must carry X-CSRF-Token."""

    def __init__(self, identity: IdentityServices) -> None:
        self.identity = identity

    async def authenticate(self, request: web.Request) -> Principal | None:
        ip = client_ip(request)
        header = request.headers.get("Authorization")
        if header:
            scheme, _, value = header.partition(" ")
            scheme = scheme.lower()
            if scheme == "bearer":
                return await self.identity.tokens.authenticate(value.strip(), method=AuthMethod.TOKEN, ip_addr=ip)
            if scheme == "basic":
                try:
                    decoded = base64.b64decode(value.strip(), validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    raise Unauthenticated("malformed HTTP Basic credentials") from None
                _user, _, secret = decoded.partition(":")
                return await self.identity.tokens.authenticate(secret, method=AuthMethod.BASIC, ip_addr=ip)
            raise Unauthenticated("unsupported Authorization scheme: use Bearer <token> or Basic with a token")
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            principal, csrf_digest = await self.identity.sessions.authenticate(cookie, ip_addr=ip)
            if request.method not in _SAFE and not check_csrf(csrf_digest, request.headers.get(CSRF_HEADER)):
                raise PermissionDenied(
                    f"cookie-authenticated changes need the {CSRF_HEADER} header with the csrf_token from login"
                )
            return principal
        return None

    async def authorize(
        self, request: web.Request, principal: Principal | None, permission: str, project_id: uuid.UUID | None
    ) -> None:
        if principal is None:
            raise Unauthenticated("authentication required")
        await self.identity.authorizer.authorize(principal, permission, project_id)
