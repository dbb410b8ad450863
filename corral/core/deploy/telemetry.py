"""The reconciler's spans into Corral's own telemetry: one per pass, one per deployment applied (with the
project in the envelope). A ``SpanSink`` takes finished spans; the wiring hands them to self-telemetry."""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs

__all__ = ["FinishedSpan", "SpanSink", "SpanTimer", "new_span_id", "new_trace_id"]


def new_trace_id() -> str:
    return secrets.token_hex(16)


def new_span_id() -> str:
    return secrets.token_hex(8)


@attrs.frozen
class FinishedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    start: datetime
    duration_ms: float
    status: str  # ok, error
    project_id: uuid.UUID | None = None
    attributes: dict[str, Any] = attrs.field(factory=dict)


class SpanSink(Protocol):
    """Receives finished spans; never blocks and never raises (telemetry must not break the deployer)."""

    def span(self, span: FinishedSpan) -> None: ...


@attrs.define
class SpanTimer:
    """A span being timed: ``finish`` hands it to the sink (if any)."""

    name: str
    trace_id: str
    parent_span_id: str | None = None
    project_id: uuid.UUID | None = None
    span_id: str = attrs.field(factory=new_span_id)
    started: datetime = attrs.field(factory=lambda: datetime.now(UTC))
    _t0: float = attrs.field(factory=time.perf_counter)

    def finish(self, sink: SpanSink | None, *, error: bool = False, **attributes: Any) -> None:
        if sink is None:
            return
        duration = (time.perf_counter() - self._t0) * 1000
        try:
            sink.span(FinishedSpan(self.name, self.trace_id, self.span_id, self.parent_span_id, self.started,
                                   round(duration, 3), "error" if error else "ok", self.project_id, attributes))
        except Exception:
            pass
