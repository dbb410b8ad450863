"""Identity REST API: /me, permissions, tokens, users, roles, bindings, delegations, settings, audit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import attrs
from aiohttp import web

from corral.core.audit.model import AuditEntry, AuditQuery
from corral.core.errors import InvalidInput
from corral.core.identity.catalogue import PERMISSIONS
from corral.core.identity.commands import (
    IdentitySettingsChanges,
    NewBinding,
    NewDelegation,
    NewRole,
    NewToken,
    NewUser,
    RolePermissions,
    UserChanges,
)
from corral.core.identity.kit import IdentityServices
from corral.core.identity.members import ProjectMembers
from corral.core.identity.model import ApiToken, AuthSession, Binding, Delegation, Principal, Role, User
from corral.core.pagination import Page
from corral.entrypoints.web.identity_auth import IDENTITY
from corral.entrypoints.web.jsonio import json_response, page_response
from corral.entrypoints.web.keys import PROJECT_LOOKUP, principal_of
from corral.entrypoints.web.operation import PageParams, body_of, params_of, query_param
from corral.entrypoints.web.project_access import PROJECT_PATH, PROJECT_READ, project_of
from corral.entrypoints.web.routing import RouteTable
from corral.entrypoints.web.schemas.identity import (
    AuditEntryOut,
    BanLiftOut,
    BindingOut,
    DelegationOut,
    DelegationsOut,
    ExplanationOut,
    IdentitySettingsOut,
    IssuedTokenOut,
    MemberOut,
    MeOut,
    PermissionOut,
    RoleOut,
    TokenOut,
    UserDetailOut,
    UserOut,
    UserSummaryOut,
)

__all__ = ["caller", "identity_of", "routes", "session_json", "user_json", "uuid_param"]

routes = RouteTable(tag="identity")

USERS = "admin:users"


@attrs.frozen
class ExplainQuery:
    """Whose permission to explain, which one, where."""

    permission: str = query_param(default=attrs.NOTHING, doc="e.g. deploy:promote")
    user: str | None = query_param(doc="user name (default: you; others need admin:users)")
    project: str | None = query_param(doc="owner/name or project id; omit for global")


@attrs.frozen
class BindingQuery(PageParams):
    """Filters of the role binding list."""

    user: str | None = query_param(doc="only this user's bindings")
    project: str | None = query_param(doc="only bindings in this project (owner/name or id)")


@attrs.frozen
class DelegationQuery(PageParams):
    """Which delegations to list."""

    all_: bool = query_param(default=False, name="all",
                             doc="every delegation, not only yours (needs admin:users)")


@attrs.frozen
class AuditParams(PageParams):
    """Filters of the audit log."""

    actor: str | None = query_param(doc="actor name")
    action: str | None = query_param(doc="e.g. token.create")
    resource: str | None = query_param(doc="e.g. user")
    project: str | None = query_param(doc="owner/name or id")
    since: datetime | None = query_param(doc="ISO-8601 time with a timezone")
    until: datetime | None = query_param(doc="ISO-8601 time with a timezone")


def identity_of(request: web.Request) -> IdentityServices:
    return request.app[IDENTITY]


def caller(request: web.Request) -> Principal:
    principal = principal_of(request)
    assert isinstance(principal, Principal)
    return principal


def uuid_param(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(f"{field} must be an id (UUID)", field=field) from None


async def _project(request: web.Request, ref: str | None, field: str = "project") -> uuid.UUID | None:
    if ref is None:
        return None
    if not ref:
        raise InvalidInput(f"{field} must be \"owner/name\" (or a project id), or null", field=field)
    return await request.app[PROJECT_LOOKUP].project_ref(ref)


# --- rendering ---------------------------------------------------------------------------------------------
Names = dict[uuid.UUID, str]


async def project_names(request: web.Request, ids: set[uuid.UUID | None]) -> Names:
    """"owner/name" of each project id (the projects domain's reverse lookup; ids it does not know stay ids)."""
    wanted = {i for i in ids if i is not None}
    reverse = getattr(request.app[PROJECT_LOOKUP], "project_names", None)
    return await reverse(wanted) if wanted and reverse is not None else {}


def _project_ref(project_id: uuid.UUID | None, names: Names) -> str | None:
    return None if project_id is None else names.get(project_id, str(project_id))


def user_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "email": user.email, "display_name": user.display_name,
            "is_active": user.is_active, "created_at": user.created_at, "updated_at": user.updated_at}


