"""Typed commands of the alert-rule use cases (see ``corral.core.commands``)."""

from __future__ import annotations

import uuid
from typing import Literal

import attrs

from corral.core.commands import UNSET, Unset
from corral.core.observe.model import AlertCondition, AlertSeverity

__all__ = ["AlertRuleChanges", "Channel", "NewAlertRule"]

Channel = Literal["in_app", "email", "webhook"]


def _doc(text: str) -> dict[str, object]:
    return {"doc": text}


_QUERY_DOC = "metric:name{k=v} agg window | logs: level=error service=api window=5m"


@attrs.frozen(kw_only=True)
class NewAlertRule:
    """Create an alert rule (the web edge resolves the rule's project; None: platform-wide)."""

    name: str
    query: str = attrs.field(metadata=_doc(_QUERY_DOC))
    condition: AlertCondition
    threshold: float | None = attrs.field(default=None, metadata=_doc("required unless the condition is absent"))
    for_seconds: int = attrs.field(default=60, metadata=_doc("0-86400: how long the condition holds before firing"))
    severity: AlertSeverity = AlertSeverity.WARNING
    notify_channels: tuple[Channel, ...] = ("in_app",)
    enabled: bool = True
    description: str | None = None
    project_id: uuid.UUID | None = None


@attrs.frozen(kw_only=True)
class AlertRuleChanges:
    """Change an alert rule: only the fields sent change; description and threshold may be set to null."""

    name: str | Unset = UNSET
    description: str | Unset | None = UNSET
    query: str | Unset = attrs.field(default=UNSET, metadata=_doc(_QUERY_DOC))
    condition: AlertCondition | Unset = UNSET
    threshold: float | Unset | None = attrs.field(default=UNSET,
                                                  metadata=_doc("null only when the condition is absent"))
    for_seconds: int | Unset = attrs.field(default=UNSET, metadata=_doc("0-86400"))
    severity: AlertSeverity | Unset = UNSET
    notify_channels: tuple[Channel, ...] | Unset = UNSET
    enabled: bool | Unset = UNSET
