"""Every mutation is audited: a registry-wide walk of the API's writes on the memory profile.

Every POST, PUT, PATCH and DELETE of the OpenAPI document (the same registry, ``ROUTE_TABLES``, the app
mounts) is either in ``PLAN`` — called once, successfully, in a seeded world, in an order where what it needs
exists — or in ``EXCLUDED`` with the reason it writes no audit row; the HTML form posts (not in the document)
likewise in ``PLAN_UI`` or ``EXCLUDED_UI``. Each successful call must add at least one audit row naming the
actor who called it and the resource it changed (inside a project: that project). A new write route fails
``test_every_write_is_walked_or_excluded`` (or ``test_every_form_post_is_walked_or_excluded``) until it is
added to one of the two.

Request bodies are generated from the route's attrs body class (its required fields, by type); ``PLAN`` only
spells out what a generated value cannot know (a user that exists, a permission name, a blob sha).
"""

from __future__ import annotations

import asyncio
import base64
import enum
import hashlib
import hmac
import json
import re
import struct
import types
import typing
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import aiohttp
import attrs
import pytest
from aiohttp.test_utils import TestClient, TestServer

from corral.adapters import argon2_hasher
from corral.core.audit.model import AuditEntry
from corral.core.ids import uuid7
from corral.core.notify.model import Channel, EventType, Notification, NotificationStatus
from corral.core.workloads.ports import Executor
from corral.entrypoints.bootstrap import Platform, start_platform
from corral.entrypoints.config import Settings
from corral.entrypoints.web.app import create_app
from corral.entrypoints.web.identity_auth import CSRF_COOKIE
from corral.entrypoints.web.openapi import build_openapi
from corral.entrypoints.web.routes import ROUTE_TABLES
from corral.entrypoints.web.routing import RouteSpec, openapi_path
from corral.fakes.executor import FakeRun
from corral.fakes.identity_services import InMemoryPasswordHasher

ADMIN, PASSWORD = "root", "correct horse battery"
SPECS: list[RouteSpec] = [s for t in ROUTE_TABLES for s in t.specs]
DOC = build_openapi(SPECS, server_url="http://127.0.0.1:8080")
MUTATING = ("post", "put", "patch", "delete")
WRITES = sorted((m.upper(), p) for p, ops in DOC["paths"].items() for m in ops if m in MUTATING)
BY_OPERATION = {(s.method, openapi_path(s.path)[0]): s for s in SPECS if s.include_in_schema}
# the HTML forms: not in the document, the same core services behind them
UI_FORMS = sorted((s.method, openapi_path(s.path)[0]) for s in SPECS
                  if not s.include_in_schema and s.method.lower() in MUTATING)

# Writes that leave no audit row, each with the reason. Keep it short: anything a user changes through the API
# belongs in PLAN.
EXCLUDED: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/auth/login"): "a login attempt, audited as auth.login / auth.login_failed whoever tries "
                                    "(identity's own tests); the walk logs in before it starts",
    ("POST", "/api/v1/pipelines/lint"): "checks a pipeline file it is sent; stores nothing",
    ("PUT", "/api/v1/objects/{key}"): "the byte leg of a signed object-store link; the mutation it completes (an "
                                      "LFS upload) is recorded by the LFS verify that follows",
    ("POST", "/v1/logs"): "OTLP ingest: telemetry data, not a change to Corral's state",
    ("POST", "/v1/traces"): "OTLP ingest: telemetry data, not a change to Corral's state",
    ("POST", "/v1/metrics"): "OTLP ingest: telemetry data, not a change to Corral's state",
    ("POST", "/{owner}/{name}/git-upload-pack"): "git fetch: reads only",
    ("POST", "/{owner}/{name}/git-receive-pack"): "git push: the git protocol; each push is recorded as a push "
                                                  "record and its events (tests/e2e/test_git_push_record.py)",
    ("POST", "/{owner}/{name}/info/lfs/objects/batch"): "Git LFS protocol: negotiates transfers, stores nothing",
    ("PUT", "/{owner}/{name}/info/lfs/objects/{oid}"): "Git LFS protocol: content-addressed bytes the next push "
                                                       "refers to",
    ("POST", "/{owner}/{name}/info/lfs/verify"): "Git LFS protocol: confirms an upload of content-addressed bytes",
    ("POST", "/mcp"): "the MCP protocol endpoint: its tools call the API operations walked here",
    ("DELETE", "/mcp"): "ends an MCP protocol session (transport state, nothing persistent)",
}


EXCLUDED_UI: dict[tuple[str, str], str] = {
    ("POST", "/ui/login"): "a login attempt, as POST /api/v1/auth/login (the walk is signed in already)",
}