def token_json(token: ApiToken, projects: Names | None = None) -> dict[str, Any]:
    return {"id": token.id, "name": token.name, "prefix": token.prefix, "scopes": sorted(token.scopes),
            "project": _project_ref(token.project_id, projects or {}), "project_id": token.project_id,
            "expires_at": token.expires_at, "last_used_at": token.last_used_at, "created_at": token.created_at}


def role_json(role: Role) -> dict[str, Any]:
    perms = sorted(PERMISSIONS) if role.name == "admin" else sorted(role.permissions)
    return {"id": role.id, "name": role.name, "description": role.description, "is_system": role.is_system,
            "permissions": perms}


def delegation_json(d: Delegation, projects: Names | None = None) -> dict[str, Any]:
    return {"id": d.id, "delegator_id": d.delegator_id, "delegate_id": d.delegate_id, "permission": d.permission,
            "project": _project_ref(d.project_id, projects or {}), "project_id": d.project_id,
            "expires_at": d.expires_at, "reason": d.reason, "created_at": d.created_at, "revoked_at": d.revoked_at}


def binding_json(b: Binding, users: Names, projects: Names) -> dict[str, Any]:
    return {"id": b.id, "user": users.get(b.user_id, str(b.user_id)), "user_id": b.user_id, "role": b.role_name,
            "project": _project_ref(b.project_id, projects), "project_id": b.project_id,
            "granted_by": users.get(b.granted_by) if b.granted_by else None, "created_at": b.created_at}


def session_json(s: AuthSession, current: uuid.UUID | None) -> dict[str, Any]:
    return {"id": s.id, "created_at": s.created_at, "last_seen_at": s.last_seen_at, "expires_at": s.expires_at,
            "ip_addr": s.ip_addr, "user_agent": s.user_agent, "current": s.id == current}


def audit_json(e: AuditEntry, projects: Names | None = None) -> dict[str, Any]:
    return {"id": e.id, "actor_id": e.actor_id, "actor": e.actor_name, "action": e.action,
            "resource": e.resource, "resource_id": e.resource_id,
            "project": _project_ref(e.project_id, projects or {}), "project_id": e.project_id,
            "detail": e.detail, "ip_addr": e.ip_addr, "created_at": e.created_at}


# --- me, permissions --------------------------------------------------------------------------------------
@routes.get("/api/v1/me", summary="Who you are and what you may do (globally; for a token: what it can do)",
            account=True, params=None, response=MeOut)
async def me(request: web.Request) -> web.StreamResponse:
    principal = caller(request)
    ids = identity_of(request)
    if principal.email is None:  # not resolved with a profile (e.g. Corral itself)
        async with ids.uow_factory() as uow:
            user = await uow.users.get(principal.user_id)
            bindings = await uow.roles.bindings_of(principal.user_id)
        if user is None:
            raise InvalidInput("your user no longer exists")
        principal = attrs.evolve(principal, email=user.email, display_name=user.display_name,
                                 roles=tuple((b.role_name, b.project_id) for b in bindings))
    perms = await ids.authorizer.permissions(principal, principal.token_project_id)
    projects = await project_names(request, {p for _r, p in principal.roles})
    return json_response({
        "name": principal.name, "email": principal.email, "display_name": principal.display_name,
        "is_active": True,  # an inactive user cannot authenticate
        "is_agent": principal.is_agent, "auth_method": principal.method.value,
        "roles": [{"role": r, "project": _project_ref(p, projects)} for r, p in principal.roles],
        "permissions": sorted(perms),
        "totp_enrolment_required": principal.needs_totp_enrolment,
    })


@routes.get("/api/v1/permissions", summary="The permission catalogue", account=False, params=None,
            response=Page[PermissionOut])
async def permission_catalogue(_request: web.Request) -> web.StreamResponse:
    return json_response({"items": [{"name": n, "description": d} for n, d in sorted(PERMISSIONS.items())],
                          "next_cursor": None})


@routes.get("/api/v1/permissions/explain", summary="Why a user holds or lacks a permission", account=True,
            params=ExplainQuery, response=ExplanationOut)
