"""GitCli on the real git binary passes the GitRepositories contract (history written with git plumbing)."""

from __future__ import annotations

import asyncio
import itertools
import os
from pathlib import Path
from typing import Any

import pytest

from corral.adapters.git_cli import GitCli
from corral.contracts.git import GitRepositoriesContract

pytestmark = pytest.mark.integration

_DATES = itertools.count(1_790_000_000, 60)  # successive commits get increasing dates


async def _git(cli: GitCli, repo: str, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None,
               ok: tuple[int, ...] = (0,)) -> str:
    proc = await asyncio.create_subprocess_exec(
        "git", "--git-dir", str(cli.path(repo)), *args, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**cli.base_env, **(env or {})},
    )
    out, err = await proc.communicate(stdin)
    assert proc.returncode in ok, f"git {args}: {err.decode()}"
    return out.decode().strip()


class TestGitCliRepositories(GitRepositoriesContract):
    @pytest.fixture
    def git_repos(self, tmp_path: Path) -> GitCli:
        return GitCli(tmp_path / "repos")

    async def write_commit(
        self, repos: Any, repo: str, branch: str, files: dict[str, bytes | None], message: str,
        parent: str | None = None,
    ) -> str:
        cli: GitCli = repos
        base = parent or await _git(cli, repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", ok=(0, 1))
        index = cli.path(repo) / f"contract-index-{os.getpid()}"
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            await _git(cli, repo, "read-tree", *([base] if base else ["--empty"]), env=env)
            lines = []
            for path, content in files.items():
                if content is None:  # mode 0 removes the entry
                    lines.append(f"0 {'0' * 40}\t{path}\n")
                else:
                    blob = await _git(cli, repo, "hash-object", "-w", "--stdin", stdin=content)
                    lines.append(f"100644 {blob}\t{path}\n")
            await _git(cli, repo, "update-index", "--index-info", stdin="".join(lines).encode(), env=env)
            tree = await _git(cli, repo, "write-tree", env=env)
        finally:
            index.unlink(missing_ok=True)
        date = f"@{next(_DATES)} +0000"
        sig = {"GIT_AUTHOR_NAME": "tester", "GIT_AUTHOR_EMAIL": "tester@example.com", "GIT_AUTHOR_DATE": date,
               "GIT_COMMITTER_NAME": "tester", "GIT_COMMITTER_EMAIL": "tester@example.com",
               "GIT_COMMITTER_DATE": date}
        sha = await _git(cli, repo, "commit-tree", tree, *(["-p", base] if base else []), "-F", "-",
                         stdin=message.encode(), env=sig)
        await _git(cli, repo, "update-ref", f"refs/heads/{branch}", sha)
        return sha

    async def write_tag(self, repos: Any, repo: str, name: str, sha: str) -> None:
        await _git(repos, repo, "update-ref", f"refs/tags/{name}", sha)