@attrs.frozen
class Step:
    """One call of the walk: ``body`` entries override (or add to) the body generated from the route's class;
    ``save`` reads what later steps need from the answer into ``World.known``."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    raw: bytes | None = None  # a raw request body (release assets)
    query: dict[str, str] | None = None
    save: Callable[[World, Any], None] | None = None
    session: bool = False  # call with the admin's session (cookie + CSRF) instead of the API token
    at: dict[str, str] = attrs.field(factory=dict)  # path placeholder -> the key of World.known filling it
    prepare: Callable[[World], Awaitable[None]] | None = None  # look up what the call needs (into known)
    form: dict[str, str | list[str]] | None = None  # an HTML form's fields (posted with the session's CSRF)


def _keep(**names: str) -> Callable[[World, Any], None]:
    """Save answer fields: ``_keep(label_id="id")`` stores answer["id"] as known["label_id"]."""

    def save(world: World, answer: Any) -> None:
        for known, field in names.items():
            value: Any = answer
            for part in field.split("."):
                value = value[int(part)] if isinstance(value, list) else value[part]
            world.known[known] = str(value)

    return save


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _lookup(key: str, path: str, field: str) -> Callable[[World], Awaitable[None]]:
    """A prepare step: GET ``path`` (placeholders filled) and keep its ``field`` (dotted) as known[key]."""

    async def prepare(world: World) -> None:
        resp = await world.client.get(world.fill(path, {}), headers=world.auth)
        assert resp.status == 200, (path, await resp.text())
        _keep(**{key: field})(world, await resp.json())

    return prepare


async def _delivery(world: World) -> None:
    """The issue events made deliveries of the webhook: relay them (the outbox loop is not running)."""
    await world.platform.relay.run_once()
    await _lookup("delivery_id", P + "/webhooks/{hook_id}/deliveries", "items.0.id")(world)


async def _notification(world: World) -> None:
    """A notification of the admin's (someone else acting is what makes one; the walk has no one else)."""
    uow = world.platform.uow_factory()
    async with uow:
        user = await uow.users.get_by_name(ADMIN)
        assert user is not None
        notification = Notification(id=uuid7(), user_id=user.id, type=EventType.MR_CREATED,
                                    channel=Channel.IN_APP, status=NotificationStatus.SENT, subject="s", body="b",
                                    created_at=world.platform.clock.now())
        await uow.notifications.add(notification)
        await uow.commit()
    world.known["notification"] = str(notification.id)


def _totp_code(secret: str, at: float) -> str:
    """RFC 6238 (SHA-1, 30 s, 6 digits), what an authenticator app shows."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)
    digest = hmac.new(key, struct.pack(">Q", int(at // 30)), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


async def _totp(world: World) -> None:
    """A code not used yet: a code is accepted once, so the second step takes the next window's."""
    used = world.known.get("totp_used", "")
    at = world.platform.clock.now().timestamp()
    code = _totp_code(world.known["totp_secret"], at)
    if code == used:
        code = _totp_code(world.known["totp_secret"], at + 30)
    world.known["totp_code"] = world.known["totp_used"] = code


async def _other_session(world: World) -> None:
    """A second session of the admin's (another browser), to end from this one."""
    async with aiohttp.ClientSession() as browser:
        resp = await browser.post(world.client.make_url("/api/v1/auth/login"),
                                  json={"name": ADMIN, "password": PASSWORD})
        assert resp.status == 200, await resp.text()
    resp = await world.client.get("/api/v1/auth/sessions", headers={"X-CSRF-Token": world.csrf})
    assert resp.status == 200, await resp.text()
    world.known["other_session"] = next(s["id"] for s in (await resp.json())["items"] if not s["current"])


def _ui_totp_secret(world: World, page: Any) -> None:
    """The enrolment page shows the new secret (for people without a QR code reader)."""
    found = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', str(page))
    assert found, str(page)[:500]
    world.known["totp_secret"] = found[1]
    world.known.pop("totp_used", None)


def _ui_new_csrf(world: World, _page: Any) -> None:
    """A password change replaces the session: the UI's forms take the new token from its cookie."""
    world.csrf = next(c.value for c in world.client.session.cookie_jar if c.key == CSRF_COOKIE)


def _new_csrf(world: World, answer: Any) -> None:
    world.csrf = answer["csrf_token"]  # a password change replaces the session


async def _promotion_by_alice(world: World) -> None:
    """A promotion to production (protected) waits for someone other than who asked: alice asks."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as alice:
        resp = await alice.post(world.client.make_url("/api/v1/auth/login"),
                                json={"name": "alice", "password": PASSWORD})
        assert resp.status == 200, await resp.text()
        csrf = (await resp.json())["csrf_token"]
        resp = await alice.post(world.client.make_url(world.fill(P + "/deployments/production/promote", {})),
                                json={"from": "staging"}, headers={"X-CSRF-Token": csrf})
        assert resp.status == 200, await resp.text()
        world.known["promotion_id"] = (await resp.json())["id"]


async def _agent_running(world: World) -> None:
    """An interrupt needs the session's process running."""
    url = world.fill("/api/v1/agent-sessions/{agent_session}", {})
    for _ in range(500):
        resp = await world.client.get(url, headers=world.auth)
        if (await resp.json())["status"] != "pending":
            return
        await asyncio.sleep(0.01)


PIPELINE = "steps:\n  build:\n    image: alpine\n    commands: [echo hi]\n"
P = "/api/v1/projects/{owner}/{name}"

