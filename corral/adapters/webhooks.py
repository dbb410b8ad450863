"""WebhookTransport over aiohttp, with an SSRF guard.

The target host is resolved before connecting and every address it resolves to must be public (not
loopback, private, link-local, multicast, reserved or unspecified) unless private targets are allowed;
the connection then goes to the checked address only (a resolver that answers from the check), so a
DNS answer cannot change between the check and the connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
import urllib.parse
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from corral.core.errors import InvalidInput, Unavailable
from corral.core.projects.ports import HttpAnswer

__all__ = ["AiohttpWebhookTransport", "is_public_address"]

_EXCERPT = 1000


def is_public_address(address: str) -> bool:
    """Whether ``address`` is a public unicast address (what webhooks may reach by default)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
                or ip.is_unspecified)


class _CheckedResolver(AbstractResolver):
    """Resolves like the system resolver, then refuses non-public addresses (unless allowed)."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        except OSError as exc:
            raise OSError(f"cannot resolve {host}") from exc
        results: list[ResolveResult] = []
        for fam, _, proto, _, sockaddr in infos:
            address = str(sockaddr[0])
            if not self.allow_private and not is_public_address(address):
                raise _Refused(f"{host} resolves to a non-public address ({address})")
            results.append(ResolveResult(hostname=host, host=address, port=int(sockaddr[1]), family=fam,
                                         proto=proto, flags=socket.AI_NUMERICHOST))
        return results

    async def close(self) -> None:
        return None


class _Refused(OSError):
    pass


class AiohttpWebhookTransport:
    """Posts webhook bodies with a total timeout; see corral.core.projects.ports.WebhookTransport."""

    def __init__(self, *, allow_private: bool = False, timeout: float = 10.0) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def check_target(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InvalidInput("url must be an http(s) URL with a host", field="url")
        if parsed.username or parsed.password:
            raise InvalidInput("url must not carry credentials; use the webhook secret", field="url")
        host = parsed.hostname
        try:
            ipaddress.ip_address(host)
        except ValueError:
            lowered = host.lower()
            if not self.allow_private and (lowered == "localhost" or lowered.endswith(".localhost")):
                raise InvalidInput("url points to this machine; webhooks need a public target", field="url") from None
            return
        if not self.allow_private and not is_public_address(host):
            raise InvalidInput("url points to a private, loopback or link-local address; an administrator can "
                               "allow those with CORRAL_WEBHOOK_ALLOW_PRIVATE_TARGETS", field="url")

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=_CheckedResolver(self.allow_private), limit=32,
                                             use_dns_cache=False)
            self._session = aiohttp.ClientSession(connector=connector,
                                                  timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> HttpAnswer:
        self.check_target(url)
        started = time.monotonic()
        try:
            async with self._client().post(url, data=body, headers=headers, allow_redirects=False) as resp:
                text = (await resp.content.read(_EXCERPT)).decode("utf-8", "replace")
                return HttpAnswer(status=resp.status, duration_ms=int((time.monotonic() - started) * 1000),
                                  body_excerpt=text)
        except _Refused as exc:
            raise Unavailable(f"refused: {exc}") from None
        except aiohttp.ClientConnectorError as exc:
            cause: Any = exc.os_error
            if isinstance(cause, _Refused):
                raise Unavailable(f"refused: {cause}") from None
            raise Unavailable(f"cannot connect: {exc.os_error.strerror or exc}") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unavailable(f"delivery failed: {type(exc).__name__}: {exc}"[:300]) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
