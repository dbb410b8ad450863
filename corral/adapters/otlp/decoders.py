"""TelemetryDecoder implementations: in the event-loop process, or in a pool of worker processes.

Decoding OTLP and building rows is most of the ingest CPU. ``ProcessPoolTelemetryDecoder``
runs decode + envelope resolution + PostgreSQL binary COPY encoding in spawned worker
processes and hands back ready-to-COPY bytes, so the event loop only does HTTP, auth,
queueing and the COPY itself. ``InProcessTelemetryDecoder`` keeps the rows in Python (memory
profile, tests, or CORRAL_OTLP_DECODE_PROCESSES=0).

Projects named by path (``corral.project = owner/name``) are resolved in the main process
(it owns the database pool): a worker that meets a path it does not know answers "unknown",
the main process resolves it and sends the request again with the answer, which the worker
then keeps for a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from corral.adapters.otlp.codec import OtlpCodec, decode_request
from corral.core.errors import InvalidInput, Unavailable
from corral.core.observe.envelope import UnknownProjects
from corral.core.observe.model import Caller, TelemetryBatch
from corral.core.observe.ports import ProjectDirectory

__all__ = ["InProcessTelemetryDecoder", "ProcessPoolTelemetryDecoder", "decode_in_worker"]

TAIL_ROWS = 500
_PATH_TTL = 60.0
_UNKNOWN = object()


class InProcessTelemetryDecoder:
    """Decodes on the calling thread; rows stay Python tuples."""

    def __init__(self, directory: ProjectDirectory, codec: OtlpCodec | None = None) -> None:
        self._directory = directory
        self.codec = codec or OtlpCodec()

    async def decode(
        self, signal: str, body: bytes, content_type: str, caller: Caller, *, tail: bool = False
    ) -> TelemetryBatch:
        message = decode_request(signal, body, content_type)
        convert = getattr(self.codec, signal)
        for _ in range(3):
            try:
                batch: TelemetryBatch = convert(message, caller, self._directory.cached)
                return batch
            except UnknownProjects as exc:
                await self._directory.resolve(exc.paths)
        raise Unavailable("could not resolve the projects named by the telemetry", retry_after=1)

    async def aclose(self) -> None:
        return None


class ProcessPoolTelemetryDecoder:
    """Decodes and encodes in ``processes`` spawned workers; returns ``TelemetryBatch.encoded`` chunks.

    Bodies waiting for a worker stay counted by the receiver's byte budget (it releases a
    body only once its decode returned), so the pool's queue is bounded with the rest.
    """

    def __init__(self, directory: ProjectDirectory, processes: int = 0) -> None:
        self._directory = directory
        self.processes = processes or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            _LIVE_POOLS[0] += 1
            self._pool = ProcessPoolExecutor(
                self.processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_die_with_parent,
                initargs=(os.getpid(),),
            )
        return self._pool

    async def start(self) -> None:
        """Spawn the workers now (their imports take a moment) instead of on the first request."""
        pool = self._executor()
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(pool, _warm) for _ in range(self.processes)))

    async def decode(
        self, signal: str, body: bytes, content_type: str, caller: Caller, *, tail: bool = False
    ) -> TelemetryBatch:
        loop = asyncio.get_running_loop()
        known: dict[str, uuid.UUID | None] = {}
        for _ in range(3):
            pool = self._executor()
            try:
                status, value = await loop.run_in_executor(
                    pool, decode_in_worker, signal, body, content_type, caller, known, tail
                )
            except BrokenProcessPool as exc:  # a worker died (killed, out of memory): start afresh
                if self._pool is pool:  # (other requests on the broken pool land here too)
                    self._pool = None
                    _LIVE_POOLS[0] -= 1
                    pool.shutdown(wait=False, cancel_futures=True)
                raise Unavailable("telemetry decoder restarted; retry", retry_after=1) from exc
            if status == "ok":
                batch: TelemetryBatch = value
                return batch
            if status == "invalid":
                raise InvalidInput(value, field="body")
            await self._directory.resolve(value)
            for path in value:
                found = self._directory.cached(path)
                known[path] = found if isinstance(found, uuid.UUID) else None
        raise Unavailable("could not resolve the projects named by the telemetry", retry_after=1)

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        await asyncio.get_running_loop().run_in_executor(None, functools.partial(pool.shutdown, cancel_futures=True))
        del pool
        gc.collect()  # the pool's semaphores unlink themselves now, before the tracker goes
        _LIVE_POOLS[0] -= 1
        if _LIVE_POOLS[0] > 0:
            return  # another pool of this process (another platform) still uses the shared tracker
        # Stopping the tracker waits for it to exit; never let that block the event loop or interpreter exit.
        stopper = threading.Thread(target=_stop_resource_tracker, name="resource-tracker-stop", daemon=True)
        stopper.start()
        for _ in range(50):
            if not stopper.is_alive():
                break
            await asyncio.sleep(0.1)


def _stop_resource_tracker() -> None:
    """The spawn context started a resource-tracker process; stop it too so that a server stopped
    cleanly leaves no child behind (it is started again if anything needs it)."""
    from multiprocessing import resource_tracker

    with contextlib.suppress(Exception):
        resource_tracker._resource_tracker._stop()  # type: ignore[attr-defined]


# pools alive in this process: the multiprocessing resource tracker is shared by all of them
_LIVE_POOLS = [0]

# ------------------------------------------------------------------------------ worker side
_worker: dict[str, Any] = {}


def _die_with_parent(parent: int) -> None:
    """Workers must not outlive a server killed with SIGKILL (they would hold its pipes and the
    multiprocessing resource tracker): ask Linux for SIGKILL when the parent dies."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)