# The walk, in order: what a step needs was made by a step before it.
PLAN: list[Step] = [
    # -- people, roles, settings ------------------------------------------------------------------------------
    Step("POST", "/api/v1/users", {"name": "alice", "email": "alice@example.com", "password": PASSWORD, "admin": True},
         save=_keep(user="name")),
    Step("PATCH", "/api/v1/users/{name}", {"display_name": "Alice"}, at={"name": "user"}),
    Step("DELETE", "/api/v1/users/{name}/login-ban", at={"name": "user"}),
    Step("POST", "/api/v1/roles", {"name": "auditor"}, save=_keep(role="name")),
    Step("PUT", "/api/v1/roles/{name}/permissions", {"permissions": ["project:read"]}, at={"name": "role"}),
    Step("POST", "/api/v1/role-bindings", {"user": "alice", "role": "auditor"}, save=_keep(binding="id")),
    Step("POST", "/api/v1/delegations", {"delegate": "alice", "permissions": ["project:read"]},
         save=_keep(delegation="id")),
    Step("PUT", "/api/v1/settings/identity", {"require_totp_for_admins": False}),
    Step("POST", "/api/v1/tokens", {"scopes": ["project:read"]}, save=_keep(token="id")),
    Step("DELETE", "/api/v1/tokens/{id}", at={"id": "token"}),
    Step("PUT", "/api/v1/notification-preferences", {"webhook_url": "https://hooks.example.com/n"}),
    # -- global secrets ----------------------------------------------------------------------------------------
    Step("PUT", "/api/v1/secrets/{secret}", {"value": "s3cret"}),
    Step("DELETE", "/api/v1/secrets/{secret}"),
    Step("POST", "/api/v1/secrets/{secret}/undelete"),
    Step("POST", "/api/v1/secrets/{secret}/destroy"),
    # -- observability -----------------------------------------------------------------------------------------
    Step("POST", "/api/v1/alert-rules", {"query": "logs: level=error", "condition": "gt", "threshold": 1},
         save=_keep(rule_id="id")),
    Step("PATCH", "/api/v1/alert-rules/{rule_id}", {"threshold": 2}),
    Step("DELETE", "/api/v1/alert-rules/{rule_id}"),
    Step("POST", "/api/v1/observe/rotate"),
    # -- a project and its repository --------------------------------------------------------------------------
    Step("POST", "/api/v1/projects", {"name": "walk", "visibility": "public"}),
    Step("PATCH", P, {"description": "walked"}),
    Step("PUT", P + "/contents/{path}", {"content": _b64(PIPELINE), "message": "pipeline"}),
    Step("POST", P + "/contents", {"files": [{"operation": "create", "path": "doomed.txt", "content": _b64("x")}]}),
    Step("DELETE", P + "/contents/{path}", {"sha": "{doomed_sha}"}, at={"path": "doomed"},
         prepare=_lookup("doomed_sha", P + "/contents/doomed.txt", "sha")),
    Step("POST", P + "/repo/branches", {"name": "feature"}),
    Step("POST", P + "/repo/tags", {"name": "v0"}),
    Step("DELETE", P + "/repo/tags/{tag}"),
    Step("POST", P + "/branch-protections", {"pattern": "release/*"}, save=_keep(rule_id="id")),
    Step("PATCH", P + "/branch-protections/{rule_id}", {"allow_force_push": True}),
    Step("DELETE", P + "/branch-protections/{rule_id}"),
    Step("POST", P + "/webhooks", {"url": "https://hooks.example.com/x", "events": ["issue"]},
         save=_keep(hook_id="id")),
    Step("PATCH", P + "/webhooks/{hook_id}", {"active": True}),
    # -- issues, labels, milestones ----------------------------------------------------------------------------
    Step("POST", P + "/issues", {"body": "first"}, save=_keep(number="number")),
    Step("PATCH", P + "/issues/{number}", {"body": "changed"}),
    Step("POST", P + "/issues/{number}/comments"),
    Step("POST", P + "/issues/{number}/close"),
    Step("POST", P + "/issues/{number}/reopen"),
    Step("POST", P + "/webhooks/{hook_id}/deliveries/{delivery_id}/redeliver", prepare=_delivery),
    Step("DELETE", P + "/webhooks/{hook_id}"),
    Step("POST", P + "/labels", save=_keep(label_id="id")),
    Step("PATCH", P + "/labels/{label_id}", {"color": "#112233"}),
    Step("DELETE", P + "/labels/{label_id}"),
    Step("POST", P + "/milestones", save=_keep(milestone_id="id")),
    Step("PATCH", P + "/milestones/{milestone_id}", {"description": "soon"}),
    Step("DELETE", P + "/milestones/{milestone_id}"),
    # -- a merge request ---------------------------------------------------------------------------------------
    Step("POST", P + "/contents", {"branch": "feature", "files": [
        {"operation": "create", "path": "feature.txt", "content": _b64("f")}]}),
    Step("POST", P + "/merge-requests", {"source_branch": "feature"}, save=_keep(number="number")),
    Step("PATCH", P + "/merge-requests/{number}", {"body": "please"}),
    Step("POST", P + "/merge-requests/{number}/comments"),
    Step("POST", P + "/merge-requests/{number}/reviews", {"verdict": "comment"}),
    Step("POST", P + "/merge-requests/{number}/merge", {"delete_source_branch": False}),
    Step("DELETE", P + "/repo/branches/{branch}"),
    # -- releases ----------------------------------------------------------------------------------------------
    Step("POST", P + "/releases", {"tag": "v1"}, save=_keep(release_id="id")),
    Step("PATCH", P + "/releases/{release_id}", {"notes": "first"}),
    Step("POST", P + "/releases/{release_id}/assets", raw=b"binary", query={"name": "app.bin"},
         save=_keep(asset_name="name")),
    Step("DELETE", P + "/releases/{release_id}/assets/{asset_name}"),
    Step("DELETE", P + "/releases/{release_id}"),
    # -- project secrets ---------------------------------------------------------------------------------------
    Step("PUT", P + "/secrets/{secret}", {"value": "s3cret"}),
    Step("DELETE", P + "/secrets/{secret}"),
    Step("POST", P + "/secrets/{secret}/undelete"),
    Step("POST", P + "/secrets/{secret}/destroy"),
    # -- pipelines ---------------------------------------------------------------------------------------------
    Step("POST", P + "/pipelines", {"ref": "main"}, save=_keep(number="number")),
    Step("POST", P + "/pipelines/{number}/cancel"),
    Step("POST", P + "/pipelines/{number}/restart"),
    Step("POST", P + "/pipeline-schedules", {"cron": "@daily"}, save=_keep(schedule="name")),
    Step("DELETE", P + "/pipeline-schedules/{schedule}"),
    # -- agent sessions ----------------------------------------------------------------------------------------
    Step("POST", P + "/agent-sessions", save=_keep(agent_session="id")),
    Step("POST", "/api/v1/agent-sessions/{id}/messages", at={"id": "agent_session"}),
    Step("POST", "/api/v1/agent-sessions/{id}/interrupt", at={"id": "agent_session"}, prepare=_agent_running),
    Step("POST", "/api/v1/agent-sessions/{id}/stop", at={"id": "agent_session"}),
    # -- deployments -------------------------------------------------------------------------------------------
    Step("POST", "/api/v1/ops-repos", {"name": "ops", "project": "root/walk"}),
    Step("PUT", P + "/deployments/{environment}", {"ops_repo": "ops", "app_path": "apps/web",
                                                   "image_ref": "registry.example.com/web:1", "namespace": "web"}),
    Step("PUT", P + "/deployments/{environment}", {"ops_repo": "ops", "app_path": "apps/web",
                                                   "image_ref": "registry.example.com/web:2", "namespace": "web"}),
    Step("POST", P + "/deployments/{environment}/rollback", {"to": "{first_state}"},
         prepare=_lookup("first_state", P + "/deployments/{environment}/history", "-1.id")),
    Step("POST", P + "/deployments/{environment}/promote", {"from": "staging"}, at={"environment": "promote_to"}),
    Step("POST", P + "/promotions/{promotion_id}/approve", prepare=_promotion_by_alice),
    # -- the caller's own account ------------------------------------------------------------------------------
    Step("POST", "/api/v1/notifications/{id}/read", at={"id": "notification"}, prepare=_notification),
    Step("POST", "/api/v1/auth/totp", session=True, save=_keep(totp_secret="secret")),
    Step("POST", "/api/v1/auth/totp/confirm", {"code": "{totp_code}"}, session=True, prepare=_totp),
    Step("DELETE", "/api/v1/auth/totp", {"code": "{totp_code}"}, session=True, prepare=_totp),
    Step("DELETE", "/api/v1/auth/sessions/{id}", at={"id": "other_session"}, prepare=_other_session),
    Step("POST", "/api/v1/me/password", {"current_password": PASSWORD, "new_password": PASSWORD + "!"},
         session=True, save=_new_csrf),
    Step("POST", "/api/v1/auth/logout", session=True),
    # -- and away again ----------------------------------------------------------------------------------------
    Step("DELETE", "/api/v1/role-bindings/{id}", at={"id": "binding"}),
    Step("DELETE", "/api/v1/delegations/{id}", at={"id": "delegation"}),
    Step("DELETE", "/api/v1/roles/{name}", at={"name": "role"}),
    Step("DELETE", "/api/v1/users/{name}", at={"name": "user"}),
    Step("DELETE", P),
]


