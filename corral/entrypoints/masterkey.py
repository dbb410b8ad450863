"""Where the master key comes from: CORRAL_MASTER_KEY, CORRAL_MASTER_KEY_FILE, or (development) the data dir.

The key never appears in a log line, an error message or ``config check``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from pathlib import Path

from corral.adapters.crypto import KEY_BYTES, AesGcmKeyWrapper
from corral.entrypoints.config import ConfigError, Settings

__all__ = ["MASTER_KEY_FILENAME", "generate_master_key", "load_key_wrapper", "load_master_keys"]

log = logging.getLogger("corral.secrets")
MASTER_KEY_FILENAME = "master.key"
_FORM = f"the base64 encoding of {KEY_BYTES} random bytes (make one with `corral secrets generate-master-key`)"


def generate_master_key() -> str:
    """A new random master key, base64-encoded, ready for CORRAL_MASTER_KEY."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def _decode(text: str, label: str) -> bytes:
    raw = text.strip()
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_" if ("-" in raw or "_" in raw) else None,
                               validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(label, _FORM) from None
    if len(key) != KEY_BYTES:
        raise ConfigError(label, f"{_FORM}; it decodes to {len(key)} bytes")
    return key


def _read_file(path: Path, label: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ConfigError(label, f"a readable file holding {_FORM} ({exc.strerror})") from None


def load_master_keys(settings: Settings, *, persist: bool = True) -> list[bytes]:
    """Current master key first, then previous ones (during a rotation).

    With no key configured: production stops with a ConfigError; development
    generates ``data_dir/master.key`` (mode 0600) once, logging that it did;
    ``persist=False`` (the memory profile) keeps a fresh key in memory only.
    """
    if settings.master_key and settings.master_key_file:
        raise ConfigError("CORRAL_MASTER_KEY", "set alone: CORRAL_MASTER_KEY_FILE is set too")
    if settings.master_key:
        current = _decode(settings.master_key, "CORRAL_MASTER_KEY")
    elif settings.master_key_file:
        current = _decode(_read_file(settings.master_key_file, "CORRAL_MASTER_KEY_FILE"), "CORRAL_MASTER_KEY_FILE")
    elif settings.environment == "production":
        raise ConfigError(
            "CORRAL_MASTER_KEY",
            f"set in production ({_FORM}), or CORRAL_MASTER_KEY_FILE pointing at a mounted secret holding it",
        )
    elif not persist:
        current = os.urandom(KEY_BYTES)
    else:
        current = _embedded_key(settings.data_dir / MASTER_KEY_FILENAME)
    previous: list[bytes] = []
    for label, text in (
        ("CORRAL_MASTER_KEY_PREVIOUS", settings.master_key_previous),
        (
            "CORRAL_MASTER_KEY_PREVIOUS_FILE",
            _read_file(settings.master_key_previous_file, "CORRAL_MASTER_KEY_PREVIOUS_FILE")
            if settings.master_key_previous_file else None,
        ),
    ):
        for part in (text or "").replace("\n", ",").split(","):
            if part.strip():
                key = _decode(part, label)
                if key != current and key not in previous:
                    previous.append(key)
    return [current, *previous]


def _embedded_key(path: Path) -> bytes:
    if path.exists():
        return _decode(_read_file(path, str(path)), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    text = generate_master_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return _decode(_read_file(path, str(path)), str(path))
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    log.warning(
        "generated a new master key for secrets; back it up: secrets cannot be decrypted without it",
        extra={"path": str(path)},
    )
    return _decode(text, str(path))


def load_key_wrapper(settings: Settings, *, persist: bool = True) -> AesGcmKeyWrapper:
    """The master key ring built from settings."""
    return AesGcmKeyWrapper(load_master_keys(settings, persist=persist))
