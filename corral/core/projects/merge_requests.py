"""Merge request use cases: create, list, update, close/reopen, diff, comments, reviews, merge; and marking
merge requests merged when a push merged them outside Corral's merge (Gitea's "manually merged")."""

from __future__ import annotations

import builtins
import collections
import logging
import re
import uuid
from datetime import timedelta
from typing import Any

import attrs

from corral.core.audit.model import AuditQuery
from corral.core.clock import Clock
from corral.core.commands import sent_fields
from corral.core.errors import Conflict, CorralError, InvalidInput, InvalidTransition, NotFound, PermissionDenied
from corral.core.git.model import ZERO_SHA, Commit, Comparison, MergeStrategy, PushIntent, RefUpdate, Signature
from corral.core.git.ports import GitRepositories
from corral.core.git.service import MAX_PATCH_BYTES, push_rules, record_push
from corral.core.ids import uuid7
from corral.core.outbox import topics
from corral.core.outbox.model import OutboxEvent
from corral.core.pagination import Page, clamp_limit
from corral.core.pipelines.checks import required_check_results
from corral.core.projects.commands import (
    IssueChanges,
    MergeOptions,
    MergeRequestChanges,
    NewComment,
    NewMergeRequest,
    NewMergeRequestComment,
    NewReview,
)
from corral.core.projects.issues import (
    IssueService,
    add_comment,
    item_filters,
    list_comments,
    number_cursor,
    numbered_page,
    page_offset,
    sender,
    text_changes,
)
from corral.core.projects.labels import milestone_of, project_labels
from corral.core.projects.line_comments import anchor_of, outdated_comments
from corral.core.projects.model import (
    Actor,
    Comment,
    IssueFilter,
    MergeRequest,
    MrStatus,
    Project,
    Review,
    Verdict,
    check_branch_name,
    draft_title,
    is_draft,
)
from corral.core.projects.payloads import mr_json, project_json, review_json
from corral.core.projects.ports import UserDirectory, UserRef
from corral.core.projects.repo_writes import RepoWriter, refusal
from corral.core.projects.service import audit, text_field, user_refs
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["MergeRequestService", "approvals", "closed_issue_numbers"]

log = logging.getLogger(__name__)