async def _api(world: World, method: str, path: str, body: Any = None) -> Any:
    resp = await world.client.request(method, world.fill(path, {}), json=body, headers=world.auth)
    assert 200 <= resp.status < 300, (method, path, await resp.text())
    return await resp.json() if resp.content_type.endswith("json") else None


def _then(*prepares: Callable[[World], Awaitable[None]]) -> Callable[[World], Awaitable[None]]:
    async def prepare(world: World) -> None:
        for one in prepares:
            await one(world)

    return prepare


async def _ui_project(world: World) -> None:
    """What the project forms act on, made through the API: a repository with a pipeline file and a branch with
    a commit, an ops repository and two deployed states."""
    world.known["name"] = "uiwalk"
    await _api(world, "POST", "/api/v1/projects", {"name": "uiwalk", "visibility": "public"})
    await _api(world, "PUT", P + "/contents/.corral.yaml", {"content": _b64(PIPELINE), "message": "pipeline"})
    await _api(world, "POST", P + "/repo/branches", {"name": "feature"})
    await _api(world, "POST", P + "/contents", {"branch": "feature", "files": [
        {"operation": "create", "path": "feature.txt", "content": _b64("f")}]})


async def _ui_binding(world: World) -> None:
    found = await _api(world, "GET", "/api/v1/role-bindings?user=bob")
    world.known["id"] = next(b["id"] for b in found["items"] if b["role"] == "uirole")


