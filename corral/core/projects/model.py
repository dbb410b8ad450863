"""Projects, issues, comments, merge requests, reviews, branch protections and webhooks."""

from __future__ import annotations

import enum
import fnmatch
import re
import uuid
from datetime import date, datetime
from typing import Any, Final

import attrs

from corral.core.errors import InvalidInput
from corral.core.identity.model import SealedSecret
from corral.core.outbox.topics import WEBHOOK_EVENT_OF_TOPIC
from corral.core.secrets.model import WrappedKey

__all__ = [
    "RESERVED_NAMES",
    "UNSEALED_SECRET",
    "WEBHOOK_EVENTS",
    "Actor",
    "BranchProtection",
    "Comment",
    "DeliveryStatus",
    "Issue",
    "IssueFilter",
    "IssueStatus",
    "Label",
    "MergeRequest",
    "Milestone",
    "MrStatus",
    "Project",
    "ProjectPurge",
    "PurgeParts",
    "Release",
    "ReleaseAsset",
    "Review",
    "Verdict",
    "Visibility",
    "Webhook",
    "WebhookDelivery",
    "check_branch_name",
    "check_project_name",
    "event_for_topic",
]

# Names that would shadow routes or confuse git ("owner/api", "owner/info", ...).
RESERVED_NAMES = frozenset(
    {
        ".", "..", "api", "assets", "static", "info", "objects", "refs", "hooks", "new", "settings",
        "login", "logout", "admin", "explore", "healthz", "readyz", "metrics", "v1", "ui", "git",
        "git-upload-pack", "git-receive-pack", "head", "issues", "merge-requests", "raw",
    }
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_OWNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

WEBHOOK_EVENTS = tuple(dict.fromkeys(WEBHOOK_EVENT_OF_TOPIC.values()))


def check_project_name(name: object, field: str = "name") -> str:
    """A project slug: 1-100 of letters, digits, '.', '_', '-', starting with a letter or digit,
    not ending in '.git', not a reserved name. Raises InvalidInput naming ``field``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"{field} must be 1-100 letters, digits, '.', '_' or '-' and start with a letter or digit",
            field=field,
        )
    lowered = name.lower()
    if lowered.endswith(".git") or lowered.endswith(".atom") or ".." in name:
        raise InvalidInput(f"{field} must not end in '.git' or '.atom' nor contain '..'", field=field)
    if lowered in RESERVED_NAMES:
        raise InvalidInput(f"{field} {name!r} is reserved; choose another name", field=field)
    return name


def check_owner_name(owner: str) -> bool:
    """Whether ``owner`` can be a user name in a slug (used to refuse traversal before any lookup)."""
    return bool(_OWNER.match(owner)) and ".." not in owner


_REF_BAD = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock$|\.lock/|^/|/$|^\.|\.$|^-|^@$")


_DRAFT_PREFIXES = ("wip:", "draft:", "[wip]", "[draft]")


def is_draft(title: str) -> bool:
    """A merge request is a draft (it cannot be merged) while its title starts with WIP: or Draft: (as Gitea)."""
    return title.lstrip().lower().startswith(_DRAFT_PREFIXES)


def draft_title(title: str, draft: bool) -> str:
    """``title`` with the draft prefix added (``Draft: ``) or every draft prefix removed."""
    if draft:
        return title if is_draft(title) else f"Draft: {title}"
    stripped = title.lstrip()
    while is_draft(stripped):
        prefix = next(p for p in _DRAFT_PREFIXES if stripped.lower().startswith(p))
        stripped = stripped[len(prefix):].lstrip()
    return stripped or title


def check_branch_name(branch: object, field: str = "branch") -> str:
    """A branch name git accepts (git check-ref-format rules), at most 255 bytes."""
    if not isinstance(branch, str) or not branch or len(branch.encode()) > 255 or _REF_BAD.search(branch):
        raise InvalidInput(f"{field} must be a valid git branch name", field=field)
    return branch


class Visibility(enum.StrEnum):
    """Who may read a project: members only, any signed-in user, or everyone (also anonymous)."""

    PRIVATE = "private"
    INTERNAL = "internal"
    PUBLIC = "public"


@attrs.frozen
class Actor:
    """Who performs a use case: the authenticated user (or agent), by id and login name."""

    id: uuid.UUID
    name: str
    email: str | None = None


@attrs.frozen
class Project:
    """A project: a bare repository plus issues, merge requests and settings. Addressed as owner/name."""

    id: uuid.UUID
    owner_id: uuid.UUID
    owner_name: str
    name: str
    visibility: Visibility
    default_branch: str
    repo_path: str  # relative to the repositories root
    created_at: datetime
    updated_at: datetime
    display_name: str | None = None
    description: str | None = None
    is_active: bool = True  # False once deleted (soft) - never listed
    archived: bool = False  # read-only: pushes and new issues/merge requests refused

    @property
    def full_name(self) -> str:
        return f"{self.owner_name}/{self.name}"


class IssueStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@attrs.frozen
class Issue:
    """A project-scoped issue numbered 1, 2, 3, ... in creation order."""

    id: uuid.UUID
    project_id: uuid.UUID
    number: int
    author_id: uuid.UUID
    title: str
    status: IssueStatus
    created_at: datetime
    updated_at: datetime
    body: str | None = None
    labels: tuple[str, ...] = ()
    assignee_id: uuid.UUID | None = None
    milestone_id: uuid.UUID | None = None


@attrs.frozen
class IssueFilter:
    """Filters for listing issues and merge requests, newest number first."""

    status: str | None = None
    label: str | None = None
    assignee_id: uuid.UUID | None = None  # merge requests: one of its assignees
    limit: int = 50
    before_number: int | None = None  # cursor: only numbers below this
    labels: tuple[str, ...] = ()  # carries every one of these
    milestone_id: uuid.UUID | None = None
    offset: int = 0  # page-number paging (Gitea's page/limit): skip this many matches
    author_id: uuid.UUID | None = None  # opened by this user


@attrs.frozen
class Label:
    """A project's label; issues and merge requests carry label names (unique per project ignoring case)."""

    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    color: str
    created_at: datetime
    description: str | None = None


@attrs.frozen
class ReleaseAsset:
    """A file attached to a release; its bytes are in the object store under ``object_key``."""

    id: uuid.UUID
    release_id: uuid.UUID
    name: str
    size: int
    content_type: str
    object_key: str
    created_at: datetime
    uploader_id: uuid.UUID | None = None


@attrs.frozen
class Release:
    """A tag with a title and markdown notes; a draft (published_at None) is seen by project writers only."""

    id: uuid.UUID
    project_id: uuid.UUID
    tag: str
    target: str
    title: str
    notes: str
    draft: bool
    prerelease: bool
    created_at: datetime
    updated_at: datetime
    author_id: uuid.UUID | None = None
    published_at: datetime | None = None
    assets: tuple[ReleaseAsset, ...] = ()


@attrs.frozen
class Milestone:
    """A project's milestone: issues and merge requests belong to at most one."""

    id: uuid.UUID
    project_id: uuid.UUID
    title: str
    state: str  # open | closed
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    due_on: date | None = None
    closed_at: datetime | None = None


@attrs.frozen
class Comment:
    """A comment on an issue or on a merge request."""

    id: uuid.UUID
    project_id: uuid.UUID
    author_id: uuid.UUID
    body: str
    created_at: datetime
    updated_at: datetime
    issue_id: uuid.UUID | None = None
    mr_id: uuid.UUID | None = None
    # a line comment on a merge request's diff: the line ``line`` of ``path`` on the ``side`` 'new' (the file at
    # ``commit_sha``) or 'old' (the file at the merge base of the target and ``commit_sha``), and that line's
    # text then (to tell when a later head changed it: the comment is then outdated)
    path: str | None = None
    line: int | None = None
    side: str | None = None
    commit_sha: str | None = None
    line_content: str | None = None


class MrStatus(enum.StrEnum):
    """open → merged | closed; closed → open (reopen); merged is final."""

    OPEN = "open"
    MERGED = "merged"
    CLOSED = "closed"


@attrs.frozen
class MergeRequest:
    """A request to merge ``source_branch`` into ``target_branch`` of the same repository."""

    id: uuid.UUID
    project_id: uuid.UUID
    number: int
    author_id: uuid.UUID
    source_branch: str
    target_branch: str
    title: str
    status: MrStatus
    created_at: datetime
    updated_at: datetime
    body: str | None = None
    merged_by: uuid.UUID | None = None
    merged_at: datetime | None = None
    merge_commit_sha: str | None = None
    labels: tuple[str, ...] = ()
    milestone_id: uuid.UUID | None = None
    assignee_ids: tuple[uuid.UUID, ...] = ()
    reviewer_ids: tuple[uuid.UUID, ...] = ()


class Verdict(enum.StrEnum):
    APPROVE = "approve"
    REQUEST_CHANGES = "request_changes"
    COMMENT = "comment"


@attrs.frozen
class Review:
    """A reviewer's verdict on a merge request; the latest verdict of each reviewer counts."""

    id: uuid.UUID
    project_id: uuid.UUID
    mr_id: uuid.UUID
    reviewer_id: uuid.UUID
    verdict: Verdict
    created_at: datetime
    body: str | None = None


@attrs.frozen
class BranchProtection:
    """Rules for branches matching ``pattern`` (an exact name or a glob like ``release/*``)."""

    id: uuid.UUID
    project_id: uuid.UUID
    pattern: str
    created_at: datetime
    allow_force_push: bool = False
    allow_deletion: bool = False
    require_merge_request: bool = False  # direct pushes refused: changes land through merges only
    required_approvals: int = 0
    # who may still push directly to a merge-request-only branch (each such push is audited)
    bypass_admins: bool = False  # holders of project:admin on the project
    push_allowlist: tuple[uuid.UUID, ...] = ()  # user ids
    # pipeline checks that must have succeeded on a merge request's head before it merges: workflow names,
    # or "pipeline" for the whole pipeline (corral.core.pipelines.checks)
    required_checks: tuple[str, ...] = ()

    def bypassed_by(self, user_id: uuid.UUID | None, *, is_admin: bool) -> str | None:
        """Why ``user_id`` may push directly despite ``require_merge_request`` ('admin', 'allowlist'), or None."""
        if not self.require_merge_request:
            return None
        if user_id is not None and user_id in self.push_allowlist:
            return "allowlist"
        return "admin" if self.bypass_admins and is_admin else None

    def matches(self, branch: str) -> bool:
        return branch == self.pattern or fnmatch.fnmatchcase(branch, self.pattern)


@attrs.frozen
class Webhook:
    """An HTTP endpoint notified of a project's events, signed with HMAC-SHA256 of ``secret``.

    The secret is sealed (corral.core.projects.webhook_seal); UNSEALED_SECRET stands for one an older Corral
    stored in plain text and the start-up step has not sealed yet (deliveries wait for it).
    """

    id: uuid.UUID
    project_id: uuid.UUID
    url: str
    events: tuple[str, ...]
    created_at: datetime
    secret: SealedSecret | None = attrs.field(default=None, repr=False)
    active: bool = True


UNSEALED_SECRET: Final = SealedSecret(ciphertext=b"", wrapped_key=WrappedKey(key_id="", blob=b""))


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its (next) attempt
    DELIVERED = "delivered"  # a 2xx answer
    FAILED = "failed"  # attempts exhausted


@attrs.frozen
class WebhookDelivery:
    """One event to one webhook, with its attempt history summary (the delivery log)."""

    id: uuid.UUID
    webhook_id: uuid.UUID
    project_id: uuid.UUID
    event: str
    payload: dict[str, Any]
    status: DeliveryStatus
    created_at: datetime
    next_attempt_at: datetime | None
    attempts: int = 0
    status_code: int | None = None
    duration_ms: int | None = None
    response_excerpt: str | None = None
    error: str | None = None
    delivered_at: datetime | None = None
    redelivery_of: uuid.UUID | None = None


def event_for_topic(topic: str) -> str | None:
    """The webhook event an outbox topic is delivered as (corral.core.outbox.topics), or None."""
    return WEBHOOK_EVENT_OF_TOPIC.get(topic)


@attrs.frozen
class PurgeParts:
    """What one domain keeps for a project outside PostgreSQL: object-store prefixes (each ending in '/') and
    executor workspaces (by key)."""

    prefixes: tuple[str, ...] = ()
    workspaces: tuple[str, ...] = ()


@attrs.frozen
class ProjectPurge:
    """A deleted project's leftovers outside PostgreSQL, recorded in the transaction that deletes it and deleted
    by the purge job until done (a crash mid-purge leaves the row: the next pass starts over; every step is
    idempotent)."""

    project_id: uuid.UUID
    project_name: str  # owner/name when it was deleted (logs)
    repo_path: str  # the bare repository, relative to the repositories root
    prefixes: tuple[str, ...]
    workspaces: tuple[str, ...]
    created_at: datetime
    next_attempt_at: datetime  # claimed rows: the end of the claim's lease
    attempts: int = 0
    last_error: str | None = None
