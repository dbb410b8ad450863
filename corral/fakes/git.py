"""InMemoryGitRepositories: a tiny model of git (commits as full file snapshots) for unit tests."""

from __future__ import annotations

import difflib
import hashlib
import io
import re
import tarfile
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime

import attrs

from corral.core.errors import Conflict, InvalidInput, NotFound
from corral.core.git.model import (
    ZERO_SHA,
    Blob,
    Branch,
    Commit,
    Comparison,
    FileChange,
    FileWrite,
    MergeStrategy,
    Signature,
    Tag,
    TreeEntry,
)

__all__ = ["InMemoryGitRepositories"]

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
_BAD_REV = re.compile(r"^-|[\x00-\x20\x7f:\\]|\.\.|@\{")  # as GitCli refuses them


@attrs.define
class _Repo:
    head: str
    branches: dict[str, str] = attrs.field(factory=dict)
    tags: dict[str, str] = attrs.field(factory=dict)
    commits: dict[str, Commit] = attrs.field(factory=dict)
    files: dict[str, dict[str, bytes]] = attrs.field(factory=dict)  # commit sha -> path -> content


@attrs.define
class InMemoryGitRepositories:
    """GitRepositories in memory; ``commit`` and ``tag`` (not in the port) let tests build history.

    It passes corral.contracts.git but deliberately models less than git: no patch text (``patch`` is
    empty), no rename or copy detection (a rename is a deletion and an addition), lightweight tags only,
    directory entries carry a dummy sha, commit shas are not git's, and ``log(path=...)`` compares each
    commit with its first parent only (no history simplification across merges).
    """

    repos: dict[str, _Repo] = attrs.field(factory=dict)
    merges: list[tuple[str, str, str, str]] = attrs.field(factory=list)  # (repo, target, source, strategy)

    def _repo(self, repo: str) -> _Repo:
        if repo not in self.repos:
            raise NotFound("repository not found")
        return self.repos[repo]

    def commit(self, repo: str, branch: str, files: dict[str, bytes | None], message: str = "change",
               *, parent: str | None = None) -> str:
        """Commit ``files`` (None deletes) on top of ``branch`` (or ``parent``); returns the new sha."""
        r = self._repo(repo)
        base = parent or r.branches.get(branch)
        tree = dict(r.files.get(base, {})) if base else {}
        for path, content in files.items():
            if content is None:
                tree.pop(path, None)
            else:
                tree[path] = content
        return self._write(r, tree, (base,) if base else (), message, branch)

    def tag(self, repo: str, name: str, sha: str) -> None:
        """A lightweight tag ``name`` on commit ``sha``."""
        self._repo(repo).tags[name] = sha

    def _write(self, r: _Repo, tree: dict[str, bytes], parents: tuple[str, ...], message: str,
               branch: str | None, author: Signature | None = None, committer: Signature | None = None) -> str:
        sig = author or Signature("tester", "tester@example.com", _EPOCH)
        digest = hashlib.sha1(repr((sorted(tree.items()), parents, message, len(r.commits))).encode())  # noqa: S324
        sha = digest.hexdigest()
        r.commits[sha] = Commit(sha, parents, sig, committer or sig, message)
        r.files[sha] = tree
        if branch is not None:
            r.branches[branch] = sha
        return sha

    def _ancestors(self, r: _Repo, sha: str) -> list[str]:
        seen: list[str] = []
        stack = [sha]
        while stack:
            s = stack.pop()
            if s in seen or s not in r.commits:
                continue
            seen.append(s)
            stack.extend(r.commits[s].parents)
        return seen

    async def create(self, repo: str, default_branch: str) -> None:
        if repo in self.repos:
            raise Conflict("a repository already exists at that path")
        self.repos[repo] = _Repo(head=default_branch)

    async def delete(self, repo: str) -> None:
        self.repos.pop(repo, None)

    async def set_default_branch(self, repo: str, branch: str) -> None:
        self._repo(repo).head = branch

    async def list_branches(self, repo: str, *, after: str | None = None, limit: int | None = None) -> list[Branch]:
        r = self._repo(repo)
        names = _window(r.branches, after, limit)
        return [Branch(name, r.commits[r.branches[name]]) for name in names]

    async def list_tags(self, repo: str, *, after: str | None = None, limit: int | None = None) -> list[Tag]:
        r = self._repo(repo)
        names = _window(r.tags, after, limit)
        return [Tag(name, r.tags[name], r.commits.get(r.tags[name])) for name in names]

    async def resolve(self, repo: str, rev: str) -> str | None:
        r = self._repo(repo)
        self.validate(rev)
        name = rev.removeprefix("refs/heads/")
        if name in r.branches:
            return r.branches[name]
        if rev.removeprefix("refs/tags/") in r.tags:
            return r.tags[rev.removeprefix("refs/tags/")]
        matches = [s for s in r.commits if s.startswith(rev)] if len(rev) >= 4 else []
        return matches[0] if len(matches) == 1 else None

    async def _must(self, repo: str, rev: str) -> str:
        sha = await self.resolve(repo, rev)
        if sha is None:
            raise NotFound(f"ref {rev!r} names no commit in this repository")
        return sha

    async def tree(self, repo: str, rev: str, path: str) -> list[TreeEntry]:
        files = self._repo(repo).files[await self._must(repo, rev)]
        path = _clean_path(path)
        prefix = f"{path}/" if path else ""
        entries: dict[str, TreeEntry] = {}
        for name, content in files.items():
            if not name.startswith(prefix):
                continue
            head, _, rest = name[len(prefix):].partition("/")
            full = prefix + head
            if rest:
                entries[head] = TreeEntry(head, full, "tree", "040000", "0" * 40)
            else:
                entries[head] = TreeEntry(head, full, "blob", "100644", _blob_sha(content), len(content))
        if path and not entries:
            raise NotFound(f"no directory {path!r} at {rev}")
        return sorted(entries.values(), key=lambda e: (e.type != "tree", e.name))

    async def blob(self, repo: str, rev: str, path: str, *, limit: int) -> Blob:
        files = self._repo(repo).files[await self._must(repo, rev)]
        path = _clean_path(path)
        if path not in files:
            if not path or any(name.startswith(f"{path}/") for name in files):
                raise InvalidInput(f"{path!r} is a directory, not a file", field="path")
            raise NotFound(f"no file {path!r} at {rev}")
        data = files[path]
        return Blob(path, _blob_sha(data), len(data), data[:limit], len(data) > limit)

    async def blob_stream(self, repo: str, rev: str, path: str) -> AsyncIterator[bytes]:
        blob = await self.blob(repo, rev, path, limit=1 << 40)
        yield blob.data

    async def log(self, repo: str, rev: str, *, path: str | None = None, skip: int = 0,
                  limit: int = 50) -> list[Commit]:
        r = self._repo(repo)
        shas = self._ancestors(r, await self._must(repo, rev))
        if path:
            path = _clean_path(path)
            shas = [s for s in shas if self._touches(r, s, path)]
        return [r.commits[s] for s in shas][skip:skip + limit]

    def _touches(self, r: _Repo, sha: str, path: str) -> bool:
        """Whether ``sha`` changed ``path`` (a file or a directory) against its first parent."""
        parents = r.commits[sha].parents
        old, new = (r.files.get(parents[0], {}) if parents else {}), r.files[sha]

        def under(files: dict[str, bytes]) -> dict[str, bytes]:
            return {n: c for n, c in files.items() if n == path or n.startswith(f"{path}/")}

        return under(old) != under(new)

    def _changes(self, r: _Repo, old: str | None, new: str) -> tuple[FileChange, ...]:
        a = r.files.get(old, {}) if old else {}
        b = r.files[new]
        out = []
        for path in sorted(set(a) | set(b)):
            if a.get(path) == b.get(path):
                continue
            status = "added" if path not in a else "deleted" if path not in b else "modified"
            out.append(FileChange(path, status, *_line_counts(a.get(path, b""), b.get(path, b""))))
        return tuple(out)

    async def show(self, repo: str, sha: str, *, max_patch_bytes: int) -> tuple[Commit, Comparison]:
        r = self._repo(repo)
        full = await self._must(repo, sha)
        commit = r.commits[full]
        parent = commit.parents[0] if commit.parents else None
        return commit, Comparison(parent or "", full, parent, (commit,), self._changes(r, parent, full), "")

    async def compare(self, repo: str, base: str, head: str, *, max_patch_bytes: int) -> Comparison:
        r = self._repo(repo)
        b, h = await self._must(repo, base), await self._must(repo, head)
        base_anc = set(self._ancestors(r, b))
        mb = next((s for s in self._ancestors(r, h) if s in base_anc), None)
        commits = tuple(r.commits[s] for s in self._ancestors(r, h) if s not in base_anc)
        return Comparison(b, h, mb, commits, self._changes(r, mb or b, h), "")

    async def ref_values(self, repo: str, refs: list[str]) -> dict[str, str]:
        r = self._repo(repo)
        values = {f"refs/heads/{name}": sha for name, sha in r.branches.items()}
        values.update({f"refs/tags/{name}": sha for name, sha in r.tags.items()})
        return {ref: values[ref] for ref in refs if ref in values}

    async def merged_into(self, repo: str, refs: list[str], commit: str) -> dict[str, str]:
        reachable = set(self._ancestors(self._repo(repo), commit))
        return {ref: sha for ref, sha in (await self.ref_values(repo, refs)).items() if sha in reachable}

    async def is_ancestor(self, repo: str, ancestor: str, descendant: str) -> bool:
        return ancestor in self._ancestors(self._repo(repo), descendant)

    async def commits_between(self, repo: str, old: str | None, new: str, *, limit: int) -> list[Commit]:
        r = self._repo(repo)
        exclude = set(self._ancestors(r, old)) if old else set()
        return [r.commits[s] for s in self._ancestors(r, new) if s not in exclude][:limit]

    async def merge(
        self, repo: str, *, target: str, source: str, strategy: MergeStrategy, author: Signature, message: str,
        expected_target: str | None = None, announce: Callable[[str], Awaitable[None]] | None = None,
    ) -> str:
        r = self._repo(repo)
        if target not in r.branches or source not in r.branches:
            raise NotFound("branch not found")
        t, s = r.branches[target], r.branches[source]
        if expected_target is not None and t != expected_target:
            raise Conflict("the target branch moved; reload and try again")
        if await self.is_ancestor(repo, s, t):
            raise Conflict(f"nothing to merge: {source} is already contained in {target}")
        self.merges.append((repo, target, source, strategy.value))
        if strategy is MergeStrategy.FAST_FORWARD:
            if not await self.is_ancestor(repo, t, s):
                raise Conflict("fast-forward is impossible", detail={"reason": "not_fast_forward"})
            if announce is not None:
                await announce(s)
            r.branches[target] = s
            return s
        if strategy is MergeStrategy.REBASE:
            sha = self._replay(r, t, s, author)
            if announce is not None:
                await announce(sha)
            r.branches[target] = sha
            return sha
        t_anc = set(self._ancestors(r, t))
        base = next((x for x in self._ancestors(r, s) if x in t_anc), None)
        merged, conflicts = _conflicts(r.files.get(base, {}) if base else {}, r.files[t], r.files[s])
        if conflicts:
            raise Conflict(f"merge conflict in {', '.join(sorted(conflicts))}",
                           detail={"paths": sorted(conflicts), "reason": "conflict"})
        parents = (t, s) if strategy is MergeStrategy.MERGE else (t,)
        sha = self._write(r, merged, parents, message, None, author)
        if announce is not None:
            await announce(sha)
        r.branches[target] = sha
        return sha

    def _replay(self, r: _Repo, target: str, source: str, committer: Signature) -> str:
        """The source's commits missing from the target, cherry-picked onto it oldest first (authors kept)."""
        if target in self._ancestors(r, source):
            return source
        exclude = set(self._ancestors(r, target))
        todo = [c for c in self._ancestors(r, source) if c not in exclude]
        todo.sort(key=lambda c: len(self._ancestors(r, c)))  # parents before children
        tip = target
        for sha in todo:
            commit = r.commits[sha]
            if len(commit.parents) != 1:
                raise Conflict("rebase cannot replay merge commits", detail={"reason": "merge_commits"})
            files, conflicts = _conflicts(r.files[commit.parents[0]], r.files[tip], r.files[sha])
            if conflicts:
                raise Conflict(f"rebase conflict in {', '.join(conflicts)}",
                               detail={"paths": conflicts, "reason": "conflict"})
            if files == r.files[tip]:
                continue
            tip = self._write(r, files, (tip,), commit.message, None, commit.author, committer)
        return tip

    async def write_commit(
        self, repo: str, *, parent: str | None, changes: Sequence[FileWrite], author: Signature, message: str,
        committer: Signature | None = None,
    ) -> str:
        r = self._repo(repo)
        tree = dict(r.files.get(parent, {})) if parent else {}
        paths = [_clean_path(c.path) for c in changes]
        if len(set(paths)) != len(paths) or any(not p or "//" in p for p in paths):
            raise InvalidInput("invalid or repeated path", field="path")
        for path, change in zip(paths, changes, strict=True):
            if change.content is None:
                if path not in tree:
                    raise NotFound(f"no file {path!r} to delete")
                del tree[path]
        for path, change in zip(paths, changes, strict=True):
            if change.content is None:
                continue
            parts = path.split("/")
            if any("/".join(parts[:i]) in tree for i in range(1, len(parts))) or any(
                    n.startswith(f"{path}/") for n in tree):
                raise InvalidInput(f"a file and a directory would share the path {path!r}", field="path")
            tree[path] = change.content
        return self._write(r, tree, (parent,) if parent else (), message, None, author, committer)

    async def update_ref(self, repo: str, ref: str, *, new: str, old: str) -> None:
        r = self._repo(repo)
        if ref.startswith("refs/heads/"):
            refs, name = r.branches, ref.removeprefix("refs/heads/")
        elif ref.startswith("refs/tags/"):
            refs, name = r.tags, ref.removeprefix("refs/tags/")
        else:
            raise InvalidInput(f"{ref!r} is not a valid ref name", field="ref")
        self.validate(name)
        if refs.get(name, ZERO_SHA) != old:
            raise Conflict(f"{ref} moved meanwhile; nothing was changed, try again", detail={"reason": "ref_moved"})
        if new == ZERO_SHA:
            del refs[name]
        else:
            if new not in r.commits:
                raise NotFound(f"no commit {new}")
            refs[name] = new

    async def merge_conflicts(self, repo: str, base: str, head: str) -> list[str]:
        r = self._repo(repo)
        t, s = await self._must(repo, base), await self._must(repo, head)
        t_anc = set(self._ancestors(r, t))
        mb = next((x for x in self._ancestors(r, s) if x in t_anc), None)
        return _conflicts(r.files.get(mb, {}) if mb else {}, r.files[t], r.files[s])[1]

    async def ahead_behind(self, repo: str, base: str, head: str) -> tuple[int, int]:
        r = self._repo(repo)
        b, h = set(self._ancestors(r, await self._must(repo, base))), set(
            self._ancestors(r, await self._must(repo, head)))
        return len(h - b), len(b - h)

    async def tree_id(self, repo: str, rev: str) -> str:
        files = self._repo(repo).files[await self._must(repo, rev)]
        return hashlib.sha1(repr(sorted(files.items())).encode()).hexdigest()  # noqa: S324

    async def archive(self, repo: str, commit: str, *, fmt: str, prefix: str) -> AsyncIterator[bytes]:
        if fmt not in ("tar.gz", "zip"):
            raise InvalidInput("archive format must be tar.gz or zip", field="format")
        files = self._repo(repo).files[await self._must(repo, commit)]
        buffer = io.BytesIO()
        if fmt == "zip":
            with zipfile.ZipFile(buffer, "w") as z:
                for path, data in sorted(files.items()):
                    z.writestr(prefix + path, data)
        else:
            with tarfile.open(fileobj=buffer, mode="w:gz") as t:
                for path, data in sorted(files.items()):
                    info = tarfile.TarInfo(prefix + path)
                    info.size = len(data)
                    t.addfile(info, io.BytesIO(data))
        yield buffer.getvalue()

    def validate(self, rev: str) -> None:
        if not rev or len(rev) > 255 or _BAD_REV.search(rev):
            raise InvalidInput(f"{rev!r} is not a valid branch, tag or commit", field="ref")


