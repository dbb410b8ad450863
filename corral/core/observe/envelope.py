"""The correlation envelope: which service, project, session and user a record belongs to.

Sources, first match wins (record attributes override resource attributes,
the token gives the defaults):

================  ===========================================================
service           ``service.name`` (default ``unknown_service``)
project           ``corral.project_id`` (a UUID) or ``corral.project``
                  (``owner/name``); default: the token's project
session           ``corral.session_id`` (or the semantic-convention ``session.id``)
user              ``enduser.id`` when it is a UUID; default: the token's user
trace / span      the record's own trace_id / span_id fields
================  ===========================================================

These keys are removed from the stored attributes (they live in columns).
Pure functions: no I/O. Resolving ``owner/name`` to an id is the caller's
job, through the ``lookup`` callable.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from corral.core.observe.model import Caller

__all__ = [
    "ENVELOPE_KEYS",
    "NUMBER_LEVELS",
    "Envelope",
    "ProjectRejected",
    "UnknownProjects",
    "level_from_severity",
    "resolve_envelope",
]

SERVICE_KEY = "service.name"
PROJECT_ID_KEY = "corral.project_id"
PROJECT_KEY = "corral.project"
SESSION_KEYS = ("corral.session_id", "session.id")
USER_KEY = "enduser.id"
ENVELOPE_KEYS = frozenset({SERVICE_KEY, PROJECT_ID_KEY, PROJECT_KEY, *SESSION_KEYS, USER_KEY})
DEFAULT_SERVICE = "unknown_service"


@attrs.frozen
class Envelope:
    service: str
    project_id: uuid.UUID | None
    session_id: str | None
    user_id: uuid.UUID | None


class UnknownProjects(Exception):
    """The lookup has not seen these ``owner/name`` paths yet: resolve them, then decode again."""

    def __init__(self, paths: set[str]) -> None:
        super().__init__(", ".join(sorted(paths)))
        self.paths = paths


class ProjectRejected(Exception):
    """The records may not be written: unknown project, or a project the token is not limited to."""


def _as_uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str) and len(value) in (32, 36):
        try:
            return uuid.UUID(value)
        except ValueError:
            return None
    return None


def resolve_envelope(
    attrs_: Mapping[str, Any],
    caller: Caller,
    lookup: Callable[[str], uuid.UUID | object | None],
    parent: Envelope | None = None,
) -> Envelope:
    """The envelope of a resource (``parent`` None) or of a record inside it.

    ``lookup(path)`` returns the project id, None for a path that names no
    project, or ``UNKNOWN`` (any other object) when it has not been resolved
    yet, which raises UnknownProjects. Raises ProjectRejected when the
    project is unknown or outside the token's restriction.
    """
    if parent is not None and not (ENVELOPE_KEYS & attrs_.keys()):
        return parent  # the common case: a record that names nothing of its own
    base = parent or Envelope(
        service=DEFAULT_SERVICE,
        project_id=caller.project_id or caller.default_project_id,
        session_id=None,
        user_id=caller.user_id,
    )
    service = attrs_.get(SERVICE_KEY)
    service = str(service) if service not in (None, "") else base.service
    project_id = base.project_id
    raw_id = attrs_.get(PROJECT_ID_KEY)
    raw_path = attrs_.get(PROJECT_KEY)
    if raw_id not in (None, ""):
        project_id = _as_uuid(raw_id)
        if project_id is None:
            raise ProjectRejected(f"{PROJECT_ID_KEY} {raw_id!r} is not a UUID")
    elif raw_path not in (None, ""):
        found = lookup(str(raw_path))
        if found is None:
            raise ProjectRejected(f"{PROJECT_KEY} {raw_path!r} names no project")
        if not isinstance(found, uuid.UUID):
            raise UnknownProjects({str(raw_path)})
        project_id = found
    if caller.project_id is not None and project_id != caller.project_id:
        raise ProjectRejected("the token is restricted to another project than the records name")
    session = base.session_id
    for key in SESSION_KEYS:
        value = attrs_.get(key)
        if value not in (None, ""):
            session = str(value)
            break
    user_id = base.user_id
    enduser = _as_uuid(attrs_.get(USER_KEY))
    if enduser is not None:
        user_id = enduser
    return Envelope(service=service, project_id=project_id, session_id=session, user_id=user_id)


def strip_envelope(attrs_: dict[str, Any]) -> dict[str, Any]:
    """The attributes without the envelope keys (which are stored in columns)."""
    if ENVELOPE_KEYS & attrs_.keys():
        return {k: v for k, v in attrs_.items() if k not in ENVELOPE_KEYS}
    return attrs_


_TEXT_LEVELS = {
    "trace": "trace",
    "debug": "debug",
    "info": "info",
    "information": "info",
    "notice": "info",
    "warn": "warn",
    "warning": "warn",
    "error": "error",
    "err": "error",
    "critical": "fatal",
    "fatal": "fatal",
    "panic": "fatal",
}
NUMBER_LEVELS = (
    "info",
    *(["trace"] * 4),
    *(["debug"] * 4),
    *(["info"] * 4),
    *(["warn"] * 4),
    *(["error"] * 4),
    *(["fatal"] * 4),
)


def level_from_severity(number: int, text: str) -> str:
    """Map OTLP SeverityNumber (1–24) or, when unset, the severity text to one of LEVELS."""
    if 0 < number < len(NUMBER_LEVELS):
        return NUMBER_LEVELS[number]
    if text:
        return _TEXT_LEVELS.get(text.strip().lower(), "info")
    return "info"
