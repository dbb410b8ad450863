"""Structured JSON logs carrying the correlation envelope through contextvars.

Every log line Corral writes carries ``trace_id``, ``span_id``, ``project_id``,
``session_id``, ``user_id`` and ``service`` when they are known for the
current task, plus ``request_id`` for HTTP requests. Code sets them with
``bind_context(...)``; asyncio copies contextvars into tasks it spawns, so a
value bound in a request handler follows its sub-tasks.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["ENVELOPE_FIELDS", "bind_context", "configure_logging", "current_context", "reset_context"]

ENVELOPE_FIELDS = ("trace_id", "span_id", "project_id", "session_id", "user_id", "service", "request_id")

_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("corral_log_context", default={})  # noqa: B039


def current_context() -> dict[str, str]:
    """The correlation fields bound for the current task."""
    return dict(_context.get())


def bind_context(**fields: object) -> contextvars.Token[dict[str, str]]:
    """Add correlation fields for the current task (None values are ignored); returns a reset token."""
    merged = dict(_context.get())
    merged.update({k: str(v) for k, v in fields.items() if v is not None})
    return _context.set(merged)


def reset_context(token: contextvars.Token[dict[str, str]]) -> None:
    """Undo a ``bind_context``."""
    _context.reset(token)


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Bind correlation fields for the duration of a block."""
    token = bind_context(**fields)
    try:
        yield
    finally:
        reset_context(token)


_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, msg, the envelope, and any ``extra=`` fields."""

    def __init__(self, service: str = "corral") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "service": self.service,
        }
        out.update(_context.get())
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, with the envelope appended."""

    def format(self, record: logging.LogRecord) -> str:
        ctx = " ".join(f"{k}={v}" for k, v in _context.get().items())
        base = f"{time.strftime('%H:%M:%S', time.localtime(record.created))} {record.levelname:<7} {record.name}: "
        text = base + record.getMessage() + (f"  [{ctx}]" if ctx else "")
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(level: str = "info", fmt: str = "json", stream: Any = None) -> None:
    """Route every logger to one handler on stderr in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    # pipeline step log lines go to Corral's own telemetry (observe), not to the server's stderr
    handler.addFilter(lambda record: record.name != "corral.pipelines.steplog")
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("aiobotocore", "botocore", "asyncio", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
