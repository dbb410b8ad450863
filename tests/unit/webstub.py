"""The smallest platform ``create_app`` accepts, for web-layer unit tests: register what a test needs in
``container`` (punq) and install hooks in ``app_hooks``. ``HeaderAuth`` is a ``WebAuth`` that takes the caller
and its permissions from request headers."""

from __future__ import annotations

import uuid

import attrs
import punq

from corral.core.errors import PermissionDenied, Unauthenticated
from corral.entrypoints.config import Settings


@attrs.define
class StubPlatform:
    settings: Settings = attrs.field(factory=lambda: Settings(profile="memory"))
    container: punq.Container = attrs.field(factory=punq.Container)
    health_checks: dict = attrs.field(factory=dict)
    liveness_checks: dict = attrs.field(factory=dict)
    app_hooks: list = attrs.field(factory=list)
    transient_errors: tuple = ()

    def register(self, key: object, instance: object) -> None:
        self.container.register(key, instance=instance)

    def resolve(self, key: object) -> object:
        return self.container.resolve(key)

    def resolve_optional(self, key: object) -> object:
        from corral.entrypoints.platform import resolve_optional

        return resolve_optional(self.container, key)


@attrs.frozen
class Caller:
    user_id: uuid.UUID
    name: str
    perms: frozenset[str]


class HeaderAuth:
    """X-User: name; X-Perms: comma-separated permissions held everywhere."""

    async def authenticate(self, request):
        name = request.headers.get("X-User")
        if not name:
            return None
        perms = frozenset(p for p in request.headers.get("X-Perms", "").split(",") if p)
        return Caller(uuid.uuid5(uuid.NAMESPACE_DNS, name), name, perms)

    async def authorize(self, request, principal, permission, project_id):
        if principal is None:
            raise Unauthenticated("authentication required")
        if permission not in principal.perms:
            raise PermissionDenied(f"lacks {permission}")
