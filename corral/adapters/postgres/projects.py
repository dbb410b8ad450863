"""PostgreSQL stores of the projects domain over the unit of work's asyncpg connection."""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime
from typing import Any, Literal

import asyncpg

from corral.adapters.postgres.errors import translate_errors
from corral.core.errors import Conflict
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
    MrStatus,
    Project,
    ProjectPurge,
    Release,
    ReleaseAsset,
    Review,
    Verdict,
    Visibility,
    Webhook,
    WebhookDelivery,
)
from corral.core.projects.ports import UserRef
from corral.core.secrets.model import WrappedKey

__all__ = [
    "PostgresBranchProtectionStore",
    "PostgresCommentStore",
    "PostgresIssueStore",
    "PostgresLabelStore",
    "PostgresMergeRequestStore",
    "PostgresMilestoneStore",
    "PostgresProjectPurgeStore",
    "PostgresProjectStore",
    "PostgresReviewStore",
    "PostgresUserDirectory",
    "PostgresWebhookDeliveryStore",
    "PostgresWebhookStore",
]

_PROJECT = "SELECT p.*, u.name AS owner_name FROM projects p JOIN users u ON u.id = p.owner_id"


def _project(r: asyncpg.Record) -> Project:
    return Project(
        id=r["id"], owner_id=r["owner_id"], owner_name=r["owner_name"], name=r["name"],
        visibility=Visibility(r["visibility"]), default_branch=r["default_branch"], repo_path=r["repo_path"] or "",
        created_at=r["created_at"], updated_at=r["updated_at"], display_name=r["display_name"],
        description=r["description"], is_active=r["is_active"], archived=r["archived"],
    )


class PostgresProjectStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, project: Project) -> None:
        try:
            await self.conn.execute(
                "INSERT INTO projects (id, owner_id, name, display_name, description, visibility, default_branch,"
                " repo_path, is_active, archived, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                project.id, project.owner_id, project.name, project.display_name, project.description,
                project.visibility.value, project.default_branch, project.repo_path, project.is_active,
                project.archived, project.created_at, project.updated_at,
            )
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(f"{project.full_name} already exists", field="name") from exc
        except asyncpg.ForeignKeyViolationError as exc:
            raise Conflict("the owner of the project does not exist") from exc

    async def get(self, project_id: uuid.UUID) -> Project | None:
        r = await self.conn.fetchrow(f"{_PROJECT} WHERE p.id = $1 AND p.is_active", project_id)
        return _project(r) if r else None

    async def get_by_slug(self, owner: str, name: str) -> Project | None:
        r = await self.conn.fetchrow(
            f"{_PROJECT} WHERE lower(u.name) = lower($1) AND lower(p.name) = lower($2) AND p.is_active", owner, name,
        )
        return _project(r) if r else None

    async def owned_by(self, owner_id: uuid.UUID) -> builtins.list[uuid.UUID]:
        rows = await self.conn.fetch(
            "SELECT id FROM projects WHERE owner_id = $1 AND is_active ORDER BY id", owner_id
        )
        return [r["id"] for r in rows]

    async def list(self, *, after: uuid.UUID | None, limit: int) -> list[Project]:
        rows = await self.conn.fetch(
            f"{_PROJECT} WHERE p.is_active AND ($1::uuid IS NULL OR p.id > $1) ORDER BY p.id LIMIT $2", after, limit
        )
        return [_project(r) for r in rows]

    async def update(self, project: Project) -> None:
        try:
            await self.conn.execute(
                "UPDATE projects SET name = $2, display_name = $3, description = $4, visibility = $5,"
                " default_branch = $6, is_active = $7, archived = $8 WHERE id = $1",
                project.id, project.name, project.display_name, project.description, project.visibility.value,
                project.default_branch, project.is_active, project.archived,
            )
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(f"{project.full_name} already exists", field="name") from exc

    async def delete(self, project_id: uuid.UUID) -> None:
        await self.conn.execute("DELETE FROM projects WHERE id = $1", project_id)

    async def set_redirect(self, owner_id: uuid.UUID, name: str, project_id: uuid.UUID) -> None:
        # one redirect per name regardless of case (the old name's spelling is the latest one)
        await self.drop_redirect(owner_id, name)
        await self.conn.execute(
            "INSERT INTO project_redirects (owner_id, name, project_id) VALUES ($1, $2, $3)",
            owner_id, name, project_id,
        )

    async def drop_redirect(self, owner_id: uuid.UUID, name: str) -> None:
        await self.conn.execute(
            "DELETE FROM project_redirects WHERE owner_id = $1 AND lower(name) = lower($2)", owner_id, name,
        )

    async def redirect(self, owner: str, name: str) -> Project | None:
        r = await self.conn.fetchrow(
            f"{_PROJECT} JOIN project_redirects rd ON rd.project_id = p.id AND rd.owner_id = p.owner_id"
            " WHERE lower(u.name) = lower($1) AND lower(rd.name) = lower($2) AND p.is_active", owner, name,
        )
        return _project(r) if r else None

    async def allocate_number(self, project_id: uuid.UUID, kind: Literal["issue", "mr"]) -> int:
        column = "next_issue_number" if kind == "issue" else "next_mr_number"
        value = await self.conn.fetchval(
            f"UPDATE projects SET {column} = {column} + 1 WHERE id = $1 RETURNING {column}", project_id
        )
        if value is None:
            raise Conflict("the project no longer exists")
        return int(value)


