"""``corral admin create-user NAME --email E [--admin | --agent]``: the password is prompted for or read from stdin."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from typing import TextIO

from corral.core.errors import CorralError
from corral.entrypoints.cli import _configure_logging, command, instance_settings


@command("admin", "user administration: create-user NAME --email E [--admin] (password prompted or on stdin)")
def _admin_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["create-user"])
    p.add_argument("name", help="login name")
    p.add_argument("--email", required=True, help="e-mail address")
    p.add_argument("--display-name", help="shown instead of the login name")
    p.add_argument("--admin", action="store_true", help="bind the admin role globally")
    p.add_argument("--agent", action="store_true", help="an agent: no password, authenticates with tokens only")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--init", action="store_true",
                   help="create a new instance when the data directory holds none (otherwise refused)")


def read_password(stdin: TextIO | None = None) -> str:
    """From the terminal (asked twice) or, when stdin is not a terminal, its first line."""
    stream = stdin or sys.stdin
    if not stream.isatty():
        return stream.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("repeat password: ") != first:
        raise CorralError("the passwords differ; nothing was created")
    return first


@_admin_args.run
def _admin(args: argparse.Namespace) -> int:
    settings = instance_settings(args, require=True)
    _configure_logging(settings, quiet=True)
    if settings.profile == "memory":
        raise CorralError("the memory profile keeps no users; run `corral serve --memory` with "
                          "CORRAL_BOOTSTRAP_ADMIN_* instead")
    password = None if args.agent else read_password()

    async def run() -> dict[str, object]:
        from corral.core.identity.commands import NewUser
        from corral.core.identity.kit import IdentityServices
        from corral.core.identity.service import SYSTEM
        from corral.entrypoints.bootstrap import start_platform

        platform = await start_platform(settings, attach=True)
        try:
            ids: IdentityServices = platform.resolve(IdentityServices)
            user = await ids.users.create(SYSTEM, NewUser(
                name=args.name, email=args.email, password=password, display_name=args.display_name,
                admin=args.admin, agent=args.agent))
        finally:
            await platform.aclose()
        return {"id": str(user.id), "name": user.name, "email": user.email, "admin": args.admin,
                "agent": args.agent}

    created = asyncio.run(run())
    if args.json:
        print(json.dumps(created))
    else:
        kind = "admin" if args.admin else "agent" if args.agent else "user"
        print(f"created {kind} {created['name']} ({created['id']})")
    return 0
