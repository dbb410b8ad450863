"""A core loop across an outage of a dependency (:class:`~corral.core.errors.Unavailable`).

While PostgreSQL (or Valkey, or the object store) is down every pass of a loop fails the same way; a traceback
per pass would bury the one line that matters. :class:`OutageLog` logs the start of an outage once at WARNING
and its end once at INFO, and says how long to back off (growing while the outage lasts, bounded).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from corral.core.errors import Unavailable

__all__ = ["MAX_BACKOFF_SECONDS", "OutageLog"]

MAX_BACKOFF_SECONDS = 30.0


class OutageLog:
    """The outage state of one loop named ``name``, logging to ``logger``.

    ``failed(exc)`` after a pass that raised returns the seconds to wait when ``exc`` is an outage
    (``Unavailable``), None otherwise (the caller logs it as the bug it is); ``succeeded()`` after a good pass
    ends the outage. ``monotonic`` is injectable for tests.
    """

    def __init__(self, name: str, logger: logging.Logger, *, base_delay: float = 1.0,
                 max_delay: float = MAX_BACKOFF_SECONDS, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._log = logger
        self._base = base_delay
        self._max = max(max_delay, base_delay)
        self._delay = base_delay
        self._monotonic = monotonic
        self._down_since: float | None = None

    @property
    def in_outage(self) -> bool:
        return self._down_since is not None

    def failed(self, exc: BaseException) -> float | None:
        if not isinstance(exc, Unavailable):
            return None
        if self._down_since is None:
            self._down_since = self._monotonic()
            self._delay = self._base
            self._log.warning("%s paused: a dependency is unavailable (%s); retrying with backoff", self.name, exc)
        else:
            self._delay = min(self._delay * 2, self._max)
        return self._delay

    def succeeded(self) -> None:
        if self._down_since is not None:
            self._log.info("%s resumed after %.1f s", self.name, self._monotonic() - self._down_since)
            self._down_since = None
            self._delay = self._base