def _issue(r: asyncpg.Record) -> Issue:
    return Issue(
        id=r["id"], project_id=r["project_id"], number=r["number"], author_id=r["author_id"], title=r["title"],
        status=IssueStatus(r["status"]), created_at=r["created_at"], updated_at=r["updated_at"], body=r["body"],
        labels=tuple(r["labels"] or ()), assignee_id=r["assignee_id"], milestone_id=r["milestone_id"],
    )


class PostgresIssueStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, issue: Issue) -> None:
        with translate_errors("issue"):
            await self.conn.execute(
                "INSERT INTO issues (id, project_id, number, author_id, title, body, status, labels, assignee_id,"
                " created_at, updated_at, milestone_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                issue.id, issue.project_id, issue.number, issue.author_id, issue.title, issue.body,
                issue.status.value, list(issue.labels), issue.assignee_id, issue.created_at, issue.updated_at,
                issue.milestone_id,
            )

    async def get(self, project_id: uuid.UUID, number: int) -> Issue | None:
        r = await self.conn.fetchrow("SELECT * FROM issues WHERE project_id = $1 AND number = $2", project_id, number)
        return _issue(r) if r else None

    async def list(self, project_id: uuid.UUID, flt: IssueFilter) -> builtins.list[Issue]:
        rows = await self.conn.fetch(
            "SELECT * FROM issues WHERE project_id = $1 AND ($2::text IS NULL OR status = $2)"
            " AND ($3::text IS NULL OR labels @> ARRAY[$3::text]) AND ($4::uuid IS NULL OR assignee_id = $4)"
            " AND ($5::int IS NULL OR number < $5) AND labels @> $7::text[]"
            " AND ($8::uuid IS NULL OR milestone_id = $8) AND ($10::uuid IS NULL OR author_id = $10)"
            " ORDER BY number DESC LIMIT $6 OFFSET $9",
            project_id, flt.status, flt.label, flt.assignee_id, flt.before_number, flt.limit, list(flt.labels),
            flt.milestone_id, flt.offset, flt.author_id,
        )
        return [_issue(r) for r in rows]

    async def update(self, issue: Issue) -> None:
        with translate_errors("issue"):
            await self.conn.execute(
                "UPDATE issues SET title = $2, body = $3, status = $4, labels = $5, assignee_id = $6, milestone_id = $7"
                " WHERE id = $1",
                issue.id, issue.title, issue.body, issue.status.value, list(issue.labels), issue.assignee_id,
                issue.milestone_id,
            )


def _comment(r: asyncpg.Record) -> Comment:
    return Comment(id=r["id"], project_id=r["project_id"], author_id=r["author_id"], body=r["body"],
                   created_at=r["created_at"], updated_at=r["updated_at"], issue_id=r["issue_id"], mr_id=r["mr_id"],
                   path=r["path"], line=r["line"], side=r["side"], commit_sha=r["commit_sha"],
                   line_content=r["line_content"])


class PostgresCommentStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, comment: Comment) -> None:
        with translate_errors("comment"):
            await self.conn.execute(
                "INSERT INTO comments (id, project_id, issue_id, mr_id, author_id, body, created_at, updated_at,"
                " path, line, side, commit_sha, line_content)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                comment.id, comment.project_id, comment.issue_id, comment.mr_id, comment.author_id, comment.body,
                comment.created_at, comment.updated_at, comment.path, comment.line, comment.side, comment.commit_sha,
                comment.line_content,
            )

    async def list(
        self, project_id: uuid.UUID, *, issue_id: uuid.UUID | None = None, mr_id: uuid.UUID | None = None,
        after: uuid.UUID | None = None, limit: int = 50,
    ) -> builtins.list[Comment]:
        rows = await self.conn.fetch(
            "SELECT * FROM comments WHERE project_id = $1 AND issue_id IS NOT DISTINCT FROM $2"
            " AND mr_id IS NOT DISTINCT FROM $3 AND ($4::uuid IS NULL OR id > $4) ORDER BY id LIMIT $5",
            project_id, issue_id, mr_id, after, limit,
        )
        return [_comment(r) for r in rows]


def _mr(r: asyncpg.Record) -> MergeRequest:
    return MergeRequest(
        id=r["id"], project_id=r["project_id"], number=r["number"], author_id=r["author_id"],
        source_branch=r["source_branch"], target_branch=r["target_branch"], title=r["title"],
        status=MrStatus(r["status"]), created_at=r["created_at"], updated_at=r["updated_at"], body=r["body"],
        merged_by=r["merged_by"], merged_at=r["merged_at"], merge_commit_sha=r["merge_commit_sha"],
        labels=tuple(r["labels"] or ()), milestone_id=r["milestone_id"], assignee_ids=tuple(r["assignee_ids"] or ()),
        reviewer_ids=tuple(r["reviewer_ids"] or ()),
    )


class PostgresMergeRequestStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, mr: MergeRequest) -> None:
        with translate_errors("merge request"):
            await self.conn.execute(
                "INSERT INTO merge_requests (id, project_id, number, author_id, source_branch, target_branch, title,"
                " body, status, created_at, updated_at, labels, milestone_id, assignee_ids, reviewer_ids)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                mr.id, mr.project_id, mr.number, mr.author_id, mr.source_branch, mr.target_branch, mr.title, mr.body,
                mr.status.value, mr.created_at, mr.updated_at, list(mr.labels), mr.milestone_id,
                list(mr.assignee_ids), list(mr.reviewer_ids),
            )

    async def get(self, project_id: uuid.UUID, number: int) -> MergeRequest | None:
        r = await self.conn.fetchrow(
            "SELECT * FROM merge_requests WHERE project_id = $1 AND number = $2", project_id, number
        )
        return _mr(r) if r else None

    async def lock(self, project_id: uuid.UUID, number: int) -> MergeRequest | None:
        r = await self.conn.fetchrow(
            "SELECT * FROM merge_requests WHERE project_id = $1 AND number = $2 FOR UPDATE", project_id, number
        )
        return _mr(r) if r else None

    async def list(self, project_id: uuid.UUID, flt: IssueFilter) -> builtins.list[MergeRequest]:
        rows = await self.conn.fetch(
            "SELECT * FROM merge_requests WHERE project_id = $1 AND ($2::text IS NULL OR status = $2)"
            " AND ($3::int IS NULL OR number < $3) AND labels @> $5::text[] AND ($6::uuid IS NULL OR milestone_id = $6)"
            " AND ($7::text IS NULL OR labels @> ARRAY[$7::text])"
            " AND ($8::uuid IS NULL OR $8 = ANY(assignee_ids)) AND ($10::uuid IS NULL OR author_id = $10)"
            " ORDER BY number DESC LIMIT $4 OFFSET $9",
            project_id, flt.status, flt.before_number, flt.limit, list(flt.labels), flt.milestone_id, flt.label,
            flt.assignee_id, flt.offset, flt.author_id,
        )
        return [_mr(r) for r in rows]

    async def update(self, mr: MergeRequest) -> None:
        with translate_errors("merge request"):
            await self.conn.execute(
                "UPDATE merge_requests SET title = $2, body = $3, status = $4, target_branch = $5, merged_by = $6,"
                " merged_at = $7, merge_commit_sha = $8, labels = $9, milestone_id = $10, assignee_ids = $11,"
                " reviewer_ids = $12 WHERE id = $1",
                mr.id, mr.title, mr.body, mr.status.value, mr.target_branch, mr.merged_by, mr.merged_at,
                mr.merge_commit_sha, list(mr.labels), mr.milestone_id, list(mr.assignee_ids), list(mr.reviewer_ids),
            )


def _asset(r: asyncpg.Record) -> ReleaseAsset:
    return ReleaseAsset(id=r["id"], release_id=r["release_id"], name=r["name"], size=r["size"],
                        content_type=r["content_type"], object_key=r["object_key"], created_at=r["created_at"],
                        uploader_id=r["uploader_id"])


