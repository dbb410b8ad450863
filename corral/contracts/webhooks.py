"""Behavioural suite for the WebhookTransport port (corral.core.projects.ports), run against the fake AND the
real transport. It is the SSRF guard's suite: project and notification webhooks go through the same transport.

Fixtures the subclass provides:
- ``make_transport``: ``(allow_private: bool, resolver: HostResolver) -> WebhookTransport``; the transport
  must resolve host names through ``resolver`` only and must never reach a non-loopback address (the real
  one's sockets refuse anything else; tests send traffic to loopback only);
- ``receiver``: a local HTTP receiver on 127.0.0.1 answering 200: ``receiver.url(path)`` and
  ``receiver.received(transport) -> list[bytes]`` (the bodies it got);
- ``attempted``: ``(transport) -> list[str]``, the addresses the transport opened (or tried to open) a
  connection to.
"""

from __future__ import annotations

from typing import Any

import pytest

from corral.core.errors import CorralError, InvalidInput, Unavailable
from corral.core.outbound import NOT_PUBLIC
from corral.fakes.webhooks import PUBLIC_TEST_ADDRESS, StaticResolver

__all__ = ["WebhookTransportContract"]

REFUSED_URLS = (
    "http://127.0.0.1/x",
    "http://100.64.0.1/x",  # shared address space (carrier-grade NAT)
    "http://10.0.0.1/x",
    "http://169.254.169.254/latest/meta-data/",
    "http://192.0.0.8/x",
    "http://198.18.0.1/x",
    "http://224.0.0.1/x",
    "http://[::1]/x",
    "http://[::ffff:127.0.0.1]/x",  # IPv4-mapped IPv6 loopback
    "http://[::ffff:a00:1]/x",
    "http://[64:ff9b::a9fe:a9fe]/x",  # NAT64 of 169.254.169.254
    "http://[2002:7f00:1::1]/x",  # 6to4
    "http://[2001:0:4136:e378::1]/x",  # Teredo
    "http://[fd00::1]/x",
    "http://[fe80::1]/x",
    "http://2130706433/x",  # 127.0.0.1 written as one number
    "http://0x7f.1/x",
    "http://0177.0.0.1/x",
    "http://127.1/x",
    "http://localhost/x",
    "http://hooks.localhost/x",
    "http://user:pass@hooks.example.org/x",  # credentials in the URL
    "ftp://hooks.example.org/x",
)


class WebhookTransportContract:
    @pytest.mark.parametrize("url", REFUSED_URLS)
    async def test_refused_urls_never_connect(self, make_transport: Any, attempted: Any, url: str) -> None:
        resolver = StaticResolver()
        transport = make_transport(False, resolver)
        with pytest.raises(InvalidInput) as err:
            transport.check_target(url)
        assert err.value.field == "url"
        with pytest.raises(CorralError):
            await transport.post(url, b"{}", {})
        assert attempted(transport) == []
        assert resolver.asked == []  # refused from the URL alone

    async def test_name_resolving_to_a_private_address_is_refused(self, make_transport: Any, attempted: Any,
                                                                  receiver: Any) -> None:
        port = receiver.url("/").split(":")[2].split("/")[0]
        resolver = StaticResolver({"internal.example.org": [["127.0.0.1"]],
                                   "mixed.example.org": [[PUBLIC_TEST_ADDRESS, "127.0.0.1"]],
                                   "cgnat.example.org": [["100.64.0.1"]],
                                   "mapped.example.org": [["::ffff:127.0.0.1"]]})
        transport = make_transport(False, resolver)
        for host in ("internal", "mixed", "cgnat", "mapped"):
            url = f"http://{host}.example.org:{port}/hook"
            transport.check_target(url)  # a name: only its resolution can tell
            with pytest.raises(Unavailable) as err:
                await transport.post(url, b"{}", {})
            assert err.value.message == NOT_PUBLIC
        assert attempted(transport) == []
        assert receiver.received(transport) == []

    async def test_dns_rebinding_cannot_reach_loopback(self, make_transport: Any, attempted: Any,
                                                       receiver: Any) -> None:
        """The name resolves to a public address when checked and to 127.0.0.1 afterwards: the connection goes
        to the checked address (never loopback), whatever the resolver answers next."""
        port = receiver.url("/").split(":")[2].split("/")[0]
        resolver = StaticResolver({"rebind.example.org": [[PUBLIC_TEST_ADDRESS], ["127.0.0.1"]]})
        transport = make_transport(False, resolver)
        url = f"http://rebind.example.org:{port}/hook"
        transport.check_target(url)
        try:
            await transport.post(url, b"{}", {})
        except Unavailable:
            pass  # the real transport's test sockets refuse the public address: nothing leaves the machine
        assert receiver.received(transport) == []
        assert attempted(transport) == [PUBLIC_TEST_ADDRESS]
        assert resolver.asked == ["rebind.example.org"]  # resolved once: checked and connected the same answer

    async def test_allow_private_delivers_to_loopback(self, make_transport: Any, receiver: Any) -> None:
        transport = make_transport(True, StaticResolver())
        url = receiver.url("/hook")
        transport.check_target(url)
        answer = await transport.post(url, b'{"n":1}', {"Content-Type": "application/json"})
        assert answer.status == 200
        assert receiver.received(transport) == [b'{"n":1}']

    async def test_allow_private_keeps_the_url_shape_rules(self, make_transport: Any, attempted: Any) -> None:
        transport = make_transport(True, StaticResolver())
        for url in ("http://user:pass@127.0.0.1/x", "file:///etc/passwd", "http:///x"):
            with pytest.raises(InvalidInput):
                transport.check_target(url)
            with pytest.raises(InvalidInput):
                await transport.post(url, b"{}", {})
        assert attempted(transport) == []

    async def test_check_target_names_the_field(self, make_transport: Any) -> None:
        transport = make_transport(False, StaticResolver())
        with pytest.raises(InvalidInput) as err:
            transport.check_target("http://127.0.0.1:18999/x", "webhook_url")
        assert err.value.field == "webhook_url"
        assert "18999" not in err.value.message
