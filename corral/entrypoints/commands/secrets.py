"""``corral secrets``: generate-master-key, rotation status, rotate-master-key."""

from __future__ import annotations

import argparse
import asyncio
import json

from corral.core.errors import CorralError
from corral.entrypoints.cli import _configure_logging, command, instance_settings
from corral.entrypoints.masterkey import generate_master_key

ROTATE_HELP = """\
Rotating the master key while Corral keeps serving:
  1. set CORRAL_MASTER_KEY to the new key and CORRAL_MASTER_KEY_PREVIOUS to the old one on every replica
     (restart them one by one: each then reads with both keys and writes with the new one);
  2. run `corral secrets rotate-master-key` with the same settings: it re-wraps every data key under the
     new key in small transactions; killed half-way, run it again and it resumes where it stopped;
  3. when it reports nothing remaining, remove CORRAL_MASTER_KEY_PREVIOUS.
"""


@command("secrets", "secrets administration: generate-master-key, status, rotate-master-key")
def _secrets_args(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = ROTATE_HELP
    p.add_argument("action", choices=["generate-master-key", "status", "rotate-master-key"])
    p.add_argument("--batch-size", type=int, default=100, help="data keys re-wrapped per transaction")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--init", action="store_true",
                   help="create a new instance when the data directory holds none (otherwise refused)")


@_secrets_args.run
def _secrets(args: argparse.Namespace) -> int:
    if args.action == "generate-master-key":
        key = generate_master_key()
        print(json.dumps({"master_key": key}) if args.json else key)
        return 0
    if args.batch_size < 1:
        raise CorralError("--batch-size must be at least 1")
    settings = instance_settings(args, require=True)
    _configure_logging(settings, quiet=True)
    if settings.profile == "memory":
        raise CorralError("the memory profile keeps no secrets to rotate")

    async def run() -> dict[str, object]:
        from corral.core.secrets.rotation import MasterKeyRotation
        from corral.entrypoints.bootstrap import start_platform

        platform = await start_platform(settings, attach=True)
        try:
            rotation: MasterKeyRotation = platform.resolve(MasterKeyRotation)
            rotation.batch_size = args.batch_size
            report = await (rotation.run() if args.action == "rotate-master-key" else rotation.status())
        finally:
            await platform.aclose()
        return {
            "current_key_id": report.current_key_id, "rewrapped": report.rewrapped,
            "remaining": report.remaining, "done": report.done,
        }

    result = asyncio.run(run())
    if args.json:
        print(json.dumps(result))
    else:
        if args.action == "rotate-master-key":
            print(f"re-wrapped {result['rewrapped']} data key(s) under master key {result['current_key_id']}")
        if result["done"]:
            print("every data key is wrapped under the current master key; CORRAL_MASTER_KEY_PREVIOUS can go")
        else:
            print(f"still wrapped under previous keys: {result['remaining']}")
    return 0
