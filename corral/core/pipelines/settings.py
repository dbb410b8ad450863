"""The engine's settings (from CORRAL_PIPELINE_* and the replica's identity)."""

from __future__ import annotations

import attrs

__all__ = ["EngineSettings"]


@attrs.frozen(kw_only=True)
class EngineSettings:
    owner: str  # this replica's lease owner id
    base_url: str = ""
    max_running_steps: int = 4
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 2.0
    poll_seconds: float = 0.5
    workflow_timeout_seconds: float = 3600.0
    stop_grace_seconds: float = 5.0
    local_executor: bool = True  # steps run on the host: images are not used (said once per step log)
    keep_failed_workspaces: bool = True  # a restart from a failed step reuses the workspace
