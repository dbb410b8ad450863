"""asyncpg's "Failed to restore the pool connection floor" is logged once per outage, without its traceback."""

from __future__ import annotations

import logging
import sys

from corral.adapters.postgres.pool import _OncePerOutage


def _record(msg: str) -> logging.LogRecord:
    try:
        raise ConnectionRefusedError("refused")
    except ConnectionRefusedError:
        info = sys.exc_info()
    return logging.LogRecord("asyncpg.pool", logging.WARNING, __file__, 1, msg, (), info)


def test_one_warning_per_outage() -> None:
    flt = _OncePerOutage(quiet=30.0)
    first = _record("Failed to restore the pool connection floor; retrying")
    assert flt.filter(first)
    assert first.exc_info is None and "ConnectionRefusedError" in first.getMessage()
    assert not any(flt.filter(_record("Failed to restore the pool connection floor; retrying")) for _ in range(50))
    assert flt.filter(_record("something else"))
    flt._last = -1e9  # the warnings stopped long ago: a new outage is logged again
    assert flt.filter(_record("Failed to restore the pool connection floor; retrying"))
