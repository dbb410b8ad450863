"""Outbound requests to URLs users choose (project and notification webhooks): the one set of rules.

A user-chosen URL must be ``http`` or ``https``, name a host, carry no
credentials (``user:pass@``), and not name this machine (``localhost``,
``*.localhost``). A host written as an IP address, including the odd numeric
notations resolvers accept (``2130706433``, ``0x7f.1``, ``0177.0.0.1``,
``127.1``), is read as the address it means and must be public: outside every
range of the IANA IPv4 and IPv6 Special-Purpose Address Registries
(``SPECIAL_PURPOSE_NETWORKS``), multicast included. IPv4-mapped and NAT64
IPv6 addresses are judged by the IPv4 address they carry; 6to4 and Teredo
addresses are refused. An operator may allow non-public targets for both kinds
of webhook (``CORRAL_WEBHOOK_ALLOW_PRIVATE_TARGETS``); the URL shape rules
(scheme, host, no credentials) hold regardless.

The rules run twice: when a URL is saved (``check_url``: an InvalidInput naming
the field) and when a request is sent, on every address the host name resolves
to (``is_public_address``); the transport then connects only to an address it
checked, so a DNS answer that changes between the check and the connection
(DNS rebinding) cannot reach a private address. Redirects are never followed:
a 3xx answer is the receiver's answer.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from typing import Final, Protocol

import attrs

from corral.core.errors import InvalidInput

__all__ = [
    "NOT_PUBLIC",
    "SPECIAL_PURPOSE_NETWORKS",
    "HostResolver",
    "OutboundTarget",
    "check_url",
    "is_public_address",
    "numeric_host",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# What a user sees when a delivery is refused (never the address a name resolved to).
NOT_PUBLIC: Final = "refused: target is not a public address"


def _net(cidr: str) -> IPNetwork:
    return ipaddress.ip_network(cidr)


# IANA IPv4 Special-Purpose Address Registry, IPv4 multicast, IANA IPv6 Special-Purpose Address Registry
# (https://www.iana.org/assignments/iana-ipv4-special-registry, .../iana-ipv6-special-registry), with the
# RFC that reserved each block. Every block is refused, also the few the registry marks globally reachable
# (AS112, AMT, PCP anycast...): none of them is a webhook receiver.
SPECIAL_PURPOSE_NETWORKS: Final[tuple[tuple[IPNetwork, str], ...]] = (
    (_net("0.0.0.0/8"), "this network (RFC 791)"),
    (_net("10.0.0.0/8"), "private use (RFC 1918)"),
    (_net("100.64.0.0/10"), "shared address space (RFC 6598)"),
    (_net("127.0.0.0/8"), "loopback (RFC 1122)"),
    (_net("169.254.0.0/16"), "link local (RFC 3927)"),
    (_net("172.16.0.0/12"), "private use (RFC 1918)"),
    (_net("192.0.0.0/24"), "IETF protocol assignments (RFC 6890)"),
    (_net("192.0.2.0/24"), "documentation TEST-NET-1 (RFC 5737)"),
    (_net("192.31.196.0/24"), "AS112-v4 (RFC 7535)"),
    (_net("192.52.193.0/24"), "AMT (RFC 7450)"),
    (_net("192.88.99.0/24"), "deprecated 6to4 relay anycast (RFC 7526)"),
    (_net("192.168.0.0/16"), "private use (RFC 1918)"),
    (_net("192.175.48.0/24"), "direct delegation AS112 service (RFC 7534)"),
    (_net("198.18.0.0/15"), "benchmarking (RFC 2544)"),
    (_net("198.51.100.0/24"), "documentation TEST-NET-2 (RFC 5737)"),
    (_net("203.0.113.0/24"), "documentation TEST-NET-3 (RFC 5737)"),
    (_net("224.0.0.0/4"), "multicast (RFC 5771)"),
    (_net("240.0.0.0/4"), "reserved (RFC 1112)"),
    (_net("255.255.255.255/32"), "limited broadcast (RFC 919)"),
    (_net("::/128"), "unspecified address (RFC 4291)"),
    (_net("::1/128"), "loopback address (RFC 4291)"),
    (_net("::/96"), "deprecated IPv4-compatible addresses (RFC 4291)"),
    (_net("::ffff:0:0/96"), "IPv4-mapped addresses (RFC 4291)"),  # judged by the IPv4 address they carry
    (_net("64:ff9b::/96"), "IPv4-IPv6 translation (RFC 6052)"),  # judged by the IPv4 address they carry
    (_net("64:ff9b:1::/48"), "local-use IPv4/IPv6 translation (RFC 8215)"),
    (_net("100::/64"), "discard-only address block (RFC 6666)"),
    (_net("100:0:0:1::/64"), "dummy IPv6 prefix (RFC 9780)"),
    (_net("2001::/23"), "IETF protocol assignments (RFC 2928), incl. Teredo 2001::/32 (RFC 4380)"),
    (_net("2001:db8::/32"), "documentation (RFC 3849)"),
    (_net("2002::/16"), "6to4 (RFC 3056)"),
    (_net("2620:4f:8000::/48"), "direct delegation AS112 service (RFC 7534)"),
    (_net("3fff::/20"), "documentation (RFC 9637)"),
    (_net("5f00::/16"), "segment routing SIDs (RFC 9602)"),
    (_net("fc00::/7"), "unique local (RFC 4193)"),
    (_net("fe80::/10"), "link-local unicast (RFC 4291)"),
    (_net("fec0::/10"), "deprecated site-local (RFC 3879)"),
    (_net("ff00::/8"), "multicast (RFC 4291)"),
)
_GLOBAL_UNICAST_V6: Final = ipaddress.IPv6Network("2000::/3")  # everything else is unassigned or special
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_HEX: Final = re.compile(r"0x[0-9a-f]*")
_OCTAL: Final = re.compile(r"0[0-7]+")
_DECIMAL: Final = re.compile(r"0|[1-9][0-9]*")
_ENDS_IN_NUMBER: Final = re.compile(r"[0-9]+|0x[0-9a-f]*")


def _special(ip: IPAddress) -> str | None:
    for network, what in SPECIAL_PURPOSE_NETWORKS:
        if ip.version == network.version and ip in network:
            return what
    return None


def _explain(ip: IPAddress) -> str:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return _special(ip) or "not globally reachable"


def is_public_address(address: str | IPAddress) -> bool:
    """Whether a request may go to ``address``: outside every special-purpose block (IPv4-mapped and NAT64
    addresses judged by the IPv4 address they carry; IPv6 outside 2000::/3 is never public)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0]) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public_address(ip.ipv4_mapped)
        if ip in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip not in _GLOBAL_UNICAST_V6:
            return False
    return _special(ip) is None and ip.is_global


