"""Login, logout, your sessions and TOTP enrolment."""

from __future__ import annotations

from aiohttp import web

from corral.entrypoints.web.forwarded import client_ip, is_secure
from corral.entrypoints.web.identity_auth import SESSION_COOKIE
from corral.entrypoints.web.jsonio import json_response, read_json
from corral.entrypoints.web.keys import PLATFORM
from corral.entrypoints.web.routes.identity import (
    body_fields,
    caller,
    identity_of,
    session_json,
    user_json,
    uuid_param,
)
from corral.entrypoints.web.routing import RouteTable

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
             public=True, description="Sets the session cookie; cookie-authenticated changes must send the "
             "returned csrf_token in X-CSRF-Token. 401 on bad credentials, 429 while banned.")
async def login(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    body_fields(body, {"name", "password", "totp_code"})
    ids = identity_of(request)
    result = await ids.sessions.login(body.get("name"), body.get("password"), totp_code=body.get("totp_code"),
                                      ip=client_ip(request), user_agent=request.headers.get("User-Agent"))
    response = json_response({"user": user_json(result.user), "csrf_token": result.csrf_token,
                              "expires_at": result.session.expires_at})
    _set_session_cookie(request, response, result.cookie)
    return response


_PASSWORD_BODY = {
    "type": "object", "additionalProperties": False, "required": ["current_password", "new_password"],
    "properties": {"current_password": {"type": "string", "minLength": 1, "maxLength": 1024},
                   "new_password": {"type": "string", "minLength": 8, "maxLength": 1024}},
}


@routes.post("/api/v1/me/password", summary="Change your password (needs the current one)", account=True,
             request_body=_PASSWORD_BODY,
             description="From a login session only. Body: {\"current_password\", \"new_password\"} (8 to 1024 "
             "characters). A wrong current_password is 400 and counts as a failed login (429 while banned). "
             "On success all your sessions end and a new one replaces the current one: the response sets the "
             "new session cookie and returns its csrf_token. API tokens stay valid; revoke them one by one.")
async def change_password(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    body_fields(body, {"current_password", "new_password"})
    result = await identity_of(request).passwords.change_own(
        caller(request), body.get("current_password"), body.get("new_password"),
        user_agent=request.headers.get("User-Agent"),
    )
    response = json_response({"user": user_json(result.user), "csrf_token": result.csrf_token,
                              "expires_at": result.session.expires_at})
    _set_session_cookie(request, response, result.cookie)
    return response


@routes.post("/api/v1/auth/logout", summary="End the current session", status=204, account=True)
async def logout(request: web.Request) -> web.StreamResponse:
    await identity_of(request).sessions.logout(caller(request))
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@routes.get("/api/v1/auth/sessions", summary="Your login sessions", account=True)
async def list_sessions(request: web.Request) -> web.StreamResponse:
    me = caller(request)
    sessions = await identity_of(request).sessions.list_sessions(me)
    return json_response({"items": [session_json(s, me.session_id) for s in sessions], "next_cursor": None})


@routes.delete("/api/v1/auth/sessions/{id}", summary="End one of your sessions", status=204, account=True)
async def revoke_session(request: web.Request) -> web.StreamResponse:
    await identity_of(request).sessions.revoke_session(caller(request), uuid_param(request.match_info["id"], "id"))
    return web.Response(status=204)


@routes.post("/api/v1/auth/totp", summary="Start TOTP enrolment: a secret for your authenticator app",
             status=201, account=True)
async def totp_enrol(request: web.Request) -> web.StreamResponse:
    enrolment = await identity_of(request).totp.enrol(caller(request))
    return json_response({"secret": enrolment.secret, "otpauth_uri": enrolment.uri}, status=201)


@routes.post("/api/v1/auth/totp/confirm", summary="Turn TOTP on with a first code; returns recovery codes",
             account=True)
async def totp_confirm(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    body_fields(body, {"code"})
    codes = await identity_of(request).totp.confirm(caller(request), body.get("code"))
    return json_response({"recovery_codes": codes})


@routes.delete("/api/v1/auth/totp", summary="Turn TOTP off (needs a current or recovery code)", status=204,
               account=True)
async def totp_disable(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    body_fields(body, {"code"})
    await identity_of(request).totp.disable(caller(request), body.get("code"))
    return web.Response(status=204)
