"""The dashboard: what changed (the audit log in words), running pipelines, deployment health, firing alerts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import attrs
from aiohttp import web

from corral.core.audit.model import AuditEntry, AuditQuery
from corral.core.errors import CorralError
from corral.core.projects.model import Project
from corral.entrypoints.web.keys import principal_of
from corral.entrypoints.web.project_access import can, kit
from corral.entrypoints.web.routes.identity import identity_of
from corral.entrypoints.web.ui.pages import holds, page
from corral.entrypoints.web.ui.summaries import active_agent_sessions, alerts, deployments, running_pipelines

__all__ = ["Activity", "dashboard", "describe", "readable_projects"]

log = logging.getLogger("corral.ui")
_ZERO = "0" * 40


@attrs.frozen
class Activity:
    entry: AuditEntry
    text: str
    project: str | None
    href: str | None


def _branch(ref: str) -> str:
    return ref.removeprefix("refs/heads/").removeprefix("refs/tags/")


_VERBS = {
    "project.create": "created the project", "project.update": "changed the settings of",
    "project.delete": "deleted the project", "issue.create": "opened issue", "issue.update": "updated issue",
    "issue.close": "closed issue", "issue.reopen": "reopened issue", "issue.comment": "commented on issue",
    "merge_request.create": "opened merge request", "merge_request.merge": "merged merge request",
    "merge_request.update": "updated merge request", "merge_request.review": "reviewed merge request",
    "merge_request.comment": "commented on merge request", "auth.login": "signed in",
    "auth.logout": "signed out", "auth.login_failed": "failed to sign in", "token.create": "created an API token",
    "token.revoke": "revoked an API token", "user.create": "created the user", "secret.put": "wrote a secret",
    "role.create": "created a role", "role_binding.create": "gave a role to someone",
    "role_binding.delete": "took a role from someone", "pipeline.create": "started pipeline",
    "pipeline.cancel": "cancelled pipeline", "pipeline.restart": "restarted pipeline",
    "pipeline_schedule.create": "scheduled pipelines", "pipeline_schedule.delete": "removed a pipeline schedule",
    "agent_session.create": "started an agent session", "agent_session.message": "sent a message to an agent session",
    "agent_session.stop": "stopped an agent session", "agent_session.interrupt": "interrupted an agent session",
    "agent_session.resume": "resumed an agent session", "agent_session.finish": "finished its agent session",
    "release.create": "published a release", "release.update": "edited a release",
    "release.delete": "deleted a release",
    "deploy.update": "changed what is deployed", "deploy.rollback": "rolled back a deployment",
    "deploy.promote": "promoted a deployment", "deploy.auto_rollback": "rolled back a failed deployment",
    "deploy.promote_request": "asked to promote a deployment", "deploy.ops_repo.create": "added an ops repository",
    "project.archive": "archived the project",
    "label.create": "created a label", "milestone.create": "created a milestone",
    "webhook.create": "added a webhook", "webhook.update": "changed a webhook", "webhook.delete": "removed a webhook",
    "branch_protection.create": "protected a branch", "branch_protection.update": "changed a branch protection",
    "branch_protection.delete": "removed a branch protection", "alert_rule.create": "created an alert rule",
    "delegation.create": "delegated permissions", "delegation.revoke": "revoked a delegation",
    "secret.create": "created a secret", "secret.read": "read a secret",
}


def describe(entry: AuditEntry, project: str | None) -> str:
    """One audit entry in words: "alice pushed 3 commits to main in alice/demo"."""
    who = entry.actor_name
    where = f" in {project}" if project else ""
    d = entry.detail
    if entry.action == "repo.push":
        parts = []
        for ref in d.get("refs", []) if isinstance(d.get("refs"), list) else []:
            name = _branch(str(ref.get("ref", "")))
            count = ref.get("count")
            kind = "tag" if str(ref.get("ref", "")).startswith("refs/tags/") else "branch"
            if ref.get("after") == _ZERO:
                parts.append(f"deleted {kind} {name}")
            elif ref.get("before") == _ZERO:
                parts.append(f"created {kind} {name}")
            elif isinstance(count, int):
                parts.append(f"pushed {count} commit{'s' if count != 1 else ''} to {name}")
            else:
                parts.append(f"pushed to {name}")
        return f"{who} {', '.join(parts) or 'pushed'}{where}"
    verb = _VERBS.get(entry.action)
    number = d.get("number")
    target = f" #{number}" if isinstance(number, int) and "issue" in entry.action else ""
    target = f" !{number}" if isinstance(number, int) and "merge_request" in entry.action else target
    target = f" #{number}" if isinstance(number, int) and entry.action.startswith("pipeline.") else target
    if verb:
        extra = ""
        if entry.action == "user.create" and isinstance(d.get("name"), str):
            extra = f" {d['name']}"
        if entry.action == "project.create" and not project and isinstance(d.get("name"), str):
            extra = f" {d['name']}"
        return f"{who} {verb}{target}{extra}{where}"
    action = entry.action.replace("_", " ").replace(".", " ")
    return f"{who}: {action}{target}{where}"


def _href(entry: AuditEntry, project: str | None) -> str | None:
    if not project:
        return None
    number = entry.detail.get("number")
    if entry.action.startswith("issue.") and isinstance(number, int):
        return f"/ui/{project}/issues/{number}"
    if entry.action.startswith("merge_request.") and isinstance(number, int):
        return f"/ui/{project}/merge-requests/{number}"
    if entry.action.startswith("pipeline.") and isinstance(number, int):
        return f"/ui/{project}/pipelines/{number}"
    if entry.action.startswith("agent_session.") and entry.resource_id:
        return f"/ui/agent-sessions/{entry.resource_id}"
    if entry.action == "repo.push":
        return f"/ui/{project}/commits/{_branch(str((entry.detail.get('refs') or [{}])[0].get('ref', '')))}"
    return f"/ui/{project}"


async def _counted(request: web.Request, entry: AuditEntry) -> list[Any]:
    """The push's refs, each with how many commits it brought (by the repository browser: before...after)."""

    refs = entry.detail.get("refs")
    if not isinstance(refs, list) or entry.project_id is None:
        return []
    out: list[Any] = []
    try:
        project = await kit(request).projects.get_by_id(entry.project_id)
    except CorralError:
        return refs
    for ref in refs:
        before, after = str(ref.get("before", "")), str(ref.get("after", ""))
        if before != _ZERO and after != _ZERO and str(ref.get("ref", "")).startswith("refs/heads/"):
            try:
                ref = {**ref, "count": len((await kit(request).browser.compare(project, before, after)).commits)}
            except CorralError:
                pass
        out.append(ref)
    return out


