"""In-memory stores of the projects domain over one ``ProjectsData`` (in a unit of work: that unit's private
copy, see corral.fakes.uow)."""

from __future__ import annotations

import asyncio
import builtins
import itertools
import uuid
from datetime import date, datetime
from typing import Any, Literal

import attrs

from corral.core.errors import Conflict
from corral.core.git.model import PushIntent, RefUpdate
from corral.core.identity.model import SealedSecret
from corral.core.projects.model import (
    UNSEALED_SECRET,
    BranchProtection,
    Comment,
    DeliveryStatus,
    Issue,
    IssueFilter,
    IssueStatus,
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
from corral.core.projects.ports import UserRef
from corral.fakes.outbox import RowLocks

__all__ = [
    "InMemoryBranchProtectionStore",
    "InMemoryCommentStore",
    "InMemoryIssueStore",
    "InMemoryLabelStore",
    "InMemoryMergeRequestStore",
    "InMemoryMilestoneStore",
    "InMemoryProjectPurgeStore",
    "InMemoryProjectStore",
    "InMemoryPushIntentStore",
    "InMemoryReleaseStore",
    "InMemoryReviewStore",
    "InMemoryUserDirectory",
    "InMemoryWebhookDeliveryStore",
    "InMemoryWebhookStore",
    "ProjectsData",
]


@attrs.define
class ProjectsData:
    """Every table of the domain as a dict keyed by id (values are frozen, so shallow copies suffice)."""

    projects: dict[uuid.UUID, Project] = attrs.field(factory=dict)
    counters: dict[tuple[uuid.UUID, str], int] = attrs.field(factory=dict)
    issues: dict[uuid.UUID, Issue] = attrs.field(factory=dict)
    comments: dict[uuid.UUID, Comment] = attrs.field(factory=dict)
    merge_requests: dict[uuid.UUID, MergeRequest] = attrs.field(factory=dict)
    reviews: dict[uuid.UUID, Review] = attrs.field(factory=dict)
    labels: dict[uuid.UUID, Label] = attrs.field(factory=dict)
    milestones: dict[uuid.UUID, Milestone] = attrs.field(factory=dict)
    releases: dict[uuid.UUID, Release] = attrs.field(factory=dict)  # assets kept on the release
    protections: dict[uuid.UUID, BranchProtection] = attrs.field(factory=dict)
    webhooks: dict[uuid.UUID, Webhook] = attrs.field(factory=dict)
    webhook_plaintext: dict[uuid.UUID, str] = attrs.field(factory=dict)  # secrets an older Corral left unsealed
    deliveries: dict[uuid.UUID, WebhookDelivery] = attrs.field(factory=dict)
    redirects: dict[tuple[uuid.UUID, str], uuid.UUID] = attrs.field(factory=dict)  # (owner id, old name) → project
    push_intents: dict[uuid.UUID, PushIntent] = attrs.field(factory=dict)
    purges: dict[uuid.UUID, ProjectPurge] = attrs.field(factory=dict)  # by project id (the project is gone)
    # (sequence, project, move, time): recorded ref moves, in recording order
    ref_moves: list[tuple[int, uuid.UUID, RefUpdate, datetime]] = attrs.field(factory=list)


@attrs.define
class InMemoryProjectStore:
    data: ProjectsData
    counters: dict[Any, int] | None = None  # live (non-transactional) counters; default: data.counters

    async def add(self, project: Project) -> None:
        if any(p.owner_id == project.owner_id and p.name.lower() == project.name.lower()
               for p in self.data.projects.values()):
            raise Conflict("project already exists")
        self.data.projects[project.id] = project

    async def get(self, project_id: uuid.UUID) -> Project | None:
        return self.data.projects.get(project_id)

    async def get_by_slug(self, owner: str, name: str) -> Project | None:
        owner, name = owner.lower(), name.lower()
        for p in self.data.projects.values():
            if p.owner_name.lower() == owner and p.name.lower() == name:
                return p
        return None

    async def owned_by(self, owner_id: uuid.UUID) -> builtins.list[uuid.UUID]:
        return sorted(p.id for p in self.data.projects.values() if p.owner_id == owner_id and p.is_active)

    async def list(self, *, after: uuid.UUID | None, limit: int) -> list[Project]:
        items = sorted(self.data.projects.values(), key=lambda p: p.id)
        if after is not None:
            items = [p for p in items if p.id > after]
        return items[:limit]

    async def update(self, project: Project) -> None:
        if any(p.id != project.id and p.owner_id == project.owner_id and p.name.lower() == project.name.lower()
               for p in self.data.projects.values()):
            raise Conflict("project already exists")
        self.data.projects[project.id] = project

    async def delete(self, project_id: uuid.UUID) -> None:
        self.data.projects.pop(project_id, None)
        for old in [k for k, v in self.data.redirects.items() if v == project_id]:
            del self.data.redirects[old]
        for table in (self.data.issues, self.data.comments, self.data.merge_requests, self.data.reviews,
                      self.data.labels, self.data.milestones, self.data.releases, self.data.protections,
                      self.data.webhooks, self.data.deliveries):
            for key in [k for k, v in table.items() if v.project_id == project_id]:
                del table[key]

    async def allocate_number(self, project_id: uuid.UUID, kind: Literal["issue", "mr"]) -> int:
        counters = self.counters if self.counters is not None else self.data.counters
        key = (project_id, kind)
        counters[key] = counters.get(key, 0) + 1
        return counters[key]

    async def set_redirect(self, owner_id: uuid.UUID, name: str, project_id: uuid.UUID) -> None:
        await self.drop_redirect(owner_id, name)  # one redirect per name regardless of case
        self.data.redirects[(owner_id, name)] = project_id

    async def drop_redirect(self, owner_id: uuid.UUID, name: str) -> None:
        for key in [k for k in self.data.redirects if k[0] == owner_id and k[1].lower() == name.lower()]:
            del self.data.redirects[key]

    async def redirect(self, owner: str, name: str) -> Project | None:
        owner, name = owner.lower(), name.lower()
        for (_owner_id, old), project_id in self.data.redirects.items():
            project = self.data.projects.get(project_id)
            if old.lower() == name and project is not None and project.owner_name.lower() == owner:
                return project
        return None


def _filter(items: list[Any], flt: IssueFilter) -> list[Any]:
    out = []
    skip = flt.offset
    for item in sorted(items, key=lambda i: -i.number):
        if flt.before_number is not None and item.number >= flt.before_number:
            continue
        if flt.status and item.status.value != flt.status:
            continue
        if flt.label and flt.label not in getattr(item, "labels", ()):
            continue
        if flt.assignee_id and getattr(item, "assignee_id", None) != flt.assignee_id \
                and flt.assignee_id not in getattr(item, "assignee_ids", ()):
            continue
        if not set(flt.labels) <= set(item.labels):
            continue
        if flt.milestone_id is not None and item.milestone_id != flt.milestone_id:
            continue
        if flt.author_id is not None and item.author_id != flt.author_id:
            continue
        if skip:
            skip -= 1
            continue
        out.append(item)
        if len(out) == flt.limit:
            break
    return out


@attrs.define
class InMemoryIssueStore:
    data: ProjectsData

    async def add(self, issue: Issue) -> None:
        if await self.get(issue.project_id, issue.number) is not None:
            raise Conflict("issue already exists")
        self.data.issues[issue.id] = issue

    async def get(self, project_id: uuid.UUID, number: int) -> Issue | None:
        return next((i for i in self.data.issues.values() if i.project_id == project_id and i.number == number), None)

    async def list(self, project_id: uuid.UUID, flt: IssueFilter) -> list[Issue]:
        return _filter([i for i in self.data.issues.values() if i.project_id == project_id], flt)

    async def update(self, issue: Issue) -> None:
        self.data.issues[issue.id] = issue


@attrs.define
class InMemoryCommentStore:
    data: ProjectsData

    async def add(self, comment: Comment) -> None:
        self.data.comments[comment.id] = comment

    async def list(
        self, project_id: uuid.UUID, *, issue_id: uuid.UUID | None = None, mr_id: uuid.UUID | None = None,
        after: uuid.UUID | None = None, limit: int = 50,
    ) -> list[Comment]:
        items = sorted(
            (c for c in self.data.comments.values()
             if c.project_id == project_id and c.issue_id == issue_id and c.mr_id == mr_id
             and (after is None or c.id > after)),
            key=lambda c: c.id,
        )
        return items[:limit]


@attrs.define
class InMemoryReleaseStore:
    data: ProjectsData

    async def add(self, release: Release) -> None:
        if any(r.project_id == release.project_id and r.tag == release.tag for r in self.data.releases.values()):
            raise Conflict(f"a release of tag {release.tag!r} already exists")
        self.data.releases[release.id] = attrs.evolve(release, assets=())

    async def get(self, project_id: uuid.UUID, release_id: uuid.UUID) -> Release | None:
        found = self.data.releases.get(release_id)
        return found if found is not None and found.project_id == project_id else None

    async def list(self, project_id: uuid.UUID, *, drafts: bool) -> builtins.list[Release]:
        found = [r for r in self.data.releases.values() if r.project_id == project_id and (drafts or not r.draft)]
        return sorted(found, key=lambda r: (r.created_at, r.id), reverse=True)

    async def update(self, release: Release) -> None:
        old = self.data.releases[release.id]
        self.data.releases[release.id] = attrs.evolve(
            old, title=release.title, notes=release.notes, draft=release.draft, prerelease=release.prerelease,
            updated_at=release.updated_at, published_at=release.published_at)

    async def delete(self, project_id: uuid.UUID, release_id: uuid.UUID) -> builtins.list[str]:
        found = await self.get(project_id, release_id)
        if found is None:
            return []
        del self.data.releases[release_id]
        return [a.object_key for a in found.assets]

    async def add_asset(self, asset: ReleaseAsset) -> None:
        release = self.data.releases[asset.release_id]
        if any(a.name == asset.name for a in release.assets):
            raise Conflict(f"asset {asset.name!r} already exists")
        self.data.releases[release.id] = attrs.evolve(
            release, assets=tuple(sorted((*release.assets, asset), key=lambda a: a.name)))

    async def delete_asset(self, release_id: uuid.UUID, name: str) -> ReleaseAsset | None:
        release = self.data.releases.get(release_id)
        found = next((a for a in release.assets if a.name == name), None) if release else None
        if release is None or found is None:
            return None
        kept = tuple(a for a in release.assets if a is not found)
        self.data.releases[release_id] = attrs.evolve(release, assets=kept)
        return found


@attrs.define
class InMemoryLabelStore:
    data: ProjectsData

    def _clash(self, label: Label) -> None:
        if any(o.id != label.id and o.project_id == label.project_id and o.name.lower() == label.name.lower()
               for o in self.data.labels.values()):
            raise Conflict(f"label {label.name!r} already exists")

    async def add(self, label: Label) -> None:
        self._clash(label)
        self.data.labels[label.id] = label

    async def list(self, project_id: uuid.UUID) -> list[Label]:
        return sorted((x for x in self.data.labels.values() if x.project_id == project_id),
                      key=lambda x: (x.name.lower(), x.name))

    async def get(self, project_id: uuid.UUID, label_id: uuid.UUID) -> Label | None:
        found = self.data.labels.get(label_id)
        return found if found is not None and found.project_id == project_id else None

    def _rename(self, project_id: uuid.UUID, old: str, new: str | None) -> None:
        tables: tuple[dict[uuid.UUID, Any], ...] = (self.data.issues, self.data.merge_requests)
        for table in tables:
            for key, item in list(table.items()):
                if item.project_id == project_id and old in item.labels:
                    names = [new if n == old else n for n in item.labels]
                    table[key] = attrs.evolve(item, labels=tuple(dict.fromkeys(n for n in names if n is not None)))

    async def update(self, label: Label, *, old_name: str) -> None:
        self._clash(label)
        self.data.labels[label.id] = label
        if old_name != label.name:
            self._rename(label.project_id, old_name, label.name)

    async def delete(self, project_id: uuid.UUID, label_id: uuid.UUID) -> bool:
        found = await self.get(project_id, label_id)
        if found is None:
            return False
        del self.data.labels[label_id]
        self._rename(project_id, found.name, None)
        return True


@attrs.define
class InMemoryMilestoneStore:
    data: ProjectsData

    def _clash(self, milestone: Milestone) -> None:
        if any(o.id != milestone.id and o.project_id == milestone.project_id
               and o.title.lower() == milestone.title.lower() for o in self.data.milestones.values()):
            raise Conflict(f"milestone {milestone.title!r} already exists")

    async def add(self, milestone: Milestone) -> None:
        self._clash(milestone)
        self.data.milestones[milestone.id] = milestone

    async def list(self, project_id: uuid.UUID, state: str | None = None) -> list[Milestone]:
        return sorted((m for m in self.data.milestones.values()
                       if m.project_id == project_id and (state is None or m.state == state)),
                      key=lambda m: (m.due_on is None, m.due_on or date.min, m.title.lower()))

    async def get(self, project_id: uuid.UUID, milestone_id: uuid.UUID) -> Milestone | None:
        found = self.data.milestones.get(milestone_id)
        return found if found is not None and found.project_id == project_id else None

    async def update(self, milestone: Milestone) -> None:
        self._clash(milestone)
        self.data.milestones[milestone.id] = milestone

    async def delete(self, project_id: uuid.UUID, milestone_id: uuid.UUID) -> bool:
        if await self.get(project_id, milestone_id) is None:
            return False
        del self.data.milestones[milestone_id]
        tables: tuple[dict[uuid.UUID, Any], ...] = (self.data.issues, self.data.merge_requests)
        for table in tables:
            for key, item in list(table.items()):
                if item.milestone_id == milestone_id:
                    table[key] = attrs.evolve(item, milestone_id=None)
        return True

    async def issue_counts(self, project_id: uuid.UUID) -> dict[uuid.UUID, tuple[int, int]]:
        counts: dict[uuid.UUID, tuple[int, int]] = {}
        for issue in self.data.issues.values():
            if issue.project_id == project_id and issue.milestone_id is not None:
                o, c = counts.get(issue.milestone_id, (0, 0))
                counts[issue.milestone_id] = (o + 1, c) if issue.status is IssueStatus.OPEN else (o, c + 1)
        return counts


@attrs.define
class InMemoryMergeRequestStore:
    data: ProjectsData

    async def add(self, mr: MergeRequest) -> None:
        if await self.get(mr.project_id, mr.number) is not None:
            raise Conflict("merge request already exists")
        self.data.merge_requests[mr.id] = mr

    async def get(self, project_id: uuid.UUID, number: int) -> MergeRequest | None:
        return next(
            (m for m in self.data.merge_requests.values() if m.project_id == project_id and m.number == number), None
        )

    async def lock(self, project_id: uuid.UUID, number: int) -> MergeRequest | None:
        return await self.get(project_id, number)

    async def list(self, project_id: uuid.UUID, flt: IssueFilter) -> list[MergeRequest]:
        return _filter([m for m in self.data.merge_requests.values() if m.project_id == project_id], flt)

    async def update(self, mr: MergeRequest) -> None:
        self.data.merge_requests[mr.id] = mr


@attrs.define
class InMemoryReviewStore:
    data: ProjectsData

    async def add(self, review: Review) -> None:
        self.data.reviews[review.id] = review

    async def list(self, mr_id: uuid.UUID) -> list[Review]:
        return sorted((r for r in self.data.reviews.values() if r.mr_id == mr_id), key=lambda r: r.id)


@attrs.define
class InMemoryBranchProtectionStore:
    data: ProjectsData

    async def add(self, rule: BranchProtection) -> None:
        if any(r.project_id == rule.project_id and r.pattern == rule.pattern for r in self.data.protections.values()):
            raise Conflict("branch protection already exists")
        self.data.protections[rule.id] = rule

    async def list(self, project_id: uuid.UUID) -> list[BranchProtection]:
        return sorted((r for r in self.data.protections.values() if r.project_id == project_id),
                      key=lambda r: r.pattern)

    async def get(self, project_id: uuid.UUID, rule_id: uuid.UUID) -> BranchProtection | None:
        rule = self.data.protections.get(rule_id)
        return rule if rule is not None and rule.project_id == project_id else None

    async def update(self, rule: BranchProtection) -> None:
        self.data.protections[rule.id] = rule

    async def delete(self, project_id: uuid.UUID, rule_id: uuid.UUID) -> bool:
        if await self.get(project_id, rule_id) is None:
            return False
        del self.data.protections[rule_id]
        return True


@attrs.define
class InMemoryWebhookStore:
    data: ProjectsData

    async def add(self, hook: Webhook) -> None:
        self.data.webhooks[hook.id] = hook

    async def get(self, project_id: uuid.UUID, hook_id: uuid.UUID) -> Webhook | None:
        hook = self.data.webhooks.get(hook_id)
        return hook if hook is not None and hook.project_id == project_id else None

    async def list(self, project_id: uuid.UUID) -> list[Webhook]:
        return sorted((h for h in self.data.webhooks.values() if h.project_id == project_id), key=lambda h: h.id)

    async def update(self, hook: Webhook) -> None:
        self.data.webhooks[hook.id] = hook
        if hook.secret != UNSEALED_SECRET:
            self.data.webhook_plaintext.pop(hook.id, None)

    async def delete(self, project_id: uuid.UUID, hook_id: uuid.UUID) -> bool:
        if await self.get(project_id, hook_id) is None:
            return False
        del self.data.webhooks[hook_id]
        self.data.webhook_plaintext.pop(hook_id, None)
        for key in [k for k, d in self.data.deliveries.items() if d.webhook_id == hook_id]:
            del self.data.deliveries[key]
        return True

    def add_plaintext(self, hook: Webhook, secret: str) -> None:
        """A webhook as an older Corral stored it: its secret in plain text (for tests of the sealing step)."""
        self.data.webhooks[hook.id] = attrs.evolve(hook, secret=UNSEALED_SECRET)
        self.data.webhook_plaintext[hook.id] = secret

    async def claim_for_rewrap(self, current_key_id: str, limit: int) -> builtins.list[Webhook]:
        found = [h for _, h in sorted(self.data.webhooks.items())
                 if h.secret is not None and h.secret != UNSEALED_SECRET
                 and h.secret.wrapped_key.key_id != current_key_id]
        return found[:limit]

    async def count_by_key(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for h in self.data.webhooks.values():
            if h.secret is not None and h.secret != UNSEALED_SECRET:
                out[h.secret.wrapped_key.key_id] = out.get(h.secret.wrapped_key.key_id, 0) + 1
        return out

    async def claim_plaintext(self, limit: int) -> builtins.list[tuple[uuid.UUID, str]]:
        return sorted(self.data.webhook_plaintext.items())[:limit]

    async def seal_plaintext(self, hook_id: uuid.UUID, sealed: SealedSecret) -> None:
        if self.data.webhook_plaintext.pop(hook_id, None) is not None and hook_id in self.data.webhooks:
            self.data.webhooks[hook_id] = attrs.evolve(self.data.webhooks[hook_id], secret=sealed)


@attrs.define
class InMemoryWebhookDeliveryStore:
    data: ProjectsData

    async def add(self, delivery: WebhookDelivery) -> None:
        self.data.deliveries[delivery.id] = delivery

    async def get(self, delivery_id: uuid.UUID) -> WebhookDelivery | None:
        return self.data.deliveries.get(delivery_id)

    async def list(self, webhook_id: uuid.UUID, *, before: uuid.UUID | None, limit: int) -> list[WebhookDelivery]:
        items = sorted((d for d in self.data.deliveries.values()
                        if d.webhook_id == webhook_id and (before is None or d.id < before)),
                       key=lambda d: d.id, reverse=True)
        return items[:limit]

    async def claim_due(self, now: datetime, limit: int) -> builtins.list[WebhookDelivery]:
        due = sorted((d for d in self.data.deliveries.values()
                      if d.status is DeliveryStatus.PENDING and d.next_attempt_at is not None
                      and d.next_attempt_at <= now), key=lambda d: d.id)
        return due[:limit]

    async def update(self, delivery: WebhookDelivery) -> None:
        self.data.deliveries[delivery.id] = delivery

    async def purge_finished(self, before: datetime, limit: int) -> int:
        old = sorted((d for d in self.data.deliveries.values()
                      if d.status is not DeliveryStatus.PENDING and d.created_at < before),
                     key=lambda d: (d.created_at, d.id))[:limit]
        for d in old:
            del self.data.deliveries[d.id]
        return len(old)


@attrs.define
class InMemoryUserDirectory:
    """Users known to the fake: register them with ``add``."""

    users: dict[uuid.UUID, UserRef] = attrs.field(factory=dict)

    def add(self, user: UserRef) -> UserRef:
        self.users[user.id] = user
        return user

    async def by_name(self, name: str) -> UserRef | None:
        return next((u for u in self.users.values() if u.name == name), None)

    async def by_ids(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, UserRef]:
        return {i: self.users[i] for i in ids if i in self.users}


_MOVE_SEQ = itertools.count(1)


@attrs.define
class InMemoryProjectPurgeStore:
    """See corral.core.projects.ports.ProjectPurgeStore (two units claiming one row: the second's commit is a
    Conflict, where PostgreSQL's SKIP LOCKED would skip it)."""

    data: ProjectsData

    async def add(self, purge: ProjectPurge) -> None:
        if purge.project_id in self.data.purges:
            raise Conflict(f"project {purge.project_id} already has a purge")
        self.data.purges[purge.project_id] = purge

    async def get(self, project_id: uuid.UUID) -> ProjectPurge | None:
        return self.data.purges.get(project_id)

    async def claim(self, now: datetime, lease_until: datetime, limit: int,
                    project_id: uuid.UUID | None = None) -> builtins.list[ProjectPurge]:
        due = sorted((p for p in self.data.purges.values() if p.next_attempt_at <= now
                      and (project_id is None or p.project_id == project_id)),
                     key=lambda p: (p.created_at, p.project_id))[:limit]
        claimed = [attrs.evolve(p, attempts=p.attempts + 1, next_attempt_at=lease_until) for p in due]
        for p in claimed:
            self.data.purges[p.project_id] = p
        return claimed

    async def finish(self, project_id: uuid.UUID) -> None:
        self.data.purges.pop(project_id, None)

    async def fail(self, project_id: uuid.UUID, error: str, retry_at: datetime) -> None:
        found = self.data.purges.get(project_id)
        if found is not None:
            self.data.purges[project_id] = attrs.evolve(found, last_error=error, next_attempt_at=retry_at)


@attrs.define
class InMemoryPushIntentStore:
    """See corral.core.git.ports.PushIntentStore."""

    data: ProjectsData
    locks: RowLocks = attrs.field(factory=RowLocks)  # the database's, shared by its units
    owner: object = attrs.field(factory=object)  # the unit of work
    committed: ProjectsData | None = None  # the database's committed tables (moves are read as committed)

    async def add(self, intent: PushIntent) -> None:
        self.data.push_intents[intent.id] = intent

    async def claim(self, intent_id: uuid.UUID) -> bool:
        return self.data.push_intents.pop(intent_id, None) is not None

    async def older_than(self, before: datetime, limit: int) -> builtins.list[PushIntent]:
        found = sorted((i for i in self.data.push_intents.values() if i.created_at < before),
                       key=lambda i: (i.created_at, i.id))
        return found[:limit]

    async def lock_moves(self, project_id: uuid.UUID) -> None:
        key = uuid.uuid5(project_id, "git ref moves")
        while self.locks.held.setdefault(key, self.owner) is not self.owner:  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.001)  # held by another open unit (released when it ends)

    async def moves_since(self, project_id: uuid.UUID, refs: builtins.list[str],
                          since: datetime) -> builtins.list[RefUpdate]:
        # read committed (as PostgreSQL): the moves other units committed, and this unit's own
        rows = {row[0]: row for row in self.data.ref_moves}
        if self.committed is not None:
            rows.update((row[0], row) for row in self.committed.ref_moves)
        wanted = set(refs)
        return [m for _, p, m, at in sorted(rows.values(), key=lambda row: row[0])
                if p == project_id and m.ref in wanted and at >= since]

    async def add_moves(self, project_id: uuid.UUID, moves: builtins.list[RefUpdate], at: datetime) -> None:
        self.data.ref_moves.extend((next(_MOVE_SEQ), project_id, m, at) for m in moves)

    async def forget_moves(self, before: datetime) -> int:
        kept = [row for row in self.data.ref_moves if row[3] >= before]
        dropped = len(self.data.ref_moves) - len(kept)
        if dropped:
            self.data.ref_moves = kept
        return dropped
