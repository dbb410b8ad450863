"""The connection a unit of work hands to its stores: the transaction opens on the first statement.

Starting the transaction lazily saves two round trips per unit in the common shape
"write, commit, leave": no BEGIN for a transaction that would stay empty after ``commit()``,
and no ROLLBACK of it when the block ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import asyncpg

__all__ = ["UnitConnection"]

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

    __slots__ = ("_begin", "_conn")

    def __init__(self, conn: asyncpg.Connection, begin: Callable[[], Awaitable[None]]) -> None:
        self._conn = conn
        self._begin = begin

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._conn, name)
        if name not in _STATEMENTS:
            return value
        begin = self._begin

        async def statement(*args: Any, **kwargs: Any) -> Any:
            await begin()
            return await value(*args, **kwargs)

        return statement

    def transaction(self, **options: Any) -> _Savepoint:
        """A nested transaction (a SAVEPOINT inside the unit's transaction)."""
        return _Savepoint(self._conn, self._begin, options)

    @property
    def raw(self) -> asyncpg.Connection:
        """The underlying connection (its statements do not open the unit's transaction)."""
        return self._conn


class _Savepoint:
    def __init__(self, conn: asyncpg.Connection, begin: Callable[[], Awaitable[None]], options: dict[str, Any]) -> None:
        self._conn = conn
        self._begin = begin
        self._options = options
        self._tx: Any = None

    async def start(self) -> None:
        await self._begin()
        self._tx = self._conn.transaction(**self._options)
        await self._tx.start()

    async def commit(self) -> None:
        await self._tx.commit()

    async def rollback(self) -> None:
        await self._tx.rollback()

    async def __aenter__(self) -> _Savepoint:
        await self._begin()
        self._tx = self._conn.transaction(**self._options)
        await self._tx.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._tx.__aexit__(exc_type, exc, tb)
