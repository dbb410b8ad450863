"""AlertStoreContract: behaviour of an AlertStore.

Subclasses provide an async fixture ``alert_store`` returning an empty store, and
``alert_projects``: two ids of projects that exist (a rule names an existing project).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from corral.core.audit.model import AuditEntry
from corral.core.errors import Conflict, NotFound
from corral.core.ids import uuid7
from corral.core.observe.model import AlertCondition, AlertEvent, AlertRule, AlertSeverity

__all__ = ["AlertStoreContract"]

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def rule(project_id: uuid.UUID | None = None, **kw: Any) -> AlertRule:
    values: dict[str, Any] = {
        "id": uuid7(),
        "name": "errors",
        "query": "logs: level=error",
        "condition": AlertCondition.GT,
        "threshold": 3.0,
        "for_seconds": 60,
        "severity": AlertSeverity.CRITICAL,
        "notify_channels": ("in_app",),
        "project_id": project_id,
        "enabled": True,
        "created_at": T0,
        "created_by": uuid.uuid4(),
    }
    values.update(kw)
    return AlertRule(**values)


def audit(r: AlertRule, action: str) -> AuditEntry:
    return AuditEntry(
        id=uuid7(),
        actor_id=uuid.uuid4(),
        actor_name="ops",
        action=action,
        resource="alert_rule",
        created_at=T0,
        resource_id=r.id,
        project_id=r.project_id,
    )


class AlertStoreContract:
    async def test_rules_round_trip_update_and_delete(self, alert_store: Any, alert_projects: Any) -> None:
        p = alert_projects[0]
        a, b = rule(p), rule(None, name="platform", enabled=False, created_at=T0 + timedelta(seconds=1))
        await alert_store.add_rule(a, audit(a, "alert_rule.create"))
        await alert_store.add_rule(b, audit(b, "alert_rule.create"))
        assert await alert_store.get_rule(a.id) == a
        assert [r.id for r in await alert_store.list_rules(None)] == [a.id, b.id]
        assert [r.id for r in await alert_store.list_rules((p,))] == [a.id]
        assert [r.id for r in await alert_store.list_rules(None, enabled_only=True)] == [a.id]
        changed = attrs.evolve(a, threshold=9.0, pending_since=T0, firing_event_id=uuid.uuid4())
        await alert_store.update_rule(changed)
        assert await alert_store.get_rule(a.id) == changed
        await alert_store.delete_rule(a.id, audit(a, "alert_rule.delete"))
        with pytest.raises(NotFound):
            await alert_store.get_rule(a.id)
        with pytest.raises(NotFound):
            await alert_store.delete_rule(a.id, audit(a, "alert_rule.delete"))
        with pytest.raises(NotFound):
            await alert_store.update_rule(changed)

    async def test_events_newest_first_filtered_and_resolved(self, alert_store: Any, alert_projects: Any) -> None:
        p = alert_projects[0]
        r = rule(p)
        await alert_store.add_rule(r, audit(r, "alert_rule.create"))
        fired = AlertEvent(
            id=uuid7(), rule_id=r.id, status="firing", value=5.0, message="m", created_at=T0, project_id=p
        )
        await alert_store.add_event(fired)
        resolved = AlertEvent(
            id=uuid7(),
            rule_id=r.id,
            status="resolved",
            value=1.0,
            message="ok",
            created_at=T0 + timedelta(minutes=1),
            resolved_at=T0 + timedelta(minutes=1),
            project_id=p,
        )
        await alert_store.add_event(resolved)
        await alert_store.resolve_event(fired.id, T0 + timedelta(minutes=1))
        events = await alert_store.list_events((p,), None, 10)
        assert [e.status for e in events] == ["resolved", "firing"]
        assert events[1].resolved_at == T0 + timedelta(minutes=1)
        assert [e.id for e in await alert_store.list_events(None, "firing", 10)] == [fired.id]
        assert await alert_store.list_events((alert_projects[1],), None, 10) == []

    async def test_transitions_are_one_unit_guarded_by_the_rule_state(
        self, alert_store: Any, alert_projects: Any
    ) -> None:
        p = alert_projects[0]
        r = rule(p)
        await alert_store.add_rule(r, audit(r, "alert_rule.create"))
        fired = AlertEvent(
            id=uuid7(), rule_id=r.id, status="firing", value=5.0, message="m", created_at=T0, project_id=p
        )
        await alert_store.record_transition(attrs.evolve(r, pending_since=T0, firing_event_id=fired.id), fired)
        with pytest.raises(Conflict):  # a second evaluator that read the old state writes nothing
            await alert_store.record_transition(
                attrs.evolve(r, pending_since=T0, firing_event_id=uuid7()), attrs.evolve(fired, id=uuid7())
            )
        stored = await alert_store.get_rule(r.id)
        assert (stored.pending_since, stored.firing_event_id) == (T0, fired.id)
        assert [e.id for e in await alert_store.list_events(None, None, 10)] == [fired.id]
        later = T0 + timedelta(minutes=5)
        resolved = AlertEvent(
            id=uuid7(),
            rule_id=r.id,
            status="resolved",
            value=0.0,
            message="ok",
            created_at=later,
            resolved_at=later,
            project_id=p,
        )
        await alert_store.record_transition(
            attrs.evolve(stored, pending_since=None, firing_event_id=None), resolved, fired.id
        )
        events = await alert_store.list_events(None, None, 10)
        assert [e.id for e in events] == [resolved.id, fired.id]
        assert events[1].resolved_at == later
        assert (await alert_store.get_rule(r.id)).firing_event_id is None
