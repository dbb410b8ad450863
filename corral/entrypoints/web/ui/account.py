"""The account page: change your password, enrol TOTP (a QR code of the otpauth URI, drawn by segno as SVG),
your API tokens with a create-once display of the secret and revoke. The identity services of the API."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import attrs
import segno
from aiohttp import web

from corral.core.errors import InvalidInput
from corral.core.identity.commands import NewToken, PasswordChange, TotpCode
from corral.entrypoints.web.identity_auth import CSRF_COOKIE
from corral.entrypoints.web.keys import require_principal
from corral.entrypoints.web.operation import params_of, query_param
from corral.entrypoints.web.routes.auth import _secure, _set_session_cookie
from corral.entrypoints.web.routes.identity import identity_of, project_names
from corral.entrypoints.web.ui.pages import Crumb, form_data, page, redirect
from corral.entrypoints.web.ui.table import form
from corral.entrypoints.web.ui.table import page as page_route

__all__ = ["qr_svg"]

A = "/ui/account"


def qr_svg(uri: str) -> str:
    """The QR code of ``uri`` as an SVG data URI (an <img> source: no markup of ours is built from it)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=5, border=2))


async def _account(request: web.Request, *, status: int = 200, **extra: Any) -> web.Response:
    me = require_principal(request)
    ids = identity_of(request)
    tokens = (await ids.tokens.list(me, limit=100, cursor=None)).items
    names = await project_names(request, {t.project_id for t in tokens if t.project_id})
    async with ids.uow_factory() as uow:
        enrolment = await uow.totp.get(me.user_id)
    totp_on = enrolment is not None and enrolment.confirmed_at is not None
    perms = sorted(await ids.authorizer.permissions(me, None))
    return await page(request, "account.html", title="Your account", crumbs=[Crumb("Account")], status=status,
                      tokens=tokens, project_names=names, totp_on=totp_on, permissions=perms,
                      session_login=me.scopes is None and not me.is_agent,
                      changed=params_of(request, AccountParams).changed if request.method == "GET" else None, **extra)


@attrs.frozen
class AccountParams:
    changed: Literal["password"] | None = query_param(doc="what was just changed")


@page_route(A, summary="Your account: password, TOTP, API tokens", account=True, params=AccountParams)
async def account(request: web.Request) -> web.StreamResponse:
    return await _account(request)


@form(f"{A}/password", summary="Change your password", account=True)
async def change_password(request: web.Request) -> web.StreamResponse:
    data = await form_data(request)
    if data.get("new_password", "") != data.get("confirm_password", ""):
        return await _account(request, status=400, password_error="The two new passwords differ.")
    try:
        result = await identity_of(request).passwords.change_own(
            require_principal(request), PasswordChange(current_password=data.get("current_password", ""),
                                                       new_password=data.get("new_password", "")),
            user_agent=request.headers.get("User-Agent"))
    except InvalidInput as exc:
        return await _account(request, status=400, password_error=exc.message)
    response = redirect(f"{A}?changed=password")
    _set_session_cookie(request, response, result.cookie)  # the other sessions ended; this one is replaced
    response.set_cookie(CSRF_COOKIE, result.csrf_token, httponly=True, samesite="Strict", secure=_secure(request),
                        path="/", max_age=int(identity_of(request).policy.session_max.total_seconds()))
    return response


@form(f"{A}/totp", summary="Start TOTP enrolment (a QR code for your authenticator app)", account=True)
async def totp_enrol(request: web.Request) -> web.StreamResponse:
    enrolment = await identity_of(request).totp.enrol(require_principal(request))
    return await _account(request, totp_secret=enrolment.secret, totp_qr=qr_svg(enrolment.uri))


@form(f"{A}/totp/confirm", summary="Turn TOTP on with a first code (recovery codes shown once)", account=True)
async def totp_confirm(request: web.Request) -> web.StreamResponse:
    data = await form_data(request)
    try:
        codes = await identity_of(request).totp.confirm(require_principal(request),
                                                        TotpCode(code=data.get("code", "").strip()))
    except InvalidInput as exc:
        return await _account(request, status=400, totp_error=exc.message)
    return await _account(request, recovery_codes=codes)


@form(f"{A}/tokens", summary="Create an API token (shown once)", account=True)
async def create_token(request: web.Request) -> web.StreamResponse:
    data = await form_data(request)
    scopes = sorted({s.strip() for s in data.getall("scopes", []) + data.get("more_scopes", "").split(",")
                     if s.strip()})
    try:
        issued = await identity_of(request).tokens.create(
            require_principal(request), NewToken(name=data.get("name", "").strip(), scopes=scopes), project_id=None)
    except InvalidInput as exc:
        return await _account(request, status=400, token_error=exc.message)
    return await _account(request, new_token=issued.secret, new_token_name=issued.token.name)


@form(f"{A}/tokens/{{id}}/revoke", summary="Revoke one of your API tokens", account=True)
async def revoke_token(request: web.Request) -> web.StreamResponse:
    try:
        token_id = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise InvalidInput("id must be a token id", field="id") from None
    await identity_of(request).tokens.revoke(require_principal(request), token_id)
    return redirect(f"{A}#tokens")
