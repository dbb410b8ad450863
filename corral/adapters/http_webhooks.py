"""WebhookTransport over aiohttp: one POST per delivery, private/loopback targets refused unless allowed."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
import urllib.parse

import aiohttp

from corral.core.errors import InvalidInput, Unavailable
from corral.core.projects.ports import HttpAnswer

__all__ = ["AiohttpWebhookTransport"]

_EXCERPT = 1000


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (address.is_loopback or address.is_private or address.is_link_local or address.is_multicast
            or address.is_unspecified or address.is_reserved)


class AiohttpWebhookTransport:
    """Posts with a shared ClientSession (made lazily); ``aclose`` closes it."""

    def __init__(self, *, timeout: float = 10.0, allow_private: bool = False) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self._session: aiohttp.ClientSession | None = None

    def check_target(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InvalidInput("url must be an http(s) URL with a host", field="url")
        try:
            address = ipaddress.ip_address(parsed.hostname)
        except ValueError:
            return  # a host name: checked after resolution in post()
        if not self.allow_private and _forbidden(address):
            raise InvalidInput("url must not point at a private, loopback or link-local address", field="url")

    async def _check_resolved(self, url: str) -> None:
        self.check_target(url)
        if self.allow_private:
            return
        parsed = urllib.parse.urlsplit(url)
        host = parsed.hostname or ""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, parsed.port or 443, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise Unavailable(f"cannot resolve {host}: {exc.strerror or exc}") from None
        for info in infos:
            if _forbidden(ipaddress.ip_address(info[4][0])):
                raise InvalidInput(f"{host} resolves to a private or loopback address", field="url")

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> HttpAnswer:
        await self._check_resolved(url)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        started = time.monotonic()
        try:
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                excerpt = (await resp.content.read(_EXCERPT)).decode(errors="replace")
                return HttpAnswer(resp.status, int((time.monotonic() - started) * 1000), excerpt)
        except TimeoutError:
            raise Unavailable(f"no answer within {self.timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise Unavailable(f"{type(exc).__name__}: {exc}"[:200]) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