# What anyone who may read a project sees of it anyway (its code, issues, merge requests, pipelines, releases and
# agent sessions), so the dashboard may tell project readers without admin:audit about it. Settings, secrets,
# webhooks and role changes stay in the audit log.
_PUBLIC_ACTIONS = ("repo.push", "issue.", "merge_request.", "pipeline.", "release.", "agent_session.",
                   "project.create")


def _public(entry: AuditEntry) -> bool:
    return entry.action.startswith(_PUBLIC_ACTIONS)


# The machinery behind the work (sign-ins, the tokens and delegations pipelines and agent sessions are given and
# lose, their secret reads) is in the audit log, not in the dashboard's news.
_MACHINERY = ("auth.", "token.", "delegation.", "secret.read", "secret.rewrap", "webhook.encrypt")


def _news(entry: AuditEntry) -> bool:
    return not entry.action.startswith(_MACHINERY)


async def activities(request: web.Request, query: AuditQuery, *, keep: Callable[[AuditEntry], bool] | None = None,
                     ) -> tuple[list[Activity], str | None]:
    """A page of the audit log in words, with each project's name (only the entries ``keep`` keeps)."""
    from corral.entrypoints.web.routes.identity import project_names

    async with identity_of(request).uow_factory() as uow:
        found = await uow.audit.query(query)
    entries = [e for e in found.items if keep is None or keep(e)]
    names = await project_names(request, {e.project_id for e in entries if e.project_id})
    out = []
    counted = 0
    for e in entries:
        name = names.get(e.project_id) if e.project_id else None
        if e.action == "repo.push" and e.project_id and counted < 20:
            counted += 1
            e = attrs.evolve(e, detail={**e.detail, "refs": await _counted(request, e)})
        out.append(Activity(e, describe(e, name), name, _href(e, name)))
    return out, found.next_cursor


async def dashboard(request: web.Request) -> web.StreamResponse:

    context: dict[str, Any] = {}
    projects = await readable_projects(request, limit=50)
    context["projects"] = projects[:20]
    if await holds(request, "admin:audit"):
        found, _ = await activities(request, AuditQuery(limit=100), keep=_news)
        context["activity"] = found[:25]
    else:  # the projects the caller may read (their public work, or everything with admin:audit there), and
        # the caller's own actions
        items: list[Activity] = []
        for project in projects[:10]:
            if await holds(request, "admin:audit", project.id):
                found, _ = await activities(request, AuditQuery(project_id=project.id, limit=50), keep=_news)
            else:
                found, _ = await activities(request, AuditQuery(project_id=project.id, limit=50), keep=_public)
            items += found[:10]
        me = principal_of(request)
        if me is not None and getattr(me, "name", None):
            own, _ = await activities(request, AuditQuery(actor=me.name, limit=20), keep=_news)
            items += own
        unique = {a.entry.id: a for a in items}
        context["activity"] = sorted(unique.values(), key=lambda a: a.entry.created_at, reverse=True)[:25]
    context["pipelines"] = await running_pipelines(request, projects[:20])
    context["agent_sessions"] = await active_agent_sessions(request, projects[:20])
    context["deployments"] = await deployments(request, projects[:20])
    context["alerts"] = await alerts(request)
    return await page(request, "dashboard.html", title="Dashboard", **context)


async def readable_projects(request: web.Request, *, limit: int = 100, words: str = "") -> list[Project]:
    """Projects the caller may read (through the same authorizer as the API's listing), matching ``words``."""
    async def readable(project: Project) -> bool:
        return await can(request, "project:read", project)

    wanted = [w.lower() for w in words.split()]
    out: list[Project] = []
    cursor: str | None = None
    for _ in range(20):  # bounded: at most 2,000 projects looked at
        batch = await kit(request).projects.list(readable, limit=100, cursor=cursor)
        for project in batch.items:
            hay = f"{project.full_name} {project.display_name or ''} {project.description or ''}".lower()
            if all(w in hay for w in wanted):
                out.append(project)
        cursor = batch.next_cursor
        if cursor is None or len(out) >= limit:
            break
    return out[:limit]
