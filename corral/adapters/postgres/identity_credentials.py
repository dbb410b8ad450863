"""PostgreSQL stores of credentials: API tokens, login sessions, login regulation, TOTP enrolments."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import asyncpg

from corral.adapters.postgres.identity_paging import cursor_uuid
from corral.core.errors import NotFound, Unavailable
from corral.core.identity.model import ApiToken, AuthSession, SealedSecret, TotpEnrolment
from corral.core.pagination import Page, encode_cursor
from corral.core.secrets.model import WrappedKey

__all__ = [
    "PostgresIdentitySettingsStore",
    "PostgresLoginThrottleStore", "PostgresSessionStore", "PostgresTokenStore", "PostgresTotpStore"]


def _token(r: asyncpg.Record) -> ApiToken:
    return ApiToken(
        id=r["id"],
        user_id=r["user_id"],
        name=r["name"],
        token_hash=r["token_hash"],
        prefix=r["prefix"],
        scopes=frozenset(r["scopes"]),
        created_at=r["created_at"],
        project_id=r["project_id"],
        expires_at=r["expires_at"],
        last_used_at=r["last_used_at"],
    )


class PostgresTokenStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, token: ApiToken) -> None:
        t = token
        try:
            async with self.conn.transaction():
                await self.conn.execute(
                    "INSERT INTO api_tokens (id, user_id, name, token_hash, prefix, scopes, project_id, expires_at,"
                    " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    t.id,
                    t.user_id,
                    t.name,
                    t.token_hash,
                    t.prefix,
                    sorted(t.scopes),
                    t.project_id,
                    t.expires_at,
                    t.created_at,
                )
        except asyncpg.ForeignKeyViolationError as exc:
            raise NotFound("no such user or project") from exc

    async def get(self, token_id: uuid.UUID) -> ApiToken | None:
        r = await self.conn.fetchrow("SELECT * FROM api_tokens WHERE id = $1", token_id)
        return _token(r) if r else None

    async def get_by_hash(self, token_hash: str) -> ApiToken | None:
        r = await self.conn.fetchrow("SELECT * FROM api_tokens WHERE token_hash = $1", token_hash)
        return _token(r) if r else None

    async def list_for_user(self, user_id: uuid.UUID, *, limit: int, cursor: str | None) -> Page[ApiToken]:
        before = cursor_uuid(cursor)
        rows = await self.conn.fetch(
            "SELECT * FROM api_tokens WHERE user_id = $1 AND ($2::uuid IS NULL OR id < $2)"
            " ORDER BY id DESC LIMIT $3",
            user_id,
            before,
            limit + 1,
        )
        items = [_token(r) for r in rows[:limit]]
        return Page(items, encode_cursor({"id": str(items[-1].id)}) if len(rows) > limit else None)

    async def delete(self, token_id: uuid.UUID) -> None:
        await self.conn.execute("DELETE FROM api_tokens WHERE id = $1", token_id)

    async def touch_many(self, last_used: dict[uuid.UUID, datetime]) -> None:
        await self.conn.execute(
            "UPDATE api_tokens t SET last_used_at = GREATEST(t.last_used_at, v.at)"
            " FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, at) WHERE t.id = v.id",
            list(last_used),
            list(last_used.values()),
        )


def _session(r: asyncpg.Record) -> AuthSession:
    return AuthSession(
        id=r["id"],
        user_id=r["user_id"],
        token_hash=r["token_hash"],
        csrf_hash=r["csrf_hash"],
        created_at=r["created_at"],
        last_seen_at=r["last_seen_at"],
        expires_at=r["expires_at"],
        ip_addr=r["ip"],
        user_agent=r["user_agent"],
    )


_SESSION = "SELECT *, host(ip_addr) AS ip FROM auth_sessions"


class PostgresSessionStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, session: AuthSession) -> None:
        s = session
        await self.conn.execute(
            "INSERT INTO auth_sessions (id, user_id, token_hash, csrf_hash, ip_addr, user_agent, expires_at,"
            " created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5::text::inet, $6, $7, $8, $9)",
            s.id,
            s.user_id,
            s.token_hash,
            s.csrf_hash,
            s.ip_addr,
            s.user_agent,
            s.expires_at,
            s.created_at,
            s.last_seen_at,
        )

    async def get(self, session_id: uuid.UUID) -> AuthSession | None:
        r = await self.conn.fetchrow(_SESSION + " WHERE id = $1", session_id)
        return _session(r) if r else None

    async def get_by_hash(self, token_hash: str) -> AuthSession | None:
        r = await self.conn.fetchrow(_SESSION + " WHERE token_hash = $1", token_hash)
        return _session(r) if r else None

    async def list_for_user(self, user_id: uuid.UUID) -> list[AuthSession]:
        rows = await self.conn.fetch(_SESSION + " WHERE user_id = $1 ORDER BY id DESC", user_id)
        return [_session(r) for r in rows]

    async def delete(self, session_id: uuid.UUID) -> None:
        await self.conn.execute("DELETE FROM auth_sessions WHERE id = $1", session_id)

    async def delete_for_user(self, user_id: uuid.UUID) -> int:
        status = await self.conn.execute("DELETE FROM auth_sessions WHERE user_id = $1", user_id)
        return int(status.split()[-1])

    async def touch_many(self, last_seen: dict[uuid.UUID, datetime]) -> None:
        await self.conn.execute(
            "UPDATE auth_sessions s SET last_seen_at = GREATEST(s.last_seen_at, v.at)"
            " FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, at) WHERE s.id = v.id",
            list(last_seen),
            list(last_seen.values()),
        )

    async def delete_expired(self, now: datetime, idle_before: datetime) -> int:
        status = await self.conn.execute(
            "DELETE FROM auth_sessions WHERE expires_at <= $1 OR last_seen_at < $2", now, idle_before
        )
        return int(status.split()[-1])


class PostgresLoginThrottleStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def record_failure(self, keys: list[str], at: datetime) -> None:
        await self.conn.executemany(
            "INSERT INTO login_failures (key, at) VALUES ($1, $2)", [(k, at) for k in keys]
        )

    async def failures_since(self, key: str, since: datetime) -> int:
        return int(
            await self.conn.fetchval(
                "SELECT count(*) FROM login_failures WHERE key = $1 AND at >= $2", key, since
            )
        )

    async def ban(self, key: str, until: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO login_bans (key, until) VALUES ($1, $2)"
            " ON CONFLICT (key) DO UPDATE SET until = GREATEST(login_bans.until, EXCLUDED.until)",
            key,
            until,
        )
        # prune what no window will count again
        await self.conn.execute(
            "DELETE FROM login_failures WHERE key = $1 AND at < $2::timestamptz - interval '1 day'",
            key,
            until,
        )

    async def banned_until(self, keys: list[str], now: datetime) -> datetime | None:
        value: datetime | None = await self.conn.fetchval(
            "SELECT max(until) FROM login_bans WHERE key = ANY($1::text[]) AND until > $2", keys, now
        )
        return value

    async def clear(self, key: str) -> None:
        await self.conn.execute("DELETE FROM login_failures WHERE key = $1", key)

    async def lift(self, keys: list[str]) -> int:
        await self.conn.execute("DELETE FROM login_failures WHERE key = ANY($1::text[])", keys)
        status = await self.conn.execute("DELETE FROM login_bans WHERE key = ANY($1::text[])", keys)
        return int(status.split()[-1])

    async def prune(self, before: datetime) -> None:
        await self.conn.execute("DELETE FROM login_failures WHERE at < $1", before)
        await self.conn.execute("DELETE FROM login_bans WHERE until < $1", before)


class PostgresTotpStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    @staticmethod
    def _enrolment(r: asyncpg.Record) -> TotpEnrolment:
        if r["secret_sealed"] is None:
            raise Unavailable(
                "a TOTP secret is still stored in plain text (written by an older Corral); "
                "restart Corral so it encrypts them"
            )
        return TotpEnrolment(
            user_id=r["user_id"],
            secret=SealedSecret(bytes(r["secret_sealed"]), WrappedKey(r["key_id"], bytes(r["wrapped_key"]))),
            created_at=r["created_at"],
            confirmed_at=r["confirmed_at"],
            recovery_hashes=frozenset(r["recovery_hashes"]),
            last_step=r["last_step"],
        )

    async def get(self, user_id: uuid.UUID) -> TotpEnrolment | None:
        r = await self.conn.fetchrow("SELECT * FROM user_totp WHERE user_id = $1", user_id)
        return None if r is None else self._enrolment(r)

    async def put(self, enrolment: TotpEnrolment) -> None:
        e = enrolment
        await self.conn.execute(
            "INSERT INTO user_totp (user_id, secret, secret_sealed, key_id, wrapped_key, created_at, confirmed_at,"
            " recovery_hashes, last_step) VALUES ($1, NULL, $2, $3, $4, $5, $6, $7, $8)"
            " ON CONFLICT (user_id) DO UPDATE SET secret = NULL, secret_sealed = EXCLUDED.secret_sealed,"
            " key_id = EXCLUDED.key_id, wrapped_key = EXCLUDED.wrapped_key,"
            " created_at = EXCLUDED.created_at, confirmed_at = EXCLUDED.confirmed_at,"
            " recovery_hashes = EXCLUDED.recovery_hashes, last_step = EXCLUDED.last_step",
            e.user_id,
            e.secret.ciphertext,
            e.secret.wrapped_key.key_id,
            e.secret.wrapped_key.blob,
            e.created_at,
            e.confirmed_at,
            sorted(e.recovery_hashes),
            e.last_step,
        )

    async def delete(self, user_id: uuid.UUID) -> None:
        await self.conn.execute("DELETE FROM user_totp WHERE user_id = $1", user_id)

    async def claim_for_rewrap(self, current_key_id: str, limit: int) -> list[TotpEnrolment]:
        rows = await self.conn.fetch(
            "SELECT * FROM user_totp WHERE key_id IS NOT NULL AND key_id <> $1 ORDER BY user_id LIMIT $2"
            " FOR UPDATE SKIP LOCKED",
            current_key_id,
            limit,
        )
        return [self._enrolment(r) for r in rows]

    async def count_by_key(self) -> dict[str, int]:
        rows = await self.conn.fetch(
            "SELECT key_id, count(*) AS n FROM user_totp WHERE key_id IS NOT NULL GROUP BY key_id"
        )
        return {r["key_id"]: r["n"] for r in rows}

    async def claim_plaintext(self, limit: int) -> list[tuple[uuid.UUID, str]]:
        rows = await self.conn.fetch(
            "SELECT user_id, secret FROM user_totp WHERE secret IS NOT NULL ORDER BY user_id LIMIT $1"
            " FOR UPDATE SKIP LOCKED",
            limit,
        )
        return [(r["user_id"], r["secret"]) for r in rows]

    async def seal_plaintext(self, user_id: uuid.UUID, sealed: SealedSecret) -> None:
        await self.conn.execute(
            "UPDATE user_totp SET secret = NULL, secret_sealed = $2, key_id = $3, wrapped_key = $4"
            " WHERE user_id = $1",
            user_id,
            sealed.ciphertext,
            sealed.wrapped_key.key_id,
            sealed.wrapped_key.blob,
        )


class PostgresIdentitySettingsStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def get(self, key: str) -> object | None:
        raw = await self.conn.fetchval("SELECT value::text FROM identity_settings WHERE key = $1", key)
        return None if raw is None else json.loads(raw)

    async def put(self, key: str, value: object, *, by: uuid.UUID | None, at: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO identity_settings (key, value, updated_by, updated_at) VALUES ($1, $2::jsonb, $3, $4)"
            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_by = EXCLUDED.updated_by,"
            " updated_at = EXCLUDED.updated_at",
            key, json.dumps(value), by, at,
        )
