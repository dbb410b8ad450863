"""Typed commands of the issues and merge-request use cases (see ``corral.core.commands``)."""

from __future__ import annotations

from typing import Literal

import attrs

from corral.core.commands import UNSET, Unset

__all__ = [
    "BranchProtectionChanges",
    "CommitIdentity",
    "FileDeletion",
    "FileOperation",
    "FileUpload",
    "FilesChange",
    "IssueChanges",
    "LabelChanges",
    "MergeOptions",
    "MergeRequestChanges",
    "MergeStrategyName",
    "MilestoneChanges",
    "NewBranch",
    "NewBranchProtection",
    "NewComment",
    "NewIssue",
    "NewLabel",
    "NewMergeRequest",
    "NewMergeRequestComment",
    "NewMilestone",
    "NewProject",
    "NewRelease",
    "NewReview",
    "NewTag",
    "NewWebhook",
    "ProjectChanges",
    "ReleaseChanges",
    "VerdictName",
    "VisibilityName",
    "WebhookChanges",
    "WebhookEvent",
]

VerdictName = Literal["approve", "request_changes", "comment"]
MergeStrategyName = Literal["merge", "squash", "fast-forward", "rebase"]

VisibilityName = Literal["private", "internal", "public"]
WebhookEvent = Literal["push", "issue", "merge_request", "review", "pipeline", "deployment", "release"]


def _doc(text: str, **kw: object) -> dict[str, object]:
    return {"doc": text, **kw}


@attrs.frozen(kw_only=True)
class NewIssue:
    """Open an issue."""

    title: str = attrs.field(metadata=_doc("1-255 characters"))
    body: str | None = attrs.field(default=None, metadata=_doc("Markdown"))
    labels: list[str] = attrs.field(factory=list, metadata=_doc("names of the project's labels"))
    assignee: str | None = attrs.field(default=None, metadata=_doc("user name"))
    milestone: str | None = attrs.field(default=None, metadata=_doc("the project's milestone: its id or title"))


@attrs.frozen(kw_only=True)
class IssueChanges:
    """Change an issue: only the fields sent change; status open/closed reopens or closes it."""

    title: str | Unset = UNSET
    body: str | Unset | None = UNSET
    labels: list[str] | Unset = attrs.field(default=UNSET, metadata=_doc("names of the project's labels"))
    assignee: str | Unset | None = attrs.field(default=UNSET, metadata=_doc("user name, or null to unassign"))
    status: Literal["open", "closed"] | Unset = UNSET
    milestone: str | Unset | None = attrs.field(default=UNSET, metadata=_doc("milestone id or title; null: none"))


@attrs.frozen(kw_only=True)
class NewComment:
    """Comment on an issue or a merge request."""

    body: str = attrs.field(metadata=_doc("Markdown"))


@attrs.frozen(kw_only=True)
class NewMergeRequestComment:
    """Comment on a merge request; with ``path`` and ``line``, a review comment on that line of the diff."""

    body: str = attrs.field(metadata=_doc("Markdown"))
    path: str | None = attrs.field(default=None, metadata=_doc("file the line comment is on (needs line)"))
    line: int | None = attrs.field(default=None, metadata=_doc("1-based line number in that file (needs path)"))
    side: Literal["old", "new"] = attrs.field(default="new", metadata=_doc(
        "new: the line in the file at commit_sha; old: the line in the file at the merge base"))
    commit_sha: str | None = attrs.field(default=None, metadata=_doc(
        "the commit the line number refers to (default: the merge request's head)"))


@attrs.frozen(kw_only=True)
class NewMergeRequest:
    """Open a merge request from a branch."""

    source_branch: str
    title: str
    target_branch: str | None = attrs.field(default=None, metadata=_doc("default: the project's default branch"))
    body: str | None = None
    draft: bool = attrs.field(default=False, metadata=_doc(
        "a draft cannot be merged; true prefixes the title with 'Draft: ' (a title starting WIP: or Draft: is one)"))
    labels: list[str] = attrs.field(factory=list, metadata=_doc("names of the project's labels"))
    milestone: str | None = attrs.field(default=None, metadata=_doc("the project's milestone: its id or title"))
    assignees: list[str] = attrs.field(factory=list, metadata=_doc("user names"))
    reviewers: list[str] = attrs.field(factory=list, metadata=_doc(
        "user names asked to review (each is notified: review_requested)"))


@attrs.frozen(kw_only=True)
class MergeRequestChanges:
    """Change a merge request: only the fields sent change; status closed closes it, open reopens it."""

    title: str | Unset = UNSET
    body: str | Unset | None = UNSET
    target_branch: str | Unset = UNSET
    status: Literal["open", "closed"] | Unset = UNSET
    draft: bool | Unset = attrs.field(default=UNSET, metadata=_doc(
        "true: mark as draft (title prefix 'Draft: '); false: ready (the WIP:/Draft: prefix removed)"))
    labels: list[str] | Unset = attrs.field(default=UNSET, metadata=_doc("names of the project's labels"))
    milestone: str | Unset | None = attrs.field(default=UNSET, metadata=_doc("milestone id or title; null: none"))
    assignees: list[str] | Unset = attrs.field(default=UNSET, metadata=_doc("user names"))
    reviewers: list[str] | Unset = attrs.field(default=UNSET, metadata=_doc(
        "user names asked to review (those added are notified: review_requested)"))


