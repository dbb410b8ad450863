"""A clock that tests move by hand."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

__all__ = ["FakeClock"]


class FakeClock:
    """Starts at a fixed instant; ``advance`` moves both wall and monotonic time, ``set`` jumps.

    ``FakeClock.real_time()`` follows the real clock (plus whatever ``advance`` added), for the
    in-memory platform where time must pass on its own.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = 1000.0
        self._follow_real_time = False
        self._offset = 0.0

    @classmethod
    def real_time(cls) -> FakeClock:
        clock = cls()
        clock._follow_real_time = True
        return clock

    def now(self) -> datetime:
        if self._follow_real_time:
            return datetime.now(UTC) + timedelta(seconds=self._offset)
        return self._now

    def monotonic(self) -> float:
        if self._follow_real_time:
            return time.monotonic() + self._offset
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move time forward (never backwards: ``seconds`` must not be negative)."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards; use set() to jump")
        self._offset += seconds
        self._now += timedelta(seconds=seconds)
        self._mono += seconds

    def set(self, when: datetime) -> None:
        """Jump wall time to ``when`` (timezone-aware); monotonic time is untouched.
        A real-time clock stops following the real clock from here on."""
        if when.tzinfo is None:
            raise ValueError("FakeClock.set needs a timezone-aware datetime")
        self._follow_real_time = False
        self._now = when
