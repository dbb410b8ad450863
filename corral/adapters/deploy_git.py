"""OpsSource over the git repositories: a Corral project's repository in place, an outside URL through a
mirror (``git fetch``) kept under the repositories root.

An outside repository's credential (its ``credential_secret``, read when fetching) reaches git only through the
environment of the ``git fetch`` (``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n``): an
``http.<url>.extraHeader`` with HTTP Basic, scoped to that URL, and redirects off so it is never sent to another
host. Never on a command line (``ps``), in a URL, in a file or in an error message."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from corral.core.deploy.model import OpsRepo
from corral.core.errors import Unavailable
from corral.core.git.ports import GitRepositories
from corral.core.uow import UnitOfWorkFactory

__all__ = ["GitOpsSource"]

MAX_TEMPLATE_BYTES = 1024 * 1024
TOKEN_USER = "x-access-token"  # the user name sent with a bare token (GitHub, Gitea, GitLab and Corral take it)


def credential_env(url: str, credential: str) -> dict[str, str]:
    """git configuration, as environment variables, that sends ``credential`` to ``url`` only: ``USER:PASSWORD``
    as it is, a bare token as the password of ``x-access-token``; HTTP Basic."""
    pair = credential.strip()
    if ":" not in pair:
        pair = f"{TOKEN_USER}:{pair}"
    header = "Authorization: Basic " + base64.b64encode(pair.encode()).decode()
    return {"GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": f"http.{url}.extraHeader", "GIT_CONFIG_VALUE_0": header,
            "GIT_CONFIG_KEY_1": "http.followRedirects", "GIT_CONFIG_VALUE_1": "false"}


class GitOpsSource:
    """Reads ``repo.branch`` of an ops repository. Outside URLs are fetched at most every ``sync_interval_s``
    (and whenever ``head`` is asked after that), into ``<root>/deploy-mirrors/<id>.git``."""

    def __init__(self, repos: GitRepositories, uow_factory: UnitOfWorkFactory, root: Path, *,
                 git: str = "git", credentials: Callable[[OpsRepo], Awaitable[str]] | None = None) -> None:
        """``credentials``: the value of an outside repository's ``credential_secret`` (the audited reader)."""
        self.repos = repos
        self.credentials = credentials
        self.uow_factory = uow_factory
        self.root = root
        self.git = git
        self._paths: dict[Any, str] = {}
        self._fetched: dict[Any, float] = {}
        self._lock = asyncio.Lock()

    async def _path(self, repo: OpsRepo) -> str:
        if repo.project_id is None:
            return f"deploy-mirrors/{repo.id}.git"
        cached = self._paths.get(repo.project_id)
        if cached is None:
            async with self.uow_factory() as uow:
                project = await uow.projects.get(repo.project_id)
            if project is None:
                raise Unavailable(f"the project of ops repository {repo.name} is gone")
            cached = self._paths[repo.project_id] = project.repo_path
        return cached

    async def _fetch(self, repo: OpsRepo) -> None:
        assert repo.url is not None
        now = asyncio.get_running_loop().time()
        last = self._fetched.get(repo.id)
        if last is not None and now - last < repo.sync_interval_s:
            return
        async with self._lock:
            mirror = self.root / "deploy-mirrors" / f"{repo.id}.git"
            if not mirror.exists():
                mirror.parent.mkdir(parents=True, exist_ok=True)
                await self._git("init", "--bare", "-q", str(mirror))
            env: dict[str, str] = {}
            if repo.credential_secret is not None:
                if self.credentials is None:
                    raise Unavailable(f"ops repository {repo.name}: no secret reader to fetch its credential")
                env = credential_env(repo.url, await self.credentials(repo))
            await self._git("-C", str(mirror), "fetch", "-q", "--prune", "--", repo.url,
                            f"+refs/heads/{repo.branch}:refs/heads/{repo.branch}", env=env)
            self._fetched[repo.id] = now

    async def _git(self, *args: str, env: dict[str, str] | None = None) -> None:
        # no prompt, no credential helper of the host's configuration: only what the ops repository says
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "", **(env or {})}
        proc = await asyncio.create_subprocess_exec(self.git, "-c", "credential.helper=", *args,
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE, env=env)
        try:
            _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise Unavailable("git fetch of an ops repository timed out") from None
        if proc.returncode != 0:
            raise Unavailable(f"git fetch of an ops repository failed: {err.decode(errors='replace').strip()[:300]}")

    async def head(self, repo: OpsRepo) -> str | None:
        if repo.url is not None:
            await self._fetch(repo)
        return await self.repos.resolve(await self._path(repo), f"refs/heads/{repo.branch}")

    async def files(self, repo: OpsRepo, commit: str, directory: str) -> dict[str, str]:
        path = await self._path(repo)
        out: dict[str, str] = {}
        for entry in await self.repos.tree(path, commit, directory):
            if entry.type == "blob" and entry.name.endswith((".yaml", ".yml")):
                blob = await self.repos.blob(path, commit, entry.path, limit=MAX_TEMPLATE_BYTES)
                out[entry.name] = blob.data.decode(errors="replace")
        return out
