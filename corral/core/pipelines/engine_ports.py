"""What the pipeline engine needs beyond the unit of work and the executor: logs, tokens, secrets."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Protocol

import attrs

__all__ = ["LogWriter", "PipelineToken", "PipelineTokens", "SecretValues", "StepLogs"]


class LogWriter(Protocol):
    """The log of one running step: masked lines in, one object in the store at the end."""

    async def append(self, lines: Sequence[str]) -> None:
        """Add complete lines (without their newline); live readers see them at once."""
        ...

    async def finish(self) -> str | None:
        """Store the whole log in the object store; return its key (None when nothing could be stored).
        Memory stays bounded whatever the log's size (the lines are spooled, not kept)."""
        ...


class StepLogs(Protocol):
    """Step logs: written while the step runs, read back live (this replica) or from the object store.

    ``follow`` yields ``(line_number, text)`` (1-based) for lines after ``after``: from the live log of a step
    running on this replica (waiting for new lines until it finishes), else from the stored object (``key``),
    else nothing. It ends when the step's log is complete.
    """

    def open(self, step_id: uuid.UUID, key: str) -> LogWriter: ...

    def follow(self, step_id: uuid.UUID, key: str | None, after: int = 0,
               wait: bool = True) -> AsyncIterator[tuple[int, str]]:
        """``wait`` False: stop at the end of what the live log holds now instead of waiting for the step."""
        ...


@attrs.frozen
class PipelineToken:
    """A short-lived API token for one pipeline run (``CORRAL_TOKEN``)."""

    id: uuid.UUID
    secret: str = attrs.field(repr=False)


class PipelineTokens(Protocol):
    """Issues the ``CORRAL_TOKEN`` of a run: a token of ``user_id`` restricted to ``project_id`` with the
    user's permissions there intersected with ``scopes``; None when the user holds none of them."""

    async def issue(self, user_id: uuid.UUID, user_name: str, project_id: uuid.UUID, *, scopes: frozenset[str],
                    ttl_seconds: float, name: str) -> PipelineToken | None: ...

    async def revoke(self, token_id: uuid.UUID) -> None: ...


class SecretValues(Protocol):
    """Reads secrets for a run as the user who triggered it (``corral.core.secrets.reader.SecretReader``:
    audited reads with scope ``pipeline``); NotFound / PermissionDenied say which secret and why."""

    async def read(self, user_id: uuid.UUID, user_name: str, project_id: uuid.UUID, names: Iterable[str],
                   reason: str) -> dict[str, str]: ...
