"""ConnectionMemo: what one git operation's requests share, on their own connection only, for a moment, and
only while the connection carries git requests."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from corral.entrypoints.web.git_sequence import ConnectionMemo


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _server(memo: ConnectionMemo) -> TestServer:
    async def handler(request: web.Request) -> web.Response:
        if "put" in request.query:
            memo.put(request, "k", request.query["put"])
        return web.Response(text=str(memo.get(request, "k")))

    app = web.Application(middlewares=[memo.middleware()])
    app.router.add_get("/{owner}/{name}/info/refs", handler)
    app.router.add_post("/{owner}/{name}/git-receive-pack", handler)
    app.router.add_post("/{owner}/{name}/git-upload-pack", handler)
    app.router.add_get("/api/v1/projects/{owner}/{name}", handler)
    server = TestServer(app)
    await server.start_server()
    return server


async def _text(session: aiohttp.ClientSession, method: str, url: str) -> str:
    async with session.request(method, url) as r:
        return await r.text()


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))  # one keep-alive connection


async def test_git_requests_on_one_connection_share_what_was_kept() -> None:
    clock = Clock()
    memo = ConnectionMemo(ttl=2.0, clock=clock)
    server = await _server(memo)
    base = str(server.make_url("/a/b.git"))
    try:
        async with _session() as one, _session() as other:
            assert await _text(one, "GET", f"{base}/info/refs?put=v1") == "v1"
            assert await _text(one, "POST", f"{base}/git-receive-pack") == "v1"
            assert await _text(one, "POST", f"{base}/git-upload-pack") == "v1"
            assert await _text(other, "POST", f"{base}/git-receive-pack") == "None"  # another connection
            clock.now += 2.0
            assert await _text(one, "POST", f"{base}/git-receive-pack") == "None"  # expired
    finally:
        await server.close()


async def test_a_request_that_is_not_git_makes_the_connection_forget() -> None:
    memo = ConnectionMemo(clock=Clock())
    server = await _server(memo)
    try:
        async with _session() as one:
            assert await _text(one, "GET", str(server.make_url("/a/b.git/info/refs?put=v1"))) == "v1"
            # an API call (it might archive the project, change a protection) on the same connection
            assert await _text(one, "GET", str(server.make_url("/api/v1/projects/a/b?put=x"))) == "None"
            assert await _text(one, "POST", str(server.make_url("/a/b.git/git-receive-pack"))) == "None"
    finally:
        await server.close()
