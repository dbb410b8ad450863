"""GitRepositories on the real ``git`` CLI (async subprocesses), plus the smart HTTP side (GitTransport).

Merges never touch a working tree: ``git merge-tree --write-tree`` computes the
result (or the conflicting paths), ``commit-tree`` writes the commit and
``update-ref`` moves the branch only if it still points where we read it, so
a conflict or a race leaves the repository exactly as it was.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from corral.adapters import git_refs
from corral.adapters.git_format import LOG_FORMAT, parse_changes, parse_log, parse_ls_tree
from corral.adapters.git_pipe import PipeWriter
from corral.core.errors import Conflict, InvalidInput, NotFound, Unavailable
from corral.core.git.model import (
    ZERO_SHA,
    Blob,
    Branch,
    Commit,
    Comparison,
    FileChange,
    FileWrite,
    MergeStrategy,
    PushRule,
    Signature,
    Tag,
    TreeEntry,
)
from corral.core.git.transport import GitProtocolError, GitService

if TYPE_CHECKING:
    from corral.core.git.transport import GitServer

__all__ = ["GitCli", "GitError", "ServiceProcess", "rules_env"]

log = logging.getLogger("corral.git")

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
_CHUNK = 64 * 1024
_SERVICE_BUFFER = 1024 * 1024  # pack streams: fewer, larger reads from git's stdout
T = TypeVar("T")
_V2_CACHE_ENTRIES = 64  # distinct repository configurations whose v2 capabilities are kept
_LS_REFS_ENTRIES = 256  # ls-refs answers kept (an agent fetching again finds its answer)
_LS_REFS_MAX_BYTES = 256 * 1024  # larger answers (many refs) are not kept
_BAD_REV = re.compile(r"^-|[\x00-\x20\x7f:\\]|\.\.|@\{")
_SHA = re.compile(r"^[0-9a-f]{40}$")
# The pre-receive hook: enforces the branch protection Corral passes in CRL_PROTECTED. Its stderr
# reaches the pushing git client as "remote: ..." lines, so users see why a push was refused.
_HOOK = r"""#!/bin/sh
[ -n "$CRL_PROTECTED" ] || exit 0
set -f
zero=0000000000000000000000000000000000000000
nl='
'
rc=0
while read -r old new ref; do
  case $ref in refs/heads/*) branch=${ref#refs/heads/} ;; *) continue ;; esac
  IFS=$nl
  for rule in $CRL_PROTECTED; do
    flags=${rule%% *}
    pattern=${rule#* }
    case $branch in
      $pattern)
        IFS=' '
        if [ "$new" = "$zero" ]; then
          case $flags in *D*) ;; *) echo "Corral: branch '$branch' is protected: it cannot be deleted" >&2; rc=1 ;; esac
        elif [ "$old" != "$zero" ] && ! git merge-base --is-ancestor "$old" "$new" 2>/dev/null; then
          case $flags in *F*) ;; *)
            echo "Corral: branch '$branch' is protected: force-push (a non-fast-forward update) is not allowed" >&2
            rc=1 ;;
          esac
        fi
        case $flags in *M*)
          echo "Corral: branch '$branch' is protected: changes must go through a merge request" >&2; rc=1 ;;
        esac
        break ;;
    esac
  done
  IFS=' '
done
exit $rc
"""


class GitError(GitProtocolError):
    """A git command failed unexpectedly (not a user error): the port's GitProtocolError."""


async def _drain(stream: asyncio.StreamReader | None, sink: list[bytes]) -> None:
    """Read git's stderr to its end, keeping its first 4 KiB (for the log)."""
    if stream is None:
        return
    while chunk := await stream.read(_CHUNK):
        if sum(map(len, sink)) < 4096:
            sink.append(chunk)


@attrs.define
class ServiceProcess:
    """A pack program started for one smart HTTP exchange (a corral.core.git.transport.PackExchange): the
    process (its stdout and stderr are asyncio pipes, stderr read from the start) and the pipe into its stdin
    (None for a ref advertisement, which reads nothing)."""

    process: asyncio.subprocess.Process
    stdin: PipeWriter | None
    service: str = ""
    _errors: list[bytes] = attrs.field(factory=list)
    _stderr: asyncio.Task[None] | None = None

    def __attrs_post_init__(self) -> None:
        self._stderr = asyncio.get_running_loop().create_task(_drain(self.process.stderr, self._errors))

    @property
    def output(self) -> asyncio.StreamReader:
        stdout = self.process.stdout
        assert stdout is not None
        return stdout

    @property
    def input(self) -> PipeWriter | None:
        return self.stdin

    async def finish(self, *, abort: bool = False) -> None:
        """See PackExchange.finish: wait for git (30 s at most), log its failure unless ``abort`` stopped it."""
        proc = self.process
        stopped = abort and proc.returncode is None
        if stopped:
            proc.kill()  # the client went away: stop git at once
        if proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), timeout=30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._stderr is not None:
            with contextlib.suppress(Exception):
                await self._stderr
        if proc.returncode and not stopped:
            log.warning("git %s exited %s: %s", self.service, proc.returncode,
                        b"".join(self._errors).decode("utf-8", "replace")[:500])


class GitCli:
    """Bare repositories under ``root``; see corral.core.git.ports.GitRepositories."""

    def __init__(self, root: Path, *, git: str = "git") -> None:
        self.root = Path(root)
        self.git = git
        self.hooks_dir = self.root / "_hooks"
        self.no_hooks_dir = self.hooks_dir / "none"  # empty: a push with no protection rules runs no hook
        self._receive_caps: bytes | None = None  # what this git advertises to a push (asked once)
        # protocol v2 fetch discovery lists capabilities only: git's answer, per (repository config, protocol)
        self._v2_caps: dict[tuple[bytes, str], bytes] = {}
        # protocol v2 ls-refs: git's answer per (repository, its refs/HEAD/config, protocol, request), recent first
        self._ls_refs: collections.OrderedDict[tuple[object, ...], bytes] = collections.OrderedDict()
        self.root.mkdir(parents=True, exist_ok=True)
        self._install_hooks()
        self.base_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root),
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
        }

    def _install_hooks(self) -> None:
        self.hooks_dir.mkdir(parents=True, exist_ok=True)
        self.no_hooks_dir.mkdir(exist_ok=True)
        target = self.hooks_dir / "pre-receive"
        script = _HOOK.encode()
        if not target.exists() or target.read_bytes() != script:
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(script)
            tmp.chmod(0o755)
            tmp.replace(target)

    # ---- plumbing ------------------------------------------------------------------------------------
    def path(self, repo: str) -> Path:
        """The absolute directory of ``repo``; InvalidInput if it would leave the root."""
        if not repo or repo.startswith("/") or ".." in Path(repo).parts:
            raise InvalidInput("invalid repository path", field="repo")
        return self.root / repo

    async def _run(
        self, repo: str | None, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (0,),
    ) -> tuple[int, bytes, bytes]:
        cmd = [self.git]
        if repo is not None:
            cmd += ["--git-dir", str(self.path(repo))]
        cmd += list(args)
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**self.base_env, **(env or {})},
            )
        except OSError as exc:
            raise Unavailable(f"cannot run git: {exc.strerror}") from exc
        out, err = await proc.communicate(stdin)
        rc = proc.returncode if proc.returncode is not None else -1
        if rc not in ok:
            raise GitError(f"git {args[0]} exited {rc}: {err.decode('utf-8', 'replace').strip()[:500]}")
        return rc, out, err

    def _check_repo(self, repo: str) -> None:
        if not self.path(repo).is_dir():
            raise NotFound("repository not found")

    @staticmethod
    def _rev(rev: str, field: str = "ref") -> str:
        if not rev or len(rev) > 255 or _BAD_REV.search(rev):
            raise InvalidInput(f"{field} is not a valid branch, tag or commit", field=field)
        return rev

    @staticmethod
    def _clean_path(path: str) -> str:
        path = path.strip("/")
        if any(p in ("..", ".") for p in path.split("/")) or "\x00" in path or "\n" in path:
            raise InvalidInput("path must not contain '.' or '..' segments", field="path")
        return path

    # ---- lifecycle -----------------------------------------------------------------------------------
    async def create(self, repo: str, default_branch: str) -> None:
        target = self.path(repo)
        if target.exists():
            raise Conflict("a repository already exists at that path")
        target.parent.mkdir(parents=True, exist_ok=True)
        await self._run(None, "init", "--bare", "--quiet", "-b", default_branch, str(target))
        await self._run(repo, "config", "uploadpack.allowFilter", "true")
        await self._run(repo, "config", "uploadpack.allowAnySHA1InWant", "true")

    async def delete(self, repo: str) -> None:
        target = self.path(repo)
        if target.exists():
            await asyncio.to_thread(shutil.rmtree, target)

    async def set_default_branch(self, repo: str, branch: str) -> None:
        self._check_repo(repo)
        await self._run(repo, "symbolic-ref", "HEAD", f"refs/heads/{branch}")

    # ---- browser -------------------------------------------------------------------------------------
    async def _commits(self, repo: str, shas: list[str]) -> dict[str, Commit]:
        unique = list(dict.fromkeys(shas))
        if not unique:
            return {}
        _, out, _ = await self._run(repo, "log", "--no-walk=unsorted", f"--format={LOG_FORMAT}", *unique, "--")
        return {c.sha: c for c in parse_log(out)}

    async def list_branches(self, repo: str, *, after: str | None = None, limit: int | None = None) -> list[Branch]:
        self._check_repo(repo)
        _, out, _ = await self._run(repo, "for-each-ref", "--format=%(refname:strip=2)%00%(objectname)",
                                    "refs/heads")
        rows = _window([line.split("\x00") for line in out.decode("utf-8", "replace").splitlines() if line],
                       after, limit)
        pairs = [(sha, name) for name, sha in rows]
        commits = await self._commits(repo, [sha for sha, _ in pairs])
        return [Branch(name, commits[sha]) for sha, name in pairs if sha in commits]

    async def list_tags(self, repo: str, *, after: str | None = None, limit: int | None = None) -> list[Tag]:
        self._check_repo(repo)
        fmt = "%(refname:strip=2)%00%(objectname)%00%(*objectname)%00%(contents:subject)"
        _, out, _ = await self._run(repo, "for-each-ref", f"--format={fmt}", "refs/tags")
        rows = _window([line.split("\x00") for line in out.decode("utf-8", "replace").splitlines() if line],
                       after, limit)
        targets = [(r[0], r[2] or r[1], r[3] if r[2] else None) for r in rows]
        commits = await self._commits(repo, [t for _, t, _ in targets])
        return [Tag(name, target, commits.get(target), msg) for name, target, msg in targets]

    async def resolve(self, repo: str, rev: str) -> str | None:
        self._check_repo(repo)
        rc, out, _ = await self._run(
            repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{self._rev(rev)}^{{commit}}", ok=(0, 1)
        )
        return out.decode().strip() if rc == 0 else None

    async def _must_resolve(self, repo: str, rev: str, field: str = "ref") -> str:
        sha = await self.resolve(repo, rev)
        if sha is None:
            raise NotFound(f"{field} {rev!r} names no commit in this repository")
        return sha

    async def tree(self, repo: str, rev: str, path: str) -> list[TreeEntry]:
        sha = await self._must_resolve(repo, rev)
        path = self._clean_path(path)
        rc, out, _ = await self._run(repo, "ls-tree", "-z", "-l", f"{sha}:{path}" if path else sha, ok=(0, 128))
        if rc != 0:
            raise NotFound(f"no directory {path!r} at {rev}")
        return parse_ls_tree(out, path)

    async def _open_blob(self, repo: str, rev: str, path: str) -> tuple[asyncio.subprocess.Process, str, int]:
        sha = await self._must_resolve(repo, rev)
        path = self._clean_path(path)
        if not path:
            raise InvalidInput("path names a directory, not a file", field="path")
        proc = await asyncio.create_subprocess_exec(
            self.git, "--git-dir", str(self.path(repo)), "cat-file", "--batch",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            env=self.base_env,
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(f"{sha}:{path}\n".encode())
        await proc.stdin.drain()
        proc.stdin.close()
        header = (await proc.stdout.readline()).decode("utf-8", "replace").split()
        if len(header) != 3 or header[1] != "blob":
            proc.kill()
            await proc.wait()
            kind = header[1] if len(header) == 3 else "missing"
            if kind == "tree":
                raise InvalidInput(f"{path!r} is a directory, not a file", field="path")
            raise NotFound(f"no file {path!r} at {rev}")
        return proc, header[0], int(header[2])

    async def blob(self, repo: str, rev: str, path: str, *, limit: int) -> Blob:
        proc, sha, size = await self._open_blob(repo, rev, path)
        assert proc.stdout is not None
        try:
            data = await proc.stdout.readexactly(min(size, limit))
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
        return Blob(self._clean_path(path), sha, size, data, truncated=size > limit)

    async def blob_stream(self, repo: str, rev: str, path: str) -> AsyncIterator[bytes]:
        proc, _, size = await self._open_blob(repo, rev, path)
        assert proc.stdout is not None
        try:
            remaining = size
            while remaining > 0:
                chunk = await proc.stdout.read(min(_CHUNK, remaining))
                if not chunk:
                    raise GitError("git cat-file ended early")
                remaining -= len(chunk)
                yield chunk
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()

    async def log(
        self, repo: str, rev: str, *, path: str | None = None, skip: int = 0, limit: int = 50
    ) -> list[Commit]:
        sha = await self._must_resolve(repo, rev)
        args = ["log", f"--format={LOG_FORMAT}", f"--skip={int(skip)}", f"-n{int(limit)}", sha, "--"]
        if path:
            args.append(self._clean_path(path))
        _, out, _ = await self._run(repo, *args)
        return parse_log(out)

    async def _diff(self, repo: str, old: str, new: str, max_patch_bytes: int) -> tuple[list[FileChange], str, bool]:
        (_, ns, _), (_, num, _), (_, patch, _) = await asyncio.gather(
            self._run(repo, "diff", "--name-status", "-z", "-M", old, new, "--"),
            self._run(repo, "diff", "--numstat", "-z", "-M", old, new, "--"),
            self._run(repo, "diff", "-M", "--no-color", old, new, "--"),
        )
        truncated = len(patch) > max_patch_bytes
        return parse_changes(ns, num), patch[:max_patch_bytes].decode("utf-8", "replace"), truncated

    async def show(self, repo: str, sha: str, *, max_patch_bytes: int) -> tuple[Commit, Comparison]:
        full = await self._must_resolve(repo, sha, "sha")
        commit = (await self._commits(repo, [full]))[full]
        parent = commit.parents[0] if commit.parents else EMPTY_TREE
        files, patch, truncated = await self._diff(repo, parent, full, max_patch_bytes)
        return commit, Comparison(parent, full, parent, (commit,), tuple(files), patch, truncated)

    async def compare(self, repo: str, base: str, head: str, *, max_patch_bytes: int) -> Comparison:
        base_sha = await self._must_resolve(repo, base, "base")
        head_sha = await self._must_resolve(repo, head, "head")
        rc, out, _ = await self._run(repo, "merge-base", base_sha, head_sha, ok=(0, 1))
        merge_base = out.decode().strip() if rc == 0 else None
        commits = await self.commits_between(repo, base_sha, head_sha, limit=250)
        files, patch, truncated = await self._diff(repo, merge_base or base_sha, head_sha, max_patch_bytes)
        return Comparison(base_sha, head_sha, merge_base, tuple(commits), tuple(files), patch, truncated)

    async def is_ancestor(self, repo: str, ancestor: str, descendant: str) -> bool:
        rc, _, _ = await self._run(repo, "merge-base", "--is-ancestor", ancestor, descendant, ok=(0, 1))
        return rc == 0

    async def commits_between(self, repo: str, old: str | None, new: str, *, limit: int) -> list[Commit]:
        spec = [new, f"^{old}"] if old else [new]
        _, out, _ = await self._run(repo, "log", f"--format={LOG_FORMAT}", f"-n{int(limit)}", *spec, "--")
        return parse_log(out)

    # ---- merges --------------------------------------------------------------------------------------
    async def merge(
        self, repo: str, *, target: str, source: str, strategy: MergeStrategy, author: Signature, message: str,
        expected_target: str | None = None, announce: Callable[[str], Awaitable[None]] | None = None,
    ) -> str:
        self._check_repo(repo)
        target_sha = await self._must_resolve(repo, f"refs/heads/{self._rev(target, 'target_branch')}", "target_branch")
        source_sha = await self._must_resolve(repo, f"refs/heads/{self._rev(source, 'source_branch')}", "source_branch")
        if expected_target is not None and expected_target != target_sha:
            raise Conflict("the target branch moved; reload and try again")
        if await self.is_ancestor(repo, source_sha, target_sha):
            raise Conflict(f"nothing to merge: {source} is already contained in {target}")
        if strategy is MergeStrategy.FAST_FORWARD:
            if not await self.is_ancestor(repo, target_sha, source_sha):
                raise Conflict(
                    f"fast-forward is impossible: {target} has commits that {source} lacks; "
                    "rebase the source branch or use strategy 'merge' or 'squash'",
                    detail={"reason": "not_fast_forward"},
                )
            new_sha = source_sha
        elif strategy is MergeStrategy.REBASE and await self.is_ancestor(repo, target_sha, source_sha):
            new_sha = source_sha  # nothing to replay onto: the source already sits on the target
        else:
            new_sha = await self._merge_commit(repo, target_sha, source_sha, strategy, author, message)
        if announce is not None:
            await announce(new_sha)
        rc, _, _err = await self._run(
            repo, "update-ref", "-m", f"corral: {strategy.value} {source}", f"refs/heads/{target}", new_sha, target_sha,
            ok=(0, 1, 128),
        )
        if rc != 0:
            raise Conflict("the target branch moved during the merge; nothing was changed, try again")
        return new_sha

    async def _merge_commit(
        self, repo: str, target_sha: str, source_sha: str, strategy: MergeStrategy, author: Signature, message: str
    ) -> str:
        """Write the merge (or squash) commit; new objects go to a quarantine directory first, so a
        conflict leaves not even unreachable objects behind."""
        objects = self.path(repo) / "objects"
        quarantine = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="tmp_objdir-corral-", dir=objects))
        env = {"GIT_OBJECT_DIRECTORY": str(quarantine), "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(objects)}
        try:
            if strategy is MergeStrategy.REBASE:
                head = await self._replay(repo, target_sha, source_sha, author, env)
                await asyncio.to_thread(_migrate_objects, quarantine, objects)
                return head
            rc, out, _ = await self._run(
                repo, "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", target_sha, source_sha,
                ok=(0, 1), env=env,
            )
            fields = out.decode("utf-8", "replace").split("\x00")
            if rc == 1:
                paths = sorted({p for p in fields[1:] if p})
                raise Conflict(
                    f"merge conflict in {', '.join(paths) or 'the repository'}; resolve it on the source branch",
                    detail={"paths": paths, "reason": "conflict"},
                )
            tree = fields[0].strip()
            parents = ["-p", target_sha] + (["-p", source_sha] if strategy is MergeStrategy.MERGE else [])
            env.update({
                "GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email,
                "GIT_AUTHOR_DATE": author.date.isoformat(), "GIT_COMMITTER_NAME": author.name,
                "GIT_COMMITTER_EMAIL": author.email, "GIT_COMMITTER_DATE": author.date.isoformat(),
            })
            _, out, _ = await self._run(repo, "commit-tree", tree, *parents, "-F", "-", stdin=message.encode(), env=env)
            await asyncio.to_thread(_migrate_objects, quarantine, objects)
            return out.decode().strip()
        finally:
            await asyncio.to_thread(shutil.rmtree, quarantine, True)

    # ---- writes through the API ----------------------------------------------------------------------
    async def write_commit(
        self, repo: str, *, parent: str | None, changes: Sequence[FileWrite], author: Signature, message: str,
        committer: Signature | None = None,
    ) -> str:
        """A temporary index (``GIT_INDEX_FILE``) holds ``parent``'s tree, ``update-index`` applies the changes
        (refusing a file/directory clash), ``write-tree`` and ``commit-tree`` write the commit; no ref moves."""
        self._check_repo(repo)
        paths = [self._write_path(c.path) for c in changes]
        if len(set(paths)) != len(paths):
            raise InvalidInput("a path appears twice in one commit", field="path")
        fd, index = await asyncio.to_thread(tempfile.mkstemp, prefix="corral-index-", dir=self.path(repo))
        os.close(fd)
        os.unlink(index)  # git creates it; an empty file is not a valid index
        env = {"GIT_INDEX_FILE": index}
        try:
            await self._run(repo, "read-tree", *([parent] if parent else ["--empty"]), env=env)
            modes: dict[str, str] = {}
            if parent:
                _, out, _ = await self._run(repo, "ls-files", "-s", "-z", env=env)
                for row in out.split(b"\x00"):
                    meta, _, name = row.partition(b"\t")
                    if meta:
                        modes[name.decode("utf-8", "surrogateescape")] = meta.split(b" ")[0].decode()
            removals = [p for p, c in zip(paths, changes, strict=True) if c.content is None]
            for path in removals:
                if path not in modes:
                    raise NotFound(f"no file {path!r} to delete")
            if removals:
                info = "".join(f"0 {ZERO_SHA}\t{p}\n" for p in removals).encode()
                await self._run(repo, "update-index", "--index-info", stdin=info, env=env)
            adds: list[str] = []
            for path, change in zip(paths, changes, strict=True):
                if change.content is None:
                    continue
                _, out, _ = await self._run(repo, "hash-object", "-w", "--stdin", stdin=change.content)
                mode = modes.get(path, "100644")
                mode = mode if mode in ("100644", "100755") else "100644"  # a symlink or submodule becomes a file
                adds += ["--cacheinfo", f"{mode},{out.decode().strip()},{path}"]
            if adds:
                rc, _, err = await self._run(repo, "update-index", "--add", *adds, env=env, ok=(0, 1, 128))
                if rc != 0:
                    raise InvalidInput(f"a file and a directory would share a path: "
                                       f"{err.decode('utf-8', 'replace').strip()[:200]}", field="path")
            _, out, _ = await self._run(repo, "write-tree", env=env)
            tree = out.decode().strip()
            by = committer or author
            sig = {"GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email,
                   "GIT_AUTHOR_DATE": author.date.isoformat(), "GIT_COMMITTER_NAME": by.name,
                   "GIT_COMMITTER_EMAIL": by.email, "GIT_COMMITTER_DATE": by.date.isoformat()}
            _, out, _ = await self._run(repo, "commit-tree", tree, *(["-p", parent] if parent else []), "-F", "-",
                                        stdin=message.encode(), env=sig)
            return out.decode().strip()
        finally:
            await asyncio.to_thread(_unlink, index)

    def _write_path(self, path: str) -> str:
        clean = self._clean_path(path)
        if not clean or "//" in clean or len(clean.encode()) > 4096 or any(
            part == ".git" or not part for part in clean.split("/")
        ):
            raise InvalidInput(f"{path!r} is not a valid file path", field="path")
        return clean

    async def update_ref(self, repo: str, ref: str, *, new: str, old: str) -> None:
        self._check_repo(repo)
        rc, _, _ = await self._run(None, "check-ref-format", ref, ok=(0, 1))
        if rc != 0 or not ref.startswith("refs/") or _BAD_REV.search(ref):
            raise InvalidInput(f"{ref!r} is not a valid ref name", field="ref")
        if new == ZERO_SHA:
            args = ["update-ref", "-m", "corral: api", "-d", ref, old]
        else:
            args = ["update-ref", "-m", "corral: api", ref, new, old]
        rc, _, _ = await self._run(repo, *args, ok=(0, 1, 128))
        if rc != 0:
            raise Conflict(f"{ref} moved meanwhile; nothing was changed, try again", detail={"reason": "ref_moved"})

    async def merge_conflicts(self, repo: str, base: str, head: str) -> list[str]:
        """``git merge-tree --write-tree`` with its objects in a quarantine directory that is removed after."""
        self._check_repo(repo)
        objects = self.path(repo) / "objects"
        quarantine = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="tmp_objdir-corral-", dir=objects))
        env = {"GIT_OBJECT_DIRECTORY": str(quarantine), "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(objects)}
        try:
            rc, out, _ = await self._run(
                repo, "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z",
                self._rev(base, "base"), self._rev(head, "head"), ok=(0, 1), env=env,
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, quarantine, True)
        if rc == 0:
            return []
        return sorted({p for p in out.decode("utf-8", "replace").split("\x00")[1:] if p})

    async def ahead_behind(self, repo: str, base: str, head: str) -> tuple[int, int]:
        base_sha = await self._must_resolve(repo, base, "base")
        head_sha = await self._must_resolve(repo, head, "head")
        _, out, _ = await self._run(repo, "rev-list", "--left-right", "--count", f"{base_sha}...{head_sha}")
        behind, ahead = (int(x) for x in out.split())
        return ahead, behind

    async def tree_id(self, repo: str, rev: str) -> str:
        sha = await self._must_resolve(repo, rev)
        _, out, _ = await self._run(repo, "rev-parse", f"{sha}^{{tree}}")
        return out.decode().strip()

    async def archive(self, repo: str, commit: str, *, fmt: str, prefix: str) -> AsyncIterator[bytes]:
        if fmt not in ("tar.gz", "zip"):
            raise InvalidInput("archive format must be tar.gz or zip", field="format")
        if not prefix.endswith("/") or _BAD_REV.search(prefix.rstrip("/")) or "/" in prefix.rstrip("/"):
            raise InvalidInput("invalid archive prefix", field="prefix")
        sha = await self._must_resolve(repo, commit)
        proc = await asyncio.create_subprocess_exec(
            self.git, "--git-dir", str(self.path(repo)), "archive", f"--format={fmt}", f"--prefix={prefix}", sha,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            env=self.base_env,
        )
        assert proc.stdout is not None
        try:
            while chunk := await proc.stdout.read(_CHUNK):
                yield chunk
            if await proc.wait() != 0:
                raise GitError(f"git archive exited {proc.returncode}")
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    async def _replay(self, repo: str, target_sha: str, source_sha: str, committer: Signature,
                      env: dict[str, str]) -> str:
        """Cherry-pick the commits of ``source_sha`` missing from ``target_sha`` onto it, oldest first, each keeping
        its author and message (``committer`` commits them). git 2.39's ``merge-tree`` takes no merge base, so
        each step merges the commit with a throwaway commit holding the tip's tree whose parent is the commit's
        parent: their merge base is that parent, as in a cherry-pick. A commit that changes nothing any more is
        dropped; a merge commit cannot be replayed (Conflict)."""
        _, out, _ = await self._run(repo, "rev-list", "--reverse", "--parents", f"{source_sha}", f"^{target_sha}")
        rows = [line.split() for line in out.decode().splitlines() if line]
        if any(len(row) != 2 for row in rows):
            raise Conflict("rebase cannot replay merge commits; use strategy 'merge' or 'squash'",
                           detail={"reason": "merge_commits"})
        originals = await self._commits(repo, [row[0] for row in rows])
        tip = target_sha
        by = {"GIT_COMMITTER_NAME": committer.name, "GIT_COMMITTER_EMAIL": committer.email,
              "GIT_COMMITTER_DATE": committer.date.isoformat()}
        for sha, parent in rows:
            _, out, _ = await self._run(repo, "rev-parse", f"{tip}^{{tree}}", env=env)
            tip_tree = out.decode().strip()
            _, out, _ = await self._run(repo, "commit-tree", tip_tree, "-p", parent, "-m", "corral replay base",
                                        env={**env, **_author_env(committer), **by})
            base = out.decode().strip()
            rc, out, _ = await self._run(repo, "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z",
                                         base, sha, ok=(0, 1), env=env)
            fields = out.decode("utf-8", "replace").split("\x00")
            if rc == 1:
                paths = sorted({p for p in fields[1:] if p})
                raise Conflict(
                    f"rebase conflict in {', '.join(paths) or 'the repository'} replaying {sha[:12]}; "
                    "resolve it on the source branch", detail={"paths": paths, "reason": "conflict"})
            tree = fields[0].strip()
            if tree == tip_tree:
                continue  # already in the target
            original = originals[sha]
            _, out, _ = await self._run(repo, "commit-tree", tree, "-p", tip, "-F", "-",
                                        stdin=original.message.encode(),
                                        env={**env, **_author_env(original.author), **by})
            tip = out.decode().strip()
        return tip

    # ---- smart HTTP ----------------------------------------------------------------------------------
    async def ref_values(self, repo: str, refs: list[str]) -> dict[str, str]:
        """Current values of the given full ref names (absent refs are left out)."""
        if not refs:
            return {}
        _, out, _ = await self._run(repo, "for-each-ref", "--format=%(objectname) %(refname)", *refs)
        values = {}
        for line in out.decode("utf-8", "replace").splitlines():
            sha, _, ref = line.partition(" ")
            if ref in refs:
                values[ref] = sha
        return values

    def _service_args(
        self, service: str, push_rules: list[PushRule] | tuple[PushRule, ...], pusher: str, auto_gc: bool,
        env: dict[str, str],
    ) -> list[str]:
        args = [self.git]
        if service == "receive-pack":
            env["CRL_PROTECTED"] = rules_env(push_rules)
            env["GIT_COMMITTER_NAME"] = pusher or "corral"
            env["GIT_COMMITTER_EMAIL"] = f"{pusher or 'corral'}@corral.invalid"
            # no rules: the hook would exit at once; not starting it saves a process per push
            hooks = self.hooks_dir if push_rules else self.no_hooks_dir
            args += ["-c", f"core.hooksPath={hooks}", "-c", "receive.advertisePushOptions=false"]
            if not auto_gc:
                args += ["-c", "receive.autogc=false"]
        return args

    async def merged_into(self, repo: str, refs: list[str], commit: str) -> dict[str, str]:
        """Of ``refs``, those reachable from ``commit`` (``git for-each-ref --merged``), with their values."""
        if not refs:
            return {}
        _, out, _ = await self._run(repo, "for-each-ref", f"--merged={self._rev(commit, 'commit')}",
                                    "--format=%(objectname) %(refname)", *refs)
        merged = {}
        for line in out.decode("utf-8", "replace").splitlines():
            sha, _, ref = line.partition(" ")
            if ref in refs:
                merged[ref] = sha
        return merged

    async def open_exchange(
        self, repo: str, service: GitService, *, advertise: bool, protocol: str | None,
        push_rules: list[PushRule] | tuple[PushRule, ...] = (), pusher: str = "", auto_gc: bool = True,
    ) -> ServiceProcess:
        """Start ``git upload-pack`` or ``git receive-pack`` in stateless-rpc mode for one HTTP exchange.

        Branch protection reaches the pre-receive hook through the environment:
        one line per rule, ``<flags> <pattern>`` (flags F: force-push allowed,
        D: deletion allowed, M: merge requests only, '-': none); no rules: no hook runs. ``auto_gc=False``:
        receive-pack skips its ``git maintenance run --auto`` (the caller runs it after the response,
        corral.adapters.git_maintenance). The request body goes in through ``ServiceProcess.stdin``.
        git that cannot be started is Unavailable.
        """
        if service not in ("upload-pack", "receive-pack"):
            raise InvalidInput("unknown git service", field="service")
        self._check_repo(repo)
        env = dict(self.base_env)
        if protocol:
            env["GIT_PROTOCOL"] = protocol
        args = self._service_args(service, push_rules, pusher, auto_gc, env)
        args += [service, "--stateless-rpc"]
        if advertise:
            args.append("--advertise-refs")
        args.append(str(self.path(repo)))
        if advertise:
            try:
                process = await asyncio.create_subprocess_exec(
                    *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE, env=env, limit=_SERVICE_BUFFER,
                )
            except OSError as exc:
                raise Unavailable(f"cannot run git: {exc.strerror}") from exc
            return ServiceProcess(process, None, service)
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            process = await asyncio.create_subprocess_exec(
                *args, stdin=read_end, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env=env, limit=_SERVICE_BUFFER,
            )
        except OSError as exc:
            os.close(write_end)
            raise Unavailable(f"cannot run git: {exc.strerror}") from exc
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        return ServiceProcess(process, PipeWriter(write_end), service)

    async def receive_advertisement(self, repo: str) -> bytes | None:
        """What ``git receive-pack --advertise-refs`` would write for ``repo`` (protocol v0), read from the
        ref files without starting git (corral.adapters.git_refs); None when git must answer itself."""
        self._check_repo(repo)
        if self._receive_caps is None:
            self._receive_caps = await self._ask_receive_caps()
        caps = self._receive_caps
        if not caps:
            return None
        return await _refs_io(git_refs.advertisement, self.path(repo), caps)

    async def upload_v2_advertisement(self, repo: str, protocol: str) -> bytes:
        """What ``git upload-pack --advertise-refs`` writes for a protocol v2 request: the capability list,
        which holds no refs and depends only on the git binary, the repository's configuration and the
        requested protocol. git's own answer is kept per (configuration bytes, protocol), so a fetch's
        discovery starts no process once that configuration has been seen (a changed config is asked anew)."""
        self._check_repo(repo)
        try:
            config = await _refs_io((self.path(repo) / "config").read_bytes)
        except OSError:
            config = b""
        key = (config, protocol)
        cached = self._v2_caps.get(key)
        if cached is not None:
            return cached
        env = {**self.base_env, "GIT_PROTOCOL": protocol}
        _, out, _ = await self._run(None, "upload-pack", "--stateless-rpc", "--advertise-refs", str(self.path(repo)),
                                    env=env)
        if out.startswith(b"000eversion 2\n"):  # anything else (an older git, no v2): never kept
            if len(self._v2_caps) >= _V2_CACHE_ENTRIES:
                self._v2_caps.pop(next(iter(self._v2_caps)))
            self._v2_caps[key] = out
        return out

    async def ls_refs(self, repo: str, protocol: str, request: bytes) -> bytes | None:
        """git's answer to a protocol v2 ``command=ls-refs`` request (``request``: the whole body), without
        starting git when the same request met the same refs, HEAD and configuration before: the answer is a
        function of those (objects never change), so git's earlier answer is returned. An answer is kept only
        if the refs did not move while git wrote it. None: the refs cannot be read here (start git as usual).
        """
        self._check_repo(repo)
        path = self.path(repo)
        before = await _refs_io(git_refs.refs_state, path)
        if before is None:
            return None
        key = (repo, before, protocol, request)
        cached = self._ls_refs.get(key)
        if cached is not None:
            self._ls_refs.move_to_end(key)
            return cached
        env = {**self.base_env, "GIT_PROTOCOL": protocol}
        _, out, _ = await self._run(None, "upload-pack", "--stateless-rpc", str(path), stdin=request, env=env)
        if len(out) <= _LS_REFS_MAX_BYTES and await _refs_io(git_refs.refs_state, path) == before:
            self._ls_refs[key] = out
            while len(self._ls_refs) > _LS_REFS_ENTRIES:
                self._ls_refs.popitem(last=False)
        return out

    async def _ask_receive_caps(self) -> bytes:
        """The capabilities this machine's git advertises to a push (b"" if they cannot be read)."""
        scratch = self.hooks_dir / "empty.git"
        try:
            if not (scratch / "HEAD").exists():
                await self._run(None, "init", "--bare", "--quiet", str(scratch))
            env = dict(self.base_env)
            args = self._service_args("receive-pack", (), "", False, env)
            proc = await asyncio.create_subprocess_exec(
                *args, "receive-pack", "--stateless-rpc", "--advertise-refs", str(scratch),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL, env=env,
            )
            out, _ = await proc.communicate()
        except (OSError, GitError, Unavailable):
            return b""
        return (git_refs.capabilities_from(out) or b"") if proc.returncode == 0 else b""


_REFS_IO_LOCK = threading.Lock()
_REFS_IO: concurrent.futures.ThreadPoolExecutor | None = None


async def _refs_io(fn: Callable[..., T], *args: Any) -> T:
    """Run a short blocking read of ref or config files on threads of its own: git discovery never queues
    behind other work in the default executor (argon2, file I/O), nor makes it wait."""
    global _REFS_IO
    with _REFS_IO_LOCK:
        if _REFS_IO is None:
            _REFS_IO = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="corral-git-refs")
        pool = _REFS_IO
    return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)


def _migrate_objects(quarantine: Path, objects: Path) -> None:
    """Move loose objects out of the quarantine into the repository (existing ones are kept)."""
    for fan in quarantine.iterdir():
        if not fan.is_dir() or len(fan.name) != 2:
            continue
        (objects / fan.name).mkdir(exist_ok=True)
        for obj in fan.iterdir():
            target = objects / fan.name / obj.name
            if not target.exists():
                os.replace(obj, target)


def _author_env(author: Signature) -> dict[str, str]:
    return {"GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email,
            "GIT_AUTHOR_DATE": author.date.isoformat()}


def _unlink(path: str) -> None:
    for name in (path, f"{path}.lock"):
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass


if TYPE_CHECKING:
    _IS_A_GIT_SERVER: type[GitServer] = GitCli  # mypy checks that GitCli implements the ports


def rules_env(rules: list[PushRule] | tuple[PushRule, ...]) -> str:
    """Branch protection in the form the pre-receive hook reads: one ``<flags> <pattern>`` per line."""
    lines = []
    for r in rules:
        flags = ("F" if r.allow_force_push else "") + ("D" if r.allow_deletion else "")
        flags += "M" if r.require_merge_request else ""
        lines.append(f"{flags or '-'} {r.pattern}")
    return "\n".join(lines)


def is_sha(value: str) -> bool:
    return bool(_SHA.match(value))


def _window(rows: list[list[str]], after: str | None, limit: int | None) -> list[list[str]]:
    """Rows (name first) in byte order of the name, after ``after``, at most ``limit``."""
    rows = sorted((r for r in rows if after is None or r[0].encode() > after.encode()), key=lambda r: r[0].encode())
    return rows if limit is None else rows[:limit]
