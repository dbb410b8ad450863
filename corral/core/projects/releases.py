"""Releases (Gitea's): a tag with a title, markdown notes and uploaded assets kept in the object store; drafts
(seen by project writers only) and pre-releases; a ``release`` event when one is published."""

from __future__ import annotations

import re
import uuid
from typing import Any

import attrs

from corral.core.clock import Clock
from corral.core.commands import sent_fields
from corral.core.errors import Conflict, InvalidInput, InvalidTransition, NotFound, PayloadTooLarge
from corral.core.ids import uuid7
from corral.core.outbox import topics
from corral.core.projects.commands import NewRelease, ReleaseChanges
from corral.core.projects.issues import sender
from corral.core.projects.model import Actor, Project, Release, ReleaseAsset, check_branch_name
from corral.core.projects.payloads import project_json
from corral.core.projects.repo_writes import RepoWriter
from corral.core.projects.service import audit, text_field
from corral.core.storage.ports import ObjectStore
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["MAX_ASSET_BYTES", "ReleaseService", "asset_name", "release_json"]

MAX_ASSET_BYTES = 512 * 1024 * 1024  # one uploaded asset
_ASSET_NAME = re.compile(r"^[A-Za-z0-9._+\-]{1,255}$")


def asset_name(value: object) -> str:
    """A file name: letters, digits, ``._+-``, 1-255 characters, not ``.``/``..``."""
    if not isinstance(value, str) or not _ASSET_NAME.match(value) or value in (".", ".."):
        raise InvalidInput("name must be a file name of letters, digits and ._+- (1-255 characters)", field="name")
    return value


def _ts(value: Any) -> str | None:
    return value.isoformat() if value else None


def release_json(release: Release) -> dict[str, Any]:
    return {"id": str(release.id), "tag": release.tag, "target": release.target, "title": release.title,
            "notes": release.notes, "draft": release.draft, "prerelease": release.prerelease,
            "author_id": str(release.author_id) if release.author_id else None,
            "created_at": _ts(release.created_at), "updated_at": _ts(release.updated_at),
            "published_at": _ts(release.published_at),
            "assets": [{"id": str(a.id), "name": a.name, "size": a.size, "content_type": a.content_type,
                        "created_at": _ts(a.created_at)} for a in release.assets]}


def _writable(project: Project) -> None:
    if project.archived:
        raise InvalidTransition("the project is archived: it takes no new releases or assets")


def _asset_key(project: Project, release_id: uuid.UUID, asset_id: uuid.UUID) -> str:
    return f"releases/{project.id}/{release_id}/{asset_id}"


