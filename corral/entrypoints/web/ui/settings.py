"""Project settings pages like Gitea's: general (description, visibility, default branch, rename, archive,
delete), branch protections, webhooks with their delivery log and redeliver, project secrets (names, scopes and
versions; the value is write-only) and members with their roles. Every page and form is a RouteTable route with
the permission of the API operation it mirrors (project:admin for the settings area; secret:write, project:delete
where the API asks for them) and calls the same services, which write the audit rows."""

from __future__ import annotations

import json
import typing
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from aiohttp import web
from multidict import MultiDictProxy

from corral.core.errors import CorralError, InvalidInput, NotFound, PermissionDenied
from corral.core.identity.commands import NewBinding
from corral.core.identity.members import ProjectMembers
from corral.core.identity.model import Binding
from corral.core.projects.commands import (
    BranchProtectionChanges,
    NewBranchProtection,
    NewWebhook,
    ProjectChanges,
    VisibilityName,
    WebhookChanges,
    WebhookEvent,
)
from corral.core.projects.model import Project
from corral.core.secrets.commands import PutSecret
from corral.core.secrets.model import SecretScope
from corral.core.secrets.service import SecretsService
from corral.entrypoints.web.keys import PLATFORM, require_principal
from corral.entrypoints.web.operation import params_of, query_param
from corral.entrypoints.web.problem import status_for
from corral.entrypoints.web.project_access import actor_of, can, kit, project_of
from corral.entrypoints.web.routes.identity import caller, identity_of, uuid_param
from corral.entrypoints.web.routes.projects import remove_project
from corral.entrypoints.web.ui.pages import Crumb, form_data, redirect, url_path
from corral.entrypoints.web.ui.projects import project_crumbs, project_page
from corral.entrypoints.web.ui.table import form
from corral.entrypoints.web.ui.table import page as page_route

__all__ = ["SECTIONS"]

S = "/ui/{owner}/{name}/settings"
ADMIN = "project:admin"
_ADMIN: dict[str, Any] = {"permission": ADMIN, "project": "path"}
_SECRET_WRITE: dict[str, Any] = {"permission": "secret:write", "project": "path"}
# the form's choices are the commands' own (one description): a value added there is offered here too
_VISIBILITIES: dict[str, VisibilityName] = {v: v for v in typing.get_args(VisibilityName)}
_EVENTS: dict[str, WebhookEvent] = {v: v for v in typing.get_args(WebhookEvent)}
_SCOPES = [s.value for s in SecretScope]
# (path under settings, label): the sub-pages' tabs
SECTIONS = (("", "General"), ("/branch-protections", "Branch protections"), ("/webhooks", "Webhooks"),
            ("/secrets", "Secrets"), ("/members", "Members"))
_PAYLOAD_EXCERPT = 2000


@attrs.frozen
class DoneParams:
    done: str | None = query_param(doc="what the last action did (shown once)")


@attrs.frozen
class MembersParams:
    done: str | None = query_param(doc="what the last action did (shown once)")
    find: str | None = query_param(doc="find users to add: name, display name or email prefix")


@attrs.frozen
class DeliveriesParams:
    done: str | None = query_param(doc="what the last action did (shown once)")
    cursor: str | None = query_param(doc="older deliveries")


Render = Callable[..., Awaitable[web.Response]]


async def _settings(request: web.Request, template: str, *, title: str, section: str, status: int = 200,
                    more: list[Crumb] | None = None, **context: Any) -> web.Response:
    project = await project_of(request)
    base = f"/ui/{project.full_name}/settings"
    if more is not None:
        crumbs = project_crumbs(project, Crumb("Settings", base), *more)
    elif section:
        crumbs = project_crumbs(project, Crumb("Settings", base), Crumb(title))
    else:
        crumbs = project_crumbs(project, Crumb("Settings"))
    return await project_page(request, template, title=f"Settings: {title}", tab="settings", crumbs=crumbs,
                              status=status, section=section, sections=SECTIONS, settings_base=base, **context)


async def _on_error(request: web.Request, render: Render, action: Callable[[], Awaitable[web.StreamResponse]],
                    **keep: Any) -> web.StreamResponse:
    """Run a form's action; a refusal (400, 403, 404, 409...) is shown in the form's page, not as an error page."""
    try:
        return await action()
    except CorralError as exc:
        status = status_for(exc)
        if status >= 500:
            raise
        return await render(request, status=status, error=exc.message, **keep)


def _checked(data: MultiDictProxy[str], field: str) -> bool:
    return data.get(field) in ("on", "true", "1")