def _warm() -> int:
    _state()
    return os.getpid()


def _state() -> dict[str, Any]:
    if not _worker:
        from corral.core.observe.rowids import RowIds

        ids = RowIds()
        _worker.update(ids=ids, codec=OtlpCodec(row_ids=ids), paths={})
    return _worker


def _last_records(req: Any, n: int) -> Any:
    """A logs request holding only the last ``n`` records of ``req`` (with their resources and scopes)."""
    groups = []
    for rl in reversed(req.resource_logs):
        for sl in reversed(rl.scope_logs):
            if n <= 0:
                break
            take = min(n, len(sl.log_records))
            groups.append((rl, sl, take))
            n -= take
    out = type(req)()
    for rl, sl, take in reversed(groups):
        resource_logs = out.resource_logs.add()
        resource_logs.resource.CopyFrom(rl.resource)
        scope_logs = resource_logs.scope_logs.add()
        scope_logs.scope.CopyFrom(sl.scope)
        scope_logs.log_records.extend(sl.log_records[len(sl.log_records) - take :])
    return out


def decode_in_worker(
    signal: str, body: bytes, content_type: str, caller: Caller, known: dict[str, uuid.UUID | None], tail: bool
) -> tuple[str, Any]:
    """("ok", TelemetryBatch with encoded rows) | ("invalid", reason) | ("unknown", paths)."""
    from corral.adapters.otlp.pgcopy import LOG_TYPES, POINT_TYPES, SPAN_TYPES, encode_rows

    state = _state()
    paths: dict[str, tuple[float, uuid.UUID | None]] = state["paths"]
    now = time.monotonic()
    for path, found in known.items():
        paths[path] = (now + _PATH_TTL, found)

    def lookup(path: str) -> object:
        hit = paths.get(path)
        return hit[1] if hit is not None and hit[0] >= now else _UNKNOWN

    raw = signal == "logs" and content_type != "application/json"
    try:
        if raw:  # record attributes stay KeyValue bytes (corral.adapters.otlp.rawattrs)
            from corral.adapters.otlp.rawattrs import parse_raw_logs

            message = parse_raw_logs(body)
        else:
            message = decode_request(signal, body, content_type)
    except InvalidInput as exc:
        return "invalid", exc.message
    try:
        if signal == "logs" and (raw or not tail):
            from corral.adapters.otlp.logcopy import encode_logs

            try:
                enc = encode_logs(message, caller, lookup, state["ids"], time.time_ns(), raw_attributes=raw)
                # a live tail gets rows for the last records only (the full parse is cheap; rows are not)
                last = _last_records(decode_request(signal, body, content_type), TAIL_ROWS) if tail else None
            except InvalidInput as exc:
                return "invalid", exc.message
            batch = TelemetryBatch(rejected=enc.rejected, error_message=enc.error_message)
            if enc.count:
                batch.encoded["logs"] = [enc.data]
                batch.encoded_records = enc.count
                batch.project_ids = enc.project_ids
                if last is not None:
                    batch.tail_logs = state["codec"].logs(last, caller, lookup).logs
            return "ok", batch
        rows: TelemetryBatch = getattr(state["codec"], signal)(message, caller, lookup)
    except UnknownProjects as exc:
        return "unknown", exc.paths
    batch = TelemetryBatch(series=rows.series, rejected=rows.rejected, error_message=rows.error_message)
    for name, table_rows, types, project_col in (
        ("logs", rows.logs, LOG_TYPES, 4),
        ("spans", rows.spans, SPAN_TYPES, 5),
        ("points", rows.points, POINT_TYPES, 3),
    ):
        if table_rows:
            batch.encoded[name] = [encode_rows(table_rows, types)]
            batch.encoded_records += len(table_rows)
            batch.project_ids.update(r[project_col] for r in table_rows)
    if tail:
        batch.tail_logs = rows.logs[-TAIL_ROWS:]
    return "ok", batch
