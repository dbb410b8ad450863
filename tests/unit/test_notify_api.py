"""The notifications REST API over fakes: inbox, unread count, mark read, preferences."""

from __future__ import annotations

import uuid

import attrs
import pytest
from aiohttp.test_utils import TestClient, TestServer

from corral.core.errors import Unauthenticated
from corral.core.notify.commands import PreferencesUpdate
from corral.core.notify.model import Recipient
from corral.core.notify.planner import NotificationPlanner
from corral.core.notify.service import NotificationService
from corral.core.outbox.relay import OutboxRelay
from corral.entrypoints.config import Settings
from corral.entrypoints.web.app import create_app
from corral.entrypoints.web.routes import notifications as notification_routes
from corral.entrypoints.web.security import WebAuth
from corral.fakes.notify import InMemoryRecipientDirectory, PlainRenderer
from tests.unit.secrets_support import new_db
from tests.unit.webstub import StubPlatform


@attrs.frozen
class Caller:
    user_id: uuid.UUID
    name: str


USERS = {name: Caller(uuid.uuid5(uuid.NAMESPACE_DNS, name), name) for name in ("ann", "bob")}


class HeaderAuth:
    async def authenticate(self, request):
        return USERS.get(request.headers.get("X-User", ""))

    async def authorize(self, request, principal, permission, project_id):
        if principal is None:
            raise Unauthenticated("authentication required")


@pytest.fixture
async def api():
    db = new_db()
    platform = StubPlatform(settings=Settings(profile="memory", validate_responses=True))  # answers match schemas
    platform.container.register(NotificationService, instance=NotificationService(db, db.clock))
    platform.container.register(WebAuth, instance=HeaderAuth())
    client = TestClient(TestServer(create_app(platform)))
    await client.start_server()
    directory = InMemoryRecipientDirectory(db.db.notify)
    project = uuid.uuid4()
    for c in USERS.values():
        directory.add_user(Recipient(c.user_id, c.name, f"{c.name}@example.org"))
    directory.add_member(project, "owner", USERS["ann"].user_id)
    relay = OutboxRelay(db, [NotificationPlanner(PlainRenderer(), db.clock).fan_out])

    async def emit(topic: str, **payload) -> None:
        async with db() as uow:
            await uow.outbox.add(topic, payload, project_id=project)
            await uow.commit()
        await relay.run_once()

    yield client, emit
    await client.close()


ANN = {"X-User": "ann"}


async def test_inbox_flow(api):
    client, emit = api
    for i in range(3):
        await emit("build_failed", title=f"build {i}")
    resp = await client.get("/api/v1/notifications/unread-count", headers=ANN)
    assert (await resp.json()) == {"count": 3}
    resp = await client.get("/api/v1/notifications?status=unread&limit=2", headers=ANN)
    body = await resp.json()
    assert resp.status == 200 and len(body["items"]) == 2 and body["next_cursor"]
    first = body["items"][0]
    assert first["type"] == "build_failed" and first["channel"] == "in_app" and first["status"] == "sent"
    assert first["subject"] == "build_failed: build 2"
    resp = await client.get(f"/api/v1/notifications?status=unread&limit=2&cursor={body['next_cursor']}",
                            headers=ANN)
    assert [i["subject"] for i in (await resp.json())["items"]] == ["build_failed: build 0"]
    resp = await client.post(f"/api/v1/notifications/{first['id']}/read", headers=ANN)
    assert resp.status == 200 and (await resp.json())["status"] == "read"
    assert (await (await client.get("/api/v1/notifications/unread-count", headers=ANN)).json()) == {"count": 2}
    resp = await client.post(f"/api/v1/notifications/{first['id']}/read", headers={"X-User": "bob"})
    assert resp.status == 404
    resp = await client.get("/api/v1/notifications?status=pending&channel=email", headers=ANN)
    assert len((await resp.json())["items"]) == 3
    resp = await client.get("/api/v1/notifications?status=bogus", headers=ANN)
    assert resp.status == 400 and (await resp.json())["field"] == "status"
    resp = await client.post("/api/v1/notifications/not-a-uuid/read", headers=ANN)
    assert resp.status == 400
    resp = await client.get("/api/v1/notifications")
    assert resp.status == 401