def _names(value: str) -> list[str]:
    return [x.strip() for x in value.replace("\n", ",").split(",") if x.strip()]


def _done(project: Project, path: str, what: str) -> web.Response:
    return redirect(f"/ui/{project.full_name}/settings{path}?done={url_path(what).replace(' ', '+')}")


# ---- general --------------------------------------------------------------------------------------------------
async def _general(request: web.Request, *, status: int = 200, error: str | None = None,
                   error_at: str = "general", done: str | None = None) -> web.Response:
    project = await project_of(request)
    branches = [b.name for b in (await kit(request).browser.branches(project, limit=200)).items]
    if project.default_branch not in branches:
        branches.insert(0, project.default_branch)
    return await _settings(request, "settings_general.html", title="General", section="", status=status,
                           error=error, error_at=error_at, done=done, branch_names=branches,
                           visibilities=list(_VISIBILITIES),
                           can_delete=await can(request, "project:delete", project))


@page_route(S, summary="Project settings: description, visibility, default branch, rename, archive, delete",
            params=DoneParams, **_ADMIN)
async def general(request: web.Request) -> web.StreamResponse:
    return await _general(request, done=params_of(request, DoneParams).done)


@form(S, summary="Change a project's description, visibility or default branch", **_ADMIN)
async def update_general(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)

    async def act() -> web.StreamResponse:
        fields: dict[str, Any] = {}
        description = data.get("description", "").strip()
        if description != (project.description or ""):
            fields["description"] = description or None
        visibility = data.get("visibility", "")
        if visibility not in _VISIBILITIES:
            raise InvalidInput(f"visibility must be one of {', '.join(_VISIBILITIES)}", field="visibility")
        if visibility != project.visibility:
            fields["visibility"] = _VISIBILITIES[visibility]
        branch = data.get("default_branch", "").strip()
        if branch and branch != project.default_branch:
            fields["default_branch"] = branch
        if fields:
            await kit(request).projects.update(actor_of(request), project, ProjectChanges(**fields))
        return _done(project, "", "saved" if fields else "nothing changed")

    return await _on_error(request, _general, act, error_at="general")


@form(f"{S}/rename", summary="Rename a project (type its current name to confirm)", **_ADMIN)
async def rename(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)

    async def act() -> web.StreamResponse:
        if data.get("confirm", "") != project.name:
            raise InvalidInput(f"type the current name, {project.name}, to confirm the rename", field="confirm")
        new = data.get("name", "").strip()
        if new == project.name:
            raise InvalidInput("the new name is the current one", field="name")
        renamed = await kit(request).projects.update(actor_of(request), project, ProjectChanges(name=new))
        return redirect(f"/ui/{renamed.full_name}/settings?done=renamed+from+{url_path(project.name)}")

    return await _on_error(request, _general, act, error_at="rename")


@form(f"{S}/archive", summary="Archive or unarchive a project", **_ADMIN)
async def archive(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)

    async def act() -> web.StreamResponse:
        archived = data.get("archived") == "true"
        await kit(request).projects.update(actor_of(request), project, ProjectChanges(archived=archived))
        return _done(project, "", "archived" if archived else "unarchived")

    return await _on_error(request, _general, act, error_at="danger")


@form(f"{S}/delete", summary="Delete a project and its repository (type owner/name to confirm)",
      permission="project:delete", project="path")
async def delete(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)

    async def act() -> web.StreamResponse:
        if data.get("confirm", "") != project.full_name:
            raise InvalidInput(f"type {project.full_name} to confirm the deletion", field="confirm")
        await remove_project(request, project)
        return redirect(f"/ui/projects?q={url_path(project.owner_name)}")

    return await _on_error(request, _general, act, error_at="danger")


# ---- branch protections ---------------------------------------------------------------------------------------
async def _protections(request: web.Request, *, status: int = 200, error: str | None = None,
                       error_at: str = "new", done: str | None = None) -> web.Response:
    project = await project_of(request)
    k = kit(request)
    rules = await k.protections.list(project)
    users = await k.users.by_ids({u for r in rules for u in r.push_allowlist})
    allowlists = {r.id: ", ".join(users[u].name for u in r.push_allowlist if u in users) for r in rules}
    return await _settings(request, "settings_protections.html", title="Branch protections",
                           section="/branch-protections", status=status, error=error, error_at=error_at, done=done,
                           rules=rules, allowlists=allowlists)


@page_route(f"{S}/branch-protections", summary="Branch protection rules: add, change, remove", params=DoneParams,
            **_ADMIN)