async def explain(request: web.Request) -> web.StreamResponse:
    principal = caller(request)
    ids = identity_of(request)
    q = params_of(request, ExplainQuery)
    user = q.user or principal.name
    if user != principal.name:
        await ids.authorizer.authorize(principal, USERS, None)
    if not q.permission:
        raise InvalidInput("permission is required, e.g. ?permission=project:read", field="permission")
    project_id = await _project(request, q.project)
    result = await ids.rbac.explain(user, q.permission, project_id)
    projects = await project_names(request, {g.project_id for g in result.because} | {project_id})
    because = [g.description for g in result.because]
    for pid, full_name in projects.items():
        because = [text.replace(f"project {pid}", f"project {full_name}") for text in because]
    return json_response({"allowed": result.allowed, "because": because,
                          "path": [{"kind": g.kind, "role": g.role, "delegation_id": g.delegation_id,
                                    "delegator_id": g.delegator,
                                    "project": _project_ref(g.project_id, projects),
                                    "expires_at": g.expires_at} for g in result.because]})


# --- tokens ------------------------------------------------------------------------------------------------
@routes.post("/api/v1/tokens", summary="Create an API token (the token is shown once)", status=201, account=True,
             params=None, body=NewToken, response=IssuedTokenOut)
async def create_token(request: web.Request) -> web.StreamResponse:
    command = body_of(request, NewToken)
    project_id = await _project(request, command.project)
    issued = await identity_of(request).tokens.create(caller(request), command, project_id=project_id)
    out = token_json(issued.token, await project_names(request, {project_id}))
    out["token"] = issued.secret
    return json_response(out, status=201)


@routes.get("/api/v1/tokens", summary="Your API tokens", account=True, params=PageParams, response=Page[TokenOut])
async def list_tokens(request: web.Request) -> web.StreamResponse:
    q = params_of(request, PageParams)
    page = await identity_of(request).tokens.list(caller(request), limit=q.limit, cursor=q.cursor)
    projects = await project_names(request, {t.project_id for t in page.items})
    return page_response(page, lambda t: token_json(t, projects))


@routes.delete("/api/v1/tokens/{id}", summary="Revoke an API token", status=204, account=True, params=None)
async def revoke_token(request: web.Request) -> web.StreamResponse:
    await identity_of(request).tokens.revoke(caller(request), uuid_param(request.match_info["id"], "id"))
    return web.Response(status=204)


# --- users -------------------------------------------------------------------------------------------------
@routes.post("/api/v1/users", summary="Create a user (\"agent\": true for an agent: tokens only)",
             permission=USERS, status=201, params=None, body=NewUser, response=UserOut)
async def create_user(request: web.Request) -> web.StreamResponse:
    user = await identity_of(request).users.create(caller(request), body_of(request, NewUser))
    return json_response(user_json(user), status=201)


@attrs.frozen
class UserQuery(PageParams):
    """A page of users, optionally only those matching ``q``."""

    q: str | None = query_param(doc="only users whose name, display name or email starts with this (any case)")


@attrs.frozen
class UserSearchQuery(PageParams):
    """A user search."""

    q: str | None = query_param(doc="name, display name or email prefix (any case; required)")


def _user_summary(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "display_name": user.display_name}


@routes.get("/api/v1/users", summary="Users, by name (q=: by name, display name or email prefix)", permission=USERS,
            params=UserQuery, response=Page[UserOut])
async def list_users(request: web.Request) -> web.StreamResponse:
    q = params_of(request, UserQuery)
    page = await identity_of(request).users.list(limit=q.limit, cursor=q.cursor, q=q.q)
    return page_response(page, user_json)


# before /users/{name}: "search" is matched here first (and is not a user's page)
@routes.get("/api/v1/users/search", summary="Find users by name, display name or email prefix (any signed-in user; "
            "id, name and display name only)", account=False, params=UserSearchQuery, response=Page[UserSummaryOut])
async def search_users(request: web.Request) -> web.StreamResponse:
    q = params_of(request, UserSearchQuery)
    if not (q.q or "").strip():
        raise InvalidInput("q is required: the beginning of a name, display name or email", field="q")
    page = await identity_of(request).users.list(limit=q.limit, cursor=q.cursor, q=q.q)
    return page_response(page, _user_summary)