async def _ui_delegation(world: World) -> None:
    made = await _api(world, "POST", "/api/v1/delegations", {"delegate": "bob", "permissions": ["project:read"]})
    world.known["id"] = made["id"]


async def _ui_token(world: World) -> None:
    found = await _api(world, "GET", "/api/v1/tokens")
    world.known["id"] = next(t["id"] for t in found["items"] if t["name"] == "from-the-form")


async def _ui_agent_session(world: World) -> None:
    found = await _api(world, "GET", P + "/agent-sessions")
    world.known["agent_session"] = found["items"][0]["id"]
    await _agent_running(world)


async def _ui_deployments(world: World) -> None:
    await _api(world, "POST", "/api/v1/ops-repos", {"name": "uiops", "project": "root/uiwalk"})
    for tag in ("1", "2"):
        await _api(world, "PUT", P + "/deployments/staging", {
            "ops_repo": "uiops", "app_path": "apps/web", "image_ref": f"registry.example.com/web:{tag}",
            "namespace": "web"})
    history = await _api(world, "GET", P + "/deployments/staging/history")
    world.known["first_state"] = history[-1]["id"]


async def _ui_pipeline(world: World) -> None:
    made = await _api(world, "POST", P + "/pipelines", {"ref": "main"})
    world.known["number"] = str(made["number"])


async def _ui_first(world: World, path: str, key: str = "number") -> None:
    world.known[key] = str((await _api(world, "GET", path))["items"][0][key])


def _ui_issue(world: World) -> Awaitable[None]:
    return _ui_first(world, P + "/issues")


def _ui_mr(world: World) -> Awaitable[None]:
    return _ui_first(world, P + "/merge-requests")


async def _ui_second_mr(world: World) -> None:
    """A second merge request (the first is merged): one to close."""
    await _api(world, "POST", P + "/repo/branches", {"name": "feature2"})
    await _api(world, "POST", P + "/contents", {"branch": "feature2", "files": [
        {"operation": "create", "path": "feature2.txt", "content": _b64("g")}]})
    made = await _api(world, "POST", P + "/merge-requests", {"source_branch": "feature2", "title": "second"})
    world.known["number"] = str(made["number"])


def _ui_lookup(key: str, path: str, field: str = "id", **match: str) -> Callable[[World], Awaitable[None]]:
    """A prepare step: the ``field`` of the first item of GET ``path`` whose fields equal ``match``."""

    async def prepare(world: World) -> None:
        found = await _api(world, "GET", path)
        items = found["items"] if isinstance(found, dict) else found
        world.known[key] = str(next(i[field] for i in items if all(i.get(k) == v for k, v in match.items())))

    return prepare


async def _ui_delivery(world: World) -> None:
    """An issue event makes a delivery of the webhook (relayed here: the outbox loop is not running)."""
    await _api(world, "POST", P + "/issues", {"title": "an event"})
    await world.platform.relay.run_once()
    await _ui_lookup("delivery_id", P + "/webhooks/{hook_id}/deliveries")(world)


async def _ui_carol(world: World) -> None:
    await _api(world, "POST", "/api/v1/users", {"name": "carol", "email": "carol@example.com", "password": PASSWORD})


def _renamed(world: World, _page: Any) -> None:
    world.known["name"] = "uiwalk2"


UI = "/ui/{owner}/{name}"
S = UI + "/settings"

