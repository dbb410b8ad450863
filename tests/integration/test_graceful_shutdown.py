"""SIGTERM: stop accepting, finish the request in flight, close the platform, exit cleanly."""

from __future__ import annotations

import asyncio
import os
import signal

import aiohttp
from aiohttp import web

from corral.entrypoints.cli import serve
from corral.entrypoints.config import Settings
from corral.entrypoints.web.routes import ROUTE_TABLES
from corral.entrypoints.web.routing import RouteTable
from tests.helpers import wait_until


async def test_sigterm_finishes_in_flight_requests(tmp_path) -> None:
    slow = RouteTable(tag="test")
    started = asyncio.Event()

    @slow.get("/_test/slow", summary="takes a while", public=True)
    async def slow_handler(_request: web.Request) -> web.StreamResponse:
        started.set()
        await asyncio.sleep(1.0)
        return web.json_response({"finished": True})

    ROUTE_TABLES.append(slow)
    ports: list[int] = []
    try:
        settings = Settings(profile="memory", port=0, data_dir=tmp_path, shutdown_timeout=10)
        server = asyncio.create_task(serve(settings, ready=ports.append))
        await wait_until(lambda: ports or server.done(), timeout=60, what="the server to listen")
        if server.done():
            server.result()  # it failed to start: raise its error
        base = f"http://127.0.0.1:{ports[0]}"
        async with aiohttp.ClientSession() as http:
            in_flight = asyncio.create_task(http.get(base + "/_test/slow"))
            await asyncio.wait_for(started.wait(), 30)
            os.kill(os.getpid(), signal.SIGTERM)  # serve() handles it: graceful shutdown begins now
            resp = await asyncio.wait_for(in_flight, 30)
            assert resp.status == 200
            assert await resp.json() == {"finished": True}
            await asyncio.wait_for(server, 15)
            # the listener is gone: new connections are refused
            try:
                await http.get(base + "/healthz")
            except aiohttp.ClientConnectionError:
                pass
            else:
                raise AssertionError("server still accepts connections after SIGTERM")
    finally:
        ROUTE_TABLES.remove(slow)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
