"""Outbox events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import attrs

__all__ = ["OutboxEvent"]


@attrs.frozen
class OutboxEvent:
    """Something that happened and that other parts must react to (push, mr_merged, build_failed, ...)."""

    id: uuid.UUID
    topic: str
    payload: dict[str, Any]
    created_at: datetime
    project_id: uuid.UUID | None = None
    processed_at: datetime | None = None