# The HTML forms, in order (what they need is made through the API in prepare steps, which are not counted).
PLAN_UI: list[Step] = [
    Step("POST", "/ui/admin/users", form={"name": "bob", "email": "bob@example.com", "password": PASSWORD}),
    Step("POST", "/ui/admin/users/{user}/lift-ban", at={"user": "uiuser"}),
    Step("POST", "/ui/admin/roles", form={"name": "uirole", "permissions": ["project:read"]}),
    Step("POST", "/ui/admin/roles/{role}/permissions", form={"permissions": ["project:read", "pipeline:read"]},
         at={"role": "uirole"}),
    Step("POST", "/ui/admin/role-bindings", form={"user": "bob", "role": "uirole"}),
    Step("POST", "/ui/admin/role-bindings/{id}/delete", prepare=_ui_binding),
    Step("POST", "/ui/admin/delegations/{id}/revoke", prepare=_ui_delegation),
    Step("POST", "/ui/admin/users/{user}/active", form={"active": "false"}, at={"user": "uiuser"}),
    Step("POST", "/ui/account/tokens", form={"name": "from-the-form", "scopes": ["project:read"]}),
    Step("POST", "/ui/account/tokens/{id}/revoke", prepare=_ui_token),
    Step("POST", UI + "/issues", form={"title": "from the form"}, prepare=_ui_project),
    Step("POST", UI + "/issues/{number}/comments", form={"body": "a comment"}, prepare=_ui_issue),
    Step("POST", UI + "/issues/{number}/status", form={"status": "closed"}),
    Step("POST", UI + "/issues/{number}/edit", form={"title": "edited", "body": "from the form"}),
    Step("POST", UI + "/issues/{number}/meta", form={"assignee": "root"}),
    Step("POST", UI + "/merge-requests", form={"source_branch": "feature", "title": "from the form"}),
    Step("POST", UI + "/merge-requests/{number}/comments", form={"body": "a comment"}, prepare=_ui_mr),
    Step("POST", UI + "/merge-requests/{number}/edit", form={"title": "edited", "body": "from the form"}),
    Step("POST", UI + "/merge-requests/{number}/meta", form={"reviewers": "root"}),
    Step("POST", UI + "/merge-requests/{number}/reviews", form={"verdict": "comment", "body": "looks fine"}),
    Step("POST", UI + "/merge-requests/{number}/merge", form={"strategy": "merge"}),
    Step("POST", UI + "/merge-requests/{number}/status", form={"status": "closed"}, prepare=_ui_second_mr),
    Step("POST", UI + "/branches", form={"name": "uibranch"}),
    Step("POST", UI + "/branches/delete", form={"name": "uibranch"}),
    Step("POST", UI + "/tags", form={"name": "uitag"}),
    Step("POST", UI + "/tags/delete", form={"name": "uitag"}),
    Step("POST", UI + "/releases", form={"tag": "uiv1", "title": "one"}),
    Step("POST", UI + "/releases/{release_id}/edit", form={"title": "One", "notes": "n"}, at={"release_id": "id"},
         prepare=_ui_lookup("id", P + "/releases", tag="uiv1")),
    Step("POST", UI + "/releases/{release_id}/delete", at={"release_id": "id"}),
    Step("POST", UI + "/agent-sessions", form={"prompt": "do it", "permissions": ["project:read"]}),
    Step("POST", "/ui/agent-sessions/{id}/messages", form={"content": "and more"}, at={"id": "agent_session"},
         prepare=_ui_agent_session),
    Step("POST", "/ui/agent-sessions/{id}/stop", at={"id": "agent_session"}),
    Step("POST", UI + "/deployments/{environment}/rollback", form={"to": "{first_state}"},
         prepare=_ui_deployments),
    Step("POST", UI + "/deployments/{environment}/promote", form={"from": "staging"},
         at={"environment": "promote_to"}),
    Step("POST", UI + "/pipelines/{number}/cancel", prepare=_ui_pipeline),
    Step("POST", UI + "/pipelines/{number}/restart"),
    # -- the project's settings, then away with it
    Step("POST", S, form={"description": "from the settings", "visibility": "public", "default_branch": "main"}),
    Step("POST", S + "/branch-protections", form={"pattern": "release/*"}),
    Step("POST", S + "/branch-protections/{rule_id}", form={"allow_force_push": "on"},
         prepare=_ui_lookup("rule_id", P + "/branch-protections", pattern="release/*")),
    Step("POST", S + "/branch-protections/{rule_id}/delete"),
    Step("POST", S + "/webhooks", form={"url": "https://hooks.example.com/ui", "events": ["issue"]}),
    Step("POST", S + "/webhooks/{hook_id}", form={"url": "https://hooks.example.com/ui", "events": ["issue"],
                                                  "active": "on"},
         prepare=_ui_lookup("hook_id", P + "/webhooks", url="https://hooks.example.com/ui")),
    Step("POST", S + "/webhooks/{hook_id}/deliveries/{delivery_id}/redeliver", prepare=_ui_delivery),
    Step("POST", S + "/webhooks/{hook_id}/delete"),
    Step("POST", S + "/secrets", form={"name": "UISECRET", "value": "v", "scope": "pipeline"}),
    Step("POST", S + "/secrets/{secret}/delete", at={"secret": "uisecret"}),
    Step("POST", S + "/members", form={"user": "carol", "role": "developer"}, prepare=_ui_carol),
    Step("POST", S + "/members/{binding_id}/role", form={"role": "viewer"},
         prepare=_ui_lookup("binding_id", "/api/v1/role-bindings?user=carol")),
    Step("POST", S + "/members/{binding_id}/delete",
         prepare=_ui_lookup("binding_id", "/api/v1/role-bindings?user=carol")),
    Step("POST", S + "/rename", form={"confirm": "uiwalk", "name": "uiwalk2"}, save=_renamed),
    Step("POST", S + "/archive", form={"archived": "true"}),
    Step("POST", S + "/archive", form={"archived": "false"}),
    Step("POST", S + "/delete", form={"confirm": "root/uiwalk2"}),
    # -- alert rules
    Step("POST", "/ui/observe/alerts", form={"name": "uirule", "query": "logs: level=error", "condition": "gt",
                                             "threshold": "1"}),
    Step("POST", "/ui/observe/alerts/{rule_id}", form={"name": "uirule", "query": "logs: level=error",
                                                       "condition": "gt", "threshold": "2"},
         prepare=_ui_lookup("rule_id", "/api/v1/alert-rules", name="uirule")),
    Step("POST", "/ui/observe/alerts/{rule_id}/enabled", form={"enabled": "false"}),
    Step("POST", "/ui/observe/alerts/{rule_id}/delete"),
    # -- the caller's own account
    Step("POST", "/ui/notifications/{id}/read", at={"id": "notification"}, prepare=_notification),
    Step("POST", "/ui/account/totp", save=_ui_totp_secret),
    Step("POST", "/ui/account/totp/confirm", form={"code": "{totp_code}"}, prepare=_totp),
    Step("POST", "/ui/account/password", form={"current_password": PASSWORD, "new_password": PASSWORD + "!",
                                               "confirm_password": PASSWORD + "!"}, save=_ui_new_csrf),
    Step("POST", "/ui/logout"),
]


