"""Translate asyncpg errors into Corral's error tree, in one place.

Stores wrap their statements: ``with translate_errors("project"): await conn.execute(...)``.
Messages never include parameter values (they could be secrets).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import asyncpg

from corral.core.errors import Conflict, CorralError, InvalidInput, NotFound, Unavailable

__all__ = ["CONNECTION_ERRORS", "translate_errors", "unavailable"]

# Everything that means "the database is not reachable right now".
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
)


def unavailable(exc: BaseException, where: str = "PostgreSQL") -> Unavailable:
    """The Unavailable error for a lost or refused database connection."""
    reason = type(exc).__name__
    return Unavailable(f"{where} is unavailable ({reason}); retry shortly", retry_after=1)


@contextlib.contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Map driver errors raised inside the block; ``what`` names the thing being written."""
    try:
        yield
    except CorralError:
        raise
    except asyncpg.exceptions.UniqueViolationError as exc:
        raise Conflict(f"{what} already exists", detail={"constraint": exc.constraint_name}) from exc
    except asyncpg.exceptions.ForeignKeyViolationError as exc:
        raise NotFound(
            f"{what} refers to something that does not exist", detail={"constraint": exc.constraint_name}
        ) from exc
    except (asyncpg.exceptions.CheckViolationError, asyncpg.exceptions.NotNullViolationError) as exc:
        raise InvalidInput(f"{what} is not valid ({exc.constraint_name or exc.column_name})") from exc
    except (asyncpg.exceptions.DataError, asyncpg.exceptions.StringDataRightTruncationError) as exc:
        raise InvalidInput(f"{what} has a value of the wrong form") from exc
    except asyncpg.exceptions.SerializationError as exc:
        raise Conflict(f"{what} was changed concurrently; retry") from exc
    except asyncpg.exceptions.DeadlockDetectedError as exc:
        raise Conflict(f"{what} was changed concurrently; retry") from exc
    except CONNECTION_ERRORS as exc:
        raise unavailable(exc) from exc
