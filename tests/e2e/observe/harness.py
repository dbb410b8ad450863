"""A Corral process for the observability e2e tests and the ingest benchmark.

It builds the real ``Platform`` and app (``create_app``: every route, the real OTLP
receiver, query API, wiring of the observability domain) over real PostgreSQL, Valkey and
a local object store, with one bearer token holding every permission. (The full
``corral serve`` also wires identity and needs every domain's adapters; this harness only
replaces identity by a static token so the telemetry path can be driven end to end.)

    python -m tests.e2e.observe.harness --dsn ... --valkey ... --data-dir ... --port ... --token ...
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import attrs

ADMIN_ID = uuid.UUID("00000000-0000-7000-8000-00000000a0a0")


@attrs.frozen
class StaticPrincipal:
    user_id: uuid.UUID
    name: str
    token_project_id: uuid.UUID | None = None


class StaticTokenAuth:
    """WebAuth: one bearer token, every permission (or a project-restricted second token)."""

    def __init__(self, token: str, restricted: dict[str, uuid.UUID]) -> None:
        self.token = token
        self.restricted = restricted

    async def authenticate(self, request: Any) -> Any:
        from corral.core.errors import Unauthenticated

        header = request.headers.get("Authorization", "")
        if not header:
            return None
        value = header.removeprefix("Bearer ").strip()
        if value == self.token:
            return StaticPrincipal(user_id=ADMIN_ID, name="admin")
        if value in self.restricted:
            return StaticPrincipal(user_id=uuid.uuid4(), name="agent", token_project_id=self.restricted[value])
        raise Unauthenticated("unknown token")

    async def authorize(self, request: Any, principal: Any, permission: str, project_id: uuid.UUID | None) -> None:
        from corral.core.errors import PermissionDenied, Unauthenticated

        if principal is None:
            raise Unauthenticated("authentication required")
        if principal.token_project_id is not None and project_id != principal.token_project_id:
            raise PermissionDenied(f"{permission} is only granted on the token's project")


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


async def run(args: argparse.Namespace) -> None:
    import asyncpg
    from aiohttp import web

    from corral.adapters.localfs import LocalFsObjectStore
    from corral.adapters.postgres.migrator import apply_migrations
    from corral.adapters.valkey import connect_valkey
    from corral.entrypoints.config import load_settings
    from corral.entrypoints.observe_wiring import wire_observe
    from corral.entrypoints.platform import Platform
    from corral.entrypoints.web.app import create_app
    from corral.entrypoints.web.security import WebAuth

    env = {
        "CORRAL_DATA_DIR": args.data_dir,
        "CORRAL_PORT": str(args.port),
        "CORRAL_DATABASE_URL": args.dsn,
        "CORRAL_VALKEY_URL": args.valkey,
        "CORRAL_OBSERVE_ROTATION_SECONDS": "3600",
        "CORRAL_OBSERVE_ALERT_SECONDS": str(args.alert_seconds),
        "CORRAL_VALIDATE_RESPONSES": "true",  # every JSON answer must match its documented schema
    }
    if args.otlp_port:
        env["CORRAL_OTLP_PORT"] = str(args.otlp_port)
    if args.decode_processes is not None:
        env["CORRAL_OTLP_DECODE_PROCESSES"] = str(args.decode_processes)
    settings = load_settings(env)
    conn = await asyncpg.connect(args.dsn)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    platform = Platform(settings=settings)
    platform.database_url = args.dsn
    platform.clock = SystemClock()
    platform.valkey = valkey = connect_valkey(args.valkey)
    platform.closers.append(valkey.aclose)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    platform.objects = LocalFsObjectStore(
        settings.data_dir / "objects", signing_key=b"k" * 32, base_url=settings.public_url(), fsync=False
    )
    restricted = dict(pair.split("=", 1) for pair in args.restricted) if args.restricted else {}
    platform.register(WebAuth, StaticTokenAuth(args.token, {k: uuid.UUID(v) for k, v in restricted.items()}))
    await wire_observe(platform)
    app = create_app(platform)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port, reuse_address=True).start()
    platform.start_background()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print("READY", flush=True)
    await stop.wait()
    await runner.cleanup()
    await platform.aclose()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dsn", required=True)
    p.add_argument("--valkey", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--otlp-port", type=int, default=0)
    p.add_argument("--token", required=True)
    p.add_argument("--restricted", nargs="*", help="token=project_uuid pairs")
    p.add_argument("--alert-seconds", type=float, default=1.0)
    p.add_argument("--decode-processes", type=int, default=None, help="CORRAL_OTLP_DECODE_PROCESSES")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger().handlers[0].setLevel(logging.WARNING)
    logging.getLogger().setLevel(logging.INFO)  # INFO records reach the self-telemetry handler, not stderr
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
