"""Archives of a ref (``tar.gz``, ``zip``) with a ``{name}-{ref}/`` prefix, kept in the object store by tree id.

Two refs (or two commits) with the same tree and the same prefix are the same archive, so the first request
writes ``git archive``'s stream into the object store and every request is served from there.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import attrs

from corral.core.errors import InvalidInput, NotFound
from corral.core.git.ports import GitRepositories
from corral.core.projects.model import Project
from corral.core.storage.ports import ObjectStore

__all__ = ["FORMATS", "Archive", "ArchiveService", "archive_prefix"]

FORMATS = {"tar.gz": "application/gzip", "zip": "application/zip"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def archive_prefix(project: Project, ref: str) -> str:
    """``{name}-{ref}/`` with the ref made safe as one path segment (``feature/x`` → ``feature-x``)."""
    safe = _UNSAFE.sub("-", ref).strip("-.") or "ref"
    return f"{project.name}-{safe}/"


@attrs.frozen
class Archive:
    filename: str
    content_type: str
    size: int
    key: str  # the object store key holding it
    cached: bool  # served from an earlier request's copy


@attrs.define
class ArchiveService:
    """Callers have already checked project:read."""

    repos: GitRepositories
    objects: ObjectStore

    async def prepare(self, project: Project, ref: str, fmt: str) -> Archive:
        """Make sure the archive of ``ref`` is in the object store (writing it from ``git archive`` the first
        time); stream it with ``chunks``."""
        if fmt not in FORMATS:
            raise InvalidInput("archive format must be tar.gz or zip", field="format")
        sha = await self.repos.resolve(project.repo_path, ref)
        if sha is None:
            raise NotFound(f"ref {ref!r} names no commit in {project.full_name}")
        tree = await self.repos.tree_id(project.repo_path, sha)
        prefix = archive_prefix(project, ref)
        key = f"archives/{project.id}/{tree}/{prefix.rstrip('/')}.{fmt}"
        filename = f"{prefix.rstrip('/')}.{fmt}"
        try:
            info = await self.objects.head(key)
            return Archive(filename, FORMATS[fmt], info.size, key, cached=True)
        except NotFound:
            pass
        info = await self.objects.put(key, self.repos.archive(project.repo_path, sha, fmt=fmt, prefix=prefix),
                                      content_type=FORMATS[fmt])
        return Archive(filename, FORMATS[fmt], info.size, key, cached=False)

    def chunks(self, archive: Archive) -> AsyncIterator[bytes]:
        return self.objects.get(archive.key)