def _release(r: asyncpg.Record, assets: builtins.list[ReleaseAsset]) -> Release:
    return Release(id=r["id"], project_id=r["project_id"], tag=r["tag"], target=r["target"], title=r["title"],
                   notes=r["notes"], draft=r["draft"], prerelease=r["prerelease"], created_at=r["created_at"],
                   updated_at=r["updated_at"], author_id=r["author_id"], published_at=r["published_at"],
                   assets=tuple(a for a in assets if a.release_id == r["id"]))


def _purge(r: asyncpg.Record) -> ProjectPurge:
    return ProjectPurge(
        project_id=r["project_id"], project_name=r["project_name"], repo_path=r["repo_path"],
        prefixes=tuple(r["prefixes"]), workspaces=tuple(r["workspaces"]), created_at=r["created_at"],
        next_attempt_at=r["next_attempt_at"], attempts=r["attempts"], last_error=r["last_error"],
    )


class PostgresProjectPurgeStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, purge: ProjectPurge) -> None:
        with translate_errors("project purge"):
            await self.conn.execute(
                "INSERT INTO project_purges (project_id, project_name, repo_path, prefixes, workspaces, created_at,"
                " next_attempt_at, attempts, last_error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                purge.project_id, purge.project_name, purge.repo_path, list(purge.prefixes),
                list(purge.workspaces), purge.created_at, purge.next_attempt_at, purge.attempts, purge.last_error,
            )

    async def get(self, project_id: uuid.UUID) -> ProjectPurge | None:
        r = await self.conn.fetchrow("SELECT * FROM project_purges WHERE project_id = $1", project_id)
        return _purge(r) if r else None

    async def claim(self, now: datetime, lease_until: datetime, limit: int,
                    project_id: uuid.UUID | None = None) -> builtins.list[ProjectPurge]:
        rows = await self.conn.fetch(
            "UPDATE project_purges SET attempts = attempts + 1, next_attempt_at = $2 WHERE project_id IN ("
            " SELECT project_id FROM project_purges WHERE next_attempt_at <= $1"
            " AND ($4::uuid IS NULL OR project_id = $4) ORDER BY created_at, project_id LIMIT $3"
            " FOR UPDATE SKIP LOCKED) RETURNING *",
            now, lease_until, limit, project_id)
        return sorted((_purge(r) for r in rows), key=lambda p: (p.created_at, p.project_id))

    async def finish(self, project_id: uuid.UUID) -> None:
        await self.conn.execute("DELETE FROM project_purges WHERE project_id = $1", project_id)

    async def fail(self, project_id: uuid.UUID, error: str, retry_at: datetime) -> None:
        await self.conn.execute(
            "UPDATE project_purges SET last_error = $2, next_attempt_at = $3 WHERE project_id = $1",
            project_id, error, retry_at)


class PostgresReleaseStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, release: Release) -> None:
        with translate_errors(f"a release of tag {release.tag!r}"):
            await self.conn.execute(
                "INSERT INTO releases (id, project_id, tag, target, title, notes, draft, prerelease, author_id,"
                " created_at, updated_at, published_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                release.id, release.project_id, release.tag, release.target, release.title, release.notes,
                release.draft, release.prerelease, release.author_id, release.created_at, release.updated_at,
                release.published_at,
            )

    async def _assets(self, ids: builtins.list[uuid.UUID]) -> builtins.list[ReleaseAsset]:
        if not ids:
            return []
        rows = await self.conn.fetch(
            "SELECT * FROM release_assets WHERE release_id = ANY($1::uuid[]) ORDER BY name", ids)
        return [_asset(r) for r in rows]

    async def get(self, project_id: uuid.UUID, release_id: uuid.UUID) -> Release | None:
        r = await self.conn.fetchrow("SELECT * FROM releases WHERE project_id = $1 AND id = $2", project_id,
                                     release_id)
        return _release(r, await self._assets([r["id"]])) if r else None

    async def list(self, project_id: uuid.UUID, *, drafts: bool) -> builtins.list[Release]:
        rows = await self.conn.fetch(
            "SELECT * FROM releases WHERE project_id = $1 AND ($2 OR NOT draft) ORDER BY created_at DESC, id DESC",
            project_id, drafts)
        assets = await self._assets([r["id"] for r in rows])
        return [_release(r, assets) for r in rows]

    async def update(self, release: Release) -> None:
        await self.conn.execute(
            "UPDATE releases SET title = $2, notes = $3, draft = $4, prerelease = $5, updated_at = $6,"
            " published_at = $7 WHERE id = $1",
            release.id, release.title, release.notes, release.draft, release.prerelease, release.updated_at,
            release.published_at,
        )

    async def delete(self, project_id: uuid.UUID, release_id: uuid.UUID) -> builtins.list[str]:
        keys = await self.conn.fetch(
            "SELECT a.object_key FROM release_assets a JOIN releases r ON r.id = a.release_id"
            " WHERE r.project_id = $1 AND r.id = $2 ORDER BY a.name", project_id, release_id)
        await self.conn.execute("DELETE FROM releases WHERE project_id = $1 AND id = $2", project_id, release_id)
        return [k["object_key"] for k in keys]

    async def add_asset(self, asset: ReleaseAsset) -> None:
        with translate_errors(f"asset {asset.name!r}"):
            await self.conn.execute(
                "INSERT INTO release_assets (id, release_id, name, size, content_type, object_key, uploader_id,"
                " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                asset.id, asset.release_id, asset.name, asset.size, asset.content_type, asset.object_key,
                asset.uploader_id, asset.created_at,
            )

    async def delete_asset(self, release_id: uuid.UUID, name: str) -> ReleaseAsset | None:
        r = await self.conn.fetchrow(
            "DELETE FROM release_assets WHERE release_id = $1 AND name = $2 RETURNING *", release_id, name)
        return _asset(r) if r else None


