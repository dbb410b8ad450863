"""What the requests of one git operation on one connection share for a moment.

A push is three requests on one keep-alive connection within milliseconds (discovery, the probe before a
chunked body, the pack); a fetch is two or more. Each would read the project of the path again, and the push
its branch protections, while git's pack is already on its way and waits for the server to start
``receive-pack``. ``ConnectionMemo`` keeps such reads for the next git requests of the same connection only:
for ``ttl`` seconds (default 2), never across connections, and only as long as the connection carries git
smart HTTP requests (any other request on it forgets everything, so an API call that changes the project is
seen by the git request after it). Authentication and the permission decision still run on every request;
what a memo can miss is a change made on another connection during those seconds, the same window there is
anyway between a push's checks and its pack.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any

from aiohttp import web

__all__ = ["ConnectionMemo", "is_git_request"]

_GIT_ROUTES = frozenset({"/{owner}/{name}/info/refs", "/{owner}/{name}/git-upload-pack",
                         "/{owner}/{name}/git-receive-pack"})
_MAX_ENTRIES = 16  # per connection


def is_git_request(request: web.Request) -> bool:
    """A git smart HTTP request (discovery or one of the pack programs), by the route it matched."""
    try:
        return request.match_info.route.resource.canonical in _GIT_ROUTES  # type: ignore[union-attr]
    except AttributeError:  # no route (an unmatched request) or one without a resource
        return False


class ConnectionMemo:
    """Values kept per client connection for the git requests that follow on it (see the module doc)."""

    def __init__(self, ttl: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._by_connection: weakref.WeakKeyDictionary[Any, dict[Hashable, tuple[float, Any]]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, request: web.Request, key: Hashable) -> Any | None:
        """The value kept for ``key`` on the request's connection, or None (absent, expired, not git)."""
        if request.transport is None or not is_git_request(request):
            return None
        entries = self._by_connection.get(request.transport)
        if not entries or key not in entries:
            return None
        expires, value = entries[key]
        if self.clock() >= expires:
            del entries[key]
            return None
        return value

    def put(self, request: web.Request, key: Hashable, value: Any) -> None:
        """Keep ``value`` for the next git requests of this connection (git requests only)."""
        if request.transport is None or not is_git_request(request):
            return
        entries = self._by_connection.setdefault(request.transport, {})
        if len(entries) >= _MAX_ENTRIES and key not in entries:
            entries.pop(next(iter(entries)))
        entries[key] = (self.clock() + self.ttl, value)

    def forget(self, request: web.Request) -> None:
        """Drop everything kept for the request's connection."""
        if request.transport is not None:
            self._by_connection.pop(request.transport, None)

    def middleware(self) -> Any:
        """An aiohttp middleware: a request that is not git's makes its connection forget (before it runs)."""

        @web.middleware
        async def forget_outside_git(request: web.Request, handler: Any) -> web.StreamResponse:
            # nothing to forget while no connection keeps anything (the common case: no git request just now)
            if self._by_connection and not is_git_request(request):
                self.forget(request)
            return await handler(request)

        return forget_outside_git