async def test_preferences_round_trip(api):
    client, emit = api
    resp = await client.get("/api/v1/notification-preferences", headers=ANN)
    assert (await resp.json()) == {"events": {}, "webhook_url": None}
    wanted = {"events": {"build_failed": ["in_app"], "alert_firing": ["email", "webhook"]},
              "webhook_url": "https://hooks.example.org/ann"}
    resp = await client.put("/api/v1/notification-preferences", headers=ANN, json=wanted)
    assert resp.status == 200
    got = await (await client.get("/api/v1/notification-preferences", headers=ANN)).json()
    assert got == {"events": {"alert_firing": ["email", "webhook"], "build_failed": ["in_app"]},
                   "webhook_url": "https://hooks.example.org/ann"}
    resp = await client.put("/api/v1/notification-preferences", headers=ANN, json={"events": {"x": []}})
    assert resp.status == 400 and (await resp.json())["field"] == "events.x"
    await emit("build_failed", title="t")
    items = (await (await client.get("/api/v1/notifications?status=pending", headers=ANN)).json())["items"]
    assert items == []  # build_failed now in-app only


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"events": {"build_failed": "in_app"}}, "events.build_failed", "expected a JSON array"),
    ({"events": ["build_failed"]}, "events", "expected a mapping"),
    ({"webhook_url": 42}, "webhook_url", "expected a string"),
    ({"events": {}, "email": "off"}, "email", "unknown field"),
    ({"events": {"build_failed": ["pigeon"]}}, "events.build_failed", "expected one of"),
])
async def test_bad_preferences_name_the_field(api, body, field, words):
    client, _emit = api
    resp = await client.put("/api/v1/notification-preferences", headers=ANN, json=body)
    assert resp.status == 400
    problem = await resp.json()
    assert problem["field"].split("[")[0] == field and words in problem["detail"], problem
    got = await (await client.get("/api/v1/notification-preferences", headers=ANN)).json()
    assert got == {"events": {}, "webhook_url": None}  # nothing changed


@pytest.mark.parametrize(("path", "field"), [
    ("/api/v1/notifications?unread=true", "unread"),
    ("/api/v1/notifications?channel=pigeon", "channel"),
    ("/api/v1/notifications/unread-count?channel=email", "channel"),
    ("/api/v1/notification-preferences?user=bob", "user"),
])
async def test_unknown_or_bad_query_parameters_are_refused(api, path, field):
    client, _emit = api
    resp = await client.get(path, headers=ANN)
    assert resp.status == 400 and (await resp.json())["field"] == field


def test_every_route_is_documented_and_authenticated():
    paths = {(s.method, s.path) for s in notification_routes.routes.specs}
    assert paths == {
        ("GET", "/api/v1/notifications"), ("GET", "/api/v1/notifications/unread-count"),
        ("POST", "/api/v1/notifications/{id}/read"), ("GET", "/api/v1/notification-preferences"),
        ("PUT", "/api/v1/notification-preferences"),
    }
    assert not any(s.public for s in notification_routes.routes.specs)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:18999/x",  # the attack: a loopback port scanner through last_error
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/x",
    "http://[::ffff:127.0.0.1]/x",
    "http://2130706433/x",
    "http://0x7f.1/x",
    "http://localhost:5432/x",
    "http://user:pass@hooks.example.org/x",
])
async def test_private_webhook_url_refused_in_every_environment(api, url):
    """The default (development, embedded) settings: a user cannot point their webhook at internal hosts."""
    client, _ = api
    resp = await client.put("/api/v1/notification-preferences", headers=ANN, json={"webhook_url": url})
    assert resp.status == 400
    assert (await resp.json())["field"] == "webhook_url"
    got = await (await client.get("/api/v1/notification-preferences", headers=ANN)).json()
    assert got["webhook_url"] is None  # nothing written


@pytest.mark.parametrize(("environment", "allow", "accepted"), [
    ("development", False, False), ("production", False, False), ("development", True, True),
])
async def test_only_the_private_targets_setting_relaxes_the_guard(tmp_path, environment, allow, accepted):
    """CORRAL_WEBHOOK_ALLOW_PRIVATE_TARGETS alone relaxes it (was: any CORRAL_ENVIRONMENT but production),
    for the saved preference and for the transport notifications are delivered with."""
    from corral.core.errors import InvalidInput
    from corral.core.notify.dispatcher import NotificationDispatcher
    from corral.core.outbox.relay import OutboxRelay
    from corral.entrypoints.config import Settings
    from corral.entrypoints.notify_wiring import wire_notify
    from corral.entrypoints.platform import Platform

    db = new_db()
    platform = Platform(settings=Settings(profile="memory", data_dir=tmp_path, environment=environment,
                                          webhook_allow_private_targets=allow))
    platform.uow_factory, platform.clock, platform.relay = db, db.clock, OutboxRelay(db)
    await wire_notify(platform)
    service = platform.resolve(NotificationService)
    transport = platform.resolve(NotificationDispatcher).webhooks
    try:
        url = "http://127.0.0.1:18999/x"
        if accepted:
            await service.set_preferences(USERS["ann"], PreferencesUpdate(webhook_url=url))
            transport.check_target(url)
        else:
            with pytest.raises(InvalidInput) as err:
                await service.set_preferences(USERS["ann"], PreferencesUpdate(webhook_url=url))
            assert err.value.field == "webhook_url"
            with pytest.raises(InvalidInput):
                transport.check_target(url)
    finally:
        for close in platform.closers:
            await close()