def _label(r: asyncpg.Record) -> Label:
    return Label(id=r["id"], project_id=r["project_id"], name=r["name"], color=r["color"],
                 created_at=r["created_at"], description=r["description"])


class PostgresLabelStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, label: Label) -> None:
        with translate_errors(f"label {label.name!r}"):
            await self.conn.execute(
                "INSERT INTO labels (id, project_id, name, color, description, created_at)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                label.id, label.project_id, label.name, label.color, label.description, label.created_at,
            )

    async def list(self, project_id: uuid.UUID) -> builtins.list[Label]:
        rows = await self.conn.fetch(
            "SELECT * FROM labels WHERE project_id = $1 ORDER BY lower(name), name", project_id)
        return [_label(r) for r in rows]

    async def get(self, project_id: uuid.UUID, label_id: uuid.UUID) -> Label | None:
        r = await self.conn.fetchrow("SELECT * FROM labels WHERE project_id = $1 AND id = $2", project_id, label_id)
        return _label(r) if r else None

    async def _rename(self, project_id: uuid.UUID, old: str, new: str | None) -> None:
        for table in ("issues", "merge_requests"):
            # the new name replaces the old one once (an item carrying both keeps one)
            await self.conn.execute(
                f"UPDATE {table} SET labels = ARRAY(SELECT DISTINCT x FROM unnest("
                " array_remove(array_replace(labels, $2, $3), NULL)) AS x)"
                " WHERE project_id = $1 AND labels @> ARRAY[$2::text]",
                project_id, old, new,
            )

    async def update(self, label: Label, *, old_name: str) -> None:
        with translate_errors(f"label {label.name!r}"):
            await self.conn.execute(
                "UPDATE labels SET name = $2, color = $3, description = $4 WHERE id = $1",
                label.id, label.name, label.color, label.description,
            )
        if old_name != label.name:
            await self._rename(label.project_id, old_name, label.name)

    async def delete(self, project_id: uuid.UUID, label_id: uuid.UUID) -> bool:
        name = await self.conn.fetchval(
            "DELETE FROM labels WHERE project_id = $1 AND id = $2 RETURNING name", project_id, label_id)
        if name is None:
            return False
        await self._rename(project_id, name, None)
        return True


def _milestone(r: asyncpg.Record) -> Milestone:
    return Milestone(id=r["id"], project_id=r["project_id"], title=r["title"], state=r["state"],
                     created_at=r["created_at"], updated_at=r["updated_at"], description=r["description"],
                     due_on=r["due_on"], closed_at=r["closed_at"])


class PostgresMilestoneStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, milestone: Milestone) -> None:
        m = milestone
        with translate_errors(f"milestone {m.title!r}"):
            await self.conn.execute(
                "INSERT INTO milestones (id, project_id, title, description, due_on, state, created_at, updated_at,"
                " closed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                m.id, m.project_id, m.title, m.description, m.due_on, m.state, m.created_at, m.updated_at,
                m.closed_at,
            )

    async def list(self, project_id: uuid.UUID, state: str | None = None) -> builtins.list[Milestone]:
        rows = await self.conn.fetch(
            "SELECT * FROM milestones WHERE project_id = $1 AND ($2::text IS NULL OR state = $2)"
            " ORDER BY due_on ASC NULLS LAST, lower(title)", project_id, state)
        return [_milestone(r) for r in rows]

    async def get(self, project_id: uuid.UUID, milestone_id: uuid.UUID) -> Milestone | None:
        r = await self.conn.fetchrow(
            "SELECT * FROM milestones WHERE project_id = $1 AND id = $2", project_id, milestone_id)
        return _milestone(r) if r else None

    async def update(self, milestone: Milestone) -> None:
        m = milestone
        with translate_errors(f"milestone {m.title!r}"):
            await self.conn.execute(
                "UPDATE milestones SET title = $2, description = $3, due_on = $4, state = $5, updated_at = $6,"
                " closed_at = $7 WHERE id = $1",
                m.id, m.title, m.description, m.due_on, m.state, m.updated_at, m.closed_at,
            )

    async def delete(self, project_id: uuid.UUID, milestone_id: uuid.UUID) -> bool:
        return await self.conn.fetchval(
            "DELETE FROM milestones WHERE project_id = $1 AND id = $2 RETURNING true", project_id, milestone_id,
        ) is not None

    async def issue_counts(self, project_id: uuid.UUID) -> dict[uuid.UUID, tuple[int, int]]:
        rows = await self.conn.fetch(
            "SELECT milestone_id, count(*) FILTER (WHERE status = 'open') AS open,"
            " count(*) FILTER (WHERE status = 'closed') AS closed FROM issues"
            " WHERE project_id = $1 AND milestone_id IS NOT NULL GROUP BY milestone_id", project_id)
        return {r["milestone_id"]: (r["open"], r["closed"]) for r in rows}


class PostgresReviewStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, review: Review) -> None:
        with translate_errors("review"):
            await self.conn.execute(
                "INSERT INTO mr_reviews (id, project_id, mr_id, reviewer_id, verdict, body, created_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                review.id, review.project_id, review.mr_id, review.reviewer_id, review.verdict.value, review.body,
                review.created_at,
            )

    async def list(self, mr_id: uuid.UUID) -> list[Review]:
        rows = await self.conn.fetch("SELECT * FROM mr_reviews WHERE mr_id = $1 ORDER BY id", mr_id)
        return [
            Review(id=r["id"], project_id=r["project_id"], mr_id=r["mr_id"], reviewer_id=r["reviewer_id"],
                   verdict=Verdict(r["verdict"]), created_at=r["created_at"], body=r["body"])
            for r in rows
        ]


def _rule(r: asyncpg.Record) -> BranchProtection:
    return BranchProtection(
        id=r["id"], project_id=r["project_id"], pattern=r["pattern"], created_at=r["created_at"],
        allow_force_push=r["allow_force_push"], allow_deletion=r["allow_deletion"],
        require_merge_request=r["require_merge_request"], required_approvals=r["required_approvals"],
        bypass_admins=r["bypass_admins"], push_allowlist=tuple(r["push_allowlist"] or ()),
        required_checks=tuple(r["required_checks"] or ()),
    )


class PostgresBranchProtectionStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, rule: BranchProtection) -> None:
        try:
            await self.conn.execute(
                "INSERT INTO branch_protections (id, project_id, pattern, allow_force_push, allow_deletion,"
                " require_merge_request, required_approvals, created_at, bypass_admins, push_allowlist,"
                " required_checks) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                rule.id, rule.project_id, rule.pattern, rule.allow_force_push, rule.allow_deletion,
                rule.require_merge_request, rule.required_approvals, rule.created_at, rule.bypass_admins,
                list(rule.push_allowlist), list(rule.required_checks),
            )
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(f"{rule.pattern} is already protected", field="pattern") from exc

    async def list(self, project_id: uuid.UUID) -> builtins.list[BranchProtection]:
        rows = await self.conn.fetch(
            "SELECT * FROM branch_protections WHERE project_id = $1 ORDER BY pattern", project_id
        )
        return [_rule(r) for r in rows]

    async def get(self, project_id: uuid.UUID, rule_id: uuid.UUID) -> BranchProtection | None:
        r = await self.conn.fetchrow(
            "SELECT * FROM branch_protections WHERE project_id = $1 AND id = $2", project_id, rule_id
        )
        return _rule(r) if r else None

    async def update(self, rule: BranchProtection) -> None:
        await self.conn.execute(
            "UPDATE branch_protections SET allow_force_push = $2, allow_deletion = $3, require_merge_request = $4,"
            " required_approvals = $5, bypass_admins = $6, push_allowlist = $7, required_checks = $8 WHERE id = $1",
            rule.id, rule.allow_force_push, rule.allow_deletion, rule.require_merge_request, rule.required_approvals,
            rule.bypass_admins, list(rule.push_allowlist), list(rule.required_checks),
        )

    async def delete(self, project_id: uuid.UUID, rule_id: uuid.UUID) -> bool:
        status = await self.conn.execute(
            "DELETE FROM branch_protections WHERE project_id = $1 AND id = $2", project_id, rule_id
        )
        return bool(status.endswith(" 1"))


