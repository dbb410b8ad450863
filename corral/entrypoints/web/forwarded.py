"""Who the client is behind reverse proxies: X-Forwarded-For / X-Forwarded-Proto from trusted peers only.

Behind Traefik every request arrives from the proxy's address, so login
regulation, audit rows and the Secure cookie flag need the client's address
and scheme as the proxy saw them. Those headers are believed only when the
TCP peer is in ``CORRAL_TRUSTED_PROXIES``; anyone else could write them.
"""

from __future__ import annotations

import functools
import ipaddress

import attrs
from aiohttp import web

__all__ = ["TRUSTED_PROXIES", "TrustedProxies", "client_ip", "is_secure", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(text: str | None) -> tuple[Network, ...]:
    """Comma-separated CIDRs (a bare address means that one host); ValueError naming a bad entry."""
    out: list[Network] = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not an IP address or CIDR (e.g. 10.0.0.0/8)") from None
    return tuple(out)


@functools.lru_cache(maxsize=1024)  # the same few peers and proxies ask again and again
def _address(text: str | None) -> Address | None:
    if not text:
        return None
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[v6]" or "[v6]:port"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "v4:port"
        text = text.partition(":")[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


@attrs.frozen
class TrustedProxies:
    """The proxies whose X-Forwarded-* headers are believed (empty: none, the peer is the client)."""

    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> TrustedProxies:
        return cls(parse_networks(text))

    def trusts(self, addr: Address | None) -> bool:
        return addr is not None and any(addr.version == n.version and addr in n for n in self.networks)

    def client(self, peer: str | None, forwarded_for: list[str]) -> str | None:
        """The client address: the peer unless trusted; then the rightmost X-Forwarded-For hop that is not
        a trusted proxy (hops left of it were written by the client and prove nothing)."""
        peer_addr = _address(peer)
        if not self.trusts(peer_addr):
            return str(peer_addr) if peer_addr is not None else peer
        assert peer_addr is not None
        hops = [h for value in forwarded_for for h in value.split(",") if h.strip()]
        nearest = peer_addr
        for hop in reversed(hops):
            addr = _address(hop)
            if addr is None:  # garbage: nothing left of it can be believed; the last proxy is the client
                break
            nearest = addr
            if not self.trusts(addr):
                break
        return str(nearest)


TRUSTED_PROXIES: web.AppKey[TrustedProxies] = web.AppKey("corral_trusted_proxies", TrustedProxies)


def _proxies(request: web.Request) -> TrustedProxies:
    return request.app.get(TRUSTED_PROXIES) or TrustedProxies()


def client_ip(request: web.Request) -> str | None:
    """The client's address: X-Forwarded-For is honoured only from a trusted proxy."""
    return _proxies(request).client(request.remote, request.headers.getall("X-Forwarded-For", []))


def is_secure(request: web.Request) -> bool:
    """The client reached us over TLS: our own TLS, or X-Forwarded-Proto https from a trusted proxy."""
    if request.secure:
        return True
    proxies = _proxies(request)
    if not proxies.networks or not proxies.trusts(_address(request.remote)):
        return False
    proto = request.headers.get("X-Forwarded-Proto", "")
    # the leftmost value is the scheme the edge proxy saw from the client
    return proto.split(",")[0].strip().lower() == "https"
