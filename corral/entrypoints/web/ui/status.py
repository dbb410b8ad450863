"""The system status page of the administration (admin:settings, as /readyz's details): the master key's id
(a non-secret fingerprint, never key material), the previous keys still in the ring and the rotation state
(how many data keys are still wrapped under them), each dependency's health (PostgreSQL, Valkey, object store)
with the reason when it fails, the liveness checks, the version and the uptime."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import attrs
from aiohttp import web

from corral import __version__
from corral.core.errors import CorralError
from corral.core.secrets.rotation import MasterKeyRotation
from corral.entrypoints.web.keys import PLATFORM
from corral.entrypoints.web.routes.system import DETAILS_PERMISSION, READY_TIMEOUT
from corral.entrypoints.web.ui.pages import Crumb, page
from corral.entrypoints.web.ui.table import page as page_route

__all__ = ["Check", "KeyStatus", "uptime_text"]

_STARTED = time.monotonic()  # this module is imported when the web app is built: the process's start, near enough


@attrs.frozen
class Check:
    name: str
    ok: bool
    detail: str


@attrs.frozen
class KeyStatus:
    current: str
    previous: list[str]
    remaining: dict[str, int]
    error: str | None = None


def uptime_text(seconds: float) -> str:
    """``3 d 4 h``, ``2 h 5 min``, ``4 min 10 s``."""
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {s} s"


async def _health(checks: dict[str, Any]) -> list[Check]:
    async def run(name: str) -> Check:
        try:
            await asyncio.wait_for(checks[name](), READY_TIMEOUT)
        except TimeoutError:
            return Check(name, False, f"no answer within {READY_TIMEOUT:g} s")
        except Exception as exc:  # any failure is shown by name, as /readyz does for administrators
            return Check(name, False, str(exc) or type(exc).__name__)
        return Check(name, True, "answers")

    return list(await asyncio.gather(*(run(n) for n in sorted(checks))))


async def _keys(request: web.Request) -> KeyStatus | None:
    rotation: MasterKeyRotation | None = request.app[PLATFORM].resolve_optional(MasterKeyRotation)
    if rotation is None:
        return None
    ring = rotation.envelope.keys
    current = ring.current_key_id
    previous = sorted(k for k in getattr(ring, "key_ids", frozenset()) if k != current)
    try:
        report = await asyncio.wait_for(rotation.status(), READY_TIMEOUT * 2)
    except (CorralError, TimeoutError) as exc:
        return KeyStatus(current, previous, {}, error=str(exc) or type(exc).__name__)
    return KeyStatus(report.current_key_id, previous, dict(sorted(report.remaining.items())))


@page_route("/ui/admin/system", summary="Master-key and system status: key id and rotation, dependency health, "
            "version, uptime", permission=DETAILS_PERMISSION)
async def system(request: web.Request) -> web.StreamResponse:
    platform = request.app[PLATFORM]
    health, keys = await asyncio.gather(_health(dict(platform.health_checks)), _keys(request))
    liveness = [Check(name, (reason := check()) is None, reason or "ok")
                for name, check in sorted(getattr(platform, "liveness_checks", {}).items())]
    settings = platform.settings
    return await page(request, "admin_system.html", title="System status",
                      crumbs=[Crumb("Administration", "/ui/admin/users"), Crumb("System")], health=health,
                      liveness=liveness, keys=keys, version=__version__, profile=settings.profile,
                      uptime=uptime_text(time.monotonic() - _STARTED), ready=all(c.ok for c in health))