def _number(part: str) -> int | None:
    """One part of a numeric host the way inet_aton and the URL standard read it (0x: hex, 0: octal)."""
    lowered = part.lower()
    if _HEX.fullmatch(lowered):
        return int(lowered[2:] or "0", 16)
    if _OCTAL.fullmatch(lowered):
        return int(lowered, 8)
    return int(lowered) if _DECIMAL.fullmatch(lowered) else None


def numeric_host(host: str) -> IPAddress | None:
    """The IP address ``host`` means when written as one, in any notation resolvers accept; None for a name.

    Raises InvalidInput when the host ends in a number (so resolvers would read it as an IPv4 address) but is
    not a valid one.
    """
    bare = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if not _ENDS_IN_NUMBER.fullmatch(labels[-1]):
        return None  # a host name (the URL standard: a host ending in a number is an IPv4 address)
    numbers = [_number(label) for label in labels]
    if len(numbers) > 4 or any(n is None for n in numbers):
        raise InvalidInput(f"{host!r} is neither a host name nor an IPv4 address", field="url")
    values = [n for n in numbers if n is not None]
    *leading, last = values
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(values)):
        raise InvalidInput(f"{host!r} is neither a host name nor an IPv4 address", field="url")
    value = last
    for i, n in enumerate(leading):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


@attrs.frozen
class OutboundTarget:
    """A checked URL: its host (lower case, no trailing dot), port, and the address when the host is one."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress | None


def check_url(url: object, *, field: str = "url", allow_private: bool = False) -> OutboundTarget:
    """Check a user-chosen URL against the rules of this module; InvalidInput naming ``field`` if it breaks one.

    With ``allow_private`` loopback, private and other special-purpose addresses (and ``localhost``) are
    accepted; the scheme, host and no-credentials rules always hold.
    """
    if not isinstance(url, str) or len(url) > 2048 or not url.isprintable():
        raise InvalidInput(f"{field} must be an http(s) URL of at most 2048 characters", field=field)
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise InvalidInput(f"{field} is not a valid URL", field=field) from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput(f"{field} must be an http(s) URL with a host", field=field)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidInput(f"{field} must not carry credentials; webhooks are signed with their secret instead",
                           field=field)
    host = host.rstrip(".").lower()
    if not host:
        raise InvalidInput(f"{field} must be an http(s) URL with a host", field=field)
    try:
        address = numeric_host(host)
    except InvalidInput as exc:
        raise InvalidInput(f"{field}: {exc.message}", field=field) from None
    port = port if port is not None else (443 if parts.scheme == "https" else 80)
    target = OutboundTarget(url=url, scheme=parts.scheme, host=host, port=port, address=address)
    if allow_private:
        return target
    if address is None:
        if host == "localhost" or host.endswith(".localhost"):
            raise InvalidInput(f"{field} points to this machine; webhooks need a public target", field=field)
        return target
    if not is_public_address(address):
        raise InvalidInput(
            f"{field} points to a non-public address ({_explain(address)}); an administrator can "
            "allow those with CORRAL_WEBHOOK_ALLOW_PRIVATE_TARGETS", field=field,
        )
    if address.version == 4 and str(address) != host:
        raise InvalidInput(f"{field}: write the IP address in standard notation ({address})", field=field)
    return target


class HostResolver(Protocol):
    """Resolves a host name to the IP addresses a connection may use (the system resolver in production)."""

    async def __call__(self, host: str, port: int) -> list[str]: ...