def _hook(r: asyncpg.Record) -> Webhook:
    secret: SealedSecret | None = None
    if r["secret_sealed"] is not None:
        secret = SealedSecret(r["secret_sealed"], WrappedKey(r["secret_key_id"], r["secret_wrapped_key"]))
    elif r["secret"] is not None:  # plain text from an older Corral, sealed at start-up
        secret = UNSEALED_SECRET
    return Webhook(id=r["id"], project_id=r["project_id"], url=r["url"], events=tuple(r["events"] or ()),
                   created_at=r["created_at"], secret=secret, active=r["active"])


def _sealed(hook: Webhook) -> tuple[bytes | None, str | None, bytes | None]:
    if hook.secret is None or hook.secret == UNSEALED_SECRET:
        return None, None, None
    return hook.secret.ciphertext, hook.secret.wrapped_key.key_id, hook.secret.wrapped_key.blob


class PostgresWebhookStore:
    """Webhooks; the secret only ever in its sealed columns (``secret`` holds an older Corral's plain text
    until seal_plaintext clears it)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, hook: Webhook) -> None:
        with translate_errors("webhook"):
            await self.conn.execute(
                "INSERT INTO webhooks (id, project_id, url, events, secret, secret_sealed, secret_key_id,"
                " secret_wrapped_key, active, created_at) VALUES ($1, $2, $3, $4, NULL, $5, $6, $7, $8, $9)",
                hook.id, hook.project_id, hook.url, list(hook.events), *_sealed(hook), hook.active, hook.created_at,
            )

    async def get(self, project_id: uuid.UUID, hook_id: uuid.UUID) -> Webhook | None:
        r = await self.conn.fetchrow("SELECT * FROM webhooks WHERE project_id = $1 AND id = $2", project_id, hook_id)
        return _hook(r) if r else None

    async def list(self, project_id: uuid.UUID) -> builtins.list[Webhook]:
        rows = await self.conn.fetch("SELECT * FROM webhooks WHERE project_id = $1 ORDER BY id", project_id)
        return [_hook(r) for r in rows]

    async def update(self, hook: Webhook) -> None:
        if hook.secret == UNSEALED_SECRET:  # the plain text stays until the start-up step seals it
            await self.conn.execute(
                "UPDATE webhooks SET url = $2, events = $3, active = $4 WHERE id = $1",
                hook.id, hook.url, list(hook.events), hook.active,
            )
            return
        await self.conn.execute(
            "UPDATE webhooks SET url = $2, events = $3, secret = NULL, secret_sealed = $4, secret_key_id = $5,"
            " secret_wrapped_key = $6, active = $7 WHERE id = $1",
            hook.id, hook.url, list(hook.events), *_sealed(hook), hook.active,
        )

    async def delete(self, project_id: uuid.UUID, hook_id: uuid.UUID) -> bool:
        status = await self.conn.execute("DELETE FROM webhooks WHERE project_id = $1 AND id = $2", project_id, hook_id)
        return bool(status.endswith(" 1"))

    async def claim_for_rewrap(self, current_key_id: str, limit: int) -> builtins.list[Webhook]:
        rows = await self.conn.fetch(
            "SELECT * FROM webhooks WHERE secret_key_id IS NOT NULL AND secret_key_id <> $1 ORDER BY id LIMIT $2"
            " FOR UPDATE SKIP LOCKED",
            current_key_id, limit,
        )
        return [_hook(r) for r in rows]

    async def count_by_key(self) -> dict[str, int]:
        rows = await self.conn.fetch(
            "SELECT secret_key_id, count(*) AS n FROM webhooks WHERE secret_key_id IS NOT NULL GROUP BY secret_key_id"
        )
        return {r["secret_key_id"]: r["n"] for r in rows}

    async def claim_plaintext(self, limit: int) -> builtins.list[tuple[uuid.UUID, str]]:
        rows = await self.conn.fetch(
            "SELECT id, secret FROM webhooks WHERE secret IS NOT NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            limit,
        )
        return [(r["id"], r["secret"]) for r in rows]

    async def seal_plaintext(self, hook_id: uuid.UUID, sealed: SealedSecret) -> None:
        await self.conn.execute(
            "UPDATE webhooks SET secret = NULL, secret_sealed = $2, secret_key_id = $3, secret_wrapped_key = $4"
            " WHERE id = $1",
            hook_id, sealed.ciphertext, sealed.wrapped_key.key_id, sealed.wrapped_key.blob,
        )


def _delivery(r: asyncpg.Record) -> WebhookDelivery:
    payload: Any = r["payload"]
    return WebhookDelivery(
        id=r["id"], webhook_id=r["webhook_id"], project_id=r["project_id"], event=r["event"], payload=payload,
        status=DeliveryStatus(r["status"]), created_at=r["created_at"], next_attempt_at=r["next_attempt_at"],
        attempts=r["attempts"], status_code=r["status_code"], duration_ms=r["duration_ms"],
        response_excerpt=r["response_excerpt"], error=r["error"], delivered_at=r["delivered_at"],
        redelivery_of=r["redelivery_of"],
    )


class PostgresWebhookDeliveryStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, d: WebhookDelivery) -> None:
        with translate_errors("webhook delivery"):
            await self.conn.execute(
                "INSERT INTO webhook_deliveries (id, webhook_id, project_id, event, payload, status, attempts,"
                " next_attempt_at, status_code, duration_ms, response_excerpt, error, delivered_at, redelivery_of,"
                " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                d.id, d.webhook_id, d.project_id, d.event, d.payload, d.status.value, d.attempts, d.next_attempt_at,
                d.status_code, d.duration_ms, d.response_excerpt, d.error, d.delivered_at, d.redelivery_of,
                d.created_at,
            )

    async def get(self, delivery_id: uuid.UUID) -> WebhookDelivery | None:
        r = await self.conn.fetchrow("SELECT * FROM webhook_deliveries WHERE id = $1", delivery_id)
        return _delivery(r) if r else None

    async def list(
        self, webhook_id: uuid.UUID, *, before: uuid.UUID | None, limit: int
    ) -> builtins.list[WebhookDelivery]:
        rows = await self.conn.fetch(
            "SELECT * FROM webhook_deliveries WHERE webhook_id = $1 AND ($2::uuid IS NULL OR id < $2)"
            " ORDER BY id DESC LIMIT $3",
            webhook_id, before, limit,
        )
        return [_delivery(r) for r in rows]

    async def claim_due(self, now: datetime, limit: int) -> builtins.list[WebhookDelivery]:
        rows = await self.conn.fetch(
            "SELECT * FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1"
            " ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
            now, limit,
        )
        return [_delivery(r) for r in rows]

    async def update(self, d: WebhookDelivery) -> None:
        await self.conn.execute(
            "UPDATE webhook_deliveries SET status = $2, attempts = $3, next_attempt_at = $4, status_code = $5,"
            " duration_ms = $6, response_excerpt = $7, error = $8, delivered_at = $9 WHERE id = $1",
            d.id, d.status.value, d.attempts, d.next_attempt_at, d.status_code, d.duration_ms, d.response_excerpt,
            d.error, d.delivered_at,
        )

    async def purge_finished(self, before: datetime, limit: int) -> int:
        with translate_errors("webhook delivery purge"):
            status = await self.conn.execute(
                "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries"
                " WHERE created_at < $1 AND status <> 'pending' ORDER BY created_at LIMIT $2"
                " FOR UPDATE SKIP LOCKED)",
                before, limit,
            )
        return int(status.split()[-1])


class PostgresUserDirectory:
    """UserDirectory straight from the users table (outside any unit of work: it uses the pool)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def by_name(self, name: str) -> UserRef | None:
        r = await self.pool.fetchrow("SELECT id, name, email FROM users WHERE name = $1 AND is_active", name)
        return UserRef(r["id"], r["name"], r["email"]) if r else None

    async def by_ids(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, UserRef]:
        if not ids:
            return {}
        rows = await self.pool.fetch("SELECT id, name, email FROM users WHERE id = ANY($1::uuid[])", list(ids))
        return {r["id"]: UserRef(r["id"], r["name"], r["email"]) for r in rows}