@attrs.frozen(kw_only=True)
class NewReview:
    """Review a merge request."""

    verdict: VerdictName
    body: str | None = None


@attrs.frozen(kw_only=True)
class MergeOptions:
    """How to merge (an empty body merges with a merge commit)."""

    strategy: MergeStrategyName = attrs.field(default="merge", metadata=_doc(
        "merge: a merge commit; squash: one commit; fast-forward: move the target; rebase: the source's commits "
        "replayed on the target (authors kept)"))
    delete_source_branch: bool = attrs.field(default=False, metadata=_doc(
        "delete the source branch once merged (refused before merging when its protection forbids deletion)"))


@attrs.frozen(kw_only=True)
class NewLabel:
    """Add a label to a project."""

    name: str = attrs.field(metadata=_doc("1-64 characters, unique in the project ignoring case, no comma"))
    color: str = attrs.field(default="#cccccc", metadata=_doc("#rrggbb (or rrggbb)"))
    description: str | None = attrs.field(default=None, metadata=_doc("at most 500 characters"))


@attrs.frozen(kw_only=True)
class LabelChanges:
    """Change a label: only the fields sent change; a new name is carried over to its issues and merge requests."""

    name: str | Unset = UNSET
    color: str | Unset = UNSET
    description: str | Unset | None = UNSET


@attrs.frozen(kw_only=True)
class NewRelease:
    """Publish (or draft) a release of a tag; a tag that does not exist is created at ``target``."""

    tag: str = attrs.field(metadata=_doc("the tag name; created at target (like a push) when it does not exist"))
    target: str | None = attrs.field(default=None, metadata=_doc(
        "branch, tag or commit of a new tag (default: the default branch); ignored for an existing tag"))
    title: str | None = attrs.field(default=None, metadata=_doc("at most 255 characters (default: the tag)"))
    notes: str | None = attrs.field(default=None, metadata=_doc("markdown (the UI renders it)"))
    draft: bool = attrs.field(default=False, metadata=_doc("seen by project writers only, until published"))
    prerelease: bool = False


@attrs.frozen(kw_only=True)
class ReleaseChanges:
    """Change a release: only the fields sent change; draft false publishes a draft."""

    title: str | Unset = UNSET
    notes: str | Unset | None = UNSET
    draft: bool | Unset = UNSET
    prerelease: bool | Unset = UNSET


@attrs.frozen(kw_only=True)
class NewMilestone:
    """Add a milestone to a project."""

    title: str = attrs.field(metadata=_doc("1-255 characters, unique in the project ignoring case"))
    description: str | None = None
    due_on: str | None = attrs.field(default=None, metadata=_doc("a date (YYYY-MM-DD) or date-time"))
    state: Literal["open", "closed"] = "open"


@attrs.frozen(kw_only=True)
class MilestoneChanges:
    """Change a milestone: only the fields sent change; state closed closes it."""

    title: str | Unset = UNSET
    description: str | Unset | None = UNSET
    due_on: str | Unset | None = attrs.field(default=UNSET, metadata=_doc("YYYY-MM-DD; null: no due date"))
    state: Literal["open", "closed"] | Unset = UNSET


@attrs.frozen(kw_only=True)
class NewProject:
    """Create a project (owned by the caller) with an empty repository."""

    name: str = attrs.field(metadata=_doc("1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"))
    visibility: VisibilityName = "private"
    default_branch: str = "main"
    description: str | None = attrs.field(default=None, metadata=_doc("at most 2000 characters"))
    display_name: str | None = attrs.field(default=None, metadata=_doc("at most 200 characters"))


@attrs.frozen(kw_only=True)
class ProjectChanges:
    """Change a project: only the fields sent change; archived true archives it."""

    name: str | Unset = attrs.field(default=UNSET, metadata=_doc("rename (old URLs redirect to the new name)"))
    visibility: VisibilityName | Unset = UNSET
    default_branch: str | Unset = UNSET
    description: str | Unset | None = UNSET
    display_name: str | Unset | None = UNSET
    archived: bool | Unset = UNSET


@attrs.frozen(kw_only=True)
class NewBranchProtection:
    """Protect the branches matching a name or a glob."""

    pattern: str = attrs.field(metadata=_doc("a branch name or a glob like 'release/*'"))
    allow_force_push: bool = False
    allow_deletion: bool = False
    require_merge_request: bool = attrs.field(
        default=False, metadata=_doc("direct pushes are refused: changes land through merge requests"))
    required_approvals: int = attrs.field(default=0, metadata=_doc("0-20"))
    bypass_admins: bool = attrs.field(default=False, metadata=_doc(
        "holders of project:admin may push directly to a merge-request-only branch (audited)"))
    push_allowlist: list[str] = attrs.field(factory=list, metadata=_doc(
        "user names who may push directly to a merge-request-only branch (at most 100)"))
    required_checks: list[str] = attrs.field(factory=list, metadata=_doc(
        "pipeline workflows (names) that must have succeeded on a merge request's head commit before it merges; "
        "'pipeline' for the whole pipeline (at most 20)"))


