"""Issue use cases: create, list, get, update, close, reopen, comment."""

from __future__ import annotations

import uuid
from typing import Any, Protocol, TypeVar

import attrs

from corral.core.clock import Clock
from corral.core.commands import sent_fields
from corral.core.errors import InvalidInput, InvalidTransition, NotFound
from corral.core.ids import uuid7
from corral.core.outbox import topics
from corral.core.pagination import Page, clamp_limit, cursor_int, decode_cursor, encode_cursor
from corral.core.projects.commands import IssueChanges, NewComment, NewIssue
from corral.core.projects.labels import milestone_of, project_labels
from corral.core.projects.model import Actor, Comment, Issue, IssueFilter, IssueStatus, Project
from corral.core.projects.payloads import comment_json, issue_json, mr_comment_json, project_json
from corral.core.projects.ports import UserDirectory, UserRef
from corral.core.projects.service import audit, text_field, user_refs
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["IssueService", "item_filters", "number_cursor", "numbered_page", "page_offset", "parse_labels",
           "text_changes"]


class _Numbered(Protocol):
    @property
    def number(self) -> int: ...


N = TypeVar("N", bound=_Numbered)


def parse_labels(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 64 for v in value):
        raise InvalidInput("labels must be a list of strings of 1-64 characters", field="labels")
    return tuple(dict.fromkeys(v.strip() for v in value if v.strip()))


def page_offset(page: int | None, cursor: str | None, size: int) -> int:
    """How many matches Gitea's ``page`` (from 1) skips; a page and a cursor together are refused."""
    if page is None:
        return 0
    if cursor:
        raise InvalidInput("give either page or cursor, not both", field="page")
    if not 1 <= page <= 100_000:
        raise InvalidInput("page must be from 1 to 100000", field="page")
    return (page - 1) * size


async def item_filters(uow_factory: UnitOfWorkFactory, project: Project, labels: str | None,
                       milestone: str | None) -> tuple[tuple[str, ...], uuid.UUID | None, bool]:
    """The ``labels=`` and ``milestone=`` list filters as label names and a milestone id, and whether anything can
    match (an unknown label or milestone matches nothing)."""
    names = [n.strip() for n in (labels or "").split(",") if n.strip()]
    if not names and not milestone:
        return (), None, True
    async with uow_factory() as uow:
        known = {label.name.lower(): label.name for label in await uow.labels.list(project.id)}
        if any(n.lower() not in known for n in names):
            return (), None, False
        milestone_id = None
        if milestone:
            try:
                found = await milestone_of(uow, project, milestone)
            except InvalidInput:
                return (), None, False
            milestone_id = found.id if found is not None else None
    return tuple(dict.fromkeys(known[n.lower()] for n in names)), milestone_id, True


def number_cursor(cursor: str | None) -> int | None:
    return cursor_int(decode_cursor(cursor), "before", minimum=1, maximum=2**31 - 1)


def numbered_page(items: list[N], size: int) -> Page[N]:
    """A page of issues or merge requests fetched as ``size + 1`` rows: the cursor points before the last
    number shown when there are more."""
    more = len(items) > size
    items = items[:size]
    return Page(items, encode_cursor({"before": items[-1].number}) if more else None)


def text_changes(changes: dict[str, object], allowed: set[str]) -> dict[str, Any]:
    """Refuse fields outside ``allowed``; the new title (required, trimmed) and body when given."""
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(unknown)}", field=unknown[0])
    values: dict[str, Any] = {}
    if "title" in changes:
        title = text_field(changes["title"], "title", required=True, max_len=255)
        values["title"] = title.strip() if title else title
    if "body" in changes:
        values["body"] = text_field(changes["body"], "body")
    return values


_AUDIT_ACTION = {"edited": "issue.update", "closed": "issue.close", "reopened": "issue.reopen"}


def sender(actor: Actor) -> dict[str, Any]:
    return {"id": str(actor.id), "name": actor.name}


