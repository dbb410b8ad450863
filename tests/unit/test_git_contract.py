"""The in-memory git model passes the GitRepositories contract."""

from __future__ import annotations

from typing import Any

import pytest

from corral.contracts.git import GitRepositoriesContract
from corral.fakes.git import InMemoryGitRepositories


class TestInMemoryGitRepositories(GitRepositoriesContract):
    @pytest.fixture
    def git_repos(self) -> InMemoryGitRepositories:
        return InMemoryGitRepositories()

    async def write_commit(
        self, repos: Any, repo: str, branch: str, files: dict[str, bytes | None], message: str,
        parent: str | None = None,
    ) -> str:
        sha: str = repos.commit(repo, branch, files, message, parent=parent)
        return sha

    async def write_tag(self, repos: Any, repo: str, name: str, sha: str) -> None:
        repos.tag(repo, name, sha)
