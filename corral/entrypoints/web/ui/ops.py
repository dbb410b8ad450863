"""Operations pages: pipelines, deployments, logs, traces and the audit log (filled in below)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from corral.core.projects.model import Project

__all__ = ["deployment_health", "firing_alerts", "running_pipelines"]


async def running_pipelines(request: web.Request, projects: list[Project]) -> list[Any]:
    return []


async def deployment_health(request: web.Request, projects: list[Project]) -> list[Any]:
    return []


async def firing_alerts(request: web.Request) -> list[Any]:
    return []