@attrs.define
class IssueService:
    """Issues and their comments. Callers have already checked project:read / project:write."""

    uow_factory: UnitOfWorkFactory
    users: UserDirectory
    clock: Clock

    async def _assignee(self, value: object) -> uuid.UUID | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise InvalidInput("assignee must be a user name", field="assignee")
        user = await self.users.by_name(value)
        if user is None:
            raise InvalidInput(f"assignee {value!r} is not a user", field="assignee")
        return user.id

    async def names(self, *ids: uuid.UUID | None) -> dict[uuid.UUID, UserRef]:
        return await self.users.by_ids({i for i in ids if i is not None})

    async def _event(self, uow: UnitOfWork, action: str, project: Project, issue: Issue, actor: Actor,
                     extra: dict[str, Any] | None = None) -> None:
        users = await user_refs(uow, self.users, {issue.author_id, issue.assignee_id, actor.id})
        milestone = await uow.milestones.get(project.id, issue.milestone_id) if issue.milestone_id else None
        payload = {"action": action, "project": project_json(project),
                   "issue": issue_json(issue, users, {milestone.id: milestone} if milestone else None),
                   "sender": sender(actor), **(extra or {})}
        await uow.outbox.add(topics.ISSUE, payload, project_id=project.id)

    async def create(self, actor: Actor, project: Project, command: NewIssue) -> Issue:
        title_s = text_field(command.title, "title", required=True, max_len=255)
        assert title_s is not None
        body_s = text_field(command.body, "body")
        parse_labels(command.labels)
        assignee_id = await self._assignee(command.assignee)
        if project.archived:
            raise InvalidTransition("the project is archived: it takes no new issues")
        async with self.uow_factory() as uow:
            labels_t = await project_labels(uow, project, command.labels)
            milestone = await milestone_of(uow, project, command.milestone)
            number = await uow.projects.allocate_number(project.id, "issue")
            now = self.clock.now()
            issue = Issue(
                id=uuid7(), project_id=project.id, number=number, author_id=actor.id, title=title_s.strip(),
                status=IssueStatus.OPEN, created_at=now, updated_at=now, body=body_s, labels=labels_t,
                assignee_id=assignee_id, milestone_id=milestone.id if milestone is not None else None,
            )
            await uow.issues.add(issue)
            await audit(uow, self.clock, actor, "issue.create", "issue", resource_id=issue.id,
                        project_id=project.id, detail={"number": number})
            await self._event(uow, "opened", project, issue, actor)
            await uow.commit()
        return issue

    async def get(self, project: Project, number: int) -> Issue:
        async with self.uow_factory() as uow:
            issue = await uow.issues.get(project.id, number)
        if issue is None:
            raise NotFound(f"issue #{number} not found in {project.full_name}")
        return issue

    async def list(
        self, project: Project, *, status: str | None = None, label: str | None = None, assignee: str | None = None,
        limit: int | None = None, cursor: str | None = None, labels: str | None = None, milestone: str | None = None,
        page: int | None = None, author: str | None = None,
    ) -> Page[Issue]:
        """Issues matching the filters; ``labels`` (comma-separated: all of them) and ``milestone`` (id or title)
        name the project's; ``page`` (from 1, Gitea's) pages by number instead of ``cursor``."""
        if status not in (None, "open", "closed", "all"):
            raise InvalidInput("status must be open, closed or all", field="status")
        size = clamp_limit(limit)
        offset = page_offset(page, cursor, size)
        assignee_id = None
        if assignee:
            user = await self.users.by_name(assignee)
            if user is None:
                return Page([])
            assignee_id = user.id
        author_id = None
        if author:
            by = await self.users.by_name(author)
            if by is None:
                return Page([])
            author_id = by.id
        names, milestone_id, possible = await item_filters(self.uow_factory, project, labels, milestone)
        if not possible:
            return Page([])
        flt = IssueFilter(status=None if status == "all" else status, label=label or None,
                          assignee_id=assignee_id, limit=size + 1, before_number=number_cursor(cursor),
                          labels=names, milestone_id=milestone_id, offset=offset, author_id=author_id)
        async with self.uow_factory() as uow:
            items = await uow.issues.list(project.id, flt)
        return numbered_page(items, size)

    async def update(self, actor: Actor, project: Project, number: int, command: IssueChanges) -> Issue:
        """Change title, body, labels, assignee and/or status ('open'/'closed'): the fields sent."""
        changes = sent_fields(command)
        values = text_changes(changes, {"title", "body", "labels", "assignee", "status", "milestone"})
        if "labels" in changes:
            parse_labels(changes["labels"])
        if "assignee" in changes:
            values["assignee_id"] = await self._assignee(changes["assignee"])
        if "status" in changes:
            try:
                values["status"] = IssueStatus(str(changes["status"]))
            except ValueError:
                raise InvalidInput("status must be open or closed", field="status") from None
        async with self.uow_factory() as uow:
            issue = await uow.issues.get(project.id, number)
            if issue is None:
                raise NotFound(f"issue #{number} not found in {project.full_name}")
            if "labels" in changes:
                values["labels"] = await project_labels(uow, project, changes["labels"])
            if "milestone" in changes:
                found = await milestone_of(uow, project, changes["milestone"])
                values["milestone_id"] = found.id if found is not None else None
            if "status" in values and values["status"] == issue.status:
                verb = "closed" if issue.status is IssueStatus.CLOSED else "open"
                raise InvalidTransition(f"issue #{number} is already {verb}")
            updated = attrs.evolve(issue, updated_at=self.clock.now(), **values)
            await uow.issues.update(updated)
            action = "edited"
            if "status" in values:
                action = "closed" if values["status"] is IssueStatus.CLOSED else "reopened"
            await audit(uow, self.clock, actor, _AUDIT_ACTION[action], "issue",
                        resource_id=issue.id, project_id=project.id,
                        detail={"number": number, "fields": sorted(changes)})
            await self._event(uow, action, project, updated, actor)
            await uow.commit()
        return updated

    async def set_status(self, actor: Actor, project: Project, number: int, status: IssueStatus) -> Issue:
        return await self.update(actor, project, number,
                                 IssueChanges(status="closed" if status is IssueStatus.CLOSED else "open"))

    async def comment(self, actor: Actor, project: Project, number: int, command: NewComment) -> Comment:
        text = text_field(command.body, "body", required=True)
        assert text is not None
        async with self.uow_factory() as uow:
            issue = await uow.issues.get(project.id, number)
            if issue is None:
                raise NotFound(f"issue #{number} not found in {project.full_name}")
            comment, rendered = await add_comment(uow, self.clock, self.users, actor, project, text,
                                                  action="issue.comment", number=number, issue_id=issue.id)
            await self._event(uow, "commented", project, issue, actor, {"comment": rendered})
            await uow.commit()
        return comment

    async def comments(self, project: Project, number: int, *, limit: int | None = None,
                       cursor: str | None = None) -> Page[Comment]:
        issue = await self.get(project, number)
        return await list_comments(self.uow_factory, project, limit=limit, cursor=cursor, issue_id=issue.id)


