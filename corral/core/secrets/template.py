"""``${{ secrets.NAME }}`` references in pipeline, agent and deploy configuration.

Substitution is a single pass: a secret value that itself contains
``${{ ... }}`` is inserted literally, never expanded again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from corral.core.errors import InvalidInput

__all__ = ["references", "substitute"]

_REF = re.compile(r"\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_ANY = re.compile(r"\$\{\{\s*secrets\.([^}]*)\}\}")


def _strings(config: Any) -> list[str]:
    if isinstance(config, str):
        return [config]
    if isinstance(config, Mapping):
        return [s for k, v in config.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(config, list | tuple):
        return [s for item in config for s in _strings(item)]
    return []


def references(config: Any) -> set[str]:
    """Names referenced as ``${{ secrets.NAME }}`` anywhere in ``config`` (a string or nested dicts/lists).

    A malformed reference such as ``${{ secrets.my-key }}`` is an InvalidInput naming it.
    """
    names: set[str] = set()
    for text in _strings(config):
        for match in _ANY.finditer(text):
            if not _REF.fullmatch(match.group(0)):
                raise InvalidInput(
                    f"{match.group(0)!r} is not a valid secret reference: use ${{{{ secrets.NAME }}}} "
                    "with letters, digits and underscores",
                    field="secrets",
                )
            names.add(_REF.fullmatch(match.group(0)).group(1))  # type: ignore[union-attr]
    return names


def substitute(config: Any, values: Mapping[str, str]) -> Any:
    """``config`` with every reference replaced by its value (same shape; non-strings untouched).

    Every referenced name must be in ``values`` (resolve them first); a missing
    one is an InvalidInput naming it.
    """

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise InvalidInput(f"secret {name} is not defined in this project or globally", field="secrets")
        return values[name]

    if isinstance(config, str):
        return _REF.sub(one, config)
    if isinstance(config, Mapping):
        return {substitute(k, values): substitute(v, values) for k, v in config.items()}
    if isinstance(config, list):
        return [substitute(item, values) for item in config]
    if isinstance(config, tuple):
        return tuple(substitute(item, values) for item in config)
    return config
