"""Login, logout, your sessions and TOTP enrolment."""

from __future__ import annotations

from aiohttp import web

from corral.core.identity.commands import Credentials, PasswordChange, TotpCode
from corral.core.pagination import Page
from corral.entrypoints.web.forwarded import client_ip, is_secure
from corral.entrypoints.web.identity_auth import SESSION_COOKIE
from corral.entrypoints.web.jsonio import json_response
from corral.entrypoints.web.keys import PLATFORM
from corral.entrypoints.web.operation import body_of
from corral.entrypoints.web.routes.identity import caller, identity_of, session_json, user_json, uuid_param
from corral.entrypoints.web.routing import RouteTable
from corral.entrypoints.web.schemas.identity import (
    RecoveryCodesOut,
    SessionOut,
    SessionStartedOut,
    TotpEnrolmentOut,
)

__all__ = ["routes"]

routes = RouteTable(tag="auth")


# --------------------------------------------------------------------------------------------------
def _secure(request: web.Request) -> bool:
    """Secure cookie over TLS (ours, or a trusted proxy's X-Forwarded-Proto), or when the public URL is https."""
    return is_secure(request) or request.app[PLATFORM].settings.public_url().startswith("https:")


def _set_session_cookie(request: web.Request, response: web.StreamResponse, cookie: str) -> None:
    response.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="Lax", secure=_secure(request), path="/",
                        max_age=int(identity_of(request).policy.session_max.total_seconds()))


@routes.post("/api/v1/auth/login", summary="Log in with name and password (and TOTP code when enrolled)",
             public=True, params=None, body=Credentials, response=SessionStartedOut,
             description="Sets the session cookie; cookie-authenticated changes must send the "
             "returned csrf_token in X-CSRF-Token. 401 on bad credentials, 429 while banned.")
async def login(request: web.Request) -> web.StreamResponse:
    result = await identity_of(request).sessions.login(body_of(request, Credentials), ip=client_ip(request),
                                                       user_agent=request.headers.get("User-Agent"))
    response = json_response({"user": user_json(result.user), "csrf_token": result.csrf_token,
                              "expires_at": result.session.expires_at})
    _set_session_cookie(request, response, result.cookie)
    return response


@routes.post("/api/v1/me/password", summary="Change your password (needs the current one)", account=True,
             params=None, body=PasswordChange, response=SessionStartedOut,
             description="From a login session only. Body: {\"current_password\", \"new_password\"} (8 to 1024 "
             "characters). A wrong current_password is 400 and counts as a failed login (429 while banned). "
             "On success all your sessions end and a new one replaces the current one: the response sets the "
             "new session cookie and returns its csrf_token. API tokens stay valid; revoke them one by one.")
async def change_password(request: web.Request) -> web.StreamResponse:
    result = await identity_of(request).passwords.change_own(
        caller(request), body_of(request, PasswordChange), user_agent=request.headers.get("User-Agent"),
    )
    response = json_response({"user": user_json(result.user), "csrf_token": result.csrf_token,
                              "expires_at": result.session.expires_at})
    _set_session_cookie(request, response, result.cookie)
    return response


@routes.post("/api/v1/auth/logout", summary="End the current session", status=204, account=True,
              params=None)
async def logout(request: web.Request) -> web.StreamResponse:
    await identity_of(request).sessions.logout(caller(request))
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@routes.get("/api/v1/auth/sessions", summary="Your login sessions", account=True, params=None,
             response=Page[SessionOut])
async def list_sessions(request: web.Request) -> web.StreamResponse:
    me = caller(request)
    sessions = await identity_of(request).sessions.list_sessions(me)
    return json_response({"items": [session_json(s, me.session_id) for s in sessions], "next_cursor": None})


@routes.delete("/api/v1/auth/sessions/{id}", summary="End one of your sessions", status=204, account=True,
                params=None)
async def revoke_session(request: web.Request) -> web.StreamResponse:
    await identity_of(request).sessions.revoke_session(caller(request), uuid_param(request.match_info["id"], "id"))
    return web.Response(status=204)


@routes.post("/api/v1/auth/totp", summary="Start TOTP enrolment: a secret for your authenticator app",
             status=201, account=True, params=None, response=TotpEnrolmentOut)
async def totp_enrol(request: web.Request) -> web.StreamResponse:
    enrolment = await identity_of(request).totp.enrol(caller(request))
    return json_response({"secret": enrolment.secret, "otpauth_uri": enrolment.uri}, status=201)


@routes.post("/api/v1/auth/totp/confirm", summary="Turn TOTP on with a first code; returns recovery codes",
             account=True, params=None, body=TotpCode, response=RecoveryCodesOut)
async def totp_confirm(request: web.Request) -> web.StreamResponse:
    codes = await identity_of(request).totp.confirm(caller(request), body_of(request, TotpCode))
    return json_response({"recovery_codes": codes})


@routes.delete("/api/v1/auth/totp", summary="Turn TOTP off (needs a current or recovery code)", status=204,
               account=True, params=None, body=TotpCode)
async def totp_disable(request: web.Request) -> web.StreamResponse:
    await identity_of(request).totp.disable(caller(request), body_of(request, TotpCode))
    return web.Response(status=204)