@attrs.frozen(kw_only=True)
class BranchProtectionChanges:
    """Change a branch protection rule: only the fields sent change (its pattern stays)."""

    allow_force_push: bool | Unset = UNSET
    allow_deletion: bool | Unset = UNSET
    require_merge_request: bool | Unset = UNSET
    required_approvals: int | Unset = attrs.field(default=UNSET, metadata=_doc("0-20"))
    bypass_admins: bool | Unset = UNSET
    push_allowlist: list[str] | Unset = attrs.field(default=UNSET, metadata=_doc("user names (at most 100)"))
    required_checks: list[str] | Unset = attrs.field(default=UNSET, metadata=_doc(
        "workflow names or 'pipeline' (at most 20)"))


def _push_only() -> list[WebhookEvent]:
    return ["push"]


@attrs.frozen(kw_only=True)
class NewWebhook:
    """Add a webhook to a project."""

    url: str = attrs.field(metadata=_doc("http(s) URL receiving the signed deliveries"))
    events: list[WebhookEvent] = attrs.field(factory=_push_only, metadata=_doc("default: push"))
    secret: str | None = attrs.field(default=None, metadata=_doc(
        "HMAC-SHA256 signing key, at most 256 characters (never answered: has_secret tells)", write_only=True))
    active: bool = True


@attrs.frozen(kw_only=True)
class WebhookChanges:
    """Change a webhook: only the fields sent change; a null or empty secret removes it."""

    url: str | Unset = UNSET
    events: list[WebhookEvent] | Unset = UNSET
    secret: str | Unset | None = attrs.field(default=UNSET, metadata=_doc("null or empty: no secret",
                                                                           write_only=True))
    active: bool | Unset = UNSET


@attrs.frozen(kw_only=True)
class CommitIdentity:
    """The author a commit names (the caller is always its committer)."""

    name: str = attrs.field(metadata=_doc("1-255 characters"))
    email: str = attrs.field(metadata=_doc("1-255 characters"))


@attrs.frozen(kw_only=True)
class FileUpload:
    """Create or replace one file in one commit (Gitea's contents PUT)."""

    content: str = attrs.field(metadata=_doc("the file's new bytes, base64"))
    message: str | None = attrs.field(default=None, metadata=_doc("commit message (default: Add/Update PATH)"))
    branch: str | None = attrs.field(default=None, metadata=_doc("default: the project's default branch"))
    new_branch: str | None = attrs.field(default=None, metadata=_doc("commit on this new branch, created from branch"))
    sha: str | None = attrs.field(default=None, metadata=_doc(
        "the file's current blob sha: required to replace an existing file (stale: 409)"))
    author: CommitIdentity | None = attrs.field(default=None, metadata=_doc("default: the caller"))


@attrs.frozen(kw_only=True)
class FileDeletion:
    """Delete one file in one commit (Gitea's contents DELETE)."""

    sha: str = attrs.field(metadata=_doc("the file's current blob sha (stale: 409)"))
    message: str | None = attrs.field(default=None, metadata=_doc("commit message (default: Delete PATH)"))
    branch: str | None = attrs.field(default=None, metadata=_doc("default: the project's default branch"))
    new_branch: str | None = attrs.field(default=None, metadata=_doc("commit on this new branch, created from branch"))
    author: CommitIdentity | None = attrs.field(default=None, metadata=_doc("default: the caller"))


@attrs.frozen(kw_only=True)
class FileOperation:
    """One file of a multi-file commit."""

    operation: Literal["create", "update", "delete"]
    path: str
    content: str | None = attrs.field(default=None, metadata=_doc("base64; required for create and update"))
    sha: str | None = attrs.field(default=None, metadata=_doc("the current blob sha; required for update and delete"))


@attrs.frozen(kw_only=True)
class FilesChange:
    """Create, update and delete several files in one commit (Gitea's ChangeFiles)."""

    files: list[FileOperation] = attrs.field(metadata=_doc("1-1000 operations, each path at most once"))
    message: str | None = attrs.field(default=None, metadata=_doc("commit message"))
    branch: str | None = attrs.field(default=None, metadata=_doc("default: the project's default branch"))
    new_branch: str | None = attrs.field(default=None, metadata=_doc("commit on this new branch, created from branch"))
    author: CommitIdentity | None = attrs.field(default=None, metadata=_doc("default: the caller"))


@attrs.frozen(kw_only=True)
class NewBranch:
    """Create a branch at a branch, tag or commit."""

    name: str
    from_: str | None = attrs.field(default=None, metadata=_doc(
        "branch, tag or commit sha to start from (default: the default branch)", name="from"))


@attrs.frozen(kw_only=True)
class NewTag:
    """Create a (lightweight) tag at a branch, tag or commit."""

    name: str
    target: str | None = attrs.field(default=None, metadata=_doc(
        "branch, tag or commit sha (default: the default branch)"))
