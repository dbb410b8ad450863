"""Wiring of the observability domain: stores per profile, the ingest pipeline, queries, the
cold-tier rotation and alert loops (each behind a leader lock), live tail, self-telemetry and
the dedicated OTLP listener."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from corral.adapters.otlp.codec import OtlpCodec
from corral.adapters.otlp.decoders import InProcessTelemetryDecoder, ProcessPoolTelemetryDecoder
from corral.core.observe.alerts import AlertEvaluator, AlertService
from corral.core.observe.compaction import ColdCompaction
from corral.core.observe.ingest import IngestPipeline
from corral.core.observe.model import LOG_COLUMNS, TelemetryBatch
from corral.core.observe.query import ObserveQueries
from corral.core.observe.rotation import ColdRotation
from corral.core.uow import UnitOfWorkFactory
from corral.entrypoints.config import Settings
from corral.entrypoints.observe_runtime import ObserveRuntime
from corral.entrypoints.outages import LoopErrors
from corral.entrypoints.platform import Platform

__all__ = ["ObserveRuntime", "wire_observe"]

log = logging.getLogger("corral.observe")
TAIL_ITEMS_PER_BATCH = 500


def _tail_items(batch: TelemetryBatch) -> list[dict[str, Any]]:
    items = []
    for row in (batch.logs or batch.tail_logs)[-TAIL_ITEMS_PER_BATCH:]:
        r = dict(zip(LOG_COLUMNS, row, strict=True))
        items.append(
            {
                "timestamp": r["ts"].isoformat(),
                "level": r["level"],
                "message": r["message"],
                "service": r["service"],
                "trace_id": r["trace_id"],
                "span_id": r["span_id"],
                "session_id": r["session_id"],
                "project_id": str(r["project_id"]) if r["project_id"] else None,
                "attributes": json.loads(r["attributes"]),
            }
        )
    return items


async def wire_observe(platform: Platform) -> None:
    settings = platform.settings
    clock = platform.clock
    if settings.profile == "memory":
        parts = _memory_parts(platform)
    else:
        parts = await _service_parts(platform, settings)
    hot, archive, cold, directory, alert_store, tail, leader, ensure, recent, compaction_manifest = parts
    pipeline = IngestPipeline(
        writer=hot,
        max_queued_records=settings.otlp_queue_records,
        batch_records=settings.otlp_batch_records,
        writers=settings.otlp_writers,
    )

    async def publish(batch: TelemetryBatch) -> None:
        if (batch.logs or batch.tail_logs) and await tail.listening():
            await tail.publish(_tail_items(batch))

    pipeline.on_committed = publish
    await pipeline.start()
    platform.closers.append(pipeline.stop)
    codec = OtlpCodec()
    decoder: Any = InProcessTelemetryDecoder(directory, codec)
    if settings.profile != "memory" and settings.otlp_decode_processes != 0:
        pool_decoder = ProcessPoolTelemetryDecoder(directory, max(settings.otlp_decode_processes, 0))
        await pool_decoder.start()
        decoder = pool_decoder
    platform.closers.append(decoder.aclose)
    queries = ObserveQueries(hot=hot, clock=clock, cold_manifest=archive, cold_reader=cold)
    rotation = ColdRotation(
        hot=archive,
        manifest=archive,
        writer=cold,
        clock=clock,
        hot_retention={
            "logs": timedelta(hours=settings.observe_hot_hours),
            "spans": timedelta(hours=settings.observe_hot_hours),
            "points": timedelta(minutes=settings.observe_hot_metric_minutes),
        },
        cold_retention=timedelta(days=settings.observe_cold_days),
    )
    compaction = ColdCompaction(
        manifest=compaction_manifest,
        merger=cold,
        writer=cold,
        clock=clock,
        min_files=settings.cold_compact_min_files,
        target_rows=settings.cold_compact_target_rows,
        max_groups=settings.cold_compact_groups_per_pass,
        retired_grace=rotation.orphan_grace,
    )
    runtime = ObserveRuntime(
        settings=settings,
        pipeline=pipeline,
        codec=codec,
        decoder=decoder,
        directory=directory,
        queries=queries,
        alerts=AlertService(store=alert_store, clock=clock),
        alert_store=alert_store,
        evaluator=AlertEvaluator(store=alert_store, queries=queries, clock=clock),
        rotation=rotation,
        tail=tail,
        leader=leader,
        clock=clock,
        ensure_partitions=ensure,
        recent=recent,
        compaction=compaction,
        cold_cache=cold,
        audit_log=_units_of_work(platform),
    )
    platform.register(ObserveRuntime, runtime)

    if settings.observe_self:
        from corral.entrypoints.observe_self import SelfTelemetry

        self_telemetry = SelfTelemetry(pipeline)
        self_telemetry.install()
        platform.register(SelfTelemetry, self_telemetry)  # background loops (the deployer) send their spans here
        platform.closers.append(self_telemetry.aclose)

    rotation_errors, alert_errors = LoopErrors("cold-tier rotation"), LoopErrors("alert evaluation")

    async def rotation_loop() -> None:
        while True:
            try:
                await runtime.rotate()
            except Exception as exc:  # retried next period (an upload that failed is retried then)
                rotation_errors.failed(exc)
            else:
                rotation_errors.succeeded()
            await asyncio.sleep(settings.observe_rotation_seconds)

    async def alert_loop() -> None:
        while True:
            await asyncio.sleep(settings.observe_alert_seconds)
            try:
                await runtime.evaluate_alerts()
            except Exception as exc:
                alert_errors.failed(exc)
            else:
                alert_errors.succeeded()

    platform.background.extend([rotation_loop, alert_loop])
    if settings.otlp_port is not None:
        from corral.entrypoints.otlp_listener import serve_otlp_listener

        async def otlp_listener() -> None:
            await serve_otlp_listener(platform, settings.host, settings.otlp_port or 0)

        platform.background.append(otlp_listener)


def _memory_parts(platform: Platform) -> tuple[Any, ...]:
    from corral.fakes.observe import (
        InMemoryAlertStore,
        InMemoryColdTier,
        InMemoryLeaderLock,
        InMemoryLiveTail,
        InMemoryProjectDirectory,
        InMemoryRecentRequests,
        InMemoryTelemetryStore,
    )
    from corral.fakes.observe_compaction import InMemoryColdCompactionManifest

    hot = InMemoryTelemetryStore()
    return (
        hot,
        hot,
        InMemoryColdTier(),
        InMemoryProjectDirectory(),
        InMemoryAlertStore(audit_log=_units_of_work(platform)),  # its audit rows in the one audit log
        InMemoryLiveTail(),
        InMemoryLeaderLock(),
        None,
        InMemoryRecentRequests(),
        InMemoryColdCompactionManifest(hot),
    )


async def _service_parts(platform: Platform, settings: Settings) -> tuple[Any, ...]:
    from corral.adapters.coldtier import ParquetColdTier
    from corral.adapters.postgres.observe import (
        PostgresAlertStore,
        PostgresColdCompactionManifest,
        PostgresHotArchive,
        PostgresLeaderLock,
        PostgresProjectDirectory,
        PostgresTelemetryStore,
        create_telemetry_pool,
    )
    from corral.adapters.valkey_recent import ValkeyRecentRequests
    from corral.adapters.valkey_tail import ValkeyLiveTail
    dsn = platform.database_url
    valkey = platform.valkey
    assert dsn is not None and valkey is not None, "the service profile has PostgreSQL and Valkey"
    pool = await create_telemetry_pool(dsn, min_size=1, max_size=settings.otlp_writers + 4)
    platform.closers.append(pool.close)
    hot = PostgresTelemetryStore(pool)
    await hot.ensure_partitions(datetime.now(UTC).date())
    executor = ThreadPoolExecutor(max_workers=max(settings.worker_threads, 2), thread_name_prefix="observe")

    async def shutdown_executor() -> None:
        with contextlib.suppress(Exception):
            executor.shutdown(wait=False, cancel_futures=True)

    platform.closers.append(shutdown_executor)
    cold = ParquetColdTier(platform.objects, settings.data_dir / "cache" / "cold", executor)
    archive = PostgresHotArchive(pool, executor)
    return (
        hot,
        archive,
        cold,
        PostgresProjectDirectory(pool),
        PostgresAlertStore(pool),
        ValkeyLiveTail(valkey),
        PostgresLeaderLock(dsn),
        hot.ensure_partitions,
        ValkeyRecentRequests(valkey),
        PostgresColdCompactionManifest(pool),
    )


def _units_of_work(platform: Platform) -> UnitOfWorkFactory | None:
    """The platform's units of work, where observe's own writes are audited; None when observe runs alone (the
    OTLP test harness wires nothing else), and then forced rotations and memory-profile alert rules are not audited."""
    return getattr(platform, "uow_factory", None)
