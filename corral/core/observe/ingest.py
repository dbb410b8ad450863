"""The ingest pipeline: a bounded queue in front of a batch writer.

Requests hand their decoded rows to ``submit`` and wait: the call returns
only after the batch holding those rows is committed, so an acknowledged
record survives a crash of this process. Concurrent requests are merged into
one batch per storage transaction (COPY is cheap per row, expensive per
statement). The queue is bounded by records, not requests, so memory stays
bounded: when it is full ``submit`` raises RateLimited at once (the OTLP
receiver answers 429 with Retry-After, and clients retry).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable

import attrs

from corral.core.errors import RateLimited, Unavailable
from corral.core.observe.envelope import UnknownProjects
from corral.core.observe.model import TelemetryBatch
from corral.core.observe.ports import ProjectDirectory, TelemetryWriter

__all__ = ["IngestPipeline", "IngestStats"]

log = logging.getLogger(__name__)


@attrs.define
class IngestStats:
    accepted_records: int = 0
    committed_records: int = 0
    committed_batches: int = 0
    refused_records: int = 0
    failed_batches: int = 0


@attrs.define(eq=False)
class IngestPipeline:
    """Bounded queue + ``writers`` concurrent batch writers.

    ``max_queued_records`` bounds memory; ``batch_records`` is the target size
    of one storage transaction (a request larger than that is written alone).
    ``on_committed`` (optional) sees every committed batch, e.g. to publish a
    live tail; its failures are logged, never returned to the client.
    """

    writer: TelemetryWriter
    max_queued_records: int = 100_000
    batch_records: int = 20_000
    writers: int = 2
    retry_after_seconds: int = 1
    on_committed: Callable[[TelemetryBatch], Awaitable[None]] | None = None
    stats: IngestStats = attrs.Factory(IngestStats)
    _queue: collections.deque[tuple[TelemetryBatch, asyncio.Future[None]]] = attrs.Factory(collections.deque)
    _queued: int = 0
    _wakeup: asyncio.Event | None = None
    _tasks: list[asyncio.Task[None]] = attrs.Factory(list)
    _closing: bool = False

    @property
    def queued_records(self) -> int:
        return self._queued

    @property
    def full(self) -> bool:
        """True when a new request would be refused anyway (lets receivers refuse before decoding)."""
        return self._queued >= self.max_queued_records

    async def start(self) -> None:
        """Start the writer tasks (idempotent)."""
        if self._tasks:
            return
        self._closing = False
        self._wakeup = asyncio.Event()
        self._tasks = [asyncio.create_task(self._run(), name=f"ingest-writer-{i}") for i in range(self.writers)]

    async def stop(self) -> None:
        """Stop accepting, write everything already queued, then stop the writers."""
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
        tasks, self._tasks = self._tasks, []
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        while self._queue:  # writers died: never leave a client hanging
            _, fut = self._queue.popleft()
            if not fut.done():
                fut.set_exception(Unavailable("telemetry ingest is shutting down", retry_after=1))
        self._queued = 0

    async def submit(self, batch: TelemetryBatch) -> None:
        """Queue ``batch`` and wait until it is committed.

        Raises RateLimited (queue full), Unavailable (shutting down, or the
        storage failed: nothing of the batch may be assumed written).
        """
        size = len(batch)
        if size == 0 and not batch.series:
            return
        if self._closing or not self._tasks or self._wakeup is None:
            raise Unavailable("telemetry ingest is not running", retry_after=self.retry_after_seconds)
        if self._queued and self._queued + size > self.max_queued_records:
            self.stats.refused_records += size
            raise RateLimited(
                f"telemetry ingest queue is full ({self._queued} records waiting); retry later",
                retry_after=self.retry_after_seconds,
            )
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((batch, fut))
        self._queued += size
        self.stats.accepted_records += size
        self._wakeup.set()
        await asyncio.shield(fut)  # a client that goes away does not cancel the write

    async def ingest(
        self,
        convert: Callable[[Callable[[str], object]], TelemetryBatch],
        directory: ProjectDirectory,
    ) -> TelemetryBatch:
        """``decode`` then ``submit``; returns the batch once committed."""
        batch = await self.decode(convert, directory)
        await self.submit(batch)
        return batch

    async def decode(
        self,
        convert: Callable[[Callable[[str], object]], TelemetryBatch],
        directory: ProjectDirectory,
    ) -> TelemetryBatch:
        """Run ``convert(lookup)``, re-running it after resolving the ``owner/name`` paths it
        did not know yet (the first request naming a project pays one lookup)."""
        for _ in range(3):
            try:
                batch = convert(directory.cached)
                break
            except UnknownProjects as exc:
                await directory.resolve(exc.paths)
        else:  # pragma: no cover - resolve() always fills the cache
            raise Unavailable("could not resolve the projects named by the telemetry", retry_after=1)
        return batch

    def _take(self) -> tuple[TelemetryBatch, list[asyncio.Future[None]], int]:
        merged: TelemetryBatch | None = None
        futures: list[asyncio.Future[None]] = []
        count = 0
        while self._queue:
            batch, fut = self._queue[0]
            if merged is not None and count + len(batch) > self.batch_records:
                break
            self._queue.popleft()
            if merged is None:
                merged = batch
            else:
                if len(futures) == 1:  # copy before mutating: the first batch belongs to a caller
                    merged = merged.copy()
                merged.extend(batch)
            futures.append(fut)
            count += len(batch)
        return merged or TelemetryBatch(), futures, count

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch, futures, count = self._take()
            if len(self._queue) > 0:
                self._wakeup.set()  # let another writer take the rest
            try:
                await self.writer.write(batch)
            except Exception as exc:
                self.stats.failed_batches += 1
                log.warning("telemetry batch of %d records failed: %s", count, exc)
                err = (
                    exc
                    if isinstance(exc, Unavailable)
                    else Unavailable("telemetry storage failed; retry later", retry_after=self.retry_after_seconds)
                )
                for fut in futures:
                    if not fut.done():
                        fut.set_exception(err)
            else:
                self.stats.committed_records += count
                self.stats.committed_batches += 1
                for fut in futures:
                    if not fut.done():
                        fut.set_result(None)
                if self.on_committed is not None:
                    with contextlib.suppress(Exception):
                        await self.on_committed(batch)
            finally:
                self._queued -= count
