"""The ``corral`` command line: serve, migrate, version, config check (domains add more in COMMANDS), and the API
client (``corral login URL``, ``corral RESOURCE VERB``: ``corral.entrypoints.client``) for every other word.

Errors are one line on stderr: exit 2 for bad configuration or usage,
exit 1 for anything else that went wrong (the client's codes are finer: see
``corral --help``). ``--json`` gives machine-readable output for agents.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from corral import __version__
from corral.core.errors import CorralError
from corral.entrypoints.config import ConfigError, Settings, load_settings

__all__ = ["COMMANDS", "main"]

log = logging.getLogger("corral")

# name -> (help, add_arguments(parser), run(args, settings) -> exit code). Domains register more here.
Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
COMMANDS: dict[str, Command] = {}


def command(name: str, help_: str) -> Callable[[Callable[[argparse.ArgumentParser], None]], Any]:
    """Register a sub-command: decorate ``add_arguments``; its ``.run`` attribute is the runner."""

    def register(add_arguments: Callable[[argparse.ArgumentParser], None]) -> Any:
        def bind(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
            COMMANDS[name] = (help_, add_arguments, run)
            return run

        add_arguments.run = bind  # type: ignore[attr-defined]
        return add_arguments

    return register


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings from the environment and ``--config``, with command-line overrides applied."""
    settings = load_settings(config_file=getattr(args, "config", None))
    changes = {k: v for k, v in overrides.items() if v is not None}
    return attrs.evolve(settings, **changes) if changes else settings


def instance_settings(args: argparse.Namespace, *, require: bool = False) -> Settings:
    """Settings of a CLI tool working on an instance: the running server's data directory when
    ``CORRAL_DATA_DIR`` is not given (announced on one stderr line); with ``require``, a data directory
    holding no instance yet is refused (exit 2) unless ``--init`` was given."""
    import os

    from corral.entrypoints.instance import locate, require_instance

    settings = settings_from(args)
    default_dir = attrs.fields(Settings).data_dir.default.factory()  # type: ignore[union-attr]
    explicit = bool(os.environ.get("CORRAL_DATA_DIR")) or settings.data_dir != default_dir
    located = locate(settings, explicit=explicit)
    if require:
        require_instance(located, init=bool(getattr(args, "init", False)))
    return located.settings


# --- serve -------------------------------------------------------------------------------------------------

@command("serve", "run the Corral server (embedded PostgreSQL and Valkey unless configured otherwise)")
def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="address to listen on (CORRAL_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (CORRAL_PORT, default 8080)")
    p.add_argument("--memory", action="store_true", help="run every port on in-memory fakes (no services, no data)")


@_serve_args.run
def _serve(args: argparse.Namespace) -> int:
    settings = settings_from(args, host=args.host, port=args.port, profile="memory" if args.memory else None)
    _configure_logging(settings)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(settings))
    return 0


async def serve(settings: Settings, *, ready: Callable[[int], None] | None = None) -> None:
    """Start the platform and serve until SIGTERM/SIGINT, then shut down gracefully."""
    from aiohttp import web

    from corral.entrypoints.bootstrap import start_platform
    from corral.entrypoints.web.app import create_app

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    platform = await start_platform(settings)
    pointer: Path | None = None
    try:
        app = create_app(platform)
        runner = web.AppRunner(app, shutdown_timeout=settings.shutdown_timeout, access_log=None,
                               handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True)
        await site.start()
        port = runner.addresses[0][1] if runner.addresses else settings.port
        platform.start_background()
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        url = f"http://{host}:{port}"
        if platform.published_runtime:
            from corral.entrypoints.instance import announce

            pointer = announce(settings.data_dir, url)
        log.info("corral is serving", extra={"url": url, "profile": settings.profile})
        where = "in memory" if settings.profile == "memory" else f"data directory {settings.data_dir}"
        print(f"Corral is running at {url} ({where})", file=sys.stderr, flush=True)
        if ready:
            ready(port)
        await stop.wait()
        log.info("shutting down: no new connections, finishing in-flight requests")
        await runner.cleanup()  # stops listening, waits for in-flight handlers up to shutdown_timeout
    finally:
        if pointer is not None:
            from corral.entrypoints.instance import withdraw

            withdraw(pointer)
        await platform.aclose()
        log.info("stopped")


# --- migrate -----------------------------------------------------------------------------------------------

@command("migrate", "apply pending database migrations (idempotent; safe with several replicas)")
def _migrate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--status", action="store_true", help="only show each migration's state; exit 1 if one changed")