def _conflicts(bf: dict[str, bytes], tf: dict[str, bytes], sf: dict[str, bytes]) -> tuple[dict[str, bytes], list[str]]:
    """The three-way merge of file snapshots (base, ours, theirs): the merged files and the conflicting paths."""
    merged = dict(tf)
    conflicts = []
    for path in set(bf) | set(tf) | set(sf):
        ours, theirs, orig = tf.get(path), sf.get(path), bf.get(path)
        if theirs in (orig, ours):
            continue
        if ours == orig:
            if theirs is None:
                merged.pop(path, None)
            else:
                merged[path] = theirs
        else:
            conflicts.append(path)
    return merged, sorted(conflicts)


def _clean_path(path: str) -> str:
    path = path.strip("/")
    if any(p in ("..", ".") for p in path.split("/")) or "\x00" in path or "\n" in path:
        raise InvalidInput("path must not contain '.' or '..' segments", field="path")
    return path


def _blob_sha(data: bytes) -> str:
    """The object id git gives a blob with ``data``."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()  # noqa: S324


def _line_counts(old: bytes, new: bytes) -> tuple[int, int]:
    """Lines added and removed from ``old`` to ``new`` (what ``git diff --numstat`` counts)."""
    a, b = old.splitlines(), new.splitlines()
    added = removed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            removed += i2 - i1
            added += j2 - j1
    return added, removed


def _window(refs: dict[str, str], after: str | None, limit: int | None) -> list[str]:
    names = sorted((n for n in refs if after is None or n.encode() > after.encode()), key=str.encode)
    return names if limit is None else names[:limit]
