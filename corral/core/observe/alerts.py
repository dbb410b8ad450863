"""Alert rules: validation, CRUD (audited), and the evaluator's state machine.

Rule queries:
- ``metric:<name>[{k=v,...}] [avg|sum|min|max|rate|p50|p95|p99] [<window>]`` — the
  aggregate of the metric's points in the last window (default 5m);
- ``logs:[level=error] [service=api] [session_id=..] [trace_id=..] [q=text] [window=5m]`` —
  the number of matching log records in the window (counted up to 10,000).

A rule whose condition holds continuously for ``for_seconds`` fires (one ``firing``
event, one notification); when it stops holding, the firing event is resolved (one
``resolved`` event, one notification). ``absent`` holds when the window has no data.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import attrs

from corral.core.audit.model import AuditEntry
from corral.core.clock import Clock
from corral.core.commands import sent_fields
from corral.core.errors import InvalidInput
from corral.core.ids import uuid7
from corral.core.observe.commands import AlertRuleChanges, NewAlertRule
from corral.core.observe.model import (
    AlertCondition,
    AlertEvent,
    AlertRule,
    LogQuery,
    MetricAgg,
    MetricQuery,
)
from corral.core.observe.ports import AlertStore
from corral.core.observe.query import ObserveQueries

__all__ = [
    "Actor",
    "AlertEvaluator",
    "AlertRuleChanges",
    "AlertService",
    "NewAlertRule",
    "ParsedQuery",
    "parse_rule_query",
]

log = logging.getLogger(__name__)
CHANNELS = frozenset({"in_app", "email", "webhook"})
_WINDOW = re.compile(r"^(\d+)(s|m|h)$")
_METRIC = re.compile(r"^metric:([A-Za-z_][\w.\-/]*)(?:\{([^}]*)\})?(\s.*)?$")
_LOG_KEYS = {"level", "service", "session_id", "trace_id", "q", "window"}
MAX_LOG_COUNT = 10_000


@attrs.frozen
class Actor:
    """Who changes rules (for the audit log)."""

    user_id: uuid.UUID
    name: str
    ip_addr: str | None = None


@attrs.frozen
class ParsedQuery:
    kind: str  # 'metric' | 'logs'
    window: timedelta
    metric: MetricQuery | None = None
    logs: LogQuery | None = None


def _window(text: str) -> timedelta:
    m = _WINDOW.match(text)
    if not m:
        raise InvalidInput(f"window {text!r} must look like 30s, 5m or 1h", field="query")
    n = int(m.group(1))
    return timedelta(seconds=n * {"s": 1, "m": 60, "h": 3600}[m.group(2)])


def parse_rule_query(query: str) -> ParsedQuery:
    """Parse a rule query (see the module docstring); InvalidInput naming ``query`` if malformed."""
    text = query.strip()
    window = timedelta(minutes=5)
    if text.startswith("metric:"):
        m = _METRIC.match(text)
        if not m:
            raise InvalidInput("metric query must look like metric:name{k=v} avg 5m", field="query")
        labels: list[tuple[str, str]] = []
        for pair in filter(None, (m.group(2) or "").split(",")):
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise InvalidInput(f"label filter {pair!r} must be k=v", field="query")
            labels.append((key.strip(), value.strip().strip('"')))
        agg = MetricAgg.AVG
        for token in (m.group(3) or "").split():
            if token in MetricAgg._value2member_map_:
                agg = MetricAgg(token)
            else:
                window = _window(token)
        step = max(int(window.total_seconds()), 1)
        return ParsedQuery(
            kind="metric",
            window=window,
            metric=MetricQuery(name=m.group(1), labels=tuple(labels), agg=agg, step_seconds=step),
        )
    if text.startswith("logs:"):
        filters: dict[str, str] = {}
        for token in text[5:].split():
            key, sep, value = token.partition("=")
            if not sep or key not in _LOG_KEYS:
                raise InvalidInput(
                    f"log filter {token!r}: use {', '.join(sorted(_LOG_KEYS))} as key=value", field="query"
                )
            filters[key] = value
        if "window" in filters:
            window = _window(filters.pop("window"))
        levels = tuple(filters["level"].split(",")) if "level" in filters else ()
        return ParsedQuery(
            kind="logs",
            window=window,
            logs=LogQuery(
                levels=levels,
                service=filters.get("service"),
                session_id=filters.get("session_id"),
                trace_id=filters.get("trace_id"),
                q=filters.get("q"),
                limit=MAX_LOG_COUNT,
            ),
        )
    raise InvalidInput("query must start with metric: or logs:", field="query")


def validate_rule(rule: AlertRule) -> None:
    if not rule.name.strip():
        raise InvalidInput("name must not be empty", field="name")
    parse_rule_query(rule.query)
    if rule.condition is not AlertCondition.ABSENT and rule.threshold is None:
        raise InvalidInput("threshold is required unless the condition is 'absent'", field="threshold")
    if rule.for_seconds < 0 or rule.for_seconds > 86_400:
        raise InvalidInput("for_seconds must be between 0 and 86400", field="for_seconds")
    unknown = set(rule.notify_channels) - CHANNELS
    if unknown:
        raise InvalidInput(f"unknown channels {sorted(unknown)}; use {sorted(CHANNELS)}", field="notify_channels")


def _audit(actor: Actor, action: str, rule: AlertRule, now: datetime, **detail: Any) -> AuditEntry:
    return AuditEntry(
        id=uuid7(),
        actor_id=actor.user_id,
        actor_name=actor.name,
        action=action,
        resource="alert_rule",
        created_at=now,
        resource_id=rule.id,
        project_id=rule.project_id,
        detail=detail,
        ip_addr=actor.ip_addr,
    )


@attrs.define
class AlertService:
    """Rule CRUD; every change is audited in the same transaction."""

    store: AlertStore
    clock: Clock

    async def create(self, actor: Actor, new: NewAlertRule) -> AlertRule:
        now = self.clock.now()
        rule = AlertRule(
            id=uuid7(),
            name=new.name,
            query=new.query,
            condition=new.condition,
            threshold=new.threshold,
            for_seconds=new.for_seconds,
            severity=new.severity,
            notify_channels=tuple(new.notify_channels) or ("in_app",),
            project_id=new.project_id,
            enabled=new.enabled,
            created_at=now,
            description=new.description,
            created_by=actor.user_id,
        )
        validate_rule(rule)
        await self.store.add_rule(rule, _audit(actor, "alert_rule.create", rule, now, name=rule.name))
        return rule

    async def update(self, actor: Actor, rule_id: uuid.UUID, change: AlertRuleChanges) -> AlertRule:
        changes = sent_fields(change)
        rule = await self.store.get_rule(rule_id)
        # a changed query or threshold starts the evaluation over (the open event stays until resolved)
        updated = attrs.evolve(rule, **changes, pending_since=None)
        validate_rule(updated)
        now = self.clock.now()
        await self.store.update_rule(updated, _audit(actor, "alert_rule.update", updated, now, changed=sorted(changes)))
        return updated

    async def delete(self, actor: Actor, rule_id: uuid.UUID) -> None:
        rule = await self.store.get_rule(rule_id)
        await self.store.delete_rule(
            rule_id, _audit(actor, "alert_rule.delete", rule, self.clock.now(), name=rule.name)
        )


def _describe(rule: AlertRule) -> str:
    if rule.condition is AlertCondition.ABSENT:
        return "absent"
    return f"{rule.condition.value} {rule.threshold:g}" if rule.threshold is not None else rule.condition.value


def _holds(rule: AlertRule, value: float | None) -> bool:
    if rule.condition is AlertCondition.ABSENT:
        return value is None
    if value is None or rule.threshold is None:
        return False
    if rule.condition is AlertCondition.GT:
        return value > rule.threshold
    if rule.condition is AlertCondition.LT:
        return value < rule.threshold
    return value == rule.threshold


@attrs.define
class AlertEvaluator:
    """Evaluates every enabled rule once per call (only the leader calls it).

    A transition (the event, the rule's new state and the outbox hand-off to the notifications)
    is written as one unit of work: a crash in between leaves the previous state, so the next
    pass does the transition again, once."""

    store: AlertStore
    queries: ObserveQueries
    clock: Clock

    async def value_of(self, rule: AlertRule, now: datetime) -> float | None:
        parsed = parse_rule_query(rule.query)
        projects = (rule.project_id,) if rule.project_id else None
        since = now - parsed.window
        if parsed.metric is not None:
            q = attrs.evolve(parsed.metric, project_ids=projects, since=since, until=now)
            series = await self.queries.metrics(q)
            values = [v for s in series for _, v in s.points]
            if not values:
                return None
            return values[-1] if len(series) == 1 else max(values)
        assert parsed.logs is not None
        page = await self.queries.search_logs(attrs.evolve(parsed.logs, project_ids=projects, since=since, until=now))
        count = float(len(page.items))
        return None if count == 0 and rule.condition is AlertCondition.ABSENT else count

    async def evaluate_all(self) -> list[AlertEvent]:
        """One pass; returns the events it created."""
        created: list[AlertEvent] = []
        for rule in await self.store.list_rules(None, enabled_only=True):
            try:
                event = await self.evaluate(rule)
            except Exception as exc:  # one broken rule must not stop the others
                log.warning("alert rule %s could not be evaluated: %s", rule.id, exc)
                continue
            if event is not None:
                created.append(event)
        return created

    async def evaluate(self, rule: AlertRule) -> AlertEvent | None:
        now = self.clock.now()
        value = await self.value_of(rule, now)
        holds = _holds(rule, value)
        shown = "no data" if value is None else f"{value:g}"
        if holds:
            pending = rule.pending_since or now
            if rule.firing_event_id is None and now - pending >= timedelta(seconds=rule.for_seconds):
                event = AlertEvent(
                    id=uuid7(),
                    rule_id=rule.id,
                    status="firing",
                    value=value,
                    created_at=now,
                    message=f"{rule.name}: {shown} ({_describe(rule)})",
                    project_id=rule.project_id,
                )
                await self.store.record_transition(
                    attrs.evolve(rule, pending_since=pending, firing_event_id=event.id), event
                )
                return event
            if rule.pending_since is None:
                await self.store.update_rule(attrs.evolve(rule, pending_since=pending))
            return None
        if rule.firing_event_id is not None:
            event = AlertEvent(
                id=uuid7(),
                rule_id=rule.id,
                status="resolved",
                value=value,
                created_at=now,
                resolved_at=now,
                message=f"{rule.name}: resolved ({shown})",
                project_id=rule.project_id,
            )
            await self.store.record_transition(
                attrs.evolve(rule, pending_since=None, firing_event_id=None), event, rule.firing_event_id
            )
            return event
        if rule.pending_since is not None:
            await self.store.update_rule(attrs.evolve(rule, pending_since=None))
        return None
