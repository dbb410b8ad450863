"""AuditLogContract: what every AuditLog does.

Needs a fixture ``uow_factory`` (a UnitOfWorkFactory whose units carry ``audit``). Tests
filter on their own unique actor names, so other rows in the store do not disturb them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from corral.contracts.uow import audit_entry
from corral.core.audit.model import AuditEntry, AuditQuery
from corral.core.errors import InvalidInput
from corral.core.ids import uuid7

__all__ = ["AuditLogContract"]

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _actor() -> str:
    return f"auditor-{uuid.uuid4().hex[:10]}"


async def _record(uow_factory: Any, *entries: AuditEntry) -> None:
    async with uow_factory() as uow:
        for entry in entries:
            await uow.audit.record(entry)
        await uow.commit()


async def _query(uow_factory: Any, query: AuditQuery) -> tuple[list[AuditEntry], str | None]:
    async with uow_factory() as uow:
        page = await uow.audit.query(query)
    return page.items, page.next_cursor


class AuditLogContract:
    async def test_an_entry_comes_back_as_recorded(self, uow_factory: Any) -> None:
        actor = _actor()
        entry = audit_entry(
            actor,
            action="project.delete",
            resource="project",
            resource_id=uuid7(),
            project_id=uuid7(),
            detail={"name": "my-app", "count": 3, "nested": {"ok": True}, "tags": ["a", "b"]},
            ip_addr="203.0.113.7",
        )
        await _record(uow_factory, entry)
        items, next_cursor = await _query(uow_factory, AuditQuery(actor=actor))
        assert items == [entry]
        assert next_cursor is None

    async def test_ipv6_and_no_ip(self, uow_factory: Any) -> None:
        actor = _actor()
        v6, none = audit_entry(actor, ip_addr="2001:db8::1"), audit_entry(actor, created_at=T0 + timedelta(1))
        await _record(uow_factory, v6, none)
        items, _ = await _query(uow_factory, AuditQuery(actor=actor))
        assert [e.ip_addr for e in items] == [None, "2001:db8::1"]

    async def test_detail_is_stored_as_json(self, uow_factory: Any) -> None:
        actor, ref = _actor(), uuid7()
        await _record(uow_factory, audit_entry(actor, detail={"ref": ref}))
        items, _ = await _query(uow_factory, AuditQuery(actor=actor))
        assert items[0].detail == {"ref": str(ref)}

    async def test_each_filter_narrows(self, uow_factory: Any) -> None:
        actor, other = _actor(), _actor()
        project = uuid7()
        a = audit_entry(actor, action="user.create", resource="user", created_at=T0)
        b = audit_entry(actor, action="project.create", resource="project", project_id=project,
                        created_at=T0 + timedelta(hours=1))  # fmt: skip
        c = audit_entry(actor, action="project.delete", resource="project", project_id=project,
                        created_at=T0 + timedelta(hours=2))  # fmt: skip
        d = audit_entry(other, action="project.delete", resource="project", project_id=project,
                        created_at=T0 + timedelta(hours=3))  # fmt: skip
        await _record(uow_factory, a, b, c, d)

        async def ids(**kw: Any) -> list[uuid.UUID]:
            items, _ = await _query(uow_factory, AuditQuery(**kw))
            return [e.id for e in items]

        assert await ids(actor=actor) == [c.id, b.id, a.id]
        assert await ids(actor=actor, action="project.delete") == [c.id]
        assert await ids(actor=actor, resource="project") == [c.id, b.id]
        assert await ids(project_id=project) == [d.id, c.id, b.id]
        # since is inclusive, until exclusive
        assert await ids(actor=actor, since=T0 + timedelta(hours=1)) == [c.id, b.id]
        assert await ids(actor=actor, until=T0 + timedelta(hours=2)) == [b.id, a.id]
        assert await ids(actor=actor, since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=2)) == [b.id]
        assert await ids(actor=actor, action="no.such") == []

    async def test_pages_walk_everything_newest_first_without_gaps(self, uow_factory: Any) -> None:
        actor = _actor()
        entries = [audit_entry(actor, created_at=T0 + timedelta(minutes=i)) for i in range(7)]
        # two entries in the same microsecond: the id breaks the tie
        entries += [audit_entry(actor, created_at=T0 + timedelta(minutes=3)) for _ in range(2)]
        await _record(uow_factory, *entries)
        expected = [e.id for e in sorted(entries, key=lambda e: (e.created_at, e.id), reverse=True)]
        seen: list[uuid.UUID] = []
        cursor: str | None = None
        for _ in range(10):
            items, cursor = await _query(uow_factory, AuditQuery(actor=actor, limit=2, cursor=cursor))
            assert len(items) <= 2
            seen += [e.id for e in items]
            if cursor is None:
                break
        assert seen == expected

    async def test_a_full_last_page_has_no_cursor(self, uow_factory: Any) -> None:
        actor = _actor()
        await _record(uow_factory, audit_entry(actor), audit_entry(actor))
        items, cursor = await _query(uow_factory, AuditQuery(actor=actor, limit=2))
        assert len(items) == 2
        assert cursor is None

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            (AuditQuery(cursor="not-a-cursor"), "cursor"),
            (AuditQuery(cursor="eyJ4IjoxfQ"), "cursor"),  # valid base64 JSON, not ours
            (AuditQuery(limit=0), "limit"),
            (AuditQuery(limit=100_000), "limit"),
            (AuditQuery(since=datetime(2026, 1, 1)), "since"),  # naive on purpose
            (AuditQuery(until=datetime(2026, 1, 1)), "until"),
        ],
    )
    async def test_bad_query_names_the_field(self, uow_factory: Any, query: AuditQuery, field: str) -> None:
        with pytest.raises(InvalidInput) as caught:
            await _query(uow_factory, query)
        assert caught.value.field == field

    async def test_bad_ip_is_refused_and_nothing_written(self, uow_factory: Any) -> None:
        actor = _actor()
        with pytest.raises(InvalidInput) as caught:
            await _record(uow_factory, audit_entry(actor, ip_addr="not-an-ip"))
        assert caught.value.field == "ip_addr"
        items, _ = await _query(uow_factory, AuditQuery(actor=actor))
        assert items == []

    async def test_secrets_never_enter_the_detail(self) -> None:
        with pytest.raises(ValueError, match="secrets"):
            audit_entry("x", detail={"password": "hunter2"})
