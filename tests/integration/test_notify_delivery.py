"""Notifications end to end on real services: PostgreSQL stores and outbox, an SMTP relay (aiosmtpd, also with
STARTTLS and implicit TLS), and a real HTTP receiver verifying webhook signatures; two replicas deliver once."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import ssl
import uuid

import pytest
from aiohttp import web

from corral.adapters.notify_templates import JinjaRenderer
from corral.adapters.postgres.pool import create_pool
from corral.adapters.postgres.uow import PostgresUnitOfWorkFactory
from corral.adapters.smtp import SmtpEmailSender
from corral.adapters.webhooks import AiohttpWebhookTransport
from corral.contracts.notify import NotificationStoresContract
from corral.core.errors import Unavailable
from corral.core.notify.commands import PreferencesUpdate
from corral.core.notify.dispatcher import NotificationDispatcher
from corral.core.notify.model import Channel, NotificationStatus, Recipient, RenderedMessage
from corral.core.notify.planner import NotificationPlanner
from corral.core.notify.service import NotificationService
from corral.core.outbox.relay import OutboxRelay
from corral.fakes.clock import FakeClock
from tests.servicekit import free_port

pytestmark = pytest.mark.integration

SECRET = "notify-hmac-secret"


@pytest.fixture
async def pool(db_dsn):
    pool = await create_pool(db_dsn, min_size=1, max_size=6)
    yield pool
    await pool.close()


@pytest.fixture
def uow_factory(pool):
    return PostgresUnitOfWorkFactory(pool, FakeClock(dt.datetime.now(dt.UTC)))


class People:
    def __init__(self, pool) -> None:
        self.pool = pool

    async def user(self, name: str) -> Recipient:
        uid = uuid.uuid4()
        handle = f"{name}-{uid.hex[:6]}"
        async with self.pool.acquire() as conn:
            await conn.execute("INSERT INTO users (id, name, email, password_hash) VALUES ($1, $2, $3, 'x')",
                               uid, handle, f"{handle}@example.org")
        return Recipient(uid, handle, f"{handle}@example.org")

    async def project(self, owner_id: uuid.UUID) -> uuid.UUID:
        pid = uuid.uuid4()
        async with self.pool.acquire() as conn:
            await conn.execute("INSERT INTO projects (id, owner_id, name) VALUES ($1, $2, $3)",
                               pid, owner_id, f"p-{pid.hex[:8]}")
        return pid

    async def bind(self, project_id: uuid.UUID, role: str, user_id: uuid.UUID) -> None:
        async with self.pool.acquire() as conn:
            role_id = await conn.fetchval("SELECT id FROM roles WHERE name = $1", role)
            if role_id is None:
                role_id = await conn.fetchval("INSERT INTO roles (name) VALUES ($1) RETURNING id", role)
            await conn.execute("INSERT INTO user_roles (user_id, role_id, project_id) VALUES ($1, $2, $3)",
                               user_id, role_id, project_id)


@pytest.fixture
def people(pool):
    return People(pool)


class TestPostgresNotificationStores(NotificationStoresContract):
    pass


@pytest.fixture
async def receiver():
    """A real HTTP server that verifies the HMAC of each POST like a Gitea/GitHub receiver would."""
    got: list[dict] = []
    fail_next: list[int] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        ok = (hmac.compare_digest(request.headers.get("X-Gitea-Signature", ""), digest)
              and request.headers.get("X-Hub-Signature-256") == f"sha256={digest}")
        got.append({"ok": ok, "body": json.loads(body), "headers": dict(request.headers)})
        if fail_next:
            return web.Response(status=fail_next.pop())
        return web.Response(status=204 if ok else 401)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield f"http://127.0.0.1:{port}/hook", got, fail_next
    await runner.cleanup()


def world(uow_factory, smtp_sink, transport, **kw):
    clock = uow_factory.clock
    planner = NotificationPlanner(JinjaRenderer(), clock, base_url="https://corral.example.org")
    relay = OutboxRelay(uow_factory, [planner.fan_out])
    email = SmtpEmailSender(host=smtp_sink.host, port=smtp_sink.port, sender="corral@example.org",
                            security="none", username="relay-user", password="relay-pass")
    dispatcher = NotificationDispatcher(uow_factory, email, transport, clock, webhook_secret=SECRET, **kw)
    return relay, dispatcher


async def emit(uow_factory, topic, payload, project_id):
    async with uow_factory() as uow:
        await uow.outbox.add(topic, payload, project_id=project_id)
        await uow.commit()


async def test_email_and_webhook_reach_the_right_people_signed(uow_factory, people, smtp_sink, receiver):
    url, got, _ = receiver
    owner, dev, ops, author = [await people.user(n) for n in ("owner", "dev", "ops", "author")]
    project = await people.project(owner.user_id)
    await people.bind(project, "developer", dev.user_id)
    await people.bind(project, "ops", ops.user_id)
    transport = AiohttpWebhookTransport(allow_private=True)
    relay, dispatcher = world(uow_factory, smtp_sink, transport)
    await NotificationService(uow_factory, uow_factory.clock, allow_private_webhooks=True).set_preferences(
        owner, PreferencesUpdate(events={"build_failed": ["in_app", "email", "webhook"]}, webhook_url=url)
    )
    await emit(uow_factory, "build_failed", {
        "title": "main #42 <failed>", "project": "acme/web", "ref": "main", "url": "https://corral.example.org/p/1",
        "user_ids": [str(author.user_id)], "actor_id": str(dev.user_id),  # dev caused it: not told
    }, project)
    assert await relay.run_once() == 1
    assert await dispatcher.deliver_due() == 3  # 2 emails (owner, author) + 1 webhook (owner)
    await transport.aclose()
    messages = await smtp_sink.wait_for(2)
    assert sorted(m.rcpt_tos[0] for m in messages) == sorted([owner.email, author.email])
    for m in messages:
        assert m["Subject"] == "[acme/web] Build failed on main: main #42 <failed>"
        assert m["To"] == m.rcpt_tos[0] and m.mail_from == "corral@example.org"
        assert m.get_content_type() == "multipart/alternative"
        text = m.get_body(("plain",)).get_content()
        html = m.get_body(("html",)).get_content()
        assert "main #42 <failed>" in text and "https://corral.example.org/p/1" in text
        assert "main #42 &lt;failed&gt;" in html and 'href="https://corral.example.org/p/1"' in html
    assert set(smtp_sink.logins) == {"relay-user"}
    [post] = got
    assert post["ok"] is True
    assert post["body"]["event"] == "build_failed" and post["body"]["user_id"] == str(owner.user_id)
    assert post["headers"]["X-Corral-Notification-Event"] == "build_failed"
    assert uuid.UUID(post["headers"]["X-Corral-Delivery"]) == uuid.UUID(post["body"]["id"])
    async with uow_factory() as uow:
        page = await uow.notifications.list_for_user(owner.user_id, channel=None, status=None, limit=10,
                                                     cursor=None)
    assert sorted((n.channel.value, n.status.value) for n in page.items) == [
        ("email", "sent"), ("in_app", "sent"), ("webhook", "sent")]


async def test_retry_then_success_and_one_failing_channel_does_not_block(uow_factory, people, smtp_sink, receiver):
    url, got, fail_next = receiver
    ann = await people.user("ann")
    project = await people.project(ann.user_id)
    fail_next.extend([503])
    transport = AiohttpWebhookTransport(allow_private=True)
    relay, dispatcher = world(uow_factory, smtp_sink, transport)
    await NotificationService(uow_factory, uow_factory.clock, allow_private_webhooks=True).set_preferences(
        ann, PreferencesUpdate(events={"deploy_status": ["email", "webhook"]}, webhook_url=url))
    await emit(uow_factory, "deploy_status", {"status": "failed", "environment": "prod"}, project)
    await relay.run_once()
    assert await dispatcher.deliver_due() == 2
    assert len(await smtp_sink.wait_for(1)) == 1  # the mail went out although the webhook failed
    async with uow_factory() as uow:
        [hook] = (await uow.notifications.list_for_user(ann.user_id, channel=Channel.WEBHOOK, status=None,
                                                        limit=5, cursor=None)).items
    assert hook.status is NotificationStatus.PENDING and hook.attempts == 1 and "503" in hook.last_error
    uow_factory.clock.advance(31)
    assert await dispatcher.deliver_due() == 1
    await transport.aclose()
    assert [p["ok"] for p in got] == [True, True]
    assert got[0]["headers"]["X-Corral-Delivery"] == got[1]["headers"]["X-Corral-Delivery"]  # receivers dedupe


async def test_two_replicas_deliver_each_notification_exactly_once(uow_factory, people, smtp_sink):
    owner = await people.user("owner")
    project = await people.project(owner.user_id)
    for i in range(12):
        await people.bind(project, "developer", (await people.user(f"dev{i}")).user_id)
    transport = AiohttpWebhookTransport(allow_private=True)
    relay_a, replica_a = world(uow_factory, smtp_sink, transport, batch_size=4)
    relay_b, replica_b = world(uow_factory, smtp_sink, transport, batch_size=4)
    for i in range(3):
        await emit(uow_factory, "mr_created", {"title": f"mr {i}", "number": i}, project)
    await asyncio.gather(relay_a.run_once(), relay_b.run_once())
    while sum(await asyncio.gather(replica_a.deliver_due(), replica_b.deliver_due())):
        pass
    await transport.aclose()
    messages = await smtp_sink.wait_for(39)
    keys = [(m.rcpt_tos[0], m["Subject"]) for m in messages]
    assert len(keys) == 39 and len(set(keys)) == 39  # 13 people x 3 events, no duplicates
    ids = [m["X-Corral-Notification"] for m in messages]
    assert len(set(ids)) == 39


def _self_signed() -> tuple[ssl.SSLContext, str]:
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    directory = tempfile.mkdtemp()
    cert_path, key_path = f"{directory}/cert.pem", f"{directory}/key.pem"
    with open(cert_path, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_smtp_starttls_and_implicit_tls_with_auth(security):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    received: list[tuple[list[str], bytes]] = []
    logins: list[str] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append(auth_data.login.decode())
        return AuthResult(success=auth_data.password == b"right")

    context, _ = _self_signed()
    port = free_port()
    if security == "starttls":
        kw = {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
    else:  # the whole connection is TLS; aiosmtpd does not count that as "TLS" for AUTH
        kw = {"ssl_context": context, "auth_require_tls": False}
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=authenticator,
                            ready_timeout=10, **kw)
    controller.start()
    try:
        message = RenderedMessage("Deploy: ok", "plain words", "<p>html words</p>")
        sender = SmtpEmailSender(host="127.0.0.1", port=port, sender="corral@example.org", security=security,
                                 username="mailer", password="right", verify_tls=False)
        await sender.send("ops@example.org", message)
        assert [r[0] for r in received] == [["ops@example.org"]] and logins == ["mailer"]
        assert b"plain words" in received[0][1] and b"html words" in received[0][1]
        wrong = SmtpEmailSender(host="127.0.0.1", port=port, sender="corral@example.org", security=security,
                                username="mailer", password="wrong", verify_tls=False)
        with pytest.raises(Unavailable, match="SMTP relay"):
            await wrong.send("ops@example.org", message)
        strict = SmtpEmailSender(host="127.0.0.1", port=port, sender="corral@example.org", security=security,
                                 username="mailer", password="right")
        with pytest.raises(Unavailable, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
            await strict.send("ops@example.org", message)
    finally:
        controller.stop()
