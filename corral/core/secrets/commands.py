"""Typed commands of the secrets use cases (see ``corral.core.commands``).

The value of a secret is write-only: it goes in through ``PutSecret`` and no class of the API ever carries
it back out. ``repr`` hides it so a logged command cannot leak it.
"""

from __future__ import annotations

import attrs

from corral.core.secrets.model import MAX_VALUE_BYTES, SecretScope

__all__ = ["PutSecret", "SecretVersions"]


def _doc(text: str, **kw: object) -> dict[str, object]:
    return {"doc": text, **kw}


@attrs.frozen(kw_only=True)
class PutSecret:
    """Write a new version of a secret (create it when absent)."""

    value: str = attrs.field(repr=False, metadata=_doc(
        f"the secret value, a non-empty string of at most {MAX_VALUE_BYTES} bytes (UTF-8); never returned",
        write_only=True))
    scope: SecretScope = attrs.field(default=SecretScope.PIPELINE,
                                     metadata=_doc("who may read it: pipeline, agent, deploy or all"))
    cas: int | None = attrs.field(default=None, metadata=_doc(
        "check-and-set: 0 creates only, N writes only when the current version is N; null writes unconditionally"))


@attrs.frozen(kw_only=True)
class SecretVersions:
    """The versions of a secret to delete, undelete or destroy (default: the current one)."""

    versions: list[int] | None = attrs.field(default=None, metadata=_doc(
        "version numbers (default: the current version)"))