@_migrate_args.run
def _migrate(args: argparse.Namespace) -> int:
    settings = instance_settings(args)
    _configure_logging(settings, quiet=True)
    from corral.adapters.postgres.migrator import MigrationState, apply_migrations, migration_status

    async def on(conn: Any) -> list[str] | list[MigrationState]:
        return await migration_status(conn) if args.status else await apply_migrations(conn)

    async def run() -> list[str] | list[MigrationState]:
        from corral.entrypoints.bootstrap import start_platform

        if settings.profile == "memory":
            raise CorralError("the memory profile has no database to migrate")
        if settings.database_url:  # an external database: nothing else needs to start
            from corral.adapters.postgres.pool import connect

            conn = await connect(settings.database_url)
            try:
                return await on(conn)
            finally:
                await conn.close()
        platform = await start_platform(attrs.evolve(settings), migrate=False, attach=True)  # the embedded PostgreSQL
        try:
            pool = platform.pg_pool
            assert pool is not None
            async with pool.acquire() as conn:
                return await on(conn)
        finally:
            await platform.aclose()

    result = asyncio.run(run())
    if args.status:
        states = [s for s in result if isinstance(s, MigrationState)]
        if args.json:
            print(json.dumps({"migrations": [
                {"name": s.name, "state": s.state, "applied_at": s.applied_at.isoformat() if s.applied_at else None}
                for s in states
            ]}))
        else:
            for s in states:
                print(f"{s.state:8} {s.name}")
        return 1 if any(s.state == "changed" for s in states) else 0
    applied = [name for name in result if isinstance(name, str)]
    if args.json:
        print(json.dumps({"applied": applied}))
    elif applied:
        for name in applied:
            print(f"applied {name}")
    else:
        print("database is up to date")
    return 0


# --- version, config check --------------------------------------------------------------------------------

@command("version", "print Corral's version")
def _version_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


@_version_args.run
def _version(args: argparse.Namespace) -> int:
    print(json.dumps({"version": __version__}) if args.json else f"corral {__version__}")
    return 0


@command("config", "inspect configuration: `corral config check` validates CORRAL_* and --config")
def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["check"], help="check: validate and print the effective settings")
    p.add_argument("--json", action="store_true")


@_config_args.run
def _config(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    hidden = {
        "s3_secret_key", "bootstrap_admin_password", "master_key", "master_key_previous", "smtp_password",
        "notify_webhook_secret",
    }
    values = {
        f.name: ("***" if f.name in hidden and getattr(settings, f.name) else getattr(settings, f.name))
        for f in attrs.fields(Settings)
    }
    if args.json:
        print(json.dumps({"ok": True, "settings": values}, default=str))
    else:
        print("configuration is valid")
        for key, value in values.items():
            print(f"  {key} = {value}")
    return 0


# --- plumbing ---------------------------------------------------------------------------------------------

def _configure_logging(settings: Settings, *, quiet: bool = False) -> None:
    from corral.entrypoints.observability import configure_logging

    configure_logging("warning" if quiet else settings.log_level, settings.log_format)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered command."""
    parser = argparse.ArgumentParser(prog="corral", description="Corral: git, CI, auth, telemetry, secrets in one.")
    parser.add_argument("--version", action="version", version=f"corral {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (help_, add_arguments, _run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--config", type=Path, help="TOML file with settings (CORRAL_* variables override it)")
        add_arguments(p)
    return parser


def _load_extensions() -> None:
    """Import the modules that register domain commands (admin, secrets, ...)."""
    import importlib
    import pkgutil

    import corral.entrypoints.commands as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{info.name}")


def _server_actions(parser: argparse.ArgumentParser, name: str) -> set[str] | None:
    """The choices of a server command's first positional (``secrets generate-master-key|status|...``)."""
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        sub = getattr(action, "choices", {}).get(name)
        if isinstance(sub, argparse.ArgumentParser):
            for inner in sub._actions:
                if not inner.option_strings and inner.choices:
                    return {str(c) for c in inner.choices}
    return None


def _is_client(argv: list[str]) -> bool:
    """Whether ``argv`` is an API client command (``corral login``, ``corral issues list``, ...). A server command
    takes precedence; one whose name is also a client resource (``secrets``) goes to the client only for a verb
    that is not one of its own actions and that the client knows (``corral secrets list OWNER/NAME``)."""
    if not argv or argv[0].startswith("-"):
        return False
    word = argv[0]
    if word not in COMMANDS:
        return True
    if len(argv) < 2 or argv[1].startswith("-"):
        return False
    actions = _server_actions(build_parser(), word)
    if actions is None or argv[1] in actions:
        return False
    from corral.entrypoints.client import is_client_resource

    return is_client_resource(word, argv[1])


def _help_with_client(parser: argparse.ArgumentParser) -> int:
    from corral.entrypoints.client import client_main

    parser.print_help()
    print()
    sys.stdout.flush()
    return client_main(["--help"])


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    _load_extensions()
    argv = sys.argv[1:] if argv is None else list(argv)
    if _is_client(argv):
        from corral.entrypoints.client import client_main

        return client_main(argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help"):
        _help_with_client(parser)
        return 0 if argv else 2
    args = parser.parse_args(argv)
    _help, _add, run = COMMANDS[args.command]
    from corral.entrypoints.instance import InstanceError

    try:
        return run(args)
    except InstanceError as exc:
        print(f"corral: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"corral: {exc}", file=sys.stderr)
        return 2
    except CorralError as exc:
        print(f"corral: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"corral: {exc}", file=sys.stderr)
        return 1
