"""Ports of the projects domain. Stores are bound to one unit of work (one transaction)."""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime
from typing import Literal, Protocol

import attrs

from corral.core.identity.model import SealedSecret
from corral.core.projects.model import (
    BranchProtection,
    Comment,
    Issue,
    IssueFilter,
    Label,
    MergeRequest,
    Milestone,
    Project,
    ProjectPurge,
    Release,
    ReleaseAsset,
    Review,
    Webhook,
    WebhookDelivery,
)

__all__ = [
    "BranchProtectionStore",
    "CommentStore",
    "HttpAnswer",
    "IssueStore",
    "LabelStore",
    "MergeRequestStore",
    "MilestoneStore",
    "ProjectPurgeStore",
    "ProjectResolver",
    "ProjectStore",
    "ReleaseStore",
    "ReviewStore",
    "UserDirectory",
    "WebhookDeliveryStore",
    "WebhookStore",
    "WebhookTransport",
]


class ProjectStore(Protocol):
    """Projects. ``(owner_id, name)`` is unique among active projects, ignoring case (like Gitea).

    ``get``/``get_by_slug`` return only active projects (a deleted project is gone
    for every reader). ``allocate_number`` is atomic: concurrent callers in
    different units of work each get a distinct number, 1, 2, 3, ... with no gap
    once committed.
    """

    async def add(self, project: Project) -> None:
        """Insert; Conflict if the owner already has an active project of that name."""
        ...

    async def get(self, project_id: uuid.UUID) -> Project | None: ...

    async def get_by_slug(self, owner: str, name: str) -> Project | None:
        """By owner user name and project name, ignoring case ("Alice/Demo" finds alice/demo)."""
        ...

    async def owned_by(self, owner_id: uuid.UUID) -> builtins.list[uuid.UUID]:
        """The ids of the active projects ``owner_id`` owns (ordered by id)."""
        ...

    async def list(self, *, after: uuid.UUID | None, limit: int) -> list[Project]:
        """Active projects ordered by id, starting after ``after``."""
        ...

    async def update(self, project: Project) -> None:
        """Replace the mutable fields; Conflict on a name clash."""
        ...

    async def delete(self, project_id: uuid.UUID) -> None:
        """Remove the project and everything that belongs to it (issues, merge requests, webhooks...)."""
        ...

    async def allocate_number(self, project_id: uuid.UUID, kind: Literal["issue", "mr"]) -> int:
        """The next issue or merge request number of the project (locks the counter until commit)."""
        ...

    async def set_redirect(self, owner_id: uuid.UUID, name: str, project_id: uuid.UUID) -> None:
        """Remember that ``name`` of ``owner_id`` now means ``project_id`` (replaces an older redirect of that
        name in any case)."""
        ...

    async def drop_redirect(self, owner_id: uuid.UUID, name: str) -> None:
        """Forget the redirect of ``name`` in any case (a project now has that name); a missing one is no error."""
        ...

    async def redirect(self, owner: str, name: str) -> Project | None:
        """The active project that ``owner``/``name`` (an old name, any case) redirects to, or None."""
        ...


class IssueStore(Protocol):
    """Issues; ``(project_id, number)`` is unique."""

    async def add(self, issue: Issue) -> None: ...

    async def get(self, project_id: uuid.UUID, number: int) -> Issue | None: ...

    async def list(self, project_id: uuid.UUID, flt: IssueFilter) -> list[Issue]:
        """Matching issues, highest number first, at most ``flt.limit`` after skipping ``flt.offset``."""
        ...

    async def update(self, issue: Issue) -> None: ...


class CommentStore(Protocol):
    """Comments of issues and merge requests, oldest first."""

    async def add(self, comment: Comment) -> None: ...

    async def list(
        self, project_id: uuid.UUID, *, issue_id: uuid.UUID | None = None, mr_id: uuid.UUID | None = None,
        after: uuid.UUID | None = None, limit: int = 50,
    ) -> list[Comment]:
        """Comments of exactly one issue or merge request, by id (creation order), after ``after``."""
        ...


class LabelStore(Protocol):
    """Labels of projects; ``(project_id, name)`` is unique ignoring case."""

    async def add(self, label: Label) -> None:
        """Insert; Conflict if the project has a label of that name (any case)."""
        ...

    async def list(self, project_id: uuid.UUID) -> builtins.list[Label]:
        """The project's labels ordered by name ignoring case."""
        ...

    async def get(self, project_id: uuid.UUID, label_id: uuid.UUID) -> Label | None: ...

    async def update(self, label: Label, *, old_name: str) -> None:
        """Replace name, colour and description; a new name replaces ``old_name`` on the project's issues and merge
        requests. Conflict on a name clash."""
        ...

    async def delete(self, project_id: uuid.UUID, label_id: uuid.UUID) -> bool:
        """Remove the label and its name from the project's issues and merge requests; False if there was none."""
        ...


