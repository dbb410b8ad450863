"""Corral observes itself: its own log records (and one span per HTTP request) go through the
same ingest pipeline as any application's telemetry, carrying the correlation envelope bound
in contextvars (request id, trace/span ids, project, user)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from corral.core.deploy.telemetry import FinishedSpan
from corral.core.observe.ingest import IngestPipeline
from corral.core.observe.model import TelemetryBatch
from corral.core.observe.rowids import RowIds
from corral.core.safetext import clean_json_text, clean_text
from corral.entrypoints.observability import current_context

__all__ = ["SelfTelemetry"]

_LEVELS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "fatal",
}
_SKIP = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_ENVELOPE = ("trace_id", "span_id", "project_id", "session_id", "user_id", "service")
_MAX_BUFFER = 10_000
_PIPELINE_SPANS = "corral.pipelines.span"
PIPELINE_STEP_LOG = "corral.pipelines.steplog"  # step log lines (already masked): service ``pipeline``


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _hexid(value: Any, size: int) -> str | None:
    text = str(value or "")
    if len(text) != size:
        return None
    try:
        int(text, 16)
    except ValueError:
        return None
    return text.lower()


class SelfTelemetry(logging.Handler):
    """A logging handler buffering Corral's own records; a task flushes them every second.

    Records are dropped (never block) when the buffer is full or the pipeline refuses them.
    """

    def __init__(self, pipeline: IngestPipeline, service: str = "corral") -> None:
        super().__init__(level=logging.INFO)
        self._pipeline = pipeline
        self._service = clean_text(service)
        self._ids = RowIds()
        self._batch = TelemetryBatch()
        self._task: asyncio.Task[None] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("corral.core.observe") or len(self._batch) >= _MAX_BUFFER:
            return  # never feed the pipeline's own complaints back into it
        try:
            ctx = current_context()
            extra = {k: v for k, v in record.__dict__.items() if k not in _SKIP and not k.startswith("_")}
            attrs = {k: v for k, v in {**ctx, **extra}.items() if k not in _ENVELOPE}
            attrs["logger"] = record.name
            ts = datetime.fromtimestamp(record.created, UTC)
            if record.name == _PIPELINE_SPANS:
                self._pipeline_span(extra)
                return
            if record.name == PIPELINE_STEP_LOG:
                self._pipeline_log(record, extra, ts)
                return
            # the bound context first; a loop outside any request (the deployer) names them in ``extra``
            trace_id = _hexid(ctx.get("trace_id") or extra.get("trace_id"), 32)
            span_id = _hexid(ctx.get("span_id") or extra.get("span_id"), 16)
            project_id = _uuid(ctx.get("project_id") or extra.get("project_id"))
            user_id = _uuid(ctx.get("user_id") or extra.get("user_id"))
            session_id = clean_text(str(ctx["session_id"])) if ctx.get("session_id") else None
            rid = self._ids.ids(2)
            self._batch.logs.append(
                (
                    rid[0],
                    ts,
                    trace_id,
                    span_id,
                    project_id,
                    session_id,
                    user_id,
                    self._service,
                    _LEVELS.get(record.levelno, "info"),
                    clean_text(record.getMessage()),  # a request path may hold NUL (%00): never fail the batch
                    clean_json_text(json.dumps(attrs, default=str)),
                )
            )
            if record.name == "corral.http" and trace_id and span_id and "duration_ms" in extra:
                duration = float(extra["duration_ms"])
                status = int(extra.get("http_status", 0))
                self._batch.spans.append(
                    (
                        rid[1],
                        ts - timedelta(milliseconds=duration),
                        trace_id,
                        span_id,
                        None,
                        project_id,
                        session_id,
                        user_id,
                        self._service,
                        clean_text(f"{extra.get('http_method')} {extra.get('http_path')}"),
                        "server",
                        "error" if status >= 500 else "ok",
                        duration,
                        clean_json_text(json.dumps(
                            {
                                "http.status_code": status,
                                "http.method": extra.get("http_method"),
                                "url.path": extra.get("http_path"),
                            }, default=str,
                        )),
                        "[]",
                    )
                )
        except Exception:  # a log handler must never raise into the caller
            self.handleError(record)

    def span(self, span: FinishedSpan) -> None:
        """A span finished by a background loop (SpanSink of the deployer): stored like a request's span, the
        project in its envelope. Dropped when the buffer is full."""
        if len(self._batch) >= _MAX_BUFFER:
            return
        with contextlib.suppress(Exception):
            self._batch.spans.append(
                (
                    self._ids.ids(1)[0],
                    span.start,
                    _hexid(span.trace_id, 32),
                    _hexid(span.span_id, 16),
                    _hexid(span.parent_span_id, 16),
                    span.project_id,
                    None,
                    None,
                    self._service,
                    clean_text(span.name),
                    "internal",
                    span.status,
                    span.duration_ms,
                    clean_json_text(json.dumps(span.attributes, default=str)),
                    "[]",
                )
            )

    def _pipeline_span(self, extra: dict[str, Any]) -> None:
        """A span of a pipeline's trace (corral.core.pipelines.workflow_run): the trace is the pipeline, the
        project in the envelope, service ``pipeline``."""
        trace_id, span_id = _hexid(extra.get("trace_id"), 32), _hexid(extra.get("span_id"), 16)
        if trace_id is None or span_id is None or "duration_ms" not in extra:
            return
        detail = {k: v for k, v in extra.items() if k.startswith("pipeline.")}
        self._batch.spans.append((
            self._ids.ids(1)[0], datetime.fromisoformat(str(extra["span_start"])), trace_id, span_id,
            _hexid(extra.get("parent_span_id"), 16), _uuid(extra.get("project_id")), None, None, "pipeline",
            clean_text(str(extra.get("span_name", "step"))), "internal",
            "error" if extra.get("span_status") == "error" else "ok", float(extra["duration_ms"]),
            clean_json_text(json.dumps(detail, default=str)), "[]",
        ))

    def _pipeline_log(self, record: logging.LogRecord, extra: dict[str, Any], ts: datetime) -> None:
        """A line of a pipeline step's log: the pipeline's trace, the step's span, the project in the envelope,
        service ``pipeline`` (corral.core.pipelines.workflow_run, bounded per step)."""
        detail = {k: v for k, v in extra.items() if k.startswith("pipeline.")}
        self._batch.logs.append((
            self._ids.ids(1)[0], ts, _hexid(extra.get("trace_id"), 32), _hexid(extra.get("span_id"), 16),
            _uuid(extra.get("project_id")), None, None, "pipeline", _LEVELS.get(record.levelno, "info"),
            clean_text(record.getMessage()), clean_json_text(json.dumps(detail, default=str)),
        ))

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            await self.flush_now()

    async def flush_now(self) -> None:
        batch, self._batch = self._batch, TelemetryBatch()
        if len(batch):
            with contextlib.suppress(Exception):
                await self._pipeline.submit(batch)

    def install(self) -> None:
        logging.getLogger("corral").addHandler(self)
        self._task = asyncio.get_running_loop().create_task(self._flush_forever(), name="observe-self")

    async def aclose(self) -> None:
        logging.getLogger("corral").removeHandler(self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush_now()
