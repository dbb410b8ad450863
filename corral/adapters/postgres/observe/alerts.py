"""Alert rules, events and in-app notifications in PostgreSQL."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from corral.core.audit.model import AuditEntry
from corral.core.errors import Conflict, NotFound
from corral.core.ids import uuid7
from corral.core.observe.model import AlertCondition, AlertEvent, AlertRule, AlertSeverity
from corral.core.outbox import topics

__all__ = ["PostgresAlertStore", "alert_outbox_payload"]

log = logging.getLogger(__name__)

_RULE_COLS = (
    "id, name, query, condition, threshold, for_seconds, severity, notify_channels, project_id, enabled, "
    "created_at, description, created_by, pending_since, firing_event_id"
)
_EVENT_COLS = "id, rule_id, status, value, message, created_at, resolved_at, project_id"


def _rule(r: Any) -> AlertRule:
    return AlertRule(
        id=r[0],
        name=r[1],
        query=r[2],
        condition=AlertCondition(r[3]),
        threshold=r[4],
        for_seconds=r[5],
        severity=AlertSeverity(r[6]),
        notify_channels=tuple(r[7]),
        project_id=r[8],
        enabled=r[9],
        created_at=r[10],
        description=r[11],
        created_by=r[12],
        pending_since=r[13],
        firing_event_id=r[14],
    )


def _event(r: Any) -> AlertEvent:
    return AlertEvent(
        id=r[0],
        rule_id=r[1],
        status=r[2],
        value=r[3],
        message=r[4] or "",
        created_at=r[5],
        resolved_at=r[6],
        project_id=r[7],
    )


def _values(rule: AlertRule) -> tuple[Any, ...]:
    return (
        rule.id,
        rule.name,
        rule.query,
        rule.condition.value,
        rule.threshold,
        rule.for_seconds,
        rule.severity.value,
        list(rule.notify_channels),
        rule.project_id,
        rule.enabled,
        rule.created_at,
        rule.description,
        rule.created_by,
        rule.pending_since,
        rule.firing_event_id,
    )


async def _record(conn: Any, entry: AuditEntry) -> None:
    """The audit row, in the caller's transaction (this store has its own pool, not the unit of work)."""
    await conn.execute(
        "INSERT INTO audit_log (id, actor_id, actor_name, action, resource, resource_id, project_id, detail, "
        "ip_addr, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::inet, $10)",
        entry.id,
        entry.actor_id,
        entry.actor_name,
        entry.action,
        entry.resource,
        entry.resource_id,
        entry.project_id,
        json.dumps(entry.detail),
        entry.ip_addr,
        entry.created_at,
    )


async def _insert_event(conn: asyncpg.Connection, event: AlertEvent) -> None:
    await conn.execute(
        f"INSERT INTO alert_events ({_EVENT_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
        event.id,
        event.rule_id,
        event.status,
        event.value,
        event.message,
        event.created_at,
        event.resolved_at,
        event.project_id,
    )

