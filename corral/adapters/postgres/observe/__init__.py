"""PostgreSQL adapters of the observability domain (hot tier, cold manifest, alerts, leader lock).

They use their own asyncpg pool without the JSON codecs of the shared pool: rows
arrive from the receiver with attributes already serialised, and JSONB is read
back as text and parsed once here.
"""

from corral.adapters.postgres.observe.alerts import PostgresAlertStore, alert_outbox_payload
from corral.adapters.postgres.observe.archive import PostgresHotArchive
from corral.adapters.postgres.observe.compaction import PostgresColdCompactionManifest
from corral.adapters.postgres.observe.leader import PostgresLeaderLock
from corral.adapters.postgres.observe.projects import PostgresProjectDirectory
from corral.adapters.postgres.observe.telemetry import PostgresTelemetryStore, create_telemetry_pool

__all__ = [
    "PostgresAlertStore",
    "PostgresColdCompactionManifest",
    "PostgresHotArchive",
    "PostgresLeaderLock",
    "PostgresProjectDirectory",
    "PostgresTelemetryStore",
    "alert_outbox_payload",
    "create_telemetry_pool",
]