class ReleaseStore(Protocol):
    """Releases of projects (one per tag) with their assets; ``(release_id, asset name)`` is unique."""

    async def add(self, release: Release) -> None:
        """Insert (without assets); Conflict if the project has a release of that tag."""
        ...

    async def get(self, project_id: uuid.UUID, release_id: uuid.UUID) -> Release | None:
        """The release with its assets by name."""
        ...

    async def list(self, project_id: uuid.UUID, *, drafts: bool) -> builtins.list[Release]:
        """Newest first (created_at, then id), with assets; drafts only when ``drafts``."""
        ...

    async def update(self, release: Release) -> None:
        """Replace title, notes, draft, prerelease, updated_at and published_at."""
        ...

    async def delete(self, project_id: uuid.UUID, release_id: uuid.UUID) -> builtins.list[str]:
        """Remove the release and its assets; the object keys of those assets (empty if there was none)."""
        ...

    async def add_asset(self, asset: ReleaseAsset) -> None:
        """Insert; Conflict if the release has an asset of that name."""
        ...

    async def delete_asset(self, release_id: uuid.UUID, name: str) -> ReleaseAsset | None:
        """Remove the asset; what it was, or None."""
        ...


class MilestoneStore(Protocol):
    """Milestones of projects; ``(project_id, title)`` is unique ignoring case."""

    async def add(self, milestone: Milestone) -> None:
        """Insert; Conflict if the project has a milestone of that title (any case)."""
        ...

    async def list(self, project_id: uuid.UUID, state: str | None = None) -> builtins.list[Milestone]:
        """The project's milestones (of ``state`` when given): due date first (none last), then title."""
        ...

    async def get(self, project_id: uuid.UUID, milestone_id: uuid.UUID) -> Milestone | None: ...

    async def update(self, milestone: Milestone) -> None:
        """Replace the mutable fields; Conflict on a title clash."""
        ...

    async def delete(self, project_id: uuid.UUID, milestone_id: uuid.UUID) -> bool:
        """Remove; its issues and merge requests lose their milestone. False if there was none."""
        ...

    async def issue_counts(self, project_id: uuid.UUID) -> dict[uuid.UUID, tuple[int, int]]:
        """(open, closed) issues per milestone of the project (milestones without issues are left out)."""
        ...


class MergeRequestStore(Protocol):
    """Merge requests; ``(project_id, number)`` is unique."""

    async def add(self, mr: MergeRequest) -> None: ...

    async def get(self, project_id: uuid.UUID, number: int) -> MergeRequest | None: ...

    async def list(self, project_id: uuid.UUID, flt: IssueFilter) -> list[MergeRequest]:
        """By status, labels, milestone and assignee (one of ``assignee_ids``), highest number first."""
        ...

    async def update(self, mr: MergeRequest) -> None: ...

    async def lock(self, project_id: uuid.UUID, number: int) -> MergeRequest | None:
        """``get`` that also locks the row until the unit of work ends (serialises merges)."""
        ...


class ReviewStore(Protocol):
    """Reviews of merge requests, oldest first."""

    async def add(self, review: Review) -> None: ...

    async def list(self, mr_id: uuid.UUID) -> list[Review]: ...


class BranchProtectionStore(Protocol):
    """Branch protection rules; ``(project_id, pattern)`` is unique."""

    async def add(self, rule: BranchProtection) -> None:
        """Insert; Conflict if the pattern is already protected in this project."""
        ...

    async def list(self, project_id: uuid.UUID) -> list[BranchProtection]:
        """Rules of the project ordered by pattern."""
        ...

    async def get(self, project_id: uuid.UUID, rule_id: uuid.UUID) -> BranchProtection | None: ...

    async def update(self, rule: BranchProtection) -> None: ...

    async def delete(self, project_id: uuid.UUID, rule_id: uuid.UUID) -> bool:
        """Remove; False if there was no such rule."""
        ...


class WebhookStore(Protocol):
    """Webhooks of projects. Secrets are stored sealed (corral.core.projects.webhook_seal); a secret an older
    Corral stored in plain text reads as UNSEALED_SECRET until ``seal_plaintext`` replaces it."""

    async def add(self, hook: Webhook) -> None: ...

    async def get(self, project_id: uuid.UUID, hook_id: uuid.UUID) -> Webhook | None: ...

    async def list(self, project_id: uuid.UUID) -> list[Webhook]:
        """All webhooks of the project, oldest first."""
        ...

    async def update(self, hook: Webhook) -> None: ...

    async def delete(self, project_id: uuid.UUID, hook_id: uuid.UUID) -> bool: ...

    async def claim_for_rewrap(self, current_key_id: str, limit: int) -> builtins.list[Webhook]:
        """Up to ``limit`` webhooks whose sealed secret's data key is wrapped under another master key, locked
        for this unit of work (rows another unit holds are skipped)."""
        ...

    async def count_by_key(self) -> dict[str, int]:
        """How many sealed webhook secrets have their data key wrapped under each master key id."""
        ...

    async def claim_plaintext(self, limit: int) -> builtins.list[tuple[uuid.UUID, str]]:
        """Up to ``limit`` (webhook id, plaintext secret) still stored in plain text, locked like
        ``claim_for_rewrap``."""
        ...

    async def seal_plaintext(self, hook_id: uuid.UUID, sealed: SealedSecret) -> None:
        """Store ``sealed`` as the webhook's secret and clear the plain text."""
        ...