class PostgresAlertStore:
    """AlertStore over alert_rules / alert_events."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add_rule(self, rule: AlertRule, audit: AuditEntry) -> None:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await _record(conn, audit)
                await conn.execute(
                    f"INSERT INTO alert_rules ({_RULE_COLS}) "
                    "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)",
                    *_values(rule),
                )
        except asyncpg.ForeignKeyViolationError as exc:
            raise NotFound(f"project {rule.project_id} not found") from exc

    async def get_rule(self, rule_id: uuid.UUID) -> AlertRule:
        async with self._pool.acquire() as conn:
            r = await conn.fetchrow(f"SELECT {_RULE_COLS} FROM alert_rules WHERE id = $1", rule_id)
        if r is None:
            raise NotFound(f"alert rule {rule_id} not found")
        return _rule(r)

    async def list_rules(
        self, project_ids: tuple[uuid.UUID, ...] | None, *, enabled_only: bool = False
    ) -> list[AlertRule]:
        conds: list[str] = []
        args: list[Any] = []
        if project_ids is not None:
            args.append(list(project_ids))
            conds.append(f"project_id = ANY(${len(args)}::uuid[])")
        if enabled_only:
            conds.append("enabled")
        where = (" WHERE " + " AND ".join(conds)) if conds else ""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT {_RULE_COLS} FROM alert_rules{where} ORDER BY created_at, id", *args)
        return [_rule(r) for r in rows]

    async def update_rule(self, rule: AlertRule, audit: AuditEntry | None = None) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            if audit is not None:
                await _record(conn, audit)
            status = await conn.execute(
                "UPDATE alert_rules SET name=$2, query=$3, condition=$4, threshold=$5, for_seconds=$6, severity=$7, "
                "notify_channels=$8, project_id=$9, enabled=$10, created_at=$11, description=$12, created_by=$13, "
                "pending_since=$14, firing_event_id=$15, updated_at=now() WHERE id=$1",
                *_values(rule),
            )
        if status.endswith(" 0"):
            raise NotFound(f"alert rule {rule.id} not found")

    async def delete_rule(self, rule_id: uuid.UUID, audit: AuditEntry) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            status = await conn.execute("DELETE FROM alert_rules WHERE id = $1", rule_id)
            if status.endswith(" 0"):
                raise NotFound(f"alert rule {rule_id} not found")
            await _record(conn, audit)

    async def add_event(self, event: AlertEvent) -> None:
        async with self._pool.acquire() as conn:
            await _insert_event(conn, event)

    async def record_transition(
        self, rule: AlertRule, event: AlertEvent, resolve_event_id: uuid.UUID | None = None
    ) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            # the state guard first: a concurrent evaluator (or a crash-and-retry) cannot write twice
            status = await conn.execute(
                "UPDATE alert_rules SET pending_since = $2, firing_event_id = $3, updated_at = now() "
                "WHERE id = $1 AND firing_event_id IS NOT DISTINCT FROM $4",
                rule.id,
                rule.pending_since,
                rule.firing_event_id,
                resolve_event_id,
            )
            if status.endswith(" 0"):
                raise Conflict(f"alert rule {rule.id} changed state meanwhile; evaluated again next pass")
            if resolve_event_id is not None:
                await conn.execute(
                    "UPDATE alert_events SET resolved_at = $2 WHERE id = $1 AND resolved_at IS NULL",
                    resolve_event_id,
                    event.created_at,
                )
            await _insert_event(conn, event)
            await conn.execute(
                "INSERT INTO outbox (id, topic, payload, project_id) VALUES ($1, $2, $3::jsonb, $4)",
                uuid7(),
                topics.ALERT_FIRING if event.status == "firing" else topics.ALERT_RESOLVED,
                json.dumps(alert_outbox_payload(rule, event)),
                rule.project_id,
            )

    async def resolve_event(self, event_id: uuid.UUID, resolved_at: datetime) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE alert_events SET resolved_at = $2 WHERE id = $1 AND resolved_at IS NULL", event_id, resolved_at
            )

    async def list_events(
        self, project_ids: tuple[uuid.UUID, ...] | None, status: str | None, limit: int
    ) -> list[AlertEvent]:
        conds: list[str] = []
        args: list[Any] = []
        if project_ids is not None:
            args.append(list(project_ids))
            conds.append(f"project_id = ANY(${len(args)}::uuid[])")
        if status:
            args.append(status)
            conds.append(f"status = ${len(args)}")
        args.append(limit)
        where = (" WHERE " + " AND ".join(conds)) if conds else ""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_EVENT_COLS} FROM alert_events{where} ORDER BY created_at DESC, id DESC LIMIT ${len(args)}",
                *args,
            )
        return [_event(r) for r in rows]


def alert_outbox_payload(rule: AlertRule, event: AlertEvent) -> dict[str, Any]:
    """The ``alert_firing`` / ``alert_resolved`` event the notifications domain fans out (in-app rows,
    email, webhooks) to the project's people and the rule's author."""
    return {
        "title": rule.name,
        "alert": rule.name,
        "rule_id": str(rule.id),
        "event_id": str(event.id),
        "status": event.status,
        "severity": rule.severity.value,
        "value": event.value,
        "message": event.message,
        "query": rule.query,
        "ref_id": str(rule.id),
        "project_id": str(rule.project_id) if rule.project_id else None,
        "user_ids": [str(rule.created_by)] if rule.created_by else [],
        "channels": list(rule.notify_channels),
        "dedupe_key": f"alert:{event.id}",
        "notify_actor": True,
    }