_OPEN_SCANNED = 200  # open merge requests of a project looked at per push (newest first)
_MERGEABILITY_ENTRIES = 4096  # (base sha, head sha) -> conflicting paths, kept per process
_CLOSES = re.compile(r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s*:?\s+#(\d{1,9})\b", re.IGNORECASE)


def closed_issue_numbers(*texts: str | None) -> list[int]:
    """Issue numbers that "Closes #N" / "Fixes #N" / "Resolves #N" (any tense, any case) name, in order."""
    found: dict[int, None] = {}
    for text in texts:
        for match in _CLOSES.finditer(text or ""):
            found[int(match.group(1))] = None
    return list(found)


def approvals(reviews: list[Review]) -> int:
    """Distinct reviewers whose latest verdict is approve (a later request_changes withdraws it)."""
    latest: dict[Any, Verdict] = {}
    for review in reviews:
        if review.verdict is not Verdict.COMMENT:
            latest[review.reviewer_id] = review.verdict
    return sum(1 for verdict in latest.values() if verdict is Verdict.APPROVE)


@attrs.define
class MergeRequestService:
    """Merge requests. Callers have already checked project:read / project:write."""

    uow_factory: UnitOfWorkFactory
    repos: GitRepositories
    users: UserDirectory
    clock: Clock
    # (base sha, head sha) -> conflicting paths: the answer never changes for a pair of commits
    _mergeability: collections.OrderedDict[tuple[str, str], tuple[str, ...]] = attrs.field(
        factory=collections.OrderedDict, init=False, repr=False)

    async def names(self, *ids: Any) -> dict[Any, UserRef]:
        return await self.users.by_ids({i for i in ids if i is not None})

    async def _event(self, uow: UnitOfWork, action: str, project: Project, mr: MergeRequest, actor: Actor,
                     extra: dict[str, Any] | None = None, topic: str = topics.MERGE_REQUEST) -> None:
        users = await user_refs(uow, self.users, {mr.author_id, mr.merged_by, actor.id, *mr.assignee_ids,
                                                  *mr.reviewer_ids})
        milestone = await uow.milestones.get(project.id, mr.milestone_id) if mr.milestone_id else None
        payload = {"action": action, "project": project_json(project),
                   "merge_request": mr_json(mr, users, {milestone.id: milestone} if milestone else None),
                   "sender": sender(actor), **(extra or {})}
        await uow.outbox.add(topic, payload, project_id=project.id)

    async def _load(self, uow: UnitOfWork, project: Project, number: int, *, lock: bool = False) -> MergeRequest:
        mr = await (uow.merge_requests.lock if lock else uow.merge_requests.get)(project.id, number)
        if mr is None:
            raise NotFound(f"merge request !{number} not found in {project.full_name}")
        return mr

    async def create(self, actor: Actor, project: Project, command: NewMergeRequest) -> MergeRequest:
        source = check_branch_name(command.source_branch, "source_branch")
        target = check_branch_name(command.target_branch if command.target_branch is not None
                                   else project.default_branch, "target_branch")
        title_s = text_field(command.title, "title", required=True, max_len=255)
        assert title_s is not None
        if command.draft:
            title_s = draft_title(title_s.strip(), True)[:255]
        body_s = text_field(command.body, "body")
        if source == target:
            raise InvalidInput("source_branch and target_branch must differ", field="source_branch")
        if project.archived:
            raise InvalidTransition("the project is archived: it takes no new merge requests")
        for field, branch in (("source_branch", source), ("target_branch", target)):
            if await self.repos.resolve(project.repo_path, f"refs/heads/{branch}") is None:
                raise InvalidInput(f"{field} {branch!r} does not exist in {project.full_name}", field=field)
        assignees = await self._people(command.assignees, "assignees")
        reviewers = await self._people(command.reviewers, "reviewers")
        async with self.uow_factory() as uow:
            labels = await project_labels(uow, project, command.labels)
            milestone = await milestone_of(uow, project, command.milestone)
            number = await uow.projects.allocate_number(project.id, "mr")
            now = self.clock.now()
            mr = MergeRequest(
                id=uuid7(), project_id=project.id, number=number, author_id=actor.id, source_branch=source,
                target_branch=target, title=title_s.strip(), status=MrStatus.OPEN, created_at=now, updated_at=now,
                body=body_s, labels=labels, milestone_id=milestone.id if milestone is not None else None,
                assignee_ids=assignees, reviewer_ids=reviewers,
            )
            await uow.merge_requests.add(mr)
            await audit(uow, self.clock, actor, "merge_request.create", "merge_request", resource_id=mr.id,
                        project_id=project.id, detail={"number": number, "source": source, "target": target})
            await self._event(uow, "opened", project, mr, actor)
            await self._request_reviews(uow, project, mr, actor, reviewers)
            await uow.commit()
        return mr

    async def _people(self, names: object, field: str) -> tuple[uuid.UUID, ...]:
        """The ids of the users ``names`` lists (at most 50); InvalidInput naming the unknown ones."""
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(names) > 50:
            raise InvalidInput(f"{field} must be a list of at most 50 user names", field=field)
        ids: list[uuid.UUID] = []
        unknown = []
        for name in dict.fromkeys(n.strip() for n in names if n.strip()):
            user = await self.users.by_name(name)
            if user is None:
                unknown.append(name)
            else:
                ids.append(user.id)
        if unknown:
            raise InvalidInput(f"{field}: {', '.join(repr(n) for n in unknown)} not a user", field=field)
        return tuple(dict.fromkeys(ids))

    async def _request_reviews(self, uow: UnitOfWork, project: Project, mr: MergeRequest, actor: Actor,
                               added: tuple[uuid.UUID, ...]) -> None:
        """Notify the reviewers just asked (a ``merge_request`` event with action ``review_requested``)."""
        added = tuple(r for r in added if r != actor.id)
        if not added:
            return
        refs = await self.users.by_ids(set(added))
        await self._event(uow, "review_requested", project, mr, actor, {
            "reviewers": [{"id": str(r), "name": refs[r].name if r in refs else None} for r in added]})

    async def get(self, project: Project, number: int) -> MergeRequest:
        async with self.uow_factory() as uow:
            return await self._load(uow, project, number)

    async def list(self, project: Project, *, status: str | None = None, limit: int | None = None,
                   cursor: str | None = None, labels: str | None = None, milestone: str | None = None,
                   assignee: str | None = None, page: int | None = None,
                   author: str | None = None) -> Page[MergeRequest]:
        """Merge requests matching the filters (as IssueService.list; ``assignee``: one of its assignees)."""
        if status not in (None, "open", "merged", "closed", "all"):
            raise InvalidInput("status must be open, merged, closed or all", field="status")
        size = clamp_limit(limit)
        offset = page_offset(page, cursor, size)
        names, milestone_id, possible = await item_filters(self.uow_factory, project, labels, milestone)
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
        if not possible:
            return Page([])
        flt = IssueFilter(status=None if status == "all" else status, limit=size + 1,
                          before_number=number_cursor(cursor), labels=names, milestone_id=milestone_id,
                          assignee_id=assignee_id, offset=offset, author_id=author_id)
        async with self.uow_factory() as uow:
            items = await uow.merge_requests.list(project.id, flt)
        return numbered_page(items, size)

    async def update(self, actor: Actor, project: Project, number: int,
                     command: MergeRequestChanges) -> MergeRequest:
        """Change title/body, or status: 'closed' (close) / 'open' (reopen). Merged is final."""
        changes = sent_fields(command)
        draft = changes.pop("draft", None)
        people = {f: await self._people(changes.pop(f), f) for f in ("assignees", "reviewers") if f in changes}
        labels_sent, milestone_sent = "labels" in changes, "milestone" in changes
        labels_v, milestone_v = changes.pop("labels", None), changes.pop("milestone", None)
        values = text_changes(changes, {"title", "body", "status", "target_branch"})
        if "assignees" in people:
            values["assignee_ids"] = people["assignees"]
            changes["assignees"] = True
        if "reviewers" in people:
            values["reviewer_ids"] = people["reviewers"]
            changes["reviewers"] = True
        if "target_branch" in changes:
            target = check_branch_name(changes["target_branch"], "target_branch")
            if await self.repos.resolve(project.repo_path, f"refs/heads/{target}") is None:
                raise InvalidInput(f"target_branch {target!r} does not exist", field="target_branch")
            values["target_branch"] = target
        new_status = None
        if "status" in changes:
            if changes["status"] not in ("open", "closed"):
                raise InvalidInput("status must be open or closed (merge through .../merge)", field="status")
            new_status = MrStatus(str(changes["status"]))
        async with self.uow_factory() as uow:
            mr = await self._load(uow, project, number, lock=True)
            if mr.status is MrStatus.MERGED:
                raise InvalidTransition(f"merge request !{number} is merged; it can no longer change")
            if new_status is not None:
                if new_status == mr.status:
                    raise InvalidTransition(f"merge request !{number} is already {mr.status.value}")
                values["status"] = new_status
            if draft is not None:
                values["title"] = draft_title(values.get("title", mr.title), bool(draft))[:255]
                changes["draft"] = draft
            if values.get("target_branch", mr.target_branch) == mr.source_branch:
                raise InvalidInput("source_branch and target_branch must differ", field="target_branch")
            if labels_sent:
                values["labels"] = await project_labels(uow, project, labels_v)
                changes["labels"] = True
            if milestone_sent:
                found = await milestone_of(uow, project, milestone_v)
                values["milestone_id"] = found.id if found is not None else None
                changes["milestone"] = True
            updated = attrs.evolve(mr, updated_at=self.clock.now(), **values)
            await uow.merge_requests.update(updated)
            action = {None: "edited", MrStatus.CLOSED: "closed", MrStatus.OPEN: "reopened"}[new_status]
            audit_action = {"edited": "update", "closed": "close", "reopened": "reopen"}[action]
            await audit(uow, self.clock, actor, f"merge_request.{audit_action}", "merge_request", resource_id=mr.id,
                        project_id=project.id, detail={"number": number, "fields": sorted(changes)})
            await self._event(uow, action, project, updated, actor)
            await self._request_reviews(uow, project, updated, actor,
                                        tuple(r for r in updated.reviewer_ids if r not in mr.reviewer_ids))
            await uow.commit()
        return updated

    async def diff(self, project: Project, number: int) -> Comparison:
        mr = await self.get(project, number)
        if mr.status is MrStatus.MERGED and mr.merge_commit_sha:
            commit, cmp = await self.repos.show(project.repo_path, mr.merge_commit_sha,
                                                max_patch_bytes=MAX_PATCH_BYTES)
            del commit
            return cmp
        return await self.repos.compare(project.repo_path, f"refs/heads/{mr.target_branch}",
                                        f"refs/heads/{mr.source_branch}", max_patch_bytes=MAX_PATCH_BYTES)

    async def comment(self, actor: Actor, project: Project, number: int,
                      command: NewComment | NewMergeRequestComment) -> Comment:
        """A comment; with path and line, a line comment on the diff (line_comments.anchor_of validates it)."""
        text = text_field(command.body, "body", required=True)
        assert text is not None
        anchor = None
        if isinstance(command, NewMergeRequestComment):
            found = await anchor_of(self.repos, project, await self.get(project, number), command)
            anchor = attrs.asdict(found) if found is not None else None
        async with self.uow_factory() as uow:
            mr = await self._load(uow, project, number)
            comment, rendered = await add_comment(uow, self.clock, self.users, actor, project, text,
                                                  action="merge_request.comment", number=number, mr_id=mr.id,
                                                  anchor=anchor)
            await self._event(uow, "commented", project, mr, actor, {"comment": rendered})
            await uow.commit()
        return comment

    async def comments(self, project: Project, number: int, *, limit: int | None = None,
                       cursor: str | None = None) -> Page[Comment]:
        mr = await self.get(project, number)
        return await list_comments(self.uow_factory, project, limit=limit, cursor=cursor, mr_id=mr.id)

    async def outdated(self, project: Project, number: int, comments: builtins.list[Comment]) -> set[uuid.UUID]:
        """The line comments among ``comments`` whose line a later head changed (line_comments)."""
        return await outdated_comments(self.repos, project, await self.get(project, number), comments)

    async def review(self, actor: Actor, project: Project, number: int, command: NewReview) -> Review:
        try:
            verdict_v = Verdict(str(command.verdict))
        except ValueError:
            raise InvalidInput("verdict must be approve, request_changes or comment", field="verdict") from None
        text = text_field(command.body, "body")
        async with self.uow_factory() as uow:
            mr = await self._load(uow, project, number)
            if mr.status is not MrStatus.OPEN:
                raise InvalidTransition(f"merge request !{number} is {mr.status.value}; only open ones take reviews")
            if verdict_v is Verdict.APPROVE and mr.author_id == actor.id:
                raise InvalidInput("you cannot approve your own merge request", field="verdict")
            review = Review(id=uuid7(), project_id=project.id, mr_id=mr.id, reviewer_id=actor.id, verdict=verdict_v,
                            created_at=self.clock.now(), body=text)
            await uow.reviews.add(review)
            await audit(uow, self.clock, actor, "merge_request.review", "review", resource_id=review.id,
                        project_id=project.id, detail={"number": number, "verdict": verdict_v.value})
            users = await user_refs(uow, self.users, {actor.id})
            await self._event(uow, "reviewed", project, mr, actor, {"review": review_json(review, users)},
                              topic=topics.REVIEW)
            await uow.commit()
        return review

    async def reviews(self, project: Project, number: int) -> builtins.list[Review]:
        async with self.uow_factory() as uow:
            mr = await self._load(uow, project, number)
            return await uow.reviews.list(mr.id)

    async def mergeability(self, project: Project, mr: MergeRequest) -> tuple[bool | None, builtins.list[str]]:
        """(mergeable, conflicting paths) of an open merge request, from ``git merge-tree`` (the repository is
        not touched), kept per (target head, source head); (None, []) when not open or a branch is gone."""
        if mr.status is not MrStatus.OPEN:
            return None, []
        heads = await self.repos.ref_values(project.repo_path, [f"refs/heads/{mr.target_branch}",
                                                                f"refs/heads/{mr.source_branch}"])
        base, head = heads.get(f"refs/heads/{mr.target_branch}"), heads.get(f"refs/heads/{mr.source_branch}")
        if base is None or head is None:
            return None, []
        key = (base, head)
        paths = self._mergeability.get(key)
        if paths is None:
            paths = tuple(await self.repos.merge_conflicts(project.repo_path, base, head))
            self._mergeability[key] = paths
            while len(self._mergeability) > _MERGEABILITY_ENTRIES:
                self._mergeability.popitem(last=False)
        else:
            self._mergeability.move_to_end(key)
        return not paths, list(paths)

    async def commits(self, project: Project, number: int) -> builtins.list[Commit]:
        """The commits the merge request brings (for a merged one: those its merge brought), oldest first."""
        mr = await self.get(project, number)
        if mr.status is MrStatus.MERGED and mr.merge_commit_sha:
            commit, _ = await self.repos.show(project.repo_path, mr.merge_commit_sha, max_patch_bytes=0)
            # where the target was before the merge (fast-forward and rebase add several commits on one line)
            before = await self._target_before_merge(project, mr) or (commit.parents[0] if commit.parents else None)
            if before is not None:
                found = await self.repos.commits_between(project.repo_path, before, mr.merge_commit_sha, limit=250)
                if len(commit.parents) > 1:  # the merge commit itself is not one of the request's commits
                    found = [c for c in found if c.sha != mr.merge_commit_sha]
                return list(reversed(found))
        return list(reversed((await self.diff(project, number)).commits))

    async def _target_before_merge(self, project: Project, mr: MergeRequest) -> str | None:
        """The target's head before Corral merged ``mr``, from the merge's audit entry (None if not found)."""
        if mr.merged_at is None:
            return None
        query = AuditQuery(action="merge_request.merge", project_id=project.id, limit=100,
                           since=mr.merged_at - timedelta(seconds=1), until=mr.merged_at + timedelta(minutes=5))
        async with self.uow_factory() as uow:
            page = await uow.audit.query(query)
        for entry in page.items:
            before = entry.detail.get("before")
            if entry.resource_id == mr.id and isinstance(before, str):
                return before
        return None

    async def merge(self, actor: Actor, project: Project, number: int,
                    command: MergeOptions | None = None, *, is_admin: bool = False) -> MergeRequest:
        """Merge into the target branch; InvalidTransition unless open, Conflict on conflicts (repo untouched).

        Drafts are refused (409). ``delete_source_branch``: the source branch is deleted once merged (like a
        push deleting it: protection applies and is checked before anything merges). Issues that the body or
        the merged commits close ("Closes #N", "Fixes #N", "Resolves #N") are closed by the merger."""
        options = command or MergeOptions()
        try:
            strategy_v = MergeStrategy(options.strategy)
        except ValueError:
            raise InvalidInput("strategy must be merge, squash, fast-forward or rebase", field="strategy") from None
        if project.archived:
            raise InvalidTransition("the project is archived: nothing can be merged")
        async with self.uow_factory() as uow:
            mr = await self._load(uow, project, number, lock=True)
            if mr.status is not MrStatus.OPEN:
                raise InvalidTransition(f"merge request !{number} is {mr.status.value}; only open ones can merge")
            if is_draft(mr.title):
                raise InvalidTransition(
                    f"merge request !{number} is a draft (its title starts with WIP: or Draft:); "
                    "mark it ready (draft false) before merging", detail={"reason": "draft"})
            source_head = await self.repos.resolve(project.repo_path, f"refs/heads/{mr.source_branch}")
            if options.delete_source_branch:
                await self._check_source_deletion(uow, project, mr, source_head, actor, is_admin)
            brought = await self.repos.compare(project.repo_path, f"refs/heads/{mr.target_branch}",
                                               f"refs/heads/{mr.source_branch}", max_patch_bytes=0)
            closes = closed_issue_numbers(mr.title, mr.body, *(c.message for c in brought.commits))
            rules = [r for r in await uow.branch_protections.list(project.id) if r.matches(mr.target_branch)]
            required = max((r.required_approvals for r in rules), default=0)
            if required:
                have = approvals(await uow.reviews.list(mr.id))
                if have < required:
                    raise Conflict(
                        f"{mr.target_branch} needs {required} approval(s) before merging; this has {have}",
                        detail={"reason": "approvals", "required": required, "approvals": have},
                    )
            checks = tuple(dict.fromkeys(c for r in rules for c in r.required_checks))
            if checks:
                await self._require_checks(uow, project, mr, checks)
            ref = f"refs/heads/{mr.target_branch}"
            before = await self.repos.resolve(project.repo_path, ref)
            if before is None:
                raise Conflict(f"target branch {mr.target_branch} no longer exists")
            users = await user_refs(uow, self.users, {actor.id})
            email = (users.get(actor.id) and users[actor.id].email) or actor.email or f"{actor.name}@corral.invalid"
            now = self.clock.now()
            if strategy_v is MergeStrategy.SQUASH:
                message = f"{mr.title} (!{mr.number})\n\n{mr.body or ''}".rstrip() + "\n"
            else:
                message = (f"Merge branch '{mr.source_branch}' into '{mr.target_branch}'\n\n"
                           f"{mr.title} (!{mr.number})\n")
            intents: list[uuid.UUID] = []

            async def announce(head: str) -> None:
                # the intent is committed before the target moves (corral.core.git.recovery); that commit ends
                # the row lock, the target's compare-and-swap below still serialises merges
                intent = PushIntent(uuid7(), project.id, actor.id, actor.name, (RefUpdate(before, head, ref),), now)
                await uow.push_intents.add(intent)
                await uow.commit()
                intents.append(intent.id)

            try:
                after = await self.repos.merge(
                    project.repo_path, target=mr.target_branch, source=mr.source_branch, strategy=strategy_v,
                    author=Signature(actor.name, email, now), message=message, expected_target=before,
                    announce=announce,
                )
            except BaseException:
                if intents:  # the target did not move: the intent is void
                    await uow.rollback()
                    await uow.push_intents.claim(intents[0])
                    await uow.commit()
                raise
            mr = await self._load(uow, project, number, lock=True)
            merged = attrs.evolve(mr, status=MrStatus.MERGED, merged_by=actor.id, merged_at=now, updated_at=now,
                                  merge_commit_sha=after)
            await uow.merge_requests.update(merged)
            await audit(uow, self.clock, actor, "merge_request.merge", "merge_request", resource_id=mr.id,
                        project_id=project.id, detail={"number": number, "strategy": strategy_v.value,
                                                       "before": before, "after": after})
            await self._event(uow, "merged", project, merged, actor, {"strategy": strategy_v.value})
            await record_push(uow, project, actor, [RefUpdate(before, after, ref)], via="merge",
                              intent_id=intents[0] if intents else None, at=now)
            await uow.commit()
        if options.delete_source_branch and source_head is not None:
            try:
                await RepoWriter(self.uow_factory, self.repos, self.clock, self.users).delete_ref(
                    actor, project, "branch", mr.source_branch, is_admin=is_admin, expected=source_head)
            except CorralError as exc:  # pushed to meanwhile, or deleted already: it stays (or is gone)
                log.info("source branch %s of !%d kept: %s", mr.source_branch, number, exc)
        await self._close_issues(actor, project, merged, closes)
        return merged

    async def _check_source_deletion(self, uow: UnitOfWork, project: Project, mr: MergeRequest,
                                     source_head: str | None, actor: Actor, is_admin: bool) -> None:
        if mr.source_branch == project.default_branch:
            raise Conflict("the source branch is the default branch; it cannot be deleted",
                           field="delete_source_branch")
        protections = await uow.branch_protections.list(project.id)
        bypassed = [p for p in protections if p.bypassed_by(actor.id, is_admin=is_admin) is not None]
        why = refusal(push_rules(protections, bypassed), RefUpdate(source_head or ZERO_SHA, ZERO_SHA,
                                                                   f"refs/heads/{mr.source_branch}"),
                      fast_forward=False)
        if why is not None:
            raise PermissionDenied(f"{why} (delete_source_branch); nothing was merged")

    async def _close_issues(self, actor: Actor, project: Project, mr: MergeRequest, numbers: builtins.list[int],
                            ) -> None:
        """Close the open issues a merged request names as closed; each is audited and announced like a close
        through the API (a missing or closed issue is skipped)."""
        issues = IssueService(self.uow_factory, self.users, self.clock)
        for number in numbers[:50]:
            try:
                issue = await issues.get(project, number)
                if issue.status.value != "open":
                    continue
                await issues.update(actor, project, number, IssueChanges(status="closed"))
                async with self.uow_factory() as uow:
                    await audit(uow, self.clock, actor, "issue.close_by_merge", "issue", resource_id=issue.id,
                                project_id=project.id, detail={"number": number, "merge_request": mr.number,
                                                               "merge_commit_sha": mr.merge_commit_sha})
                    await uow.commit()
            except CorralError as exc:
                log.info("issue #%d named by !%d not closed: %s", number, mr.number, exc)

    async def _require_checks(self, uow: UnitOfWork, project: Project, mr: MergeRequest,
                              checks: tuple[str, ...]) -> None:
        """Conflict naming each required pipeline check that has not passed on the source branch's head."""
        head = await self.repos.resolve(project.repo_path, f"refs/heads/{mr.source_branch}")
        results = await required_check_results(uow, project.id, head or "", checks)
        unmet = [r for r in results if r.state != "passed"]
        if unmet:
            said = "; ".join(f"{r.name}: {r.state}" + (f" ({r.status} in pipeline #{r.number})" if r.number else "")
                             for r in unmet)
            raise Conflict(f"{mr.target_branch} requires passing checks before merging: {said}",
                           detail={"reason": "checks", "commit_sha": head,
                                   "checks": [{"name": r.name, "state": r.state, "pipeline": r.number,
                                               "status": r.status} for r in results]})

    async def on_push(self, uow: UnitOfWork, event: OutboxEvent) -> int:
        """Outbox consumer: a push (not Corral's own merge) after which an open merge request's source head is
        reachable from its target branch marks that merge request merged by the pusher, as Gitea marks a pull
        request "manually merged": the agent merged (or fast-forwarded) it with git and pushed. The merge
        commit is the target's new head. Idempotent (a merged request is skipped); returns how many merged."""
        payload = event.payload
        branch = payload.get("branch")
        if (event.topic != topics.PUSH or event.project_id is None or payload.get("via") == "merge"
                or payload.get("deleted") or not isinstance(branch, str)):
            return 0
        project = await uow.projects.get(event.project_id)
        if project is None:
            return 0
        after = str(payload["after"])
        candidates = [mr for mr in await uow.merge_requests.list(project.id, IssueFilter(status="open",
                                                                                         limit=_OPEN_SCANNED))
                      if mr.target_branch == branch]
        pusher = payload.get("pusher") or {}
        if not pusher.get("id"):
            return 0
        actor = Actor(uuid.UUID(str(pusher["id"])), str(pusher.get("name", "")))
        merged_count = 0
        sources = {f"refs/heads/{mr.source_branch}" for mr in candidates}
        heads = await self.repos.merged_into(project.repo_path, sorted(sources), after) if sources else {}
        for candidate in candidates:
            head = heads.get(f"refs/heads/{candidate.source_branch}")
            if head is None:  # the source is gone, or has commits the target lacks
                continue
            mr = await uow.merge_requests.lock(project.id, candidate.number)
            if mr is None or mr.status is not MrStatus.OPEN:
                continue
            now = self.clock.now()
            merged = attrs.evolve(mr, status=MrStatus.MERGED, merged_by=actor.id, merged_at=now, updated_at=now,
                                  merge_commit_sha=after)
            await uow.merge_requests.update(merged)
            await audit(uow, self.clock, actor, "merge_request.merge", "merge_request", resource_id=mr.id,
                        project_id=project.id, detail={"number": mr.number, "strategy": "push", "after": after,
                                                       "source_head": head})
            await self._event(uow, "merged", project, merged, actor, {"strategy": "push", "manually_merged": True})
            merged_count += 1
        return merged_count
