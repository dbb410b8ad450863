"""Every route table the application mounts. A domain adds its table here."""

from __future__ import annotations

from corral.entrypoints import otlp
from corral.entrypoints.web.routes import auth, identity, notifications, observe, secrets, system, ui
from corral.entrypoints.web.routing import RouteTable

ROUTE_TABLES: list[RouteTable] = [
    system.routes,
    ui.routes,
    secrets.routes,
    notifications.routes,
    auth.routes,
    identity.routes,
    observe.routes,
    otlp.routes,
]
