"""Every route table the application mounts. A domain adds its table here."""

from __future__ import annotations

from corral.entrypoints import otlp
from corral.entrypoints.mcp import protocol as mcp
from corral.entrypoints.web.routes import (
    agents,
    auth,
    deploy,
    git_http,
    identity,
    issues,
    labels,
    lfs,
    notifications,
    objects,
    observe,
    pipeline_schedules,
    pipelines,
    projects,
    releases,
    repo,
    repo_writes,
    secrets,
    system,
    ui,
)
from corral.entrypoints.web.routing import RouteTable

ROUTE_TABLES: list[RouteTable] = [
    system.routes,
    objects.routes,
    ui.routes,
    secrets.routes,
    notifications.routes,
    auth.routes,
    identity.routes,
    observe.routes,
    otlp.routes,
    projects.routes,
    repo.routes,
    repo_writes.routes,
    issues.routes,
    labels.routes,
    releases.routes,
    pipelines.routes,
    agents.routes,
    pipeline_schedules.routes,
    deploy.routes,
    lfs.routes,
    git_http.routes,
    mcp.routes,
]