async def add_comment(
    uow: UnitOfWork, clock: Clock, users: UserDirectory, actor: Actor, project: Project, text: str, *,
    action: str, number: int, issue_id: uuid.UUID | None = None, mr_id: uuid.UUID | None = None,
    anchor: dict[str, Any] | None = None,
) -> tuple[Comment, dict[str, Any]]:
    """Store a comment on an issue or a merge request (``anchor``: the line fields of a line comment), audit it,
    and render it for the event payload."""
    now = clock.now()
    comment = Comment(id=uuid7(), project_id=project.id, author_id=actor.id, body=text, created_at=now,
                      updated_at=now, issue_id=issue_id, mr_id=mr_id, **(anchor or {}))
    await uow.comments.add(comment)
    detail: dict[str, Any] = {"number": number}
    if comment.path is not None:
        detail.update(path=comment.path, line=comment.line, side=comment.side, commit_sha=comment.commit_sha)
    await audit(uow, clock, actor, action, "comment", resource_id=comment.id, project_id=project.id, detail=detail)
    refs = await user_refs(uow, users, {actor.id})
    return comment, (mr_comment_json(comment, refs) if mr_id is not None else comment_json(comment, refs))


async def list_comments(
    uow_factory: UnitOfWorkFactory, project: Project, *, limit: int | None, cursor: str | None,
    issue_id: uuid.UUID | None = None, mr_id: uuid.UUID | None = None,
) -> Page[Comment]:
    size = clamp_limit(limit)
    decoded = decode_cursor(cursor)
    after = None
    if decoded is not None:
        try:
            after = uuid.UUID(str(decoded.get("after")))
        except ValueError:
            raise InvalidInput("cursor is not a cursor returned by this API", field="cursor") from None
    async with uow_factory() as uow:
        items = await uow.comments.list(project.id, issue_id=issue_id, mr_id=mr_id, after=after, limit=size + 1)
    more = len(items) > size
    items = items[:size]
    return Page(items, encode_cursor({"after": str(items[-1].id)}) if more else None)
