"""PostgreSQL notification stores over the unit of work's asyncpg connection."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime

import asyncpg

from corral.core.errors import InvalidInput
from corral.core.notify.model import (
    Channel,
    EventType,
    Notification,
    NotificationStatus,
    Preferences,
    Recipient,
)
from corral.core.pagination import Page, decode_cursor, encode_cursor

__all__ = ["PostgresNotificationStore", "PostgresPreferenceStore", "PostgresRecipientDirectory"]

_COLS = (
    "id, user_id, notification_type, channel, status, subject, body, html_body, created_at, project_id,"
    " ref_type, ref_id, target, dedupe_key, event_id, payload, attempts, next_attempt_at, last_error, sent_at,"
    " read_at"
)


def _row(r: asyncpg.Record) -> Notification:
    payload = r["payload"]
    return Notification(
        id=r["id"], user_id=r["user_id"], type=EventType(r["notification_type"]), channel=Channel(r["channel"]),
        status=NotificationStatus(r["status"]), subject=r["subject"], body=r["body"] or "", html=r["html_body"],
        created_at=r["created_at"], project_id=r["project_id"], ref_type=r["ref_type"], ref_id=r["ref_id"],
        target=r["target"], dedupe_key=r["dedupe_key"], event_id=r["event_id"],
        payload=json.loads(payload) if isinstance(payload, str) else dict(payload or {}),
        attempts=r["attempts"], next_attempt_at=r["next_attempt_at"], last_error=r["last_error"],
        sent_at=r["sent_at"], read_at=r["read_at"],
    )


class PostgresNotificationStore:
    """NotificationStore on the notifications table; see the port for behaviour."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, notification: Notification) -> bool:
        n = notification
        status = await self.conn.execute(
            f"INSERT INTO notifications ({_COLS}) VALUES"
            " ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16::jsonb,$17,$18,$19,$20,$21)"
            " ON CONFLICT (user_id, channel, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING",
            n.id, n.user_id, n.type.value, n.channel.value, n.status.value, n.subject, n.body, n.html,
            n.created_at, n.project_id, n.ref_type, n.ref_id, n.target, n.dedupe_key, n.event_id,
            json.dumps(n.payload, default=str), n.attempts, n.next_attempt_at, n.last_error, n.sent_at, n.read_at,
        )
        return bool(status.endswith(" 1"))

    async def get(self, notification_id: uuid.UUID) -> Notification | None:
        row = await self.conn.fetchrow(f"SELECT {_COLS} FROM notifications WHERE id = $1", notification_id)
        return _row(row) if row else None

    async def update(self, notification: Notification) -> None:
        n = notification
        await self.conn.execute(
            "UPDATE notifications SET status = $2, attempts = $3, next_attempt_at = $4, last_error = $5,"
            " sent_at = $6, read_at = $7 WHERE id = $1",
            n.id, n.status.value, n.attempts, n.next_attempt_at, n.last_error, n.sent_at, n.read_at,
        )

    async def list_for_user(
        self,
        user_id: uuid.UUID,
        *,
        channel: Channel | None,
        status: NotificationStatus | None,
        limit: int,
        cursor: str | None,
    ) -> Page[Notification]:
        after = decode_cursor(cursor)
        before_id: uuid.UUID | None = None
        if after is not None:
            try:
                before_id = uuid.UUID(str(after.get("id")))
            except ValueError:
                raise InvalidInput("cursor is not a cursor returned by this API", field="cursor") from None
        rows = await self.conn.fetch(
            f"SELECT {_COLS} FROM notifications WHERE user_id = $1"
            " AND ($2::text IS NULL OR channel = $2) AND ($3::text IS NULL OR status = $3)"
            " AND ($4::uuid IS NULL OR id < $4) ORDER BY id DESC LIMIT $5",
            user_id, channel.value if channel else None, status.value if status else None, before_id, limit + 1,
        )
        items = [_row(r) for r in rows[:limit]]
        more = len(rows) > limit
        return Page(items, encode_cursor({"id": str(items[-1].id)}) if more else None)

    async def unread_count(self, user_id: uuid.UUID) -> int:
        count: int = await self.conn.fetchval(
            "SELECT count(*) FROM notifications WHERE user_id = $1 AND channel = 'in_app' AND status = 'sent'",
            user_id,
        )
        return count

    async def count_since(self, user_id: uuid.UUID, channel: Channel, since: datetime) -> int:
        count: int = await self.conn.fetchval(
            "SELECT count(*) FROM notifications WHERE user_id = $1 AND channel = $2 AND created_at >= $3"
            " AND NOT (status = 'failed' AND attempts = 0)",
            user_id, channel.value, since,
        )
        return count

    async def claim_due(self, now: datetime, limit: int) -> list[Notification]:
        rows = await self.conn.fetch(
            f"SELECT {_COLS} FROM notifications WHERE status = 'pending' AND next_attempt_at <= $1"
            " ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
            now, limit,
        )
        return [_row(r) for r in rows]

    async def purge_old(self, *, in_app_before: datetime, delivery_before: datetime, limit: int) -> int:
        status = await self.conn.execute(
            "DELETE FROM notifications WHERE id IN (SELECT id FROM notifications"
            " WHERE created_at < GREATEST($1::timestamptz, $2::timestamptz)"
            " AND ((channel = 'in_app' AND created_at < $1)"
            "      OR (channel <> 'in_app' AND status IN ('sent', 'failed') AND created_at < $2))"
            " ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED)",
            in_app_before, delivery_before, limit,
        )
        return int(status.split()[-1])


