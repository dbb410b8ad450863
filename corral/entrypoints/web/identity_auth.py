"""The real WebAuth: bearer tokens, HTTP Basic with a token as password, session cookies with CSRF."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable

from aiohttp import web
from yarl import URL

from corral.core.errors import PermissionDenied, Unauthenticated
from corral.core.identity.kit import IdentityServices
from corral.core.identity.model import AuthMethod, Principal
from corral.core.identity.sessions import check_csrf
from corral.entrypoints.web.forwarded import client_ip, is_secure

__all__ = ["CSRF_COOKIE", "CSRF_FIELD", "CSRF_HEADER", "IDENTITY", "SESSION_COOKIE", "IdentityWebAuth", "client_ip",
           "install", "presented_csrf"]

SESSION_COOKIE = "corral_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"  # the hidden field of the web UI's HTML forms
CSRF_COOKIE = "corral_csrf"  # the UI's copy of the session's csrf_token, written into its forms (never read as proof)
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
IDENTITY: web.AppKey[IdentityServices] = web.AppKey("corral_identity", IdentityServices)


def install(identity: IdentityServices) -> Callable[[web.Application], None]:
    """An app hook making the identity services available to handlers as ``request.app[IDENTITY]``."""

    def hook(app: web.Application) -> None:
        app[IDENTITY] = identity

    return hook


def _origin_key(value: str) -> tuple[str, str, int | None] | None:
    try:
        url = URL(value)
    except ValueError:
        return None
    if not url.scheme or not url.host:
        return None
    return url.scheme.lower(), url.host.lower(), url.port


def is_same_origin(request: web.Request, base_url: str | None) -> bool:
    """Whether the request's Origin is the server's own: the configured base URL's, or the scheme and Host the
    request was made to. A request without Origin passes (browsers always send one on a WebSocket upgrade,
    so only a non-browser client omits it, and no other site can make it send the cookie)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    key = _origin_key(origin)
    if key is None:
        return False
    own = {_origin_key(f"{'https' if is_secure(request) else 'http'}://{request.host}")}
    if base_url:
        own.add(_origin_key(base_url))
    return key in own


async def presented_csrf(request: web.Request) -> str | None:
    """The CSRF token a cookie-authenticated change presents: the X-CSRF-Token header, or for an HTML form post
    (urlencoded or multipart) its ``csrf_token`` field. Either is checked against the session's digest the same
    way; the CSRF cookie itself is never accepted as proof (a cross-site form cannot read it to copy it into
    the field, and a request carrying only cookies proves nothing)."""
    header = request.headers.get(CSRF_HEADER)
    if header or request.content_type not in _FORM_TYPES or not request.can_read_body:
        return header
    form = await request.post()  # aiohttp keeps the parsed form: the handler reads it again for free
    value = form.get(CSRF_FIELD)
    return value if isinstance(value, str) else None


class IdentityWebAuth:
    """Authenticates from ``Authorization: Bearer``, ``Authorization: Basic`` (token as password, any user
    name, for git clients) or the session cookie; cookie-authenticated mutations must carry X-CSRF-Token, and a
    cookie-authenticated WebSocket upgrade (a GET, so CSRF does not cover it) must come from the server's own
    Origin (cross-site WebSocket hijacking); token-authenticated upgrades need no Origin check."""

    def __init__(self, identity: IdentityServices, base_url: str | None = None) -> None:
        self.identity = identity
        self.base_url = base_url  # CORRAL_BASE_URL: the public origin behind a proxy that rewrites Host

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
            if request.method not in _SAFE and not check_csrf(csrf_digest, await presented_csrf(request)):
                raise PermissionDenied(
                    f"cookie-authenticated changes need the {CSRF_HEADER} header (or, for an HTML form, the "
                    f"{CSRF_FIELD} field) with the csrf_token from login"
                )
            if request.headers.get("Upgrade", "").lower() == "websocket" and not is_same_origin(
                request, self.base_url
            ):
                raise PermissionDenied(
                    "a cookie-authenticated WebSocket must be opened from this server's own origin; "
                    "other clients authenticate with a bearer token"
                )
            return principal
        return None

    async def authorize(
        self, request: web.Request, principal: Principal | None, permission: str, project_id: uuid.UUID | None
    ) -> None:
        if principal is None:
            raise Unauthenticated("authentication required")
        await self.identity.authorizer.authorize(principal, permission, project_id)