# ---- bodies from the attrs classes ---------------------------------------------------------------------------

def _value(name: str, kind: Any, n: int) -> Any:
    """A plausible value of type ``kind`` for the field ``name`` (the walk's ``n``-th generated value)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Literal:
        return args[0]
    if origin in (typing.Union, types.UnionType):
        return _value(name, next(a for a in args if a is not type(None)), n)
    if origin is list:
        return [_value(name, args[0], n)] if args else []
    if origin is dict or kind is dict:
        return {}
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return next(iter(kind)).value
    if kind is bool:
        return False
    if kind is int:
        return 1
    if kind is float:
        return 1.0
    if kind is uuid.UUID:
        return str(uuid.uuid4())
    if kind is datetime:
        return "2030-01-01T00:00:00Z"
    if isinstance(kind, type) and attrs.has(kind):
        return generated_body(kind, n)
    return f"{name.replace('_', '-')}-{n}"


def generated_body(cls: type, n: int = 0) -> dict[str, Any]:
    """The required fields of the attrs class ``cls`` with generated values."""
    hints = typing.get_type_hints(cls)
    return {a.name: _value(a.name, hints[a.name], n) for a in attrs.fields(cls)
            if a.default is attrs.NOTHING}


# ---- the world the walk runs in ------------------------------------------------------------------------------

DEFAULTS = {"owner": ADMIN, "name": "walk", "secret": "S1", "path": ".corral.yaml", "doomed": "doomed.txt",
            "environment": "staging", "promote_to": "qa", "tag": "v0", "branch": "feature",
            "uiuser": "bob", "uirole": "uirole", "uisecret": "UISECRET"}


@attrs.define
class World:
    platform: Platform
    client: TestClient
    token: str
    csrf: str
    known: dict[str, str] = attrs.field(factory=lambda: dict(DEFAULTS))

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def fill(self, path: str, at: dict[str, str]) -> str:
        """``path`` with each {placeholder} replaced by what the walk knows (``at`` renames the key)."""
        return re.sub(r"\{(\w+)\}", lambda m: urllib.parse.quote(self.known[at.get(m[1], m[1])], safe=""), path)

    def body(self, step: Step) -> dict[str, Any] | None:
        spec = BY_OPERATION[(step.method, step.path)]
        if spec.body is None or not attrs.has(spec.body):
            return step.body
        body = {**generated_body(spec.body, len(self.known)), **(step.body or {})}
        return {k: v.format(**self.known) if isinstance(v, str) else v for k, v in body.items()}

    def audit(self) -> list[AuditEntry]:
        return list(self.platform.uow_factory.db.audit.entries.values())  # type: ignore[attr-defined]


async def _claude(run: FakeRun) -> int:
    """A stand-in Claude Code that starts and then listens until its input closes."""
    await run.write(json.dumps({"type": "system", "subtype": "init", "session_id": "s", "cwd": "/ws/repo",
                                "tools": [], "mcp_servers": [], "model": "m", "permissionMode": "acceptEdits",
                                "apiKeySource": "none", "uuid": str(uuid.uuid4())}) + "\n")
    while await run.read_line() is not None:
        pass
    return 0


async def _git(run: FakeRun) -> int:
    return 0


@pytest.fixture
async def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    # argon2id costs a second a password on a busy machine: what is walked is the audit, not the hashing
    monkeypatch.setattr(argon2_hasher, "Argon2PasswordHasher", lambda **_kw: InMemoryPasswordHasher())
    settings = Settings(profile="memory", data_dir=tmp_path, validate_responses=True, bootstrap_admin_name=ADMIN,
                        bootstrap_admin_password=PASSWORD, bootstrap_admin_email="root@example.com")
    platform = await start_platform(settings)
    executor = platform.resolve(Executor)
    executor.script("claude", _claude)  # an agent session's process: it runs until told to stop
    executor.script("git", _git)
    client = TestClient(TestServer(create_app(platform)))
    await client.start_server()
    try:
        resp = await client.post("/api/v1/auth/login", json={"name": ADMIN, "password": PASSWORD})
        assert resp.status == 200, await resp.text()
        csrf = (await resp.json())["csrf_token"]
        perms = [p["name"] for p in (await (await client.get("/api/v1/permissions")).json())["items"]]
        resp = await client.post("/api/v1/tokens", json={"name": "walk", "scopes": perms},
                                 headers={"X-CSRF-Token": csrf})
        assert resp.status == 201, await resp.text()
        yield World(platform, client, (await resp.json())["token"], csrf)
    finally:
        await client.close()
        await platform.aclose()


# ---- the tests -----------------------------------------------------------------------------------------------

def test_every_write_is_walked_or_excluded() -> None:
    walked = {(s.method, s.path) for s in PLAN}
    missing = sorted(set(WRITES) - walked - set(EXCLUDED))
    assert not missing, "writes neither walked (PLAN) nor EXCLUDED:\n" + "\n".join(f"{m} {p}" for m, p in missing)
    stale = sorted((walked | set(EXCLUDED)) - set(WRITES))
    assert not stale, f"no such write any more: {stale}"
    assert not walked & set(EXCLUDED), f"both walked and excluded: {sorted(walked & set(EXCLUDED))}"


def test_every_form_post_is_walked_or_excluded() -> None:
    walked = {(s.method, s.path) for s in PLAN_UI}
    missing = sorted(set(UI_FORMS) - walked - set(EXCLUDED_UI))
    assert not missing, "form posts neither walked (PLAN_UI) nor EXCLUDED_UI:\n" + "\n".join(
        f"{m} {p}" for m, p in missing)
    stale = sorted((walked | set(EXCLUDED_UI)) - set(UI_FORMS))
    assert not stale, f"no such form post any more: {stale}"


def _names_actor_and_resource(entry: AuditEntry, project_id: uuid.UUID | None) -> bool:
    """The row names who (the walk's admin) and what: a resource kind with its id or details, and — for a write
    inside a project — that project."""
    return (entry.actor_name == ADMIN and bool(entry.resource) and (entry.resource_id is not None or bool(entry.detail))
            and (project_id is None or entry.project_id == project_id))


async def _project_of(world: World, step: Step) -> uuid.UUID | None:
    """The project a write acts in (its path names one), None for the others."""
    if not step.path.startswith((P, "/ui/{owner}/{name}")):
        return None
    key = f"project:{world.known['name']}"
    if key not in world.known:
        resp = await world.client.get(world.fill(P, {}), headers=world.auth)
        assert resp.status == 200, await resp.text()
        world.known[key] = (await resp.json())["id"]
    return uuid.UUID(world.known[key])


async def _call(world: World, step: Step) -> tuple[int, Any]:
    url = world.fill(step.path, step.at)
    if url.startswith("/ui/"):  # an HTML form: the session cookie, the CSRF token as a field, a redirect
        fields = [("csrf_token", world.csrf)]
        for name, value in (step.form or {}).items():
            fields += [(name, v.format(**world.known)) for v in ([value] if isinstance(value, str) else value)]
        resp = await world.client.post(url, data=fields, allow_redirects=False)
        if resp.status == 303 and resp.headers.get("Location", "").startswith("/ui/login"):
            return 401, "redirected to the login page"
        return resp.status, await resp.text()
    headers = {"X-CSRF-Token": world.csrf} if step.session else world.auth
    if step.raw is not None:
        resp = await world.client.request(step.method, url, data=step.raw, params=step.query,
                                          headers={**headers, "Content-Type": "application/octet-stream"})
    else:
        body = world.body(step)
        resp = await world.client.request(step.method, url, json=body, params=step.query, headers=headers)
    text = await resp.text()
    answer: Any = text
    if resp.content_type.endswith("json") and text:
        answer = await resp.json(content_type=None)
    return resp.status, answer


async def test_every_successful_write_is_audited(world: World) -> None:
    await _walk(world, PLAN)


async def test_every_successful_form_post_is_audited(world: World) -> None:
    await _walk(world, PLAN_UI)


async def _walk(world: World, plan: list[Step]) -> None:
    failed: list[str] = []
    unaudited: list[str] = []
    for step in plan:
        label = f"{step.method} {step.path}"
        try:
            if step.prepare is not None:  # before the count: what a prepare step audits is not the write's
                await step.prepare(world)
            project_id = await _project_of(world, step)
            before = {e.id for e in world.audit()}
            status, answer = await _call(world, step)
        except KeyError as exc:  # an earlier step failed to make what this one needs
            failed.append(f"{label}: needs {exc}, which no earlier step made")
            continue
        if not 200 <= status < 400:
            failed.append(f"{label}: {status} {str(answer)[:300]}")
            continue
        if step.save is not None:
            step.save(world, answer)
        new = [e for e in world.audit() if e.id not in before]
        if not any(_names_actor_and_resource(e, project_id) for e in new):
            unaudited.append(f"{label}: {[(e.actor_name, e.action, e.resource, e.project_id) for e in new]}")
    assert not failed, "writes the walk could not make:\n" + "\n".join(failed)
    assert not unaudited, "successful writes without an audit row naming the actor and resource:\n" + "\n".join(
        unaudited)
