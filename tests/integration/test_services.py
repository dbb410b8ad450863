"""Each service fixture of tests/conftest.py gives a real, working, isolated service."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiobotocore.session import get_session


async def test_pg_dsn_is_a_fresh_database(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await conn.fetchval("SELECT 1") == 1
        assert await conn.fetchval("SELECT current_setting('server_version_num')::int") >= 150000
        tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables == 0
        await conn.execute("CREATE TABLE marker (id int)")
    finally:
        await conn.close()


async def test_pg_dsn_gives_each_test_its_own_database(pg_dsn: str) -> None:
    # The previous test created `marker` in its database; this one must not see it.
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await conn.fetchval("SELECT to_regclass('public.marker')") is None
    finally:
        await conn.close()


async def test_db_dsn_has_the_migrations_applied(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        applied = await conn.fetchval("SELECT count(*) FROM schema_migrations")
        assert applied > 0
    finally:
        await conn.close()


async def test_valkey_url_set_get(valkey_url: str) -> None:
    client = aioredis.from_url(valkey_url)
    try:
        assert await client.dbsize() == 0
        await client.set("greeting", "hello")
        assert await client.get("greeting") == b"hello"
    finally:
        await client.aclose()


async def test_valkey_is_flushed_between_tests(valkey_url: str) -> None:
    client = aioredis.from_url(valkey_url)
    try:
        assert await client.get("greeting") is None
    finally:
        await client.aclose()


def _s3_client(s3: Any, *, secret_key: str | None = None) -> Any:
    """An S3 client of the test server (with another secret key to test refusal)."""
    return get_session().create_client(
        "s3", endpoint_url=s3.endpoint, aws_access_key_id=s3.access_key,
        aws_secret_access_key=secret_key or s3.secret_key, region_name=s3.region,
    )


async def test_s3_put_get_in_a_fresh_bucket(s3: Any, s3_bucket: str) -> None:
    async with _s3_client(s3) as client:
        listing = await client.list_objects_v2(Bucket=s3_bucket)
        assert listing.get("KeyCount", 0) == 0
        await client.put_object(Bucket=s3_bucket, Key="dir/hello.txt", Body=b"hello s3")
        response = await client.get_object(Bucket=s3_bucket, Key="dir/hello.txt")
        async with response["Body"] as body:
            assert await body.read() == b"hello s3"


async def test_s3_rejects_wrong_credentials(s3: Any, s3_bucket: str) -> None:
    from botocore.exceptions import ClientError

    async with _s3_client(s3, secret_key="not-the-secret") as client:
        with pytest.raises(ClientError):
            await client.put_object(Bucket=s3_bucket, Key="x", Body=b"x")


async def test_s3_bucket_is_empty_even_when_recycled(s3: Any, s3_bucket: str) -> None:
    async with _s3_client(s3) as client:
        listing = await client.list_objects_v2(Bucket=s3_bucket)
        assert listing.get("KeyCount", 0) == 0


def _send(host: str, port: int, msg: EmailMessage, *, login: bool = False) -> None:
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        if login:
            smtp.login("robot", "secret")
        smtp.send_message(
            msg, from_addr="bounce@corral.test", to_addrs=["alice@example.test", "bob@example.test"]
        )


async def test_smtp_sink_receives_mail(smtp_sink: Any) -> None:
    assert smtp_sink.messages == []
    msg = EmailMessage()
    msg["From"] = "Corral <noreply@corral.test>"
    msg["To"] = "alice@example.test"
    msg["Subject"] = "Pipeline failed"
    msg.set_content("build #7 failed")
    await asyncio.to_thread(_send, smtp_sink.host, smtp_sink.port, msg, login=True)

    [received] = await smtp_sink.wait_for(1)
    assert received["Subject"] == "Pipeline failed"
    assert received.get_content().strip() == "build #7 failed"
    assert received.mail_from == "bounce@corral.test"
    assert received.rcpt_tos == ["alice@example.test", "bob@example.test"]
    assert smtp_sink.logins == ["robot"]


async def test_smtp_sink_is_emptied_between_tests(smtp_sink: Any) -> None:
    assert smtp_sink.messages == []


async def test_kmock_serves_the_kubernetes_api(kube_api: Any) -> None:
    from kubernetes_asyncio.client import CoreV1Api

    core = CoreV1Api(kube_api)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "step-1", "namespace": "ci", "labels": {"app": "corral"}},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }
    await core.create_namespaced_pod("ci", pod)
    pods = await core.list_namespaced_pod("ci", label_selector="app=corral")
    assert [p.metadata.name for p in pods.items] == ["step-1"]
