"""Administration pages: users (create, deactivate, lift a login ban), roles and their permissions, role
bindings, delegations and the explain view ("why can X do Y in P?"). Through the identity services, with the
same permissions as the identity API (admin:users, admin:roles)."""

from __future__ import annotations

import uuid
from typing import Any

import attrs
from aiohttp import web

from corral.core.identity.catalogue import PERMISSIONS
from corral.core.identity.commands import NewBinding, NewRole, NewUser, RolePermissions, UserChanges
from corral.entrypoints.web.keys import PROJECT_LOOKUP
from corral.entrypoints.web.operation import params_of, query_param
from corral.entrypoints.web.routes.identity import USERS, caller, identity_of, project_names, uuid_param
from corral.entrypoints.web.ui.pages import Crumb, form_data, page, redirect
from corral.entrypoints.web.ui.table import form
from corral.entrypoints.web.ui.table import page as page_route

__all__ = ["explain"]

ROLES = "admin:roles"
_ADMIN = Crumb("Administration", "/ui/admin/users")


@attrs.frozen
class UsersParams:
    q: str | None = query_param(doc="name, display name or email prefix")
    cursor: str | None = query_param(doc="next page")
    done: str | None = query_param(doc="what the last action did (shown once)")


@attrs.frozen
class CursorParams:
    cursor: str | None = query_param(doc="next page")
    user: str | None = query_param(doc="only this user's")
    project: str | None = query_param(doc="owner/name")


@attrs.frozen
class ExplainParams:
    user: str | None = query_param(doc="user name")
    permission: str | None = query_param(doc="e.g. deploy:promote")
    project: str | None = query_param(doc="owner/name; omit for global")


async def _project(request: web.Request, ref: str | None) -> uuid.UUID | None:
    ref = (ref or "").strip()
    return await request.app[PROJECT_LOOKUP].project_ref(ref) if ref else None


# ---- users ----------------------------------------------------------------------------------------------------
@page_route("/ui/admin/users", summary="Users: create, deactivate, lift a login ban", permission=USERS,
            params=UsersParams)
async def users(request: web.Request) -> web.StreamResponse:
    q = params_of(request, UsersParams)
    found = await identity_of(request).users.list(limit=100, cursor=q.cursor, q=q.q or None)
    return await page(request, "admin_users.html", title="Users", crumbs=[_ADMIN, Crumb("Users")],
                      users=found.items, next_cursor=found.next_cursor, q=q.q or "", done=q.done)


@form("/ui/admin/users", summary="Create a user", permission=USERS)
async def create_user(request: web.Request) -> web.StreamResponse:
    data = await form_data(request)
    user = await identity_of(request).users.create(caller(request), NewUser(
        name=data.get("name", ""), email=data.get("email", ""), password=data.get("password") or None,
        display_name=data.get("display_name") or None, agent=data.get("agent") == "on"))
    return redirect(f"/ui/admin/users?done=created+{user.name}")


@form("/ui/admin/users/{user}/active", summary="Deactivate or reactivate a user", permission=USERS)
async def set_active(request: web.Request) -> web.StreamResponse:
    data = await form_data(request)
    active = data.get("active") == "true"
    name = request.match_info["user"]
    await identity_of(request).users.update(caller(request), name, UserChanges(is_active=active))
    return redirect(f"/ui/admin/users?done={'reactivated' if active else 'deactivated'}+{name}")


@form("/ui/admin/users/{user}/lift-ban", summary="Lift a user's login ban", permission=USERS)
async def lift_ban(request: web.Request) -> web.StreamResponse:
    name = request.match_info["user"]
    lifted = await identity_of(request).users.lift_login_ban(caller(request), name)
    return redirect(f"/ui/admin/users?done=lifted+{lifted}+login+ban{'s' if lifted != 1 else ''}+of+{name}")


# ---- roles ----------------------------------------------------------------------------------------------------
@page_route("/ui/admin/roles", summary="Roles and their permissions", account=False)
async def roles(request: web.Request) -> web.StreamResponse:
    from corral.entrypoints.web.ui.pages import holds

    found = await identity_of(request).rbac.list_roles()
    rows = [(r, sorted(PERMISSIONS) if r.name == "admin" else sorted(r.permissions)) for r in found]
    return await page(request, "admin_roles.html", title="Roles", crumbs=[_ADMIN, Crumb("Roles")], rows=rows,
                      catalogue=sorted(PERMISSIONS.items()), can_edit=await holds(request, ROLES))


