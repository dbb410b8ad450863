"""Parsing of git's machine-readable output (log formats, ls-tree, numstat, name-status)."""

from __future__ import annotations

from datetime import datetime

from corral.core.git.model import Commit, FileChange, Signature, TreeEntry

__all__ = ["LOG_FORMAT", "parse_changes", "parse_log", "parse_ls_tree"]

# Fields NUL-separated, records separated by \x1e (a message cannot carry it meaningfully).
LOG_FORMAT = "%H%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B%x1e"
_STATUS = {"A": "added", "M": "modified", "D": "deleted", "R": "renamed", "C": "copied", "T": "type_changed"}


def parse_log(out: bytes) -> list[Commit]:
    commits = []
    for record in out.decode("utf-8", "replace").split("\x1e"):
        record = record.lstrip("\n")
        if not record:
            continue
        f = record.split("\x00")
        if len(f) < 9:
            continue
        commits.append(
            Commit(
                sha=f[0],
                parents=tuple(f[1].split()),
                author=Signature(f[2], f[3], datetime.fromisoformat(f[4])),
                committer=Signature(f[5], f[6], datetime.fromisoformat(f[7])),
                message=f[8].rstrip("\n"),
            )
        )
    return commits


def parse_ls_tree(out: bytes, base: str) -> list[TreeEntry]:
    entries = []
    for item in out.split(b"\x00"):
        if not item:
            continue
        meta, _, raw_name = item.partition(b"\t")
        mode, kind, sha, size = meta.decode().split(None, 3)
        name = raw_name.decode("utf-8", "replace")
        entries.append(
            TreeEntry(
                name=name,
                path=f"{base}/{name}" if base else name,
                type=kind,
                mode=mode,
                sha=sha,
                size=None if size.strip() == "-" else int(size),
            )
        )
    entries.sort(key=lambda e: (e.type != "tree", e.name))
    return entries


def parse_changes(name_status: bytes, numstat: bytes) -> list[FileChange]:
    """Combine ``git diff --name-status -z`` and ``git diff --numstat -z`` of the same diff."""
    counts: dict[str, tuple[int | None, int | None]] = {}
    parts = numstat.split(b"\x00")
    i = 0
    while i < len(parts):
        head = parts[i]
        i += 1
        if not head:
            continue
        added, deleted, path = head.decode("utf-8", "replace").split("\t", 2)
        if path == "":  # rename/copy: the old and new paths follow
            path = parts[i + 1].decode("utf-8", "replace")
            i += 2
        counts[path] = (None if added == "-" else int(added), None if deleted == "-" else int(deleted))
    changes = []
    fields = name_status.split(b"\x00")
    i = 0
    while i < len(fields):
        code = fields[i].decode()
        i += 1
        if not code:
            continue
        old_path = None
        if code[0] in "RC":
            old_path = fields[i].decode("utf-8", "replace")
            path = fields[i + 1].decode("utf-8", "replace")
            i += 2
        else:
            path = fields[i].decode("utf-8", "replace")
            i += 1
        add, dele = counts.get(path, (None, None))
        changes.append(FileChange(path, _STATUS.get(code[0], "modified"), add, dele, old_path))
    return changes
