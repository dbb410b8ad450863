"""Notifications on fakes: planning from the outbox, preferences, dedupe, rate limit, delivery, retries, inbox."""

from __future__ import annotations

import uuid
from datetime import timedelta

import attrs
import pytest

from corral.adapters.notify_templates import JinjaRenderer
from corral.contracts.notify import NotificationStoresContract
from corral.core.errors import InvalidInput, NotFound
from corral.core.notify.commands import PreferencesUpdate
from corral.core.notify.dispatcher import NotificationDispatcher
from corral.core.notify.model import Channel, EventType, NotificationStatus, Preferences, Recipient
from corral.core.notify.planner import NotificationPlanner
from corral.core.notify.service import NotificationService
from corral.core.outbox.relay import OutboxRelay
from corral.fakes.notify import InMemoryRecipientDirectory, PlainRenderer, RecordingEmailSender
from corral.fakes.uow import InMemoryUnitOfWorkFactory
from corral.fakes.webhooks import RecordingWebhookTransport
from tests.unit.secrets_support import audit, new_db


@attrs.define
class People:
    db: InMemoryUnitOfWorkFactory

    @property
    def directory(self):
        return InMemoryRecipientDirectory(self.db.db.notify)

    async def user(self, name: str) -> Recipient:
        r = Recipient(uuid.uuid4(), name, f"{name}@example.org")
        self.directory.add_user(r)
        return r

    async def project(self, owner_id: uuid.UUID) -> uuid.UUID:
        pid = uuid.uuid4()
        self.directory.add_member(pid, "owner", owner_id)
        return pid

    async def bind(self, project_id: uuid.UUID, role: str, user_id: uuid.UUID) -> None:
        self.directory.add_member(project_id, role, user_id)


class TestInMemoryNotificationStores(NotificationStoresContract):
    @pytest.fixture
    def uow_factory(self):
        return new_db()

    @pytest.fixture
    def people(self, uow_factory):
        return People(uow_factory)


@attrs.define
class World:
    db: InMemoryUnitOfWorkFactory
    people: People
    relay: OutboxRelay
    dispatcher: NotificationDispatcher
    service: NotificationService
    email: RecordingEmailSender
    hooks: RecordingWebhookTransport
    planner: NotificationPlanner

    async def emit(self, topic: str, payload: dict, project_id=None) -> None:
        async with self.db() as uow:
            await uow.outbox.add(topic, payload, project_id=project_id)
            await uow.commit()
        while await self.relay.run_once():
            pass

    def rows(self, **match):
        return [
            n for n in self.db.db.notify.notifications.values()
            if all(getattr(n, k) == v for k, v in match.items())
        ]


@pytest.fixture
def w() -> World:
    db = new_db()
    planner = NotificationPlanner(PlainRenderer(), db.clock, rate_limit_per_hour=3)
    email, hooks = RecordingEmailSender(), RecordingWebhookTransport(allow_private=True)
    dispatcher = NotificationDispatcher(db, email, hooks, db.clock, webhook_secret="whsec", max_attempts=3)
    return World(db, People(db), OutboxRelay(db, [planner.fan_out]), dispatcher, NotificationService(db, db.clock),
                 email, hooks, planner)


async def test_event_reaches_project_roles_and_named_users_but_not_the_actor(w: World):
    owner, dev, ops, author, stranger = [await w.people.user(n) for n in ("own", "dev", "ops", "author", "x")]
    project = await w.people.project(owner.user_id)
    await w.people.bind(project, "developer", dev.user_id)
    await w.people.bind(project, "ops", ops.user_id)
    await w.emit("build_failed", {"title": "main #12", "user_ids": [str(author.user_id)],
                                  "actor_id": str(dev.user_id)}, project)
    in_app = {n.user_id for n in w.rows(channel=Channel.IN_APP)}
    assert in_app == {owner.user_id, author.user_id}  # developer is the actor; ops is not routed build_failed
    assert {n.target for n in w.rows(channel=Channel.EMAIL)} == {"own@example.org", "author@example.org"}
    assert all(n.status is NotificationStatus.PENDING for n in w.rows(channel=Channel.EMAIL))
    assert stranger.user_id not in in_app
    await w.emit("push", {"ref": "main"}, project)  # not a notifying topic
    await w.emit("alert_firing", {"title": "p99 latency"}, project)
    assert {n.user_id for n in w.rows(type=EventType.ALERT_FIRING, channel=Channel.IN_APP)} == {
        owner.user_id, ops.user_id}


