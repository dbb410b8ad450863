"""The fake WebhookTransport against the transport contract, and the core URL rules (corral.core.outbound)."""

from __future__ import annotations

import ipaddress

import pytest

from corral.contracts.webhooks import WebhookTransportContract
from corral.core.errors import InvalidInput
from corral.core.outbound import SPECIAL_PURPOSE_NETWORKS, check_url, is_public_address, numeric_host
from corral.fakes.webhooks import RecordingWebhookTransport


class FakeReceiver:
    def url(self, path: str) -> str:
        return f"http://127.0.0.1:18999{path}"

    def received(self, transport: RecordingWebhookTransport) -> list[bytes]:
        return [p.body for p in transport.posts if ipaddress.ip_address(p.address).is_loopback]


class TestRecordingWebhookTransport(WebhookTransportContract):
    @pytest.fixture
    def make_transport(self):
        return lambda allow_private, resolver: RecordingWebhookTransport(allow_private=allow_private,
                                                                         resolver=resolver)

    @pytest.fixture
    def receiver(self):
        return FakeReceiver()

    @pytest.fixture
    def attempted(self):
        return lambda transport: [p.address for p in transport.posts]


# every block the IANA special-purpose registries list (the brief's list), each refused at its edges
REQUIRED_BLOCKS = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
    "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24", "192.88.99.0/24", "192.168.0.0/16", "192.175.48.0/24",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32", "224.0.0.0/4",
    "::/128", "::1/128", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001::/32", "2001:db8::/32", "2002::/16",
    "fc00::/7", "fe80::/10", "ff00::/8", "3fff::/20", "5f00::/16",
)


@pytest.mark.parametrize("block", REQUIRED_BLOCKS)
def test_every_special_purpose_block_is_refused(block):
    network = ipaddress.ip_network(block)
    assert any(network.subnet_of(n) for n, _ in SPECIAL_PURPOSE_NETWORKS if n.version == network.version)
    for ip in (network.network_address, network.broadcast_address):
        assert not is_public_address(ip), ip
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        with pytest.raises(InvalidInput) as err:
            check_url(f"https://{host}/hook")
        assert err.value.field == "url"
        check_url(f"https://{host}/hook", allow_private=True)  # the operator's switch


@pytest.mark.parametrize("address", ["::ffff:127.0.0.1", "::ffff:10.1.2.3", "64:ff9b::7f00:1", "64:ff9b::a00:1"])
def test_embedded_ipv4_is_judged(address):
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8",
                                     "64:ff9b::808:808", "93.184.215.14"])
def test_public_addresses_pass(address):
    assert is_public_address(address)


@pytest.mark.parametrize(("host", "means"), [
    ("2130706433", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("127.1", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1"), ("10.0x10.1", "10.16.0.1"), ("169.254.43518", "169.254.169.254"),
    ("0", "0.0.0.0"), ("127.0.0.1.", "127.0.0.1"),
])
def test_odd_numeric_hosts_are_read_as_the_address_they_mean(host, means):
    assert numeric_host(host) == ipaddress.ip_address(means)
    with pytest.raises(InvalidInput):
        check_url(f"http://{host}/x")


@pytest.mark.parametrize("host", ["1.2.3.4.5", "127.0.0.08", "256.1.1.1", "4294967296", "0x1.0x2.0x3.0x100"])
def test_malformed_numeric_hosts_are_refused(host):
    with pytest.raises(InvalidInput):
        check_url(f"http://{host}/x", allow_private=True)


def test_a_public_address_in_odd_notation_is_refused_too():
    with pytest.raises(InvalidInput, match="standard notation"):
        check_url("http://134744072/x")  # 8.8.8.8


@pytest.mark.parametrize("url", ["https://hooks.example.org/x", "http://8.8.8.8:8080/x", "https://[2606:4700::1]/",
                                 "http://example.com./x", "http://1e3.example/x"])
def test_public_urls_pass(url):
    assert check_url(url).url == url
