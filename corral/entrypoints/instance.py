"""Which Corral instance a CLI tool works on: the running server's, never a silently created empty one.

A running ``corral serve`` that owns embedded services publishes ``$CORRAL_DATA_DIR/runtime.json`` and, so
that tools started without ``CORRAL_DATA_DIR`` find it, a pointer ``<pid>.json`` naming its data directory
and URL in the per-user directory ``$XDG_RUNTIME_DIR/corral/servers`` (else ``~/.local/state/corral/servers``).

``locate(settings, explicit=...)`` picks the data directory of a CLI tool:

- a data directory given explicitly (``CORRAL_DATA_DIR`` or ``--config``) is used as it is;
- otherwise the default data directory when a server runs on it, else the one running server found through
  the pointers (several: an error asking for ``CORRAL_DATA_DIR``), else the default;

and says which one on one stderr line. ``require_instance`` refuses a data directory holding no database yet
(exit 2) unless the tool was given ``--init``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import attrs

from corral.entrypoints.config import Settings

__all__ = [
    "InstanceError", "Located", "announce", "has_instance", "locate", "registry_dir", "require_instance",
    "running_servers", "withdraw",
]


def registry_dir() -> Path:
    """The per-user directory of running servers' pointers."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "corral" / "servers"
    return Path.home() / ".local" / "state" / "corral" / "servers"


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another account
    return True


def runtime_of(data_dir: Path) -> dict[str, Any] | None:
    """The ``runtime.json`` of a live server on ``data_dir`` (this process included), or None."""
    data = _load(data_dir / "runtime.json")
    return data if data is not None and _alive(data.get("pid")) else None


def announce(data_dir: Path, url: str) -> Path:
    """Record a running server (this process) in its runtime.json and the per-user pointers.

    Returns the pointer's path; the caller removes it at shutdown (``withdraw``).
    """
    runtime = data_dir / "runtime.json"
    current = _load(runtime)
    if current is not None and current.get("pid") == os.getpid():
        current["url"] = url
        _write_private(runtime, current)
    pointer = registry_dir() / f"{os.getpid()}.json"
    try:
        pointer.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_private(pointer, {"pid": os.getpid(), "data_dir": str(data_dir.absolute()), "url": url})
    except OSError:
        pass  # only a convenience for CLI tools started without CORRAL_DATA_DIR
    return pointer


def withdraw(pointer: Path) -> None:
    """Remove this process's pointer."""
    pointer.unlink(missing_ok=True)


def _write_private(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


@attrs.frozen
class RunningServer:
    pid: int
    data_dir: Path
    url: str | None


def running_servers() -> list[RunningServer]:
    """The live servers of this user that announced themselves (stale pointers are removed)."""
    found: dict[Path, RunningServer] = {}
    try:
        pointers = sorted(registry_dir().glob("*.json"))
    except OSError:
        return []
    for pointer in pointers:
        data = _load(pointer)
        pid = (data or {}).get("pid")
        data_dir = Path(str((data or {}).get("data_dir", "")))
        runtime = runtime_of(data_dir) if data else None
        if runtime is None or runtime.get("pid") != pid:  # dead, or the pid was reused by another process
            if not _alive(pid):
                pointer.unlink(missing_ok=True)
            continue
        url = runtime.get("url") or (data or {}).get("url")
        found[data_dir.resolve()] = RunningServer(pid=int(runtime["pid"]), data_dir=data_dir, url=url)
    return list(found.values())


def has_instance(data_dir: Path) -> bool:
    """Whether ``data_dir`` holds a Corral instance: a live server on it, or an initialised embedded database."""
    return runtime_of(data_dir) is not None or (data_dir / "postgres" / "data" / "PG_VERSION").exists()


@attrs.frozen
class Located:
    settings: Settings
    running: bool  # a live server owns this data directory's embedded services


def _describe(server: RunningServer | None, data_dir: Path) -> str:
    if server is None:
        runtime = runtime_of(data_dir)
        if runtime is None:
            return f"using data directory {data_dir} (no running server found)"
        server = RunningServer(pid=int(runtime["pid"]), data_dir=data_dir, url=runtime.get("url"))
    where = f" at {server.url}" if server.url else ""
    return f"using data directory {data_dir} (the running server{where}, pid {server.pid})"


def locate(settings: Settings, *, explicit: bool, err: TextIO | None = None) -> Located:
    """The data directory a CLI tool works on, announced on one stderr line (see the module doc)."""
    out = err or sys.stderr
    if settings.profile == "memory" or settings.database_url:
        return Located(settings, running=False)  # no embedded database: the data directory does not pick it
    data_dir = settings.data_dir
    if not explicit and runtime_of(data_dir) is None:
        others = [s for s in running_servers() if s.data_dir.resolve() != data_dir.resolve()]
        if len(others) > 1:
            listed = ", ".join(str(s.data_dir) for s in others)
            raise InstanceError(f"several Corral servers are running ({listed}): set CORRAL_DATA_DIR to choose one")
        if others:
            settings = attrs.evolve(settings, data_dir=others[0].data_dir)
            print(f"corral: {_describe(others[0], others[0].data_dir)}", file=out)
            return Located(settings, running=True)
    running = runtime_of(settings.data_dir) is not None
    print(f"corral: {_describe(None, settings.data_dir)}", file=out)
    return Located(settings, running=running)


class InstanceError(Exception):
    """No single instance to work on (none and no ``--init``, or several running): exit code 2."""


def require_instance(located: Located, *, init: bool) -> None:
    """Refuse to create a new, empty instance (a data directory without a database) unless ``init``."""
    settings = located.settings
    if init or located.running or settings.profile == "memory" or settings.database_url:
        return
    if not has_instance(settings.data_dir):
        raise InstanceError(
            f"no Corral instance in {settings.data_dir} (no database yet, no running server): set "
            f"CORRAL_DATA_DIR to the server's data directory, or pass --init to create a new instance there"
        )
