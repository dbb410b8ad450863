"""Background loops across an outage of PostgreSQL, Valkey or the object store.

While a dependency is down every pass of every loop fails the same way; a traceback per pass would bury the
one line that matters. :class:`LoopErrors` logs the start of an outage once at WARNING and its end once at
INFO, and says how long to back off; any other error is logged with its traceback as before.
"""

from __future__ import annotations

import logging
import time

from corral.core.errors import Unavailable

__all__ = ["LoopErrors", "is_outage"]

log = logging.getLogger("corral.background")

MAX_BACKOFF_SECONDS = 30.0


def _connection_errors() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [Unavailable, ConnectionError, TimeoutError]
    try:
        from corral.adapters.postgres.errors import CONNECTION_ERRORS

        found.extend(CONNECTION_ERRORS)
    except ImportError:  # the driver is not installed (memory profile)
        pass
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        found.extend((RedisConnectionError, RedisTimeoutError))
    except ImportError:
        pass
    try:
        from botocore.exceptions import ConnectionError as BotoConnectionError

        found.append(BotoConnectionError)
    except ImportError:
        pass
    return tuple(found)


_OUTAGE_ERRORS: tuple[type[BaseException], ...] | None = None


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` means a dependency cannot be reached (rather than a bug)."""
    global _OUTAGE_ERRORS
    if _OUTAGE_ERRORS is None:
        _OUTAGE_ERRORS = _connection_errors()
    return isinstance(exc, _OUTAGE_ERRORS)


class LoopErrors:
    """The error state of one background loop: ``failed(exc)`` after a failed pass returns the seconds to wait
    (growing while the outage lasts), ``succeeded()`` after a good pass ends the outage."""

    def __init__(self, name: str, *, base_delay: float = 1.0) -> None:
        self.name = name
        self._base = base_delay
        self._delay = base_delay
        self._down_since: float | None = None

    @property
    def in_outage(self) -> bool:
        return self._down_since is not None

    def failed(self, exc: BaseException) -> float:
        if not is_outage(exc):
            log.error("background loop %s failed; retrying", self.name, exc_info=exc)
            return self._base
        if self._down_since is None:
            self._down_since = time.monotonic()
            self._delay = self._base
            log.warning("background loop %s paused: a dependency is unavailable (%s: %s); retrying with backoff",
                        self.name, type(exc).__name__, exc)
        else:
            self._delay = min(self._delay * 2, MAX_BACKOFF_SECONDS)
        return self._delay

    def succeeded(self) -> None:
        if self._down_since is not None:
            log.info("background loop %s resumed after %.1f s", self.name, time.monotonic() - self._down_since)
            self._down_since = None
            self._delay = self._base
