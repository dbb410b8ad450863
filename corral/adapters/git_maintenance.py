"""Pack maintenance of the served repositories, off the push's critical path.

``git receive-pack`` runs ``git maintenance run --auto`` itself before it ends, and the pushing client waits
for it (the response stays open until then). Corral spawns receive-pack with ``receive.autogc=false`` and asks
this scheduler instead, once the response has ended, as large git hosts do:

- debounced per repository: at most one run per repository at a time; pushes that arrive meanwhile coalesce
  into a single run after it;
- bounded concurrency across repositories (a semaphore);
- ``--auto`` keeps git's own thresholds (gc.auto, gc.autoPackLimit, maintenance.*): most runs only look and
  exit; ``gc.autoDetach=false`` keeps the work inside the process awaited here, so the bound means something;
- errors are logged, never raised to a request;
- on close: nothing new starts, pending runs are dropped, a running one gets ``grace`` seconds and is then
  left to finish on its own (its own session, so the server's signals do not reach it), like git's own
  detached ``gc --auto``. It is never signalled: measured with git 2.39, a SIGTERM early in ``git maintenance``
  (between creating ``objects/maintenance.lock`` and installing its signal handlers) leaves that lock behind,
  and every later ``maintenance run`` then skips silently (tests/e2e/test_git_maintenance.py);
- a lock left behind anyway (a SIGKILL, a power cut) is removed before a run once it is older than
  ``stale_lock_after`` (12 h, git's own expiry for ``gc.pid``) and no run of that repository is ours: git itself
  never expires ``maintenance.lock``, so without this the repository would never be packed again;
- the quarantine of a push killed with its ``git receive-pack`` (``objects/tmp_objdir-incoming-*``, where git
  receives a pack until its refs are updated; git removes it itself on any exit it sees) is removed once
  nothing in it changed for ``stale_quarantine_after`` (1 h: replicas sharing the volume may be receiving a
  push into one right now), before a run and by ``sweep_quarantines`` (at start, every repository).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

__all__ = ["GitMaintenance"]

log = logging.getLogger("corral.git")


class GitMaintenance:
    """Background ``git maintenance run --auto`` per repository; see the module docstring.

    ``git``: the GitCli whose repositories are served (its binary, paths and environment are used)."""

    def __init__(
        self, git: Any, *, concurrency: int = 1, grace: float = 10.0, stale_lock_after: float = 12 * 3600,
        stale_quarantine_after: float = 3600,
    ) -> None:
        self.git = git
        self.grace = grace
        self.stale_lock_after = stale_lock_after
        self.stale_quarantine_after = stale_quarantine_after
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[str, asyncio.Task[None]] = {}  # repo -> its worker (running or waiting for a slot)
        self._again: set[str] = set()  # repos pushed to after their running worker started git
        self._procs: set[asyncio.subprocess.Process] = set()
        self._closed = False
        self.runs = 0  # finished runs (for tests and metrics)

    def request(self, repo: str) -> None:
        """Ask for a maintenance run of ``repo`` soon; returns at once."""
        if self._closed:
            return
        task = self._tasks.get(repo)
        if task is not None and not task.done():
            self._again.add(repo)
            return
        self._tasks[repo] = asyncio.get_running_loop().create_task(self._worker(repo))

    async def _worker(self, repo: str) -> None:
        try:
            while not self._closed:
                async with self._slots:
                    if self._closed:
                        return
                    self._again.discard(repo)  # this run sees every push so far
                    await self._run(repo)
                if repo not in self._again:
                    return
        finally:
            if self._tasks.get(repo) is asyncio.current_task():
                del self._tasks[repo]

    async def _run(self, repo: str) -> None:
        try:
            path = self.git.path(repo)
            if not path.is_dir():
                return  # deleted meanwhile
            self._clear_stale_lock(repo, path / "objects" / "maintenance.lock")
            await asyncio.to_thread(self._clear_stale_quarantines, path / "objects")
            proc = await asyncio.create_subprocess_exec(
                self.git.git, "--git-dir", str(path), "-c", "gc.autoDetach=false", "-c", "maintenance.autoDetach=false",
                "maintenance", "run", "--auto", "--quiet",
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
                env=self.git.base_env, start_new_session=True,  # outlives a shutdown rather than be killed
            )
        except Exception:
            log.exception("could not start git maintenance for %s", repo)
            return
        self._procs.add(proc)
        try:
            _, err = await proc.communicate()
        finally:
            self._procs.discard(proc)
        self.runs += 1
        if proc.returncode:
            log.warning("git maintenance for %s exited %s: %s", repo, proc.returncode,
                        err.decode("utf-8", "replace").strip()[:500])

    def _clear_stale_lock(self, repo: str, lock: Path) -> None:
        """Remove ``lock`` when it is older than ``stale_lock_after`` (only called while no run of ``repo`` is
        ours: the per-repository worker is the only caller)."""
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return
        if age < self.stale_lock_after:
            return
        lock.unlink(missing_ok=True)
        log.warning("removed a stale %s of %s (%.0f h old): its git maintenance run was killed", lock.name, repo,
                    age / 3600)

    def _clear_stale_quarantines(self, objects: Path) -> int:
        removed = 0
        now = time.time()
        for quarantine in objects.glob("tmp_objdir-incoming-*"):
            try:
                if not quarantine.is_dir() or now - _newest_mtime(quarantine) < self.stale_quarantine_after:
                    continue
                shutil.rmtree(quarantine)
            except OSError as exc:  # gone meanwhile (git finished), or not ours to remove
                log.debug("could not remove %s: %s", quarantine, exc)
                continue
            removed += 1
            log.warning("removed the stale push quarantine %s (its git receive-pack was killed)", quarantine)
        return removed

    async def sweep_quarantines(self) -> int:
        """Remove the stale push quarantines of every repository (off the event loop); returns how many."""

        def sweep() -> int:
            root = Path(self.git.root)
            return sum(self._clear_stale_quarantines(objects) for objects in root.glob("*/objects")
                       if objects.is_dir())

        try:
            return await asyncio.to_thread(sweep)
        except Exception:
            log.exception("could not sweep the push quarantines")
            return 0

    def running(self) -> int:
        """How many git maintenance processes run now."""
        return sum(1 for p in self._procs if p.returncode is None)

    async def wait_idle(self) -> None:
        """Until no run is pending or running (tests; a graceful drain)."""
        while tasks := [t for t in self._tasks.values() if not t.done()]:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        """Start nothing more; wait up to ``grace`` seconds for a running git, then leave it to finish on its
        own (it runs in its own session, like git's own detached ``gc --auto``): never a signal, which could
        leave a lock file behind (see the module docstring)."""
        self._closed = True
        self._again.clear()
        tasks = list(self._tasks.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self.grace)
        for proc in list(self._procs):
            if proc.returncode is None:
                log.info("git maintenance (pid %s) still running at shutdown; it finishes on its own", proc.pid)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def _newest_mtime(top: Path) -> float:
    """The newest modification time of ``top`` and everything below it (a pack being received changes)."""
    newest = top.stat().st_mtime
    for parent, dirs, files in os.walk(top):
        for name in (*dirs, *files):
            try:
                newest = max(newest, os.lstat(os.path.join(parent, name)).st_mtime)
            except FileNotFoundError:
                continue
    return newest
