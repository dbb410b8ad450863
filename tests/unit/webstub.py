"""The smallest platform ``create_app`` accepts, for web-layer unit tests: register what a test needs in
``container`` (punq) and install hooks in ``app_hooks``."""

from __future__ import annotations

import attrs
import punq

from corral.entrypoints.config import Settings


@attrs.define
class StubPlatform:
    settings: Settings = attrs.field(factory=lambda: Settings(profile="memory"))
    container: punq.Container = attrs.field(factory=punq.Container)
    health_checks: dict = attrs.field(factory=dict)
    liveness_checks: dict = attrs.field(factory=dict)
    app_hooks: list = attrs.field(factory=list)

    def resolve(self, key: object) -> object:
        return self.container.resolve(key)
