"""Where the client keeps its server and token: ``$XDG_CONFIG_HOME/corral/client.json`` (mode 0600), overridden by
``CORRAL_URL`` / ``CORRAL_TOKEN``; and its cache of OpenAPI documents under ``$XDG_CACHE_HOME/corral``."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from corral.entrypoints.config import CLIENT_VARIABLES

__all__ = ["CLIENT_VARIABLES", "Target", "cache_dir", "config_path", "forget", "load_target", "save_target"]



@attrs.frozen
class Target:
    """The server the client talks to and the token it sends (either may be missing)."""

    url: str | None
    token: str | None = attrs.field(repr=False, default=None)
    source: str = ""  # where the values came from, for messages


def _base(env: Mapping[str, str], variable: str, default: str) -> Path:
    value = env.get(variable)
    return Path(value) if value else Path.home() / default


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return _base(env, "XDG_CONFIG_HOME", ".config") / "corral" / "client.json"


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return _base(env, "XDG_CACHE_HOME", ".cache") / "corral"


def load_target(env: Mapping[str, str] | None = None) -> Target:
    """The configured server: the login file, each value overridden by its environment variable."""
    env = os.environ if env is None else env
    stored: dict[str, Any] = {}
    path = config_path(env)
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(path.read_text())
        stored = loaded if isinstance(loaded, dict) else {}
    url = env.get("CORRAL_URL") or stored.get("url")
    token = env.get("CORRAL_TOKEN") or stored.get("token")
    source = "CORRAL_URL" if env.get("CORRAL_URL") else str(path)
    return Target(url.rstrip("/") if isinstance(url, str) and url else None,
                  token if isinstance(token, str) and token else None, source)


def save_target(url: str, token: str, env: Mapping[str, str] | None = None) -> Path:
    """Store the login (the file is created with mode 0600, its directory 0700; replaced atomically)."""
    path = config_path(env)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".client.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"url": url.rstrip("/"), "token": token}, f)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def forget(env: Mapping[str, str] | None = None) -> bool:
    """Delete the stored login; whether there was one."""
    try:
        config_path(env).unlink()
    except FileNotFoundError:
        return False
    return True


def document_cache(url: str, version: str, env: Mapping[str, str] | None = None) -> Path:
    """The cached OpenAPI document of the server at ``url`` running ``version``."""
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in ".-+" else "_" for c in version)[:64]
    return cache_dir(env) / "openapi" / f"{key}-{safe}.json"
