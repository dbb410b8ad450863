"""The connection a unit of work hands to its stores: the transaction opens on the first statement.

Starting the transaction lazily saves two round trips per unit in the common shape
"write, commit, leave": no BEGIN for a transaction that would stay empty after ``commit()``,
and no ROLLBACK of it when the block ends.

It also remembers when a statement failed outside a savepoint: PostgreSQL then aborts the
transaction and answers a later COMMIT with a silent ROLLBACK, which the unit of work turns
into a loud error instead of pretending the work was committed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import asyncpg

from corral.adapters.postgres.errors import CONNECTION_ERRORS, unavailable

__all__ = ["UnitConnection"]

# A lost connection, and what asyncpg says when a statement is sent on a connection whose previous operation
# was cut off by the loss ("cannot switch to state 12; another operation (2) is in progress").
_BROKEN: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.exceptions.InternalClientError)

# Connection methods that send a statement: each first makes sure the unit's transaction is open.
_STATEMENTS = frozenset(
    {
        "execute",
        "executemany",
        "fetch",
        "fetchrow",
        "fetchval",
        "fetchmany",
        "prepare",
        "copy_from_table",
        "copy_from_query",
        "copy_to_table",
        "copy_records_to_table",
    }
)


class UnitConnection:
    """Duck-typed asyncpg.Connection bound to one unit of work (stores type it as a Connection)."""

    __slots__ = ("_begin", "_conn", "depth", "failed")

    def __init__(self, conn: asyncpg.Connection, begin: Callable[[], Awaitable[None]]) -> None:
        self._conn = conn
        self._begin = begin
        self.depth = 0  # open savepoints
        self.failed = False  # a statement failed outside any savepoint: the transaction is aborted

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._conn, name)
        if name not in _STATEMENTS:
            return value

        async def statement(*args: Any, **kwargs: Any) -> Any:
            try:
                await self._begin()
                return await value(*args, **kwargs)
            except _BROKEN as exc:  # before PostgresError: AdminShutdownError and friends are both
                # the server went away mid-unit (a restart, a failover): nothing of the unit is committed;
                # drop the connection so the pool opens a new one instead of handing this one out again
                self.failed = True
                self._conn.terminate()
                raise unavailable(exc) from exc
            except asyncpg.PostgresError:
                if self.depth == 0:
                    self.failed = True
                raise

        return statement

    def transaction(self, **options: Any) -> _Savepoint:
        """A nested transaction (a SAVEPOINT inside the unit's transaction)."""
        return _Savepoint(self, options)

    @property
    def raw(self) -> asyncpg.Connection:
        """The underlying connection (its statements do not open the unit's transaction)."""
        return self._conn


class _Savepoint:
    def __init__(self, unit_conn: UnitConnection, options: dict[str, Any]) -> None:
        self._unit_conn = unit_conn
        self._options = options
        self._tx: Any = None

    async def _open(self) -> Any:
        await self._unit_conn._begin()
        tx = self._unit_conn._conn.transaction(**self._options)
        self._unit_conn.depth += 1
        return tx

    def _closed(self) -> None:
        self._unit_conn.depth -= 1

    async def start(self) -> None:
        self._tx = await self._open()
        try:
            await self._tx.start()
        except BaseException:
            self._closed()
            raise

    async def commit(self) -> None:
        try:
            await self._tx.commit()
        finally:
            self._closed()

    async def rollback(self) -> None:
        try:
            await self._tx.rollback()
        finally:
            self._closed()

    async def __aenter__(self) -> _Savepoint:
        self._tx = await self._open()
        try:
            await self._tx.__aenter__()
        except BaseException:
            self._closed()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._tx.__aexit__(exc_type, exc, tb)
        finally:
            self._closed()
