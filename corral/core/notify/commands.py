"""Typed commands of the notification use cases (see ``corral.core.commands``)."""

from __future__ import annotations

import attrs

from corral.core.notify.model import Channel, EventType

__all__ = ["PreferencesUpdate"]


@attrs.frozen(kw_only=True)
class PreferencesUpdate:
    """Replace the caller's notification preferences."""

    events: dict[EventType, list[Channel]] = attrs.field(factory=dict, metadata={
        "doc": "event type -> channels (an event not listed: in_app and email)"})
    webhook_url: str | None = attrs.field(default=None, metadata={
        "doc": "where webhook notifications are POSTed (http or https)"})
