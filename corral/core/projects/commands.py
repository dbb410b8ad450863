"""Typed commands of the issues and merge-request use cases (see ``corral.core.commands``)."""

from __future__ import annotations

from typing import Literal

import attrs

from corral.core.commands import UNSET, Unset

__all__ = ["IssueChanges", "MergeOptions", "MergeRequestChanges", "NewComment", "NewIssue", "NewMergeRequest",
           "NewReview"]


def _doc(text: str, **kw: object) -> dict[str, object]:
    return {"doc": text, **kw}


@attrs.frozen(kw_only=True)
class NewIssue:
    """Open an issue."""

    title: str = attrs.field(metadata=_doc("1-255 characters"))
    body: str | None = attrs.field(default=None, metadata=_doc("Markdown"))
    labels: list[str] = attrs.field(factory=list, metadata=_doc("label names, 1-64 characters each"))
    assignee: str | None = attrs.field(default=None, metadata=_doc("user name"))


@attrs.frozen(kw_only=True)
class IssueChanges:
    """Change an issue: only the fields sent change; status open/closed reopens or closes it."""

    title: str | Unset = UNSET
    body: str | Unset | None = UNSET
    labels: list[str] | Unset = UNSET
    assignee: str | Unset | None = attrs.field(default=UNSET, metadata=_doc("user name, or null to unassign"))
    status: Literal["open", "closed"] | Unset = UNSET


@attrs.frozen(kw_only=True)
class NewComment:
    """Comment on an issue or a merge request."""

    body: str = attrs.field(metadata=_doc("Markdown"))


@attrs.frozen(kw_only=True)
class NewMergeRequest:
    """Open a merge request from a branch."""

    source_branch: str
    title: str
    target_branch: str | None = attrs.field(default=None, metadata=_doc("default: the project's default branch"))
    body: str | None = None


@attrs.frozen(kw_only=True)
class MergeRequestChanges:
    """Change a merge request: only the fields sent change; status closed closes it, open reopens it."""

    title: str | Unset = UNSET
    body: str | Unset | None = UNSET
    target_branch: str | Unset = UNSET
    status: Literal["open", "closed"] | Unset = UNSET


@attrs.frozen(kw_only=True)
class NewReview:
    """Review a merge request."""

    verdict: Literal["approve", "request_changes", "comment"]
    body: str | None = None


@attrs.frozen(kw_only=True)
class MergeOptions:
    """How to merge (an empty body merges with a merge commit)."""

    strategy: Literal["merge", "squash", "fast-forward"] = "merge"