@routes.get("/api/v1/users/{name}", summary="One user with their role bindings", permission=USERS, params=None,
            response=UserDetailOut)
async def get_user(request: web.Request) -> web.StreamResponse:
    ids = identity_of(request)
    user = await ids.users.get(request.match_info["name"])
    bindings = await ids.rbac.bindings_of(user.id)
    out = user_json(user)
    projects = await project_names(request, {b.project_id for b in bindings})
    out["roles"] = [{"id": b.id, "role": b.role_name, "project": _project_ref(b.project_id, projects),
                     "project_id": b.project_id} for b in bindings]
    return json_response(out)


@routes.patch("/api/v1/users/{name}", summary="Change a user (display_name, email, is_active, password)",
              permission=USERS, params=None, body=UserChanges, response=UserOut)
async def update_user(request: web.Request) -> web.StreamResponse:
    user = await identity_of(request).users.update(caller(request), request.match_info["name"],
                                                   body_of(request, UserChanges))
    return json_response(user_json(user))


@routes.delete("/api/v1/users/{name}/login-ban", summary="Lift a user's login ban (password and TOTP; not IP bans)",
               permission=USERS, params=None, response=BanLiftOut)
async def lift_login_ban(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    lifted = await identity_of(request).users.lift_login_ban(caller(request), name)
    return json_response({"user": name, "bans_removed": lifted})


@routes.delete("/api/v1/users/{name}", summary="Delete a user", permission=USERS, status=204, params=None)
async def delete_user(request: web.Request) -> web.StreamResponse:
    await identity_of(request).users.delete(caller(request), request.match_info["name"])
    return web.Response(status=204)


# --- roles and bindings ------------------------------------------------------------------------------------
@routes.get("/api/v1/roles", summary="Roles and their permissions", account=False, params=None,
            response=Page[RoleOut])
async def list_roles(request: web.Request) -> web.StreamResponse:
    roles = await identity_of(request).rbac.list_roles()
    return json_response({"items": [role_json(r) for r in roles], "next_cursor": None})


@routes.post("/api/v1/roles", summary="Create a custom role", permission="admin:roles", status=201, params=None,
             body=NewRole, response=RoleOut)
async def create_role(request: web.Request) -> web.StreamResponse:
    role = await identity_of(request).rbac.create_role(caller(request), body_of(request, NewRole))
    return json_response(role_json(role), status=201)


@routes.put("/api/v1/roles/{name}/permissions", summary="Replace a role's permissions", permission="admin:roles",
            params=None, body=RolePermissions, response=RoleOut)
async def set_role_permissions(request: web.Request) -> web.StreamResponse:
    role = await identity_of(request).rbac.set_role_permissions(caller(request), request.match_info["name"],
                                                                body_of(request, RolePermissions))
    return json_response(role_json(role))


@routes.delete("/api/v1/roles/{name}", summary="Delete a custom role and its bindings (system roles: 409)",
               permission="admin:roles", status=204, params=None)
async def delete_role(request: web.Request) -> web.StreamResponse:
    await identity_of(request).rbac.delete_role(caller(request), request.match_info["name"])
    return web.Response(status=204)


@routes.get("/api/v1/role-bindings", summary="Role bindings, oldest first", permission=USERS, params=BindingQuery,
            response=Page[BindingOut])
async def list_bindings(request: web.Request) -> web.StreamResponse:
    q = params_of(request, BindingQuery)
    page, users = await identity_of(request).rbac.list_bindings(
        user=q.user or None, project_id=await _project(request, q.project), limit=q.limit, cursor=q.cursor,
    )
    projects = await project_names(request, {b.project_id for b in page.items})
    return page_response(page, lambda b: binding_json(b, users, projects))


@routes.post("/api/v1/role-bindings", summary="Give a user a role, globally or in one project",
             permission=USERS, status=201, params=None, body=NewBinding, response=BindingOut)
async def create_binding(request: web.Request) -> web.StreamResponse:
    command = body_of(request, NewBinding)
    project_id = await _project(request, command.project)
    me = caller(request)
    b = await identity_of(request).rbac.bind(me, command, project_id)
    users = {b.user_id: command.user, me.user_id: me.name}
    return json_response(binding_json(b, users, await project_names(request, {project_id})), status=201)


@routes.delete("/api/v1/role-bindings/{id}", summary="Remove a role binding", permission=USERS, status=204,
               params=None)
async def delete_binding(request: web.Request) -> web.StreamResponse:
    await identity_of(request).rbac.unbind(caller(request), uuid_param(request.match_info["id"], "id"))
    return web.Response(status=204)


# --- delegations -------------------------------------------------------------------------------------------
@routes.post("/api/v1/delegations", summary="Delegate permissions you hold to another user or agent",
             status=201, account=True, params=None, body=NewDelegation, response=DelegationsOut)
async def create_delegation(request: web.Request) -> web.StreamResponse:
    command = body_of(request, NewDelegation)
    project_id = await _project(request, command.project)
    created = await identity_of(request).rbac.delegate(caller(request), command, project_id=project_id)
    first = created[0]
    projects = await project_names(request, {project_id})
    return json_response({"id": first.id, "ids": [d.id for d in created], "delegate": command.delegate,
                          "permissions": [d.permission for d in created],
                          "project": _project_ref(project_id, projects), "project_id": project_id,
                          "expires_at": first.expires_at, "reason": first.reason,
                          "items": [delegation_json(d, projects) for d in created]}, status=201)


@routes.get("/api/v1/delegations", summary="Delegations you gave or received (?all=true with admin:users)",
            account=True, params=DelegationQuery, response=Page[DelegationOut])
async def list_delegations(request: web.Request) -> web.StreamResponse:
    principal = caller(request)
    ids = identity_of(request)
    q = params_of(request, DelegationQuery)
    if q.all_:
        await ids.authorizer.authorize(principal, USERS, None)
    page = await ids.rbac.list_delegations(principal, everyone=q.all_, limit=q.limit, cursor=q.cursor)
    projects = await project_names(request, {d.project_id for d in page.items})
    return page_response(page, lambda d: delegation_json(d, projects))


@routes.delete("/api/v1/delegations/{id}", summary="Revoke a delegation", status=204, account=True, params=None)
async def revoke_delegation(request: web.Request) -> web.StreamResponse:
    await identity_of(request).rbac.revoke_delegation(caller(request), uuid_param(request.match_info["id"], "id"))
    return web.Response(status=204)


# --- settings ----------------------------------------------------------------------------------------------
@routes.get("/api/v1/settings/identity", summary="Identity settings (require TOTP for admins)",
            permission="admin:settings", params=None, response=IdentitySettingsOut)
async def get_identity_settings(request: web.Request) -> web.StreamResponse:
    return json_response(await identity_of(request).settings.get())


@routes.put("/api/v1/settings/identity", summary="Change identity settings", permission="admin:settings",
            params=None, body=IdentitySettingsChanges, response=IdentitySettingsOut)
async def put_identity_settings(request: web.Request) -> web.StreamResponse:
    changes = body_of(request, IdentitySettingsChanges)
    return json_response(await identity_of(request).settings.update(caller(request), changes))


# --- audit -------------------------------------------------------------------------------------------------
@routes.get("/api/v1/audit", summary="The audit log, newest first", permission="admin:audit", params=AuditParams,
            response=Page[AuditEntryOut])
async def audit(request: web.Request) -> web.StreamResponse:
    q = params_of(request, AuditParams)
    query = AuditQuery(
        actor=q.actor, action=q.action, resource=q.resource, project_id=await _project(request, q.project),
        since=q.since, until=q.until, limit=q.limit or 50, cursor=q.cursor,
    )
    async with identity_of(request).uow_factory() as uow:
        page = await uow.audit.query(query)
    projects = await project_names(request, {e.project_id for e in page.items})
    return page_response(page, lambda e: audit_json(e, projects))


# --- project members ---------------------------------------------------------------------------------------
@routes.get(f"{PROJECT_PATH}/members", summary="The project's members (owner, role bindings in the project, "
            "delegations scoped to it) with their roles and effective permissions there", **PROJECT_READ,
            params=None, response=Page[MemberOut])
async def project_members(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    ids = identity_of(request)
    found = await ProjectMembers(ids.uow_factory, ids.authorizer, ids.clock).members(project.id, project.owner_id)
    return json_response({"items": [{"user": _user_summary(m.user), "roles": list(m.roles),
                                     "permissions": sorted(m.permissions), "via": list(m.via)} for m in found],
                          "next_cursor": None})
