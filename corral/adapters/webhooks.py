"""WebhookTransport over aiohttp, for project and notification webhooks alike, with an SSRF guard.

The URL rules are corral.core.outbound's, checked before anything is sent.
A host name is resolved once per connection, every address it resolves to
must be public (unless private targets are allowed), and the connection then
goes to a checked address only (the connector's resolver answers from the
check, its DNS cache is off), so a DNS answer cannot change between the check
and the connection (DNS rebinding). Redirects are not followed. Errors say
what went wrong in words a user can act on ("connection failed", "timed
out"), never the addresses, ports or driver messages behind them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from corral.core.errors import InvalidInput, Unavailable
from corral.core.outbound import NOT_PUBLIC, HostResolver, check_url, is_public_address
from corral.core.projects.ports import HttpAnswer

__all__ = ["AiohttpWebhookTransport", "system_resolver"]

log = logging.getLogger("corral.webhooks")
_EXCERPT = 1000


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (getaddrinfo through the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class _Refused(OSError):
    pass


class _CheckedResolver(AbstractResolver):
    """Resolves once, refuses the whole answer if any address is not public (unless allowed), and hands the
    connector exactly the checked addresses."""

    def __init__(self, resolve: HostResolver, allow_private: bool) -> None:
        self._resolve = resolve
        self.allow_private = allow_private

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        addresses = await self._resolve(host, port)
        results: list[ResolveResult] = []
        for address in dict.fromkeys(addresses):
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if not self.allow_private and not is_public_address(ip):
                raise _Refused(NOT_PUBLIC)
            fam = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            if family not in (socket.AF_UNSPEC, fam):
                continue
            results.append(ResolveResult(hostname=host, host=str(ip), port=port, family=fam, proto=0,
                                         flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV))
        if not results:
            raise OSError("no address")
        return results

    async def close(self) -> None:
        return None


class AiohttpWebhookTransport:
    """Posts webhook bodies with a total timeout; see corral.core.projects.ports.WebhookTransport.

    ``resolver`` replaces the system resolver and ``socket_factory`` the connector's socket creation
    (aiohttp >= 3.12), both for tests that must control name resolution and never reach the network.
    """

    def __init__(self, *, allow_private: bool = False, timeout: float = 10.0, resolver: HostResolver | None = None,
                 socket_factory: Callable[[Any], socket.socket] | None = None) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self.resolver: HostResolver = resolver or system_resolver
        self.socket_factory = socket_factory
        self._session: aiohttp.ClientSession | None = None

    def check_target(self, url: str, field: str = "url") -> None:
        check_url(url, field=field, allow_private=self.allow_private)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            extra: dict[str, Any] = {} if self.socket_factory is None else {"socket_factory": self.socket_factory}
            connector = aiohttp.TCPConnector(resolver=_CheckedResolver(self.resolver, self.allow_private), limit=32,
                                             use_dns_cache=False, **extra)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False,
                                                  timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> HttpAnswer:
        try:
            check_url(url, allow_private=self.allow_private)
        except InvalidInput as exc:
            raise InvalidInput(f"refused: {exc.message}", field="url") from None
        started = time.monotonic()
        try:
            async with self._client().post(url, data=body, headers=headers, allow_redirects=False) as resp:
                text = (await resp.content.read(_EXCERPT)).decode("utf-8", "replace")
                return HttpAnswer(status=resp.status, duration_ms=int((time.monotonic() - started) * 1000),
                                  body_excerpt=text)
        except Exception as exc:
            reason = _reason(exc)
            if reason is None:
                raise
            log.info("webhook delivery failed: %s", reason, extra={"detail": f"{type(exc).__name__}: {exc}"[:300]})
            raise Unavailable(reason) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _reason(exc: BaseException) -> str | None:
    """What a user is told about a failed delivery (None: not a delivery failure, let it propagate)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error
        if isinstance(cause, _Refused):
            return NOT_PUBLIC
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            return "name resolution failed"
        if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientConnectorSSLError):
            return "TLS handshake failed"
        if isinstance(cause, TimeoutError):
            return "timed out"
        return "connection failed"
    if isinstance(exc, _Refused):
        return NOT_PUBLIC
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the receiver closed the connection"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "TLS handshake failed"
    if isinstance(exc, aiohttp.ClientError | OSError):
        return "connection failed"
    return None
