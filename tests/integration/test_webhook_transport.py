"""The real WebhookTransport (aiohttp, address pinning) against the transport contract, on loopback only.

Name resolution is injected (StaticResolver) and every socket the connector creates goes through a factory
that records its address and refuses anything but loopback: no test reaches the network.
"""

from __future__ import annotations

import ipaddress
import socket
import uuid

import pytest
from aiohttp import web

from corral.adapters.webhooks import AiohttpWebhookTransport
from corral.contracts.webhooks import WebhookTransportContract
from corral.core.errors import Unavailable
from corral.core.notify.dispatcher import NotificationDispatcher
from corral.core.notify.model import Channel, EventType, Notification, NotificationStatus
from corral.fakes.webhooks import PUBLIC_TEST_ADDRESS, StaticResolver
from tests.servicekit.process import free_port

pytestmark = pytest.mark.integration


class LoopbackOnlySockets:
    """A connector socket factory: records each address, refuses (before any packet) what is not loopback."""

    def __init__(self) -> None:
        self.addresses: list[str] = []

    def __call__(self, addr_info) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        self.addresses.append(str(sockaddr[0]))
        if not ipaddress.ip_address(sockaddr[0]).is_loopback:
            raise OSError("test: only loopback may be connected to")
        return socket.socket(family, type_, proto)


class Receiver:
    def __init__(self, port: int) -> None:
        self.port = port
        self.bodies: list[bytes] = []
        self.paths: list[str] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self, transport) -> list[bytes]:
        return list(self.bodies)


@pytest.fixture
async def receiver():
    port = free_port()
    r = Receiver(port)

    async def handle(request: web.Request) -> web.Response:
        r.paths.append(request.path)
        if request.path == "/redirect":
            raise web.HTTPFound("/elsewhere")
        if request.path == "/boom":
            return web.Response(status=500, text="internal details of the receiver")
        r.bodies.append(await request.read())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield r
    await runner.cleanup()


@pytest.fixture
async def make_transport():
    made: list[AiohttpWebhookTransport] = []

    def make(allow_private: bool, resolver) -> AiohttpWebhookTransport:
        t = AiohttpWebhookTransport(allow_private=allow_private, resolver=resolver, timeout=5,
                                    socket_factory=LoopbackOnlySockets())
        made.append(t)
        return t

    yield make
    for t in made:
        await t.aclose()


@pytest.fixture
def attempted():
    return lambda transport: list(transport.socket_factory.addresses)


class TestAiohttpWebhookTransport(WebhookTransportContract):
    pass


async def test_redirects_are_not_followed(make_transport, receiver) -> None:
    transport = make_transport(True, StaticResolver())
    answer = await transport.post(receiver.url("/redirect"), b"{}", {})
    assert answer.status == 302
    assert receiver.paths == ["/redirect"]


async def test_errors_name_no_address_port_or_driver_message(make_transport, receiver) -> None:
    transport = make_transport(True, StaticResolver({"gone.example.org": [[]]}))
    closed = free_port()
    with pytest.raises(Unavailable) as err:
        await transport.post(f"http://127.0.0.1:{closed}/x", b"{}", {})
    assert err.value.message == "connection failed"
    with pytest.raises(Unavailable) as err:
        await transport.post(f"http://gone.example.org:{closed}/x", b"{}", {})
    assert err.value.message in ("name resolution failed", "connection failed")
    assert str(closed) not in err.value.message and "127.0.0.1" not in err.value.message
    answer = await transport.post(receiver.url("/boom"), b"{}", {})
    assert answer.status == 500


async def test_notification_webhook_rebinding_cannot_reach_loopback(make_transport, receiver) -> None:
    """Notification webhooks go through the same pinning transport: a name that resolves public when checked
    and 127.0.0.1 afterwards never reaches the local receiver, and last_error names no address or port."""
    from datetime import UTC, datetime

    from tests.unit.secrets_support import new_db

    db = new_db()
    resolver = StaticResolver({"rebind.example.org": [[PUBLIC_TEST_ADDRESS], ["127.0.0.1"]],
                               "inside.example.org": [["127.0.0.1"]]})
    transport = make_transport(False, resolver)
    dispatcher = NotificationDispatcher(db, None, transport, db.clock, max_attempts=1)
    ids = []
    async with db() as uow:
        for host in ("rebind", "inside"):
            n = Notification(
                id=uuid.uuid4(), user_id=uuid.uuid4(), type=EventType.BUILD_FAILED,
                channel=Channel.WEBHOOK, status=NotificationStatus.PENDING, subject="s", body="b",
                created_at=datetime.now(UTC), payload={}, dedupe_key=host,
                target=f"http://{host}.example.org:{receiver.port}/hook", next_attempt_at=db.clock.now(),
            )
            ids.append(n.id)
            await uow.notifications.add(n)
        await uow.commit()
    assert await dispatcher.deliver_due() == 2
    assert receiver.bodies == []
    assert transport.socket_factory.addresses == [PUBLIC_TEST_ADDRESS]
    async with db() as uow:
        errors = sorted([(await uow.notifications.get(i)).last_error for i in ids])
    assert errors == ["connection failed", "refused: target is not a public address"]
    assert not any(str(receiver.port) in e or "127.0.0.1" in e for e in errors)