class PostgresPreferenceStore:
    """PreferenceStore on notification_preferences."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    @staticmethod
    def _prefs(r: asyncpg.Record) -> Preferences:
        raw = r["events"]
        events = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
        return Preferences(
            user_id=r["user_id"],
            events={EventType(k): frozenset(Channel(c) for c in v) for k, v in events.items()},
            webhook_url=r["webhook_url"], updated_at=r["updated_at"],
        )

    async def get(self, user_id: uuid.UUID) -> Preferences | None:
        row = await self.conn.fetchrow(
            "SELECT user_id, events, webhook_url, updated_at FROM notification_preferences WHERE user_id = $1",
            user_id,
        )
        return self._prefs(row) if row else None

    async def put(self, preferences: Preferences) -> None:
        events = {k.value: sorted(c.value for c in v) for k, v in preferences.events.items()}
        await self.conn.execute(
            "INSERT INTO notification_preferences (user_id, events, webhook_url, updated_at)"
            " VALUES ($1, $2::jsonb, $3, coalesce($4, now()))"
            " ON CONFLICT (user_id) DO UPDATE SET events = EXCLUDED.events, webhook_url = EXCLUDED.webhook_url,"
            " updated_at = EXCLUDED.updated_at",
            preferences.user_id, json.dumps(events), preferences.webhook_url, preferences.updated_at,
        )

    async def get_many(self, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Preferences]:
        rows = await self.conn.fetch(
            "SELECT user_id, events, webhook_url, updated_at FROM notification_preferences"
            " WHERE user_id = ANY($1::uuid[])",
            list(user_ids),
        )
        return {r["user_id"]: self._prefs(r) for r in rows}


class PostgresRecipientDirectory:
    """RecipientDirectory over users, user_roles/roles (project bindings) and projects (owner)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def project_recipients(self, project_id: uuid.UUID, roles: frozenset[str]) -> list[Recipient]:
        rows = await self.conn.fetch(
            """
            SELECT u.id, u.name, u.email FROM users u
            WHERE u.is_active AND (
                ($3 AND u.id = (SELECT owner_id FROM projects WHERE id = $1))
                OR u.id IN (SELECT ur.user_id FROM user_roles ur JOIN roles r ON r.id = ur.role_id
                            WHERE ur.project_id = $1 AND r.name = ANY($2::text[]))
            )
            ORDER BY u.id
            """,
            project_id, sorted(roles - {"owner"}), "owner" in roles,
        )
        return [Recipient(r["id"], r["name"], r["email"]) for r in rows]

    async def users(self, user_ids: Iterable[uuid.UUID]) -> list[Recipient]:
        rows = await self.conn.fetch(
            "SELECT id, name, email FROM users WHERE is_active AND id = ANY($1::uuid[]) ORDER BY id", list(user_ids)
        )
        return [Recipient(r["id"], r["name"], r["email"]) for r in rows]
