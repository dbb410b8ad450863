"""Connection pool and single connections, with the codecs every store relies on.

JSON and JSONB columns take and return plain Python values (dicts, lists, ...). Failing to
reach the database raises Unavailable with a message that names the server but never the
password.

Pooled connections never carry session state from one user to the next: Corral's code changes settings only
with ``SET LOCAL`` (inside its transaction), and takes session advisory locks and LISTENs only on dedicated
connections (``connect``: migrations, leader election). So a connection going back to the pool is not sent
asyncpg's reset query (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``), one round trip per
use of the pool (a unit of work read measured 1.12 ms -> 0.78 ms, ``pool.fetchval`` 0.55 -> 0.31 ms);
asyncpg still rolls back a transaction left open. Keep it so: session-level ``SET``, advisory locks or
``LISTEN`` on a pooled connection would leak to the next user.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from corral.adapters.postgres.errors import CONNECTION_ERRORS
from corral.core.errors import Unavailable

__all__ = ["connect", "create_pool", "no_session_reset", "redact_dsn", "setup_connection"]

# Reachable but refusing us (no such database, bad credentials): also Unavailable for callers.
_REFUSED: tuple[type[BaseException], ...] = (
    *CONNECTION_ERRORS,
    asyncpg.exceptions.InvalidCatalogNameError,
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
)


def redact_dsn(dsn: str) -> str:
    """``host:port/database`` of a DSN, without user name or password, for messages."""
    try:
        parts = urlsplit(dsn)
        host = parts.hostname or "localhost"
        port = parts.port or 5432
    except ValueError:
        return "the configured database"
    database = parts.path.lstrip("/") or "(default database)"
    return f"{host}:{port}/{database}"


async def setup_connection(conn: asyncpg.Connection) -> None:
    """Per-connection set-up: JSON/JSONB as Python values."""
    for pg_type in ("json", "jsonb"):
        await conn.set_type_codec(pg_type, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def _unavailable(dsn: str, exc: BaseException) -> Unavailable:
    return Unavailable(
        f"cannot connect to PostgreSQL at {redact_dsn(dsn)} ({type(exc).__name__}); "
        "check that it is running and that the database URL is right",
        retry_after=1,
    )


async def no_session_reset(conn: asyncpg.Connection) -> None:
    """The pool's reset (after asyncpg's own rollback of an open transaction): nothing to undo, see above."""


class _OncePerOutage(logging.Filter):
    """asyncpg logs "Failed to restore the pool connection floor" with a traceback every few milliseconds
    while PostgreSQL is down: let the first through (without its traceback) and drop the rest until the
    warnings have stopped for ``quiet`` seconds (the outage is over)."""

    def __init__(self, quiet: float = 30.0) -> None:
        super().__init__()
        self.quiet = quiet
        self._last: float | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if "connection floor" not in record.getMessage():
            return True
        now = time.monotonic()
        first = self._last is None or now - self._last > self.quiet
        self._last = now
        if first and record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({type(exc).__name__}: {exc}); further ones are not logged"
            record.args = ()
            record.exc_info = record.exc_text = None
        return first


_pool_log_filter = _OncePerOutage()


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    timeout: float = 10.0,
    **kwargs: Any,
) -> asyncpg.Pool:
    """An asyncpg pool whose connections are set up by ``setup_connection`` and released without a reset
    query (see the module docstring)."""
    kwargs.setdefault("reset", no_session_reset)
    pool_log = logging.getLogger("asyncpg.pool")
    if _pool_log_filter not in pool_log.filters:
        pool_log.addFilter(_pool_log_filter)
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            init=setup_connection,
            **kwargs,
        )
    except _REFUSED as exc:
        raise _unavailable(dsn, exc) from exc
    assert pool is not None
    return pool


async def connect(dsn: str, *, timeout: float = 10.0, **kwargs: Any) -> asyncpg.Connection:
    """One connection set up like the pool's (for migrations and one-off tools)."""
    try:
        conn = await asyncpg.connect(dsn, timeout=timeout, **kwargs)
    except _REFUSED as exc:
        raise _unavailable(dsn, exc) from exc
    await setup_connection(conn)
    return conn
