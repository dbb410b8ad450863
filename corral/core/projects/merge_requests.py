"""Merge request use cases: create, list, update, close/reopen, diff, comments, reviews, merge; and marking
merge requests merged when a push merged them outside Corral's merge (Gitea's "manually merged")."""

from __future__ import annotations

import builtins
import uuid
from typing import Any

import attrs

from corral.core.clock import Clock
from corral.core.commands import sent_fields
from corral.core.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from corral.core.git.model import Comparison, MergeStrategy, PushIntent, RefUpdate, Signature
from corral.core.git.ports import GitRepositories
from corral.core.git.service import MAX_PATCH_BYTES, record_push
from corral.core.ids import uuid7
from corral.core.outbox import topics
from corral.core.outbox.model import OutboxEvent
from corral.core.pagination import Page, clamp_limit
from corral.core.pipelines.checks import required_check_results
from corral.core.projects.commands import MergeOptions, MergeRequestChanges, NewComment, NewMergeRequest, NewReview
from corral.core.projects.issues import (
    add_comment,
    list_comments,
    number_cursor,
    numbered_page,
    sender,
    text_changes,
)
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
)
from corral.core.projects.payloads import mr_json, project_json, review_json
from corral.core.projects.ports import UserDirectory, UserRef
from corral.core.projects.service import audit, text_field, user_refs
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["MergeRequestService", "approvals"]

_OPEN_SCANNED = 200  # open merge requests of a project looked at per push (newest first)


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

    async def names(self, *ids: Any) -> dict[Any, UserRef]:
        return await self.users.by_ids({i for i in ids if i is not None})

    async def _event(self, uow: UnitOfWork, action: str, project: Project, mr: MergeRequest, actor: Actor,
                     extra: dict[str, Any] | None = None, topic: str = topics.MERGE_REQUEST) -> None:
        users = await user_refs(uow, self.users, {mr.author_id, mr.merged_by, actor.id})
        payload = {"action": action, "project": project_json(project), "merge_request": mr_json(mr, users),
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
        body_s = text_field(command.body, "body")
        if source == target:
            raise InvalidInput("source_branch and target_branch must differ", field="source_branch")
        if project.archived:
            raise InvalidTransition("the project is archived: it takes no new merge requests")
        for field, branch in (("source_branch", source), ("target_branch", target)):
            if await self.repos.resolve(project.repo_path, f"refs/heads/{branch}") is None:
                raise InvalidInput(f"{field} {branch!r} does not exist in {project.full_name}", field=field)
        async with self.uow_factory() as uow:
            number = await uow.projects.allocate_number(project.id, "mr")
            now = self.clock.now()
            mr = MergeRequest(
                id=uuid7(), project_id=project.id, number=number, author_id=actor.id, source_branch=source,
                target_branch=target, title=title_s.strip(), status=MrStatus.OPEN, created_at=now, updated_at=now,
                body=body_s,
            )
            await uow.merge_requests.add(mr)
            await audit(uow, self.clock, actor, "merge_request.create", "merge_request", resource_id=mr.id,
                        project_id=project.id, detail={"number": number, "source": source, "target": target})
            await self._event(uow, "opened", project, mr, actor)
            await uow.commit()
        return mr

    async def get(self, project: Project, number: int) -> MergeRequest:
        async with self.uow_factory() as uow:
            return await self._load(uow, project, number)

    async def list(self, project: Project, *, status: str | None = None, limit: int | None = None,
                   cursor: str | None = None) -> Page[MergeRequest]:
        if status not in (None, "open", "merged", "closed", "all"):
            raise InvalidInput("status must be open, merged, closed or all", field="status")
        size = clamp_limit(limit)
        flt = IssueFilter(status=None if status == "all" else status, limit=size + 1,
                          before_number=number_cursor(cursor))
        async with self.uow_factory() as uow:
            items = await uow.merge_requests.list(project.id, flt)
        return numbered_page(items, size)

    async def update(self, actor: Actor, project: Project, number: int,
                     command: MergeRequestChanges) -> MergeRequest:
        """Change title/body, or status: 'closed' (close) / 'open' (reopen). Merged is final."""
        changes = sent_fields(command)
        values = text_changes(changes, {"title", "body", "status", "target_branch"})
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
            if values.get("target_branch", mr.target_branch) == mr.source_branch:
                raise InvalidInput("source_branch and target_branch must differ", field="target_branch")
            updated = attrs.evolve(mr, updated_at=self.clock.now(), **values)
            await uow.merge_requests.update(updated)
            action = {None: "edited", MrStatus.CLOSED: "closed", MrStatus.OPEN: "reopened"}[new_status]
            audit_action = {"edited": "update", "closed": "close", "reopened": "reopen"}[action]
            await audit(uow, self.clock, actor, f"merge_request.{audit_action}", "merge_request", resource_id=mr.id,
                        project_id=project.id, detail={"number": number, "fields": sorted(changes)})
            await self._event(uow, action, project, updated, actor)
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

    async def comment(self, actor: Actor, project: Project, number: int, command: NewComment) -> Comment:
        text = text_field(command.body, "body", required=True)
        assert text is not None
        async with self.uow_factory() as uow:
            mr = await self._load(uow, project, number)
            comment, rendered = await add_comment(uow, self.clock, self.users, actor, project, text,
                                                  action="merge_request.comment", number=number, mr_id=mr.id)
            await self._event(uow, "commented", project, mr, actor, {"comment": rendered})
            await uow.commit()
        return comment

    async def comments(self, project: Project, number: int, *, limit: int | None = None,
                       cursor: str | None = None) -> Page[Comment]:
        mr = await self.get(project, number)
        return await list_comments(self.uow_factory, project, limit=limit, cursor=cursor, mr_id=mr.id)

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

    async def merge(self, actor: Actor, project: Project, number: int,
                    command: MergeOptions | None = None) -> MergeRequest:
        """Merge into the target branch; InvalidTransition unless open, Conflict on conflicts (repo untouched)."""
        try:
            strategy_v = MergeStrategy((command or MergeOptions()).strategy)
        except ValueError:
            raise InvalidInput("strategy must be merge, squash or fast-forward", field="strategy") from None
        if project.archived:
            raise InvalidTransition("the project is archived: nothing can be merged")
        async with self.uow_factory() as uow:
            mr = await self._load(uow, project, number, lock=True)
            if mr.status is not MrStatus.OPEN:
                raise InvalidTransition(f"merge request !{number} is {mr.status.value}; only open ones can merge")
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
        return merged

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
