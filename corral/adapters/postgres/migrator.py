"""Schema migrations: corral/migrations/NNN_name.sql applied in filename order.

Rules the runner enforces:
- a session-level advisory lock serialises runners (replicas starting together);
- ``schema_migrations(name, checksum, applied_at)`` records every applied file with the
  SHA-256 of its text; an applied file whose text changed stops the run before anything
  else is applied (never edit a landed migration: add a new one);
- each file runs in its own transaction together with its bookkeeping row, so a failing
  file leaves neither a partial schema nor a record;
- a second run applies nothing.

Applied names that no file matches (a database migrated by a newer Corral) are reported
by ``migration_status`` but do not stop an older runner: rolling upgrades keep working.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from importlib import resources

import asyncpg
import attrs

from corral.core.errors import Conflict, Unavailable

__all__ = [
    "ADVISORY_LOCK_KEY",
    "Migration",
    "MigrationError",
    "MigrationState",
    "apply_migrations",
    "load_migrations",
    "migration_status",
]

# Fixed key of the advisory lock taken while migrating: "corral" in ASCII.
ADVISORY_LOCK_KEY = 0x636F7272616C

_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       TEXT PRIMARY KEY,
    checksum   TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


class MigrationError(Conflict):
    """The database and the migration files disagree, or a migration failed to apply."""

    title = "Migration error"


@attrs.frozen
class Migration:
    """One migration file: its name (``NNN_name.sql``), SQL text and SHA-256 of that text."""

    name: str
    sql: str
    checksum: str

    @classmethod
    def from_text(cls, name: str, sql: str) -> Migration:
        # Normalise line endings so a checkout with CRLF does not look like an edited file.
        text = sql.replace("\r\n", "\n")
        return cls(name=name, sql=text, checksum=hashlib.sha256(text.encode()).hexdigest())


@attrs.frozen
class MigrationState:
    """Where one migration stands: ``applied``, ``pending``, ``changed`` (applied, file edited since)
    or ``unknown`` (recorded in the database, no such file here)."""

    name: str
    state: str
    applied_at: datetime | None = None


def load_migrations(package: str = "corral.migrations") -> list[Migration]:
    """Every ``NNN_name.sql`` of the package, in filename order (read as package data)."""
    found: list[Migration] = []
    seen_numbers: dict[str, str] = {}
    for entry in resources.files(package).iterdir():
        name = entry.name
        if not name.endswith(".sql"):
            continue
        match = _NAME.match(name)
        if match is None:
            raise MigrationError(
                f"migration file {name} is not named NNN_lowercase_name.sql; rename it",
                detail={"migration": name},
            )
        number = match.group(1)
        if number in seen_numbers:
            other = seen_numbers[number]
            raise MigrationError(
                f"migrations {other} and {name} share the number {number}; renumber one of them",
                detail={"migration": name},
            )
        seen_numbers[number] = name
        found.append(Migration.from_text(name, entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.name)


async def _applied(conn: asyncpg.Connection) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch("SELECT name, checksum, applied_at FROM schema_migrations")
    return {row["name"]: row for row in rows}


def _check_unchanged(migrations: Iterable[Migration], applied: dict[str, asyncpg.Record]) -> None:
    for migration in migrations:
        row = applied.get(migration.name)
        if row is not None and row["checksum"] != migration.checksum:
            raise MigrationError(
                f"migration {migration.name} was changed after it was applied "
                f"(recorded sha256 {row['checksum'][:12]}…, file now {migration.checksum[:12]}…); "
                "restore the file and put the change in a new migration",
                detail={"migration": migration.name},
            )


async def apply_migrations(
    conn: asyncpg.Connection, migrations: Sequence[Migration] | None = None
) -> list[str]:
    """Apply every pending migration; return the names newly applied (empty when up to date).

    Raises MigrationError (before applying anything) when an applied file changed, and
    MigrationError naming the file when one fails to apply (that file is rolled back; the
    ones before it stay applied).
    """
    todo = load_migrations() if migrations is None else sorted(migrations, key=lambda m: m.name)
    newly: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
    except (OSError, asyncpg.exceptions.InterfaceError) as exc:
        raise Unavailable("PostgreSQL connection lost while migrating; retry") from exc
    try:
        await conn.execute(_CREATE_TABLE)
        applied = await _applied(conn)
        _check_unchanged(todo, applied)
        for migration in todo:
            if migration.name in applied:
                continue
            try:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                        migration.name,
                        migration.checksum,
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(
                    f"migration {migration.name} failed and was rolled back: {exc}",
                    detail={"migration": migration.name},
                ) from exc
            newly.append(migration.name)
    finally:
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    return newly


async def migration_status(
    conn: asyncpg.Connection, migrations: Sequence[Migration] | None = None
) -> list[MigrationState]:
    """The state of every known file and every recorded name, in name order. Changes nothing."""
    files = load_migrations() if migrations is None else list(migrations)
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    applied = await _applied(conn) if exists else {}
    states: list[MigrationState] = []
    by_name = {m.name: m for m in files}
    for name in sorted(set(by_name) | set(applied)):
        row = applied.get(name)
        migration = by_name.get(name)
        if migration is None:
            states.append(MigrationState(name, "unknown", row["applied_at"] if row else None))
        elif row is None:
            states.append(MigrationState(name, "pending"))
        elif row["checksum"] != migration.checksum:
            states.append(MigrationState(name, "changed", row["applied_at"]))
        else:
            states.append(MigrationState(name, "applied", row["applied_at"]))
    return states