async def test_preferences_choose_channels(w: World):
    ann = await w.people.user("ann")
    project = await w.people.project(ann.user_id)
    await w.service.set_preferences(ann, PreferencesUpdate(events={"build_failed": ["webhook"], "mr_created": []},
                                          webhook_url="http://hooks.local/ann"))
    await w.emit("build_failed", {"title": "t"}, project)
    await w.emit("mr_created", {"title": "t"}, project)
    await w.emit("deploy_status", {"status": "ok"}, project)
    assert [(n.type, n.channel) for n in sorted(w.rows(), key=lambda n: (n.type, n.channel))] == [
        (EventType.BUILD_FAILED, Channel.WEBHOOK), (EventType.DEPLOY_STATUS, Channel.EMAIL),
        (EventType.DEPLOY_STATUS, Channel.IN_APP),
    ]
    with pytest.raises(InvalidInput) as err:
        await w.service.set_preferences(ann, PreferencesUpdate(events={"build_failed": ["pigeon"]}))
    assert err.value.field == "events.build_failed"
    with pytest.raises(InvalidInput) as err:
        await w.service.set_preferences(ann, PreferencesUpdate(events={"nope": []}))
    assert err.value.field == "events.nope"
    with pytest.raises(InvalidInput) as err:
        await w.service.set_preferences(ann, PreferencesUpdate(webhook_url="ftp://x"))
    assert err.value.field == "webhook_url"
    assert (await w.service.preferences(ann)).webhook_url == "http://hooks.local/ann"


async def test_redelivered_event_and_dedupe_key_notify_once(w: World):
    bob = await w.people.user("bob")
    project = await w.people.project(bob.user_id)
    async with w.db() as uow:
        event = await uow.outbox.add("mr_merged", {"title": "t"}, project_id=project)
        await uow.commit()
    async with w.db() as uow:  # at-least-once: a crashed relay hands the same event out again
        await w.planner.fan_out(uow, event)
        await w.planner.fan_out(uow, event)
        await uow.commit()
    assert len(w.rows(channel=Channel.IN_APP)) == 1
    for _ in range(2):
        await w.emit("alert_firing", {"title": "cpu", "dedupe_key": "rule-7:firing"}, project)
    assert len(w.rows(type=EventType.ALERT_FIRING, channel=Channel.IN_APP)) == 1


async def test_rate_limit_per_user_and_channel(w: World):
    cat = await w.people.user("cat")
    project = await w.people.project(cat.user_id)
    for i in range(5):
        await w.emit("mr_created", {"title": f"mr {i}"}, project)
    emails = w.rows(channel=Channel.EMAIL)
    assert sorted(n.status.value for n in emails) == ["failed", "failed", "pending", "pending", "pending"]
    assert all("rate limited" in n.last_error for n in emails if n.status is NotificationStatus.FAILED)
    assert len(w.rows(channel=Channel.IN_APP)) == 5  # the inbox always gets it
    w.db.clock.advance(3601)
    await w.emit("mr_created", {"title": "later"}, project)
    assert len([n for n in w.rows(channel=Channel.EMAIL) if n.status is NotificationStatus.PENDING]) == 4


