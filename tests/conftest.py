"""Shared fixtures: real throwaway services, started lazily and always stopped.

Service fixtures (each service starts at most once per session, only when a test asks for it):

- ``pg_server``: the PostgreSQL 15 cluster (session); ``pg_dsn``: a fresh empty database per test;
  ``db_dsn``: a fresh database with every migration applied (cloned from a per-session template).
- ``valkey_url``: ``redis://127.0.0.1:PORT/0`` of a Valkey server, FLUSHALL-ed before each test.
- ``s3``: the SeaweedFS S3 gateway (``.endpoint``, ``.access_key``, ``.secret_key``, ``.region``);
  ``s3_bucket``: the name of an empty bucket for this test.
- ``smtp_sink``: an SMTP server (``.host``, ``.port``, ``.messages``: received ``EmailMessage`` objects that
  also carry ``.mail_from``/``.rcpt_tos``; ``await smtp_sink.wait_for(n)``), emptied before each test.
- ``kmock`` (from the kmock plugin): an emulated Kubernetes API; ``kube_api``: a kubernetes_asyncio
  ``ApiClient`` pointed at it.

A service that cannot start skips the tests that need it, unless TEST_REQUIRE_SERVICES=1 (``./dev test``,
CI), where it fails them. Services live in ``$TEST_SERVICES_TMPDIR`` (default: /dev/shm when it has room,
else the temp directory), each in a ``corral-<service>-*`` directory removed when the session ends.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from tests.helpers import REQUIRE_SERVICES as REQUIRE_SERVICES  # re-exported: tests import it from here
from tests.helpers import service_missing
from tests.servicekit import PostgresServer, S3Server, ServiceError, SmtpSink, ValkeyServer

# The contract suites live in the package, not under tests/: let pytest explain their failed asserts too.
pytest.register_assert_rewrite("corral.contracts")

TEMPLATE_DB = "corral_template"
_service_missing = service_missing


def _sigterm_to_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt("SIGTERM")


def pytest_sessionstart(session: pytest.Session) -> None:
    # A SIGTERM (CI timeout, `kill`) unwinds like Ctrl-C, so fixture teardown stops the services.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_to_interrupt)


_LAYER_MARKERS = {"unit": "unit", "integration": "integration", "e2e": "e2e"}
_TESTS_ROOT = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with its layer, from its directory: tests/unit -> unit, tests/integration ->
    integration, tests/e2e -> e2e (``-m "not e2e"`` etc. select layers without per-file markers)."""
    for item in items:
        try:
            layer = Path(str(item.path)).resolve().relative_to(_TESTS_ROOT).parts[0]
        except ValueError:
            continue
        marker = _LAYER_MARKERS.get(layer)
        if marker is not None and item.get_closest_marker(marker) is None:
            item.add_marker(marker)


# ----------------------------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer.start()
    except (ServiceError, OSError) as exc:
        _service_missing("PostgreSQL", exc)
    try:
        yield server
    finally:
        server.stop()


async def _admin(pg_server: PostgresServer, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(pg_server.dsn("postgres"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _new_db_name() -> str:
    return f"test_{uuid.uuid4().hex[:16]}"


@pytest.fixture
async def pg_dsn(pg_server: PostgresServer) -> AsyncIterator[str]:
    """A fresh, empty database (dropped after the test, open connections included)."""
    name = _new_db_name()
    await _admin(pg_server, f'CREATE DATABASE "{name}"')
    yield pg_server.dsn(name)
    await _admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def _migrated_template(pg_server: PostgresServer) -> str:
    try:
        from corral.adapters.postgres.migrator import apply_migrations
    except ModuleNotFoundError as exc:
        if exc.name != "corral.adapters.postgres.migrator":
            raise
        pytest.skip(
            "db_dsn needs corral.adapters.postgres.migrator.apply_migrations, which is not on this "
            "branch yet (merge main)"
        )
    import asyncpg

    await _admin(pg_server, f'CREATE DATABASE "{TEMPLATE_DB}"')
    conn = await asyncpg.connect(pg_server.dsn(TEMPLATE_DB))
    try:
        await apply_migrations(conn)
    except Exception as exc:
        pytest.fail(
            f"applying the migrations to a fresh database failed: {type(exc).__name__}: {exc}", pytrace=False
        )
    finally:
        await conn.close()
    # Nobody may connect to the template: CREATE DATABASE ... TEMPLATE fails while a session is open on it.
    await _admin(pg_server, f'ALTER DATABASE "{TEMPLATE_DB}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false')
    return TEMPLATE_DB


@pytest.fixture
async def db_dsn(pg_server: PostgresServer, _migrated_template: str) -> AsyncIterator[str]:
    """A fresh database with every migration applied (a copy of the session's migrated template)."""
    name = _new_db_name()
    # FILE_COPY copies the template's files (fast on tmpfs) instead of WAL-logging every block.
    await _admin(pg_server, f'CREATE DATABASE "{name}" TEMPLATE "{_migrated_template}" STRATEGY FILE_COPY')
    yield pg_server.dsn(name)
    await _admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ----------------------------------------------------------------------------------------------- Valkey


@pytest.fixture(scope="session")
def valkey_server() -> Iterator[ValkeyServer]:
    try:
        server = ValkeyServer.start()
    except (ServiceError, OSError) as exc:
        _service_missing("Valkey", exc)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def valkey_url(valkey_server: ValkeyServer) -> str:
    """``redis://127.0.0.1:PORT/0`` of a Valkey server emptied (FLUSHALL) for this test."""
    valkey_server.flushall()
    return valkey_server.url(0)


# ----------------------------------------------------------------------------------------------- S3


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """The S3 endpoint (SeaweedFS): ``.endpoint``, ``.access_key``, ``.secret_key``, ``.region``."""
    try:
        server = S3Server.start()
    except (ServiceError, OSError) as exc:
        _service_missing("S3 (SeaweedFS)", exc)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3: S3Server) -> Iterator[str]:
    """The name of an empty bucket that belongs to this test."""
    name = s3.new_bucket()
    yield name
    s3.recycle_bucket(name)


# ----------------------------------------------------------------------------------------------- SMTP


@pytest.fixture(scope="session")
def _smtp_server() -> Iterator[SmtpSink]:
    try:
        sink = SmtpSink.start()
    except (ServiceError, OSError) as exc:
        _service_missing("SMTP sink (aiosmtpd)", exc)
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def smtp_sink(_smtp_server: SmtpSink) -> SmtpSink:
    """An SMTP server on ``.host``:``.port`` recording what it receives in ``.messages`` (empty at start)."""
    _smtp_server.clear()
    return _smtp_server


# ----------------------------------------------------------------------------------------------- Kubernetes


@pytest.fixture
async def kube_api(kmock: Any) -> AsyncIterator[Any]:
    """A kubernetes_asyncio ``ApiClient`` talking to the ``kmock`` Kubernetes emulator of this test."""
    from kubernetes_asyncio.client import ApiClient, Configuration

    config = Configuration(host=str(kmock.url).rstrip("/"))
    async with ApiClient(configuration=config) as client:
        yield client