@attrs.define
class ReleaseService:
    """Callers have checked project:read (reads) or project:write (writes and seeing drafts)."""

    uow_factory: UnitOfWorkFactory
    writer: RepoWriter  # creates a missing tag like a push (protection, push record, audit)
    objects: ObjectStore
    clock: Clock
    max_asset_bytes: int = attrs.field(factory=lambda: MAX_ASSET_BYTES)  # read when made (tests lower it)

    async def _event(self, uow: UnitOfWork, action: str, project: Project, release: Release, actor: Actor) -> None:
        payload = {"action": action, "project": project_json(project), "release": release_json(release),
                   "sender": sender(actor)}
        await uow.outbox.add(topics.RELEASE, payload, project_id=project.id)

    async def releases(self, project: Project, *, drafts: bool) -> list[Release]:
        async with self.uow_factory() as uow:
            return await uow.releases.list(project.id, drafts=drafts)

    async def _get(self, uow: UnitOfWork, project: Project, release_id: uuid.UUID, drafts: bool) -> Release:
        found = await uow.releases.get(project.id, release_id)
        if found is None or (found.draft and not drafts):
            raise NotFound(f"release {release_id} not found in {project.full_name}")
        return found

    async def release(self, project: Project, release_id: uuid.UUID, *, drafts: bool) -> Release:
        async with self.uow_factory() as uow:
            return await self._get(uow, project, release_id, drafts)

    async def create(self, actor: Actor, project: Project, command: NewRelease, *, is_admin: bool) -> Release:
        _writable(project)
        tag = text_field(command.tag, "tag", required=True, max_len=255)
        assert tag is not None
        check_branch_name(tag, "tag")
        title = text_field(command.title, "title", max_len=255) or tag
        notes = text_field(command.notes, "notes") or ""
        if not isinstance(command.draft, bool) or not isinstance(command.prerelease, bool):
            raise InvalidInput("draft and prerelease must be booleans", field="draft")
        target = await self.writer.repos.resolve(project.repo_path, f"refs/tags/{tag}")
        async with self.uow_factory() as uow:
            if any(r.tag == tag for r in await uow.releases.list(project.id, drafts=True)):
                raise Conflict(f"tag {tag!r} already has a release", field="tag")
        created_tag = target is None
        if target is None:  # through the tag-creation path: protection, push record, audit, push event
            target = await self.writer.create_ref(actor, project, "tag", tag, command.target, is_admin=is_admin)
        now = self.clock.now()
        release = Release(id=uuid7(), project_id=project.id, tag=tag, target=target, title=title.strip() or tag,
                          notes=notes, draft=command.draft, prerelease=command.prerelease, created_at=now,
                          updated_at=now, author_id=actor.id, published_at=None if command.draft else now)
        async with self.uow_factory() as uow:
            await uow.releases.add(release)
            await audit(uow, self.clock, actor, "release.create", "release", resource_id=release.id,
                        project_id=project.id, detail={"tag": tag, "draft": release.draft,
                                                       "tag_created": created_tag})
            if not release.draft:
                await self._event(uow, "published", project, release, actor)
            await uow.commit()
        return release

    async def update(self, actor: Actor, project: Project, release_id: uuid.UUID, command: ReleaseChanges,
                     ) -> Release:
        changes = sent_fields(command)
        values: dict[str, Any] = {}
        if "title" in changes:
            title = text_field(changes["title"], "title", required=True, max_len=255)
            values["title"] = (title or "").strip()
        if "notes" in changes:
            values["notes"] = text_field(changes["notes"], "notes") or ""
        for flag in ("draft", "prerelease"):
            if flag in changes:
                if not isinstance(changes[flag], bool):
                    raise InvalidInput(f"{flag} must be a boolean", field=flag)
                values[flag] = changes[flag]
        now = self.clock.now()
        async with self.uow_factory() as uow:
            release = await self._get(uow, project, release_id, True)
            published = release.draft and values.get("draft") is False
            if published:
                values["published_at"] = now
            elif values.get("draft") is True and not release.draft:
                values["published_at"] = None
            updated = attrs.evolve(release, updated_at=now, **values)
            await uow.releases.update(updated)
            await audit(uow, self.clock, actor, "release.update", "release", resource_id=release.id,
                        project_id=project.id, detail={"tag": release.tag, "fields": sorted(changes)})
            if published:
                await self._event(uow, "published", project, updated, actor)
            await uow.commit()
        return updated

    async def delete(self, actor: Actor, project: Project, release_id: uuid.UUID) -> None:
        """Remove the release and its assets (the tag stays, like Gitea's)."""
        async with self.uow_factory() as uow:
            release = await self._get(uow, project, release_id, True)
            keys = await uow.releases.delete(project.id, release_id)
            await audit(uow, self.clock, actor, "release.delete", "release", resource_id=release.id,
                        project_id=project.id, detail={"tag": release.tag, "assets": len(keys)})
            await uow.commit()
        for key in keys:
            await self.objects.delete(key)

    async def add_asset(self, actor: Actor, project: Project, release_id: uuid.UUID, name: object, data: bytes,
                        content_type: str | None) -> ReleaseAsset:
        _writable(project)
        name = asset_name(name)
        if len(data) > self.max_asset_bytes:
            raise PayloadTooLarge(f"an asset may have at most {self.max_asset_bytes} bytes")
        async with self.uow_factory() as uow:
            release = await self._get(uow, project, release_id, True)
            if any(a.name == name for a in release.assets):
                raise Conflict(f"release {release.tag} already has an asset {name!r}", field="name")
        asset_id = uuid7()
        asset = ReleaseAsset(id=asset_id, release_id=release_id, name=name, size=len(data),
                             content_type=content_type or "application/octet-stream",
                             object_key=_asset_key(project, release_id, asset_id), created_at=self.clock.now(),
                             uploader_id=actor.id)
        await self.objects.put(asset.object_key, data, content_type=asset.content_type)
        try:
            async with self.uow_factory() as uow:
                await uow.releases.add_asset(asset)
                await audit(uow, self.clock, actor, "release.asset.upload", "release", resource_id=release_id,
                            project_id=project.id, detail={"tag": release.tag, "name": name, "size": asset.size})
                await uow.commit()
        except BaseException:
            await self.objects.delete(asset.object_key)
            raise
        return asset

    async def asset(self, project: Project, release_id: uuid.UUID, name: str, *, drafts: bool) -> ReleaseAsset:
        release = await self.release(project, release_id, drafts=drafts)
        found = next((a for a in release.assets if a.name == name), None)
        if found is None:
            raise NotFound(f"release {release.tag} has no asset {name!r}")
        return found

    async def delete_asset(self, actor: Actor, project: Project, release_id: uuid.UUID, name: str) -> None:
        async with self.uow_factory() as uow:
            release = await self._get(uow, project, release_id, True)
            found = await uow.releases.delete_asset(release_id, name)
            if found is None:
                raise NotFound(f"release {release.tag} has no asset {name!r}")
            await audit(uow, self.clock, actor, "release.asset.delete", "release", resource_id=release_id,
                        project_id=project.id, detail={"tag": release.tag, "name": name})
            await uow.commit()
        await self.objects.delete(found.object_key)