async def protections(request: web.Request) -> web.StreamResponse:
    return await _protections(request, done=params_of(request, DoneParams).done)


def _approvals(data: MultiDictProxy[str]) -> int:
    raw = data.get("required_approvals", "0").strip() or "0"
    if not raw.isascii() or not raw.isdigit() or len(raw) > 3:
        raise InvalidInput("required approvals must be a number from 0 to 20", field="required_approvals")
    return int(raw)


@form(f"{S}/branch-protections", summary="Protect branches matching a name or glob", **_ADMIN)
async def create_protection(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)

    async def act() -> web.StreamResponse:
        rule = await kit(request).protections.create(actor_of(request), project, NewBranchProtection(
            pattern=data.get("pattern", "").strip(), allow_force_push=_checked(data, "allow_force_push"),
            allow_deletion=_checked(data, "allow_deletion"),
            require_merge_request=_checked(data, "require_merge_request"), required_approvals=_approvals(data),
            bypass_admins=_checked(data, "bypass_admins"), push_allowlist=_names(data.get("push_allowlist", "")),
            required_checks=_names(data.get("required_checks", ""))))
        return _done(project, "/branch-protections", f"protected {rule.pattern}")

    return await _on_error(request, _protections, act, error_at="new")


@form(f"{S}/branch-protections/{{rule_id}}", summary="Change a branch protection rule", **_ADMIN)
async def update_protection(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    rule_id = request.match_info["rule_id"]

    async def act() -> web.StreamResponse:
        rule = await kit(request).protections.update(
            actor_of(request), project, uuid_param(rule_id, "rule_id"), BranchProtectionChanges(
                allow_force_push=_checked(data, "allow_force_push"), allow_deletion=_checked(data, "allow_deletion"),
                require_merge_request=_checked(data, "require_merge_request"),
                required_approvals=_approvals(data), bypass_admins=_checked(data, "bypass_admins"),
                push_allowlist=_names(data.get("push_allowlist", "")),
                required_checks=_names(data.get("required_checks", ""))))
        return _done(project, "/branch-protections", f"changed {rule.pattern}")

    return await _on_error(request, _protections, act, error_at=rule_id)


@form(f"{S}/branch-protections/{{rule_id}}/delete", summary="Remove a branch protection rule", **_ADMIN)
async def delete_protection(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    rule_id = request.match_info["rule_id"]

    async def act() -> web.StreamResponse:
        await kit(request).protections.delete(actor_of(request), project, uuid_param(rule_id, "rule_id"))
        return _done(project, "/branch-protections", "removed the rule")

    return await _on_error(request, _protections, act, error_at=rule_id)


# ---- webhooks -------------------------------------------------------------------------------------------------
def _events(data: MultiDictProxy[str]) -> list[WebhookEvent]:
    chosen = data.getall("events", [])
    unknown = [e for e in chosen if e not in _EVENTS]
    if unknown:
        raise InvalidInput(f"events must be among {', '.join(_EVENTS)}", field="events")
    return [_EVENTS[e] for e in chosen]


async def _webhooks(request: web.Request, *, status: int = 200, error: str | None = None,
                    done: str | None = None, url: str = "", events: list[str] | None = None) -> web.Response:
    hooks = await kit(request).webhooks.list(await project_of(request))
    return await _settings(request, "settings_webhooks.html", title="Webhooks", section="/webhooks", status=status,
                           error=error, done=done, hooks=hooks, all_events=list(_EVENTS), url=url,
                           events=events if events is not None else ["push"])


@page_route(f"{S}/webhooks", summary="Webhooks of the project: add, open", params=DoneParams, **_ADMIN)
async def webhooks(request: web.Request) -> web.StreamResponse:
    return await _webhooks(request, done=params_of(request, DoneParams).done)


@form(f"{S}/webhooks", summary="Add a webhook", **_ADMIN)
async def create_webhook(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)

    async def act() -> web.StreamResponse:
        hook = await kit(request).webhooks.create(actor_of(request), project, NewWebhook(
            url=data.get("url", "").strip(), events=_events(data), secret=data.get("secret") or None,
            active=_checked(data, "active")))
        return redirect(f"/ui/{project.full_name}/settings/webhooks/{hook.id}?done=added")

    # what was typed comes back (never the secret)
    return await _on_error(request, _webhooks, act, url=data.get("url", ""), events=data.getall("events", []))


def _hook_id(request: web.Request) -> uuid.UUID:
    return uuid_param(request.match_info["hook_id"], "hook_id")


def _payload(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, indent=2, sort_keys=True, default=str)
    return text if len(text) <= _PAYLOAD_EXCERPT else text[:_PAYLOAD_EXCERPT] + "\n…"


async def _webhook(request: web.Request, *, status: int = 200, error: str | None = None,
                   done: str | None = None, cursor: str | None = None) -> web.Response:
    project = await project_of(request)
    k = kit(request)
    hook = await k.webhooks.get(project, _hook_id(request))
    found = await k.webhooks.deliveries(project, hook.id, limit=25, cursor=cursor)
    return await _settings(request, "settings_webhook.html", title="Webhook", section="/webhooks", status=status,
                           more=[Crumb("Webhooks", f"/ui/{project.full_name}/settings/webhooks"), Crumb(hook.url)],
                           error=error, done=done, hook=hook, all_events=list(_EVENTS), deliveries=found.items,
                           payloads={d.id: _payload(d.payload) for d in found.items},
                           next_cursor=found.next_cursor)


@page_route(f"{S}/webhooks/{{hook_id}}", summary="One webhook: change it, its delivery log, redeliver",
            params=DeliveriesParams, **_ADMIN)
async def webhook(request: web.Request) -> web.StreamResponse:
    q = params_of(request, DeliveriesParams)
    return await _webhook(request, done=q.done, cursor=q.cursor)


@form(f"{S}/webhooks/{{hook_id}}", summary="Change a webhook", **_ADMIN)
async def update_webhook(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)

    async def act() -> web.StreamResponse:
        fields: dict[str, Any] = {"url": data.get("url", "").strip(), "events": _events(data),
                                  "active": _checked(data, "active")}
        if _checked(data, "remove_secret"):
            fields["secret"] = None
        elif data.get("secret"):  # empty: the secret stays as it is
            fields["secret"] = data["secret"]
        hook = await kit(request).webhooks.update(actor_of(request), project, _hook_id(request),
                                                  WebhookChanges(**fields))
        return redirect(f"/ui/{project.full_name}/settings/webhooks/{hook.id}?done=saved")

    return await _on_error(request, _webhook, act)


@form(f"{S}/webhooks/{{hook_id}}/delete", summary="Remove a webhook", **_ADMIN)
async def delete_webhook(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)

    async def act() -> web.StreamResponse:
        await kit(request).webhooks.delete(actor_of(request), project, _hook_id(request))
        return _done(project, "/webhooks", "removed the webhook")

    return await _on_error(request, _webhook, act)


@form(f"{S}/webhooks/{{hook_id}}/deliveries/{{delivery_id}}/redeliver", summary="Send a delivery's payload again",
      **_ADMIN)
async def redeliver(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)

    async def act() -> web.StreamResponse:
        new = await kit(request).webhooks.redeliver(
            actor_of(request), project, _hook_id(request),
            uuid_param(request.match_info["delivery_id"], "delivery_id"))
        return redirect(f"/ui/{project.full_name}/settings/webhooks/{new.webhook_id}?done=redelivery+queued")

    return await _on_error(request, _webhook, act)


# ---- secrets --------------------------------------------------------------------------------------------------
def _secrets_service(request: web.Request) -> SecretsService | None:
    found: SecretsService | None = request.app[PLATFORM].resolve_optional(SecretsService)
    return found


async def _secrets(request: web.Request, *, status: int = 200, error: str | None = None,
                   done: str | None = None, name: str = "", scope: str = "pipeline") -> web.Response:
    project = await project_of(request)
    if not await can(request, "secret:read", project):
        raise PermissionDenied("listing the project's secrets needs secret:read")
    service = _secrets_service(request)
    items = await service.list_secrets(project.id) if service is not None else []
    # the value is never passed to the template: a refused write shows its name and scope again, not its value
    return await _settings(request, "settings_secrets.html", title="Secrets", section="/secrets", status=status,
                           error=error, done=done, secrets=items, available=service is not None, scopes=_SCOPES,
                           name=name, scope=scope, can_write_secrets=await can(request, "secret:write", project))


@page_route(f"{S}/secrets", summary="Project secrets: names, scopes and versions (never values)",
            params=DoneParams, **_ADMIN)
async def secrets(request: web.Request) -> web.StreamResponse:
    return await _secrets(request, done=params_of(request, DoneParams).done)


def _require_secrets(request: web.Request) -> SecretsService:
    service = _secrets_service(request)
    if service is None:
        raise NotFound("secrets are not available on this server")
    return service


@form(f"{S}/secrets", summary="Create a project secret or write a new version of it (the value is write-only)",
      **_SECRET_WRITE)
async def put_secret(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    name = data.get("name", "").strip()

    async def act() -> web.StreamResponse:
        scope = SecretScope.parse(data.get("scope", "pipeline"))
        info, created = await _require_secrets(request).put(
            require_principal(request), project.id, name, PutSecret(value=data.get("value", ""), scope=scope))
        return _done(project, "/secrets", f"{'created' if created else 'rotated'} {info.name} (version "
                                          f"{info.version})")

    return await _on_error(request, _secrets, act, name=name, scope=data.get("scope", "pipeline"))


@form(f"{S}/secrets/{{secret}}/delete", summary="Delete a project secret and every version of it",
      **_SECRET_WRITE)
async def delete_secret(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    name = request.match_info["secret"]

    async def act() -> web.StreamResponse:
        await _require_secrets(request).purge(require_principal(request), project.id, name)
        return _done(project, "/secrets", f"deleted {name}")

    return await _on_error(request, _secrets, act)


# ---- members --------------------------------------------------------------------------------------------------
async def _members(request: web.Request, *, status: int = 200, error: str | None = None,
                   done: str | None = None, find: str | None = None) -> web.Response:
    project = await project_of(request)
    ids = identity_of(request)
    members = await ProjectMembers(ids.uow_factory, ids.authorizer, ids.clock).members(project.id, project.owner_id)
    found, _ = await ids.rbac.list_bindings(user=None, project_id=project.id, limit=500, cursor=None)
    bindings: dict[uuid.UUID, list[Binding]] = {}
    for b in found.items:
        bindings.setdefault(b.user_id, []).append(b)
    roles = [r.name for r in await ids.rbac.list_roles()]
    wanted = (find or "").strip()
    candidates = (await ids.users.list(limit=20, cursor=None, q=wanted)).items if wanted else []
    return await _settings(request, "settings_members.html", title="Members", section="/members", status=status,
                           error=error, done=done, members=members, bindings=bindings, roles=roles,
                           find=find or "", candidates=candidates)


@page_route(f"{S}/members", summary="Members of the project and their roles: add, change, remove",
            params=MembersParams, **_ADMIN)
async def members(request: web.Request) -> web.StreamResponse:
    q = params_of(request, MembersParams)
    return await _members(request, done=q.done, find=q.find)


async def _bind(request: web.Request, project: Project, user: str, role: str) -> None:
    """Through the role-binding service: it refuses to give a role holding more than the caller holds here."""
    await identity_of(request).rbac.bind(caller(request), NewBinding(user=user, role=role, project=project.full_name),
                                         project.id)


async def _binding_here(request: web.Request, project: Project) -> tuple[Binding, str]:
    """The binding named by the path, which must be one of this project's (not a global one, nor another's),
    and its user's name."""
    binding_id = uuid_param(request.match_info["binding_id"], "binding_id")
    found, names = await identity_of(request).rbac.list_bindings(user=None, project_id=project.id, limit=500,
                                                                 cursor=None)
    binding = next((b for b in found.items if b.id == binding_id), None)
    if binding is None:
        raise NotFound("no such role binding in this project")
    return binding, names.get(binding.user_id, str(binding.user_id))


@form(f"{S}/members", summary="Give a user a role in the project", **_ADMIN)
async def add_member(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    user = data.get("user", "").strip()

    async def act() -> web.StreamResponse:
        if not user:
            raise InvalidInput("name the user to add", field="user")
        role = data.get("role", "")
        await _bind(request, project, user, role)
        return _done(project, "/members", f"gave {user} the role {role}")

    return await _on_error(request, _members, act)


@form(f"{S}/members/{{binding_id}}/role", summary="Change the role a member holds in the project", **_ADMIN)
async def change_role(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)

    async def act() -> web.StreamResponse:
        binding, name = await _binding_here(request, project)
        role = data.get("role", "")
        if role == binding.role_name:
            return _done(project, "/members", "nothing changed")
        await _bind(request, project, name, role)  # the new role first: a refusal leaves the old one in place
        await identity_of(request).rbac.unbind(caller(request), binding.id)
        return _done(project, "/members", f"{name} is now {role}")

    return await _on_error(request, _members, act)


@form(f"{S}/members/{{binding_id}}/delete", summary="Remove a member's role in the project", **_ADMIN)
async def remove_member(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)

    async def act() -> web.StreamResponse:
        binding, name = await _binding_here(request, project)
        await identity_of(request).rbac.unbind(caller(request), binding.id)
        return _done(project, "/members", f"removed the role {binding.role_name} of {name}")

    return await _on_error(request, _members, act)
