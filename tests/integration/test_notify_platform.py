"""Notifications through the running platform: an outbox event written by a domain reaches the inbox (HTTP API)
and the SMTP relay through the background relay and delivery loops."""

from __future__ import annotations

import base64
import os

import pytest
from aiohttp.test_utils import TestClient, TestServer

from corral.core.outbox.relay import OutboxRelay
from corral.core.uow import UnitOfWorkFactory
from corral.entrypoints.bootstrap import start_platform
from corral.entrypoints.config import Settings
from corral.entrypoints.web.app import create_app
from tests.integration.platformkit import add_project_of_root

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple 42"


async def test_outbox_event_reaches_inbox_and_mail(db_dsn, valkey_url, tmp_path, smtp_sink):
    settings = Settings(
        database_url=db_dsn, valkey_url=valkey_url, data_dir=tmp_path,
        master_key=base64.b64encode(os.urandom(32)).decode(),
        bootstrap_admin_name="root", bootstrap_admin_password=PASSWORD, bootstrap_admin_email="root@example.org",
        smtp_host=smtp_sink.host, smtp_port=smtp_sink.port, smtp_security="none", smtp_from="corral@example.org",
    )
    platform = await start_platform(settings)
    try:
        assert platform.resolve(OutboxRelay) is platform.relay and platform.relay.consumers  # one shared relay
        _admin_id, project_id = await add_project_of_root(db_dsn)
        platform.start_background()
        uow_factory: UnitOfWorkFactory = platform.resolve(UnitOfWorkFactory)
        async with uow_factory() as uow:
            await uow.outbox.add("alert_firing", {"title": "p99 > 2s", "project": "root/web"}, project_id=project_id)
            await uow.commit()
        [mail] = await smtp_sink.wait_for(1, timeout=20)
        assert mail.rcpt_tos == ["root@example.org"]
        assert mail["Subject"] == "[root/web] FIRING: p99 > 2s"
        assert mail.get_body(("plain",)) is not None and mail.get_body(("html",)) is not None
        client = TestClient(TestServer(create_app(platform)))
        await client.start_server()
        try:
            resp = await client.post("/api/v1/auth/login", json={"name": "root", "password": PASSWORD})
            csrf = (await resp.json())["csrf_token"]
            assert (await (await client.get("/api/v1/notifications/unread-count")).json()) == {"count": 1}
            [item] = (await (await client.get("/api/v1/notifications")).json())["items"]
            assert item["type"] == "alert_firing" and item["subject"] == "[root/web] FIRING: p99 > 2s"
            resp = await client.post(f"/api/v1/notifications/{item['id']}/read", headers={"X-CSRF-Token": csrf})
            assert resp.status == 200
            assert (await (await client.get("/api/v1/notifications/unread-count")).json()) == {"count": 0}
            resp = await client.get("/api/v1/notifications?status=sent&channel=email")
            assert [i["status"] for i in (await resp.json())["items"]] == ["sent"]
        finally:
            await client.close()
    finally:
        await platform.aclose()
