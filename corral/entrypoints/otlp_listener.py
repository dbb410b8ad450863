"""The dedicated OTLP/HTTP listener (``CORRAL_OTLP_PORT``): only the OTLP routes, on their own port.

Apart from corral.entrypoints.otlp (the routes, mounted by the main application too) so that the routes do not
import the web application that mounts them: no import cycle.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from corral.entrypoints.otlp import routes
from corral.entrypoints.web.app import MAX_REQUEST_BYTES, web_auth_and_lookup
from corral.entrypoints.web.forwarded import TRUSTED_PROXIES, TrustedProxies
from corral.entrypoints.web.keys import PLATFORM, PROJECT_LOOKUP, WEB_AUTH
from corral.entrypoints.web.middleware import context_middleware, error_middleware, security_middleware

__all__ = ["serve_otlp_listener"]


async def serve_otlp_listener(platform: Any, host: str, port: int) -> None:
    """Serve only the OTLP routes on their own port until cancelled."""
    app = web.Application(
        middlewares=[context_middleware, error_middleware, security_middleware], client_max_size=MAX_REQUEST_BYTES
    )
    app[PLATFORM] = platform
    app[WEB_AUTH], app[PROJECT_LOOKUP] = web_auth_and_lookup(platform.container)
    app[TRUSTED_PROXIES] = TrustedProxies.parse(platform.settings.trusted_proxies)
    routes.mount(app)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
