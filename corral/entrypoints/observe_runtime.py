"""What the OTLP receiver, the query routes and the observe loops share (wired by corral.entrypoints.observe_wiring).

Its own module so that the receiver and the routes need not import the wiring (which starts the OTLP listener,
which mounts them): no import cycle.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import attrs

from corral.adapters.otlp.codec import OtlpCodec
from corral.core.clock import Clock
from corral.core.observe.alerts import Actor, AlertEvaluator, AlertService
from corral.core.observe.compaction import ColdCompaction, prune_cache
from corral.core.observe.ingest import IngestPipeline
from corral.core.observe.ports import (
    AlertStore,
    ColdCache,
    LeaderLock,
    LiveTail,
    ProjectDirectory,
    RecentRequests,
    TelemetryDecoder,
)
from corral.core.observe.query import ObserveQueries
from corral.core.observe.rotation import ColdRotation, forced_rotation_entry
from corral.core.uow import UnitOfWorkFactory
from corral.entrypoints.config import Settings

__all__ = ["ObserveRuntime"]

log = logging.getLogger("corral.observe")


@attrs.define
class ObserveRuntime:
    """What the OTLP receiver, the query routes and the loops share."""

    settings: Settings
    pipeline: IngestPipeline
    codec: OtlpCodec
    decoder: TelemetryDecoder
    directory: ProjectDirectory
    queries: ObserveQueries
    alerts: AlertService
    alert_store: AlertStore
    evaluator: AlertEvaluator
    rotation: ColdRotation
    tail: LiveTail
    leader: LeaderLock
    clock: Clock
    recent: RecentRequests | None = None  # fingerprints of stored OTLP requests (retry dedupe)
    ensure_partitions: Any = None  # async (today) -> int, PostgreSQL only
    body_budget: Any = None  # the OTLP receiver's bound on request bytes in memory (corral.entrypoints.otlp)
    compaction: ColdCompaction | None = None  # run after each rotation pass
    cold_cache: ColdCache | None = None  # this replica's local copies of cold files
    audit_log: UnitOfWorkFactory | None = None  # where forced rotations are audited

    async def rotate(self, older_than: timedelta | None = None) -> Any:
        """One rotation pass as the leader (skipped, returning None, when another replica leads),
        then compaction; every replica then drops its cached copies of deleted cold files."""
        try:
            return await self._rotate(older_than)
        finally:
            manifest = self.queries.cold_manifest
            if self.cold_cache is not None and manifest is not None:
                try:
                    await prune_cache(self.cold_cache, manifest)
                except Exception:
                    log.exception("cold tier cache pruning failed; retrying next period")

    async def force_rotation(self, actor: Actor, older_than: timedelta | None = None) -> Any:
        """``rotate`` asked for by an operator: a pass that ran is audited (None: another replica rotates)."""
        report = await self.rotate(older_than)
        if report is not None and self.audit_log is not None:
            async with self.audit_log() as uow:
                await uow.audit.record(forced_rotation_entry(actor, report, older_than, self.clock.now()))
                await uow.commit()
        return report

    async def _rotate(self, older_than: timedelta | None) -> Any:
        async with self.leader.lead("observe-rotation") as leading:
            if not leading:
                return None
            if self.ensure_partitions is not None:
                await self.ensure_partitions(self.clock.now().date())
            report = await self.rotation.run_once(older_than=older_than)
            if self.compaction is not None:
                report.compaction = await self.compaction.run_once(self.rotation.complete_days(self.clock.now()))
            return report

    async def evaluate_alerts(self) -> int:
        async with self.leader.lead("observe-alerts") as leading:
            if not leading:
                return 0
            return len(await self.evaluator.evaluate_all())
