"""Behavioural suites for the notification stores, run against the fakes and PostgreSQL.

Fixtures the subclass provides:
- ``uow_factory``: units of work carrying ``notifications``, ``notification_preferences``,
  ``notification_recipients``;
- ``people``: an object with ``async user(name) -> Recipient`` (an active user with an email),
  ``async project(owner_id) -> uuid``, ``async bind(project_id, role_name, user_id)``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from corral.core.ids import uuid7
from corral.core.notify.model import Channel, EventType, Notification, NotificationStatus, Preferences

__all__ = ["NotificationStoresContract"]

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _n(user_id: uuid.UUID, channel: Channel = Channel.IN_APP, **kw: Any) -> Notification:
    fields: dict[str, Any] = {
        "id": uuid7(), "user_id": user_id, "type": EventType.BUILD_FAILED, "channel": channel,
        "status": NotificationStatus.SENT if channel is Channel.IN_APP else NotificationStatus.PENDING,
        "subject": "Build failed", "body": "text", "created_at": T0, "payload": {"title": "t", "n": 1},
        "dedupe_key": uuid7().hex,
    }
    fields.update(kw)
    return Notification(**fields)


class NotificationStoresContract:
    async def test_add_get_dedupe_and_update(self, uow_factory: Any, people: Any) -> None:
        bob = await people.user("bob")
        first = _n(bob.user_id, Channel.EMAIL, dedupe_key="ev-1", target="bob@example.org", html="<p>x</p>",
                   next_attempt_at=T0)
        async with uow_factory() as uow:
            assert await uow.notifications.add(first) is True
            assert await uow.notifications.add(attrs.evolve(first, id=uuid7())) is False
            assert await uow.notifications.add(attrs.evolve(first, id=uuid7(), channel=Channel.IN_APP)) is True
            await uow.commit()
        async with uow_factory() as uow:
            got = await uow.notifications.get(first.id)
            assert got == first
            changed = attrs.evolve(got, status=NotificationStatus.SENT, attempts=2, next_attempt_at=None,
                                   last_error="x", sent_at=T0 + timedelta(seconds=5))
            await uow.notifications.update(changed)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.notifications.get(first.id) == changed
            assert await uow.notifications.get(uuid7()) is None

    async def test_inbox_listing_unread_and_paging(self, uow_factory: Any, people: Any) -> None:
        ann, other = await people.user("ann"), await people.user("other")
        mine = [_n(ann.user_id) for _ in range(5)]
        async with uow_factory() as uow:
            for n in mine:
                await uow.notifications.add(n)
            await uow.notifications.add(_n(other.user_id))
            await uow.notifications.add(_n(ann.user_id, Channel.EMAIL, target="a@x"))
            await uow.notifications.update(attrs.evolve(mine[0], status=NotificationStatus.READ, read_at=T0))
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.notifications.unread_count(ann.user_id) == 4
            page = await uow.notifications.list_for_user(ann.user_id, channel=Channel.IN_APP, status=None,
                                                         limit=3, cursor=None)
            assert [n.id for n in page.items] == [n.id for n in reversed(mine)][:3]
            rest = await uow.notifications.list_for_user(ann.user_id, channel=Channel.IN_APP, status=None,
                                                         limit=3, cursor=page.next_cursor)
            assert [n.id for n in rest.items] == [mine[1].id, mine[0].id] and rest.next_cursor is None
            read = await uow.notifications.list_for_user(ann.user_id, channel=None, status=NotificationStatus.READ,
                                                         limit=10, cursor=None)
            assert [n.id for n in read.items] == [mine[0].id]

    async def test_claim_due_skips_locked_and_future(self, uow_factory: Any, people: Any) -> None:
        cid = await people.user("cid")
        due = [_n(cid.user_id, Channel.WEBHOOK, target="http://h", next_attempt_at=T0) for _ in range(3)]
        later = _n(cid.user_id, Channel.EMAIL, target="c@x", next_attempt_at=T0 + timedelta(hours=1))
        async with uow_factory() as uow:
            for n in [*due, later]:
                await uow.notifications.add(n)
            await uow.commit()
        async with uow_factory() as first, uow_factory() as second:
            a = await first.notifications.claim_due(T0, 2)
            b = await second.notifications.claim_due(T0, 10)
            mine = {n.id for n in due}
            got_a, got_b = {n.id for n in a} & mine, {n.id for n in b} & mine
            assert len(got_a) == 2 and not (got_a & got_b) and got_a | got_b == mine
            assert later.id not in {n.id for n in a + b}

    async def test_count_since_ignores_refused(self, uow_factory: Any, people: Any) -> None:
        dee = await people.user("dee")
        async with uow_factory() as uow:
            await uow.notifications.add(_n(dee.user_id, Channel.EMAIL, target="d@x", created_at=T0))
            old = T0 - timedelta(hours=2)
            await uow.notifications.add(_n(dee.user_id, Channel.EMAIL, target="d@x", created_at=old))
            await uow.notifications.add(_n(dee.user_id, Channel.EMAIL, target="d@x", created_at=T0,
                                           status=NotificationStatus.FAILED, last_error="rate limited"))
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.notifications.count_since(dee.user_id, Channel.EMAIL, T0 - timedelta(hours=1)) == 1
            assert await uow.notifications.count_since(dee.user_id, Channel.WEBHOOK, T0 - timedelta(hours=1)) == 0

    async def test_purge_old_keeps_recent_and_pending_in_batches(self, uow_factory: Any, people: Any) -> None:
        fay = await people.user("fay")
        old, recent = T0 - timedelta(days=100), T0 - timedelta(days=10)
        gone = [
            _n(fay.user_id, created_at=old),  # in-app, unread
            _n(fay.user_id, created_at=old, status=NotificationStatus.READ, read_at=old),
            _n(fay.user_id, Channel.EMAIL, target="f@x", created_at=recent - timedelta(days=30),
               status=NotificationStatus.SENT, sent_at=recent),
            _n(fay.user_id, Channel.WEBHOOK, target="http://h", created_at=old, status=NotificationStatus.FAILED,
               last_error="gone"),
        ]
        kept = [
            _n(fay.user_id, created_at=recent),  # in-app, within its retention
            _n(fay.user_id, Channel.EMAIL, target="f@x", created_at=recent, status=NotificationStatus.SENT),
            _n(fay.user_id, Channel.EMAIL, target="f@x", created_at=old, next_attempt_at=T0),  # still pending
        ]
        async with uow_factory() as uow:
            for n in gone + kept:
                assert await uow.notifications.add(n)
            await uow.commit()
        cutoffs = {"in_app_before": T0 - timedelta(days=90), "delivery_before": T0 - timedelta(days=30)}
        async with uow_factory() as uow:
            assert await uow.notifications.purge_old(**cutoffs, limit=3) == 3  # a batch, oldest first
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.notifications.purge_old(**cutoffs, limit=3) == 1
            assert await uow.notifications.purge_old(**cutoffs, limit=3) == 0
            await uow.commit()
        async with uow_factory() as uow:
            for n in gone:
                assert await uow.notifications.get(n.id) is None
            for n in kept:
                assert await uow.notifications.get(n.id) == n

    async def test_purge_old_skips_rows_being_delivered(self, uow_factory: Any, people: Any) -> None:
        gus = await people.user("gus")
        sending = _n(gus.user_id, Channel.EMAIL, target="g@x", created_at=T0 - timedelta(days=60),
                     next_attempt_at=T0 - timedelta(days=60))
        async with uow_factory() as uow:
            await uow.notifications.add(sending)
            await uow.commit()
        async with uow_factory() as dispatcher, uow_factory() as janitor:
            assert [n.id for n in await dispatcher.notifications.claim_due(T0, 10)] == [sending.id]
            failed = attrs.evolve(sending, status=NotificationStatus.FAILED, attempts=5)
            await dispatcher.notifications.update(failed)
            # the janitor's batch skips the locked row instead of waiting for it
            assert await janitor.notifications.purge_old(in_app_before=T0, delivery_before=T0, limit=10) == 0
            await janitor.commit()
            await dispatcher.commit()
        async with uow_factory() as uow:
            assert await uow.notifications.purge_old(in_app_before=T0, delivery_before=T0, limit=10) == 1
            await uow.commit()

    async def test_preferences_round_trip(self, uow_factory: Any, people: Any) -> None:
        eve = await people.user("eve")
        prefs = Preferences(
            user_id=eve.user_id,
            events={
                EventType.ALERT_FIRING: frozenset({Channel.WEBHOOK, Channel.IN_APP}),
                EventType.MR_MERGED: frozenset(),
            },
            webhook_url="https://hooks.example.org/x", updated_at=T0,
        )
        async with uow_factory() as uow:
            assert await uow.notification_preferences.get(eve.user_id) is None
            await uow.notification_preferences.put(prefs)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.notification_preferences.get(eve.user_id) == prefs
            assert await uow.notification_preferences.get_many([eve.user_id, uuid7()]) == {eve.user_id: prefs}
            await uow.notification_preferences.put(attrs.evolve(prefs, events={}, webhook_url=None))
            await uow.commit()
        async with uow_factory() as uow:
            got = await uow.notification_preferences.get(eve.user_id)
            assert got.events == {} and got.webhook_url is None

    async def test_recipients_by_project_role(self, uow_factory: Any, people: Any) -> None:
        owner, dev, ops, stranger = [await people.user(n) for n in ("own", "dev", "ops", "str")]
        project = await people.project(owner.user_id)
        await people.bind(project, "developer", dev.user_id)
        await people.bind(project, "ops", ops.user_id)
        async with uow_factory() as uow:
            d = uow.notification_recipients
            assert {r.user_id for r in await d.project_recipients(project, frozenset({"owner", "developer"}))} == {
                owner.user_id, dev.user_id}
            assert [r.user_id for r in await d.project_recipients(project, frozenset({"ops"}))] == [ops.user_id]
            assert await d.project_recipients(project, frozenset()) == []
            found = await d.users([stranger.user_id, uuid7()])
            assert found == [stranger] and found[0].email