@form("/ui/admin/roles", summary="Create a custom role", permission=ROLES)
async def create_role(request: web.Request) -> web.StreamResponse:
    data = await form_data(request)
    await identity_of(request).rbac.create_role(caller(request), NewRole(
        name=data.get("name", ""), permissions=data.getall("permissions", []),
        description=data.get("description") or None))
    return redirect("/ui/admin/roles")


@form("/ui/admin/roles/{role}/permissions", summary="Replace a role's permissions", permission=ROLES)
async def set_permissions(request: web.Request) -> web.StreamResponse:
    data = await form_data(request)
    await identity_of(request).rbac.set_role_permissions(caller(request), request.match_info["role"],
                                                         RolePermissions(permissions=data.getall("permissions", [])))
    return redirect("/ui/admin/roles")


# ---- role bindings --------------------------------------------------------------------------------------------
@page_route("/ui/admin/role-bindings", summary="Role bindings, globally and per project", permission=USERS,
            params=CursorParams)
async def bindings(request: web.Request) -> web.StreamResponse:
    q = params_of(request, CursorParams)
    found, names = await identity_of(request).rbac.list_bindings(
        user=q.user or None, project_id=await _project(request, q.project), limit=100, cursor=q.cursor)
    projects = await project_names(request, {b.project_id for b in found.items})
    roles_ = await identity_of(request).rbac.list_roles()
    return await page(request, "admin_bindings.html", title="Role bindings", crumbs=[_ADMIN, Crumb("Role bindings")],
                      bindings=found.items, names=names, projects=projects, roles=roles_,
                      next_cursor=found.next_cursor, user=q.user or "", project=q.project or "")


@form("/ui/admin/role-bindings", summary="Give a user a role", permission=USERS)
async def bind(request: web.Request) -> web.StreamResponse:
    data = await form_data(request)
    project = (data.get("project") or "").strip() or None
    command = NewBinding(user=data.get("user", ""), role=data.get("role", ""), project=project)
    await identity_of(request).rbac.bind(caller(request), command, await _project(request, project))
    return redirect("/ui/admin/role-bindings")


@form("/ui/admin/role-bindings/{id}/delete", summary="Remove a role binding", permission=USERS)
async def unbind(request: web.Request) -> web.StreamResponse:
    await identity_of(request).rbac.unbind(caller(request), uuid_param(request.match_info["id"], "id"))
    return redirect("/ui/admin/role-bindings")


# ---- delegations and explain ----------------------------------------------------------------------------------
@page_route("/ui/admin/delegations", summary="Every delegation, with who lent what to whom", permission=USERS,
            params=CursorParams)
async def delegations(request: web.Request) -> web.StreamResponse:
    q = params_of(request, CursorParams)
    ids = identity_of(request)
    found = await ids.rbac.list_delegations(caller(request), everyone=True, limit=100, cursor=q.cursor)
    projects = await project_names(request, {d.project_id for d in found.items})
    names: dict[uuid.UUID, str] = {}
    async with ids.uow_factory() as uow:
        for uid in {d.delegator_id for d in found.items} | {d.delegate_id for d in found.items}:
            user = await uow.users.get(uid)
            if user is not None:
                names[uid] = user.name
    return await page(request, "admin_delegations.html", title="Delegations",
                      crumbs=[_ADMIN, Crumb("Delegations")], delegations=found.items, names=names,
                      projects=projects, next_cursor=found.next_cursor)


@form("/ui/admin/delegations/{id}/revoke", summary="Revoke a delegation", permission=USERS)
async def revoke(request: web.Request) -> web.StreamResponse:
    await identity_of(request).rbac.revoke_delegation(caller(request), uuid_param(request.match_info["id"], "id"))
    return redirect("/ui/admin/delegations")


@page_route("/ui/admin/explain", summary="Why can a user do something in a project (or not)?", permission=USERS,
            params=ExplainParams)
async def explain(request: web.Request) -> web.StreamResponse:
    q = params_of(request, ExplainParams)
    result: Any = None
    because: list[str] = []
    if q.user and q.permission:
        project_id = await _project(request, q.project)
        result = await identity_of(request).rbac.explain(q.user, q.permission, project_id)
        projects = await project_names(request, {g.project_id for g in result.because} | {project_id})
        because = [g.description for g in result.because]
        for pid, full_name in projects.items():
            because = [text.replace(f"project {pid}", f"project {full_name}") for text in because]
    return await page(request, "admin_explain.html", title="Explain a permission",
                      crumbs=[_ADMIN, Crumb("Explain")], result=result, because=because, user=q.user or "",
                      permission=q.permission or "", project=q.project or "", catalogue=sorted(PERMISSIONS))