class WebhookDeliveryStore(Protocol):
    """The delivery log and queue.

    ``claim_due`` returns pending deliveries whose ``next_attempt_at`` has come,
    oldest first, and locks them so concurrent delivery loops (other replicas)
    skip them until this unit of work ends.
    """

    async def add(self, delivery: WebhookDelivery) -> None: ...

    async def get(self, delivery_id: uuid.UUID) -> WebhookDelivery | None: ...

    async def list(self, webhook_id: uuid.UUID, *, before: uuid.UUID | None, limit: int) -> list[WebhookDelivery]:
        """Deliveries of one webhook, newest first, older than ``before``."""
        ...

    async def claim_due(self, now: datetime, limit: int) -> builtins.list[WebhookDelivery]: ...

    async def update(self, delivery: WebhookDelivery) -> None: ...

    async def purge_finished(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` delivered or failed deliveries created before ``before``, oldest first, and
        return how many; pending ones are kept, rows another unit of work holds are skipped."""
        ...


@attrs.frozen
class UserRef:
    """The public face of a user: id, login name, e-mail (for commit identities)."""

    id: uuid.UUID
    name: str
    email: str | None = None


class UserDirectory(Protocol):
    """Read-only view of users for this domain (names in payloads, assignees, owners)."""

    async def by_name(self, name: str) -> UserRef | None:
        """The active user with this login name, or None."""
        ...

    async def by_ids(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, UserRef]:
        """The users among ``ids`` that exist (unknown ids are left out)."""
        ...


class ProjectResolver(Protocol):
    """Used by other domains (RBAC, pipelines, ...) to turn "owner/name" into a project id."""

    async def project_id(self, owner: str, name: str) -> uuid.UUID:
        """The id of the active project ``owner/name``; NotFound otherwise."""
        ...

    async def project_ref(self, ref: str) -> uuid.UUID:
        """The id of "owner/name" or of a project id given as a string; NotFound otherwise."""
        ...

    async def project_names(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The reverse lookup: "owner/name" of each known project id (unknown ids are left out)."""
        ...


@attrs.frozen
class HttpAnswer:
    """What a webhook receiver answered."""

    status: int
    duration_ms: int
    body_excerpt: str = ""


class WebhookTransport(Protocol):
    """Sends one webhook POST (project and notification webhooks alike).

    The URL must pass corral.core.outbound's rules (http/https, a host, no
    credentials, no ``localhost``, no special-purpose address unless the
    transport was built to allow private targets): otherwise InvalidInput
    naming ``url``. A host name is resolved once and the request goes only to
    an address that was checked (a name resolving to a non-public address is
    refused with Unavailable ``corral.core.outbound.NOT_PUBLIC``). Redirects are
    not followed. Network errors and timeouts raise Unavailable with a short
    reason that names no address, port or driver message; any HTTP answer
    (also 3xx/4xx/5xx) is returned.
    """

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> HttpAnswer: ...

    def check_target(self, url: str, field: str = "url") -> None:
        """Validate a URL before it is saved (corral.core.outbound.check_url); InvalidInput naming ``field``."""
        ...


class ProjectPurgeStore(Protocol):
    """The purge rows of deleted projects (``ProjectPurge``), one per project, until the purge is done.

    ``claim`` takes rows whose ``next_attempt_at`` has come (oldest first; only ``project_id``'s when given),
    counts an attempt and moves ``next_attempt_at`` to ``lease_until``, so that no other pass takes them while
    this one works (rows locked by another unit are skipped); a crash leaves them to be claimed again once the
    lease ends. ``finish`` deletes the row; ``fail`` records the error and when to retry.
    """

    async def add(self, purge: ProjectPurge) -> None:
        """Record a purge (Conflict if the project already has one)."""
        ...

    async def get(self, project_id: uuid.UUID) -> ProjectPurge | None: ...

    async def claim(self, now: datetime, lease_until: datetime, limit: int,
                    project_id: uuid.UUID | None = None) -> builtins.list[ProjectPurge]: ...

    async def finish(self, project_id: uuid.UUID) -> None: ...

    async def fail(self, project_id: uuid.UUID, error: str, retry_at: datetime) -> None: ...