async def test_delivery_one_failing_channel_never_blocks_another_and_retries_back_off(w: World):
    good, bad = await w.people.user("good"), await w.people.user("bad")
    project = await w.people.project(good.user_id)
    await w.people.bind(project, "developer", bad.user_id)
    await w.service.set_preferences(good, PreferencesUpdate(events={"build_failed": ["email", "webhook"]},
                                           webhook_url="http://hooks.local/good"))
    w.email.failing.add("bad@example.org")
    w.hooks.script = [500, 500, 500]  # the webhook keeps failing
    await w.emit("build_failed", {"title": "t"}, project)
    assert await w.dispatcher.deliver_due() == 3
    assert [to for to, _, _ in w.email.sent] == ["good@example.org"]
    [good_mail] = w.rows(channel=Channel.EMAIL, user_id=good.user_id)
    assert good_mail.status is NotificationStatus.SENT and good_mail.attempts == 1
    [hook] = w.rows(channel=Channel.WEBHOOK)
    [bad_mail] = w.rows(channel=Channel.EMAIL, user_id=bad.user_id)
    for n in (hook, bad_mail):
        assert n.status is NotificationStatus.PENDING and n.attempts == 1
        assert n.next_attempt_at == w.db.clock.now() + timedelta(seconds=30)
    assert "HTTP 500" in hook.last_error and "relay refused" in bad_mail.last_error
    assert await w.dispatcher.deliver_due() == 0  # not due yet
    w.db.clock.advance(30)
    assert await w.dispatcher.deliver_due() == 2
    [hook] = w.rows(channel=Channel.WEBHOOK)
    assert hook.attempts == 2 and hook.next_attempt_at == w.db.clock.now() + timedelta(seconds=60)
    w.db.clock.advance(60)
    w.email.failing.clear()
    assert await w.dispatcher.deliver_due() == 2
    [hook] = w.rows(channel=Channel.WEBHOOK)
    assert hook.status is NotificationStatus.FAILED and hook.attempts == 3 and hook.next_attempt_at is None
    [bad_mail] = w.rows(channel=Channel.EMAIL, user_id=bad.user_id)
    assert bad_mail.status is NotificationStatus.SENT and bad_mail.attempts == 3
    post = w.hooks.posts[0]
    assert post.headers["X-Corral-Notification-Event"] == "build_failed"
    import hashlib
    import hmac

    digest = hmac.new(b"whsec", post.body, hashlib.sha256).hexdigest()
    assert post.headers["X-Gitea-Signature"] == digest
    assert post.headers["X-Hub-Signature-256"] == f"sha256={digest}"


async def test_two_dispatchers_never_deliver_the_same_notification(w: World):
    users = [await w.people.user(f"u{i}") for i in range(6)]
    project = await w.people.project(users[0].user_id)
    for u in users[1:]:
        await w.people.bind(project, "developer", u.user_id)
    await w.emit("mr_created", {"title": "t"}, project)
    other = NotificationDispatcher(w.db, w.email, w.hooks, w.db.clock, batch_size=3)
    w.dispatcher.batch_size = 3
    async with w.db() as uow_a:  # replica A holds its claim while replica B runs
        claimed = await uow_a.notifications.claim_due(w.db.clock.now(), 3)
        assert await other.deliver_due() == 3
    assert len(claimed) == 3
    assert await w.dispatcher.deliver_due() == 3
    assert sorted(to for to, _, _ in w.email.sent) == sorted(u.email for u in users)


async def test_inbox_list_unread_mark_read(w: World):
    dan, eve = await w.people.user("dan"), await w.people.user("eve")
    project = await w.people.project(dan.user_id)
    for i in range(3):
        await w.emit("deploy_status", {"status": f"s{i}"}, project)
    assert await w.service.unread_count(dan) == 3
    page = await w.service.list(dan, status="unread", limit=2)
    assert len(page.items) == 2 and page.next_cursor
    n = await w.service.mark_read(dan, page.items[0].id)
    assert n.status is NotificationStatus.READ and n.read_at is not None
    assert (await w.service.mark_read(dan, n.id)).read_at == n.read_at  # idempotent
    assert await w.service.unread_count(dan) == 2
    assert [x.id for x in (await w.service.list(dan, status="read")).items] == [n.id]
    with pytest.raises(NotFound):
        await w.service.mark_read(eve, page.items[1].id)
    email = w.rows(channel=Channel.EMAIL)[0]
    with pytest.raises(InvalidInput):
        await w.service.mark_read(dan, email.id)
    with pytest.raises(InvalidInput) as err:
        await w.service.list(dan, status="weird")
    assert err.value.field == "status"
    assert len((await w.service.list(dan, status="pending")).items) == 3
    assert [e.action for e in audit(w.db)].count("notification.read") == 1


async def test_relay_sets_aside_a_poison_event(w: World):
    fin = await w.people.user("fin")
    project = await w.people.project(fin.user_id)

    async def boom(uow, event):
        if event.payload.get("poison"):
            raise RuntimeError("consumer bug")
        return 0

    w.relay.consumers.append(boom)
    await w.emit("build_failed", {"poison": True}, project)
    await w.emit("build_failed", {"title": "fine"}, project)
    assert sum(e.processed_at is not None for e in w.db.db.outbox.events.values()) == 2
    assert [n.body for n in w.rows(channel=Channel.IN_APP)] == ["build_failed\nfine"]


def test_jinja_templates_render_every_event_with_escaping():
    r = JinjaRenderer()
    for event in EventType:
        m = r.render(event, {"title": "<b>x</b>\nInjected: yes", "project": "acme/web", "url": "http://c/x"})
        assert "\n" not in m.subject and "acme/web" in m.subject
        assert "&lt;b&gt;x&lt;/b&gt;" in m.html and "<b>x</b>" in m.text
    assert r.render(EventType.ALERT_FIRING, {}).subject == "[corral] FIRING: alert"


def test_preferences_defaults():
    p = Preferences(uuid.uuid4())
    assert p.channels_for(EventType.BUILD_FAILED) == {Channel.IN_APP, Channel.EMAIL}


async def test_projects_domain_merge_request_events_notify(w: World):
    owner, author, merger = [await w.people.user(n) for n in ("owner", "author", "merger")]
    project = await w.people.project(owner.user_id)
    mr = {"id": str(uuid.uuid4()), "number": 7, "title": "Add login", "target_branch": "main",
          "author": {"id": str(author.user_id), "name": "author"}}
    proj = {"id": str(project), "full_name": "acme/web"}
    await w.emit("merge_request", {"action": "opened", "project": proj, "merge_request": mr,
                                   "sender": {"id": str(author.user_id), "name": "author"}}, project)
    created = w.rows(type=EventType.MR_CREATED, channel=Channel.IN_APP)
    assert [n.user_id for n in created] == [owner.user_id]  # the author opened it: not told
    assert created[0].subject == "mr_created: Add login" and created[0].payload["project"] == "acme/web"
    await w.emit("merge_request", {"action": "merged", "project": proj, "merge_request": mr,
                                   "sender": {"id": str(merger.user_id), "name": "merger"}}, project)
    merged = w.rows(type=EventType.MR_MERGED, channel=Channel.IN_APP)
    assert sorted(n.user_id for n in merged) == sorted([owner.user_id, author.user_id])
    await w.emit("merge_request", {"action": "commented", "project": proj, "merge_request": mr}, project)
    await w.emit("issue", {"action": "opened"}, project)
    assert len(w.rows(channel=Channel.IN_APP)) == 3


async def test_actor_is_told_only_when_asked(w: World):
    gus = await w.people.user("gus")
    await w.emit("agent_completed", {"user_ids": [str(gus.user_id)], "actor_id": str(gus.user_id)})
    assert w.rows() == []
    await w.emit("agent_completed", {"user_ids": [str(gus.user_id)], "actor_id": str(gus.user_id),
                                     "notify_actor": True, "title": "session 3"})
    assert [n.user_id for n in w.rows(channel=Channel.IN_APP)] == [gus.user_id]


async def test_alert_rule_channels_narrow_external_channels(w: World):
    hal = await w.people.user("hal")
    project = await w.people.project(hal.user_id)
    await w.service.set_preferences(hal, PreferencesUpdate(events={"alert_firing": ["in_app", "email", "webhook"]},
                                          webhook_url="http://hooks.local/hal"))
    await w.emit("alert_firing", {"title": "disk", "channels": ["webhook"], "user_ids": [str(hal.user_id)],
                                  "notify_actor": True, "dedupe_key": "alert:1"}, project)
    assert sorted(n.channel.value for n in w.rows()) == ["in_app", "webhook"]
