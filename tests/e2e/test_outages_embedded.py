"""Issue 19 on the embedded default: kill -9 the embedded PostgreSQL, then Valkey, under load.

Corral starts them again (same Corral process), every acknowledged write is there afterwards, /healthz stays
200 while a child can be brought back and fails (naming it) only once one cannot within the bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.corral_process import CorralProcess
from tests.e2e.outage_load import ADMIN_ENV, Load, admin_token, wait_for_status
from tests.helpers import embedded_data_dir

pytestmark = pytest.mark.e2e


def _pg_pid(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "data" / "postmaster.pid").read_text().split("\n", 1)[0])


def _valkey_pid(data_dir: Path) -> int:
    return int((data_dir / "valkey" / "valkey.pid").read_text().strip())


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


async def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if predicate():
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} within {timeout} s")


@contextlib.contextmanager
def _serve(tmp_path: Path, **env: str) -> Iterator[CorralProcess]:
    server = CorralProcess.start(tmp_path, {**ADMIN_ENV, **env}, timeout=120)
    try:
        yield server
    finally:
        code = server.stop()
        # what Corral said about the outages (not the access log): shown with -s or on failure
        print("\n".join(line[:600] for line in server.log_text().splitlines() if _worth_showing(line)))
        assert code == 0


class HealthWatch:
    """Polls /healthz while the test runs; remembers every answer that was not 200."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.failures: list[str] = []
        self.polls = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> HealthWatch:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            while True:
                try:
                    async with http.get(self.base + "/healthz") as resp:
                        self.polls += 1
                        if resp.status != 200:
                            self.failures.append(f"{resp.status} {await resp.text()}")
                except (aiohttp.ClientError, TimeoutError) as exc:
                    self.failures.append(repr(exc))
                await asyncio.sleep(0.2)


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    with embedded_data_dir("corral-e2e-outage-") as path:
        yield path


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def test_kill9_postgres_then_valkey_under_load(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    with _serve(tmp_path) as server:
        base = server.base_url
        token, _ = await admin_token(base)
        load = Load(base, token)
        await load.create_project()
        async with HealthWatch(base) as health:
            load.start()
            await asyncio.sleep(1.5)

            # PostgreSQL: kill -9 the postmaster; Corral starts it again (crash recovery) and resumes
            old_pg = _pg_pid(tmp_path)
            killed = time.monotonic()
            os.kill(old_pg, signal.SIGKILL)
            pg_recovery = await load.recovered_since(killed, timeout=60)
            await _wait(lambda: _pg_pid(tmp_path) != old_pg and _alive(_pg_pid(tmp_path)), 10,
                        "a new postmaster")
            await asyncio.sleep(1.5)

            # Valkey: kill -9; Corral starts it again on the same port with the same password
            old_valkey = _valkey_pid(tmp_path)
            killed = time.monotonic()
            os.kill(old_valkey, signal.SIGKILL)
            await _wait(lambda: _valkey_pid(tmp_path) != old_valkey and _alive(_valkey_pid(tmp_path)), 30,
                        "a new valkey-server")
            valkey_back = time.monotonic() - killed
            await wait_for_status(http, base + "/readyz", 200, timeout=30)
            valkey_recovery = await load.recovered_since(time.monotonic(), timeout=30)
            await asyncio.sleep(1.0)
            await load.stop()

        assert server.proc.poll() is None, "Corral itself must not have restarted"
        assert not load.bad, load.bad[:10]
        assert not health.failures, f"/healthz failed while the children could be restarted: {health.failures[:5]}"
        assert health.polls > 10
        await load.verify()
        assert len(load.issues) > 20 and len(load.logs) > 20, load.statuses
        print(f"PostgreSQL kill -9 -> writes again after {pg_recovery:.2f} s; Valkey back after "
              f"{valkey_back:.2f} s (writes ok {valkey_recovery:.2f} s later); statuses {dict(load.statuses)}")
        log = server.log_text()
        assert "the embedded PostgreSQL is running again" in log
        assert "the embedded Valkey is running again" in log


async def test_token_revoked_while_valkey_is_down_stays_refused(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    """The credential cached in Valkey before the outage (and kept by its append-only file) must not be
    served after Valkey comes back: the revocation happened while Valkey could not hear about it."""
    with _serve(tmp_path) as server:
        base = server.base_url
        admin, _ = await admin_token(base)
        victim, victim_id = await admin_token(base, scopes=["project:read"])
        me = base + "/api/v1/me"
        for _ in range(3):  # cached locally and in Valkey
            async with http.get(me, headers={"Authorization": f"Bearer {victim}"}) as resp:
                assert resp.status == 200
        await asyncio.sleep(1.5)  # the append-only file is synced every second

        # keep Valkey down: its directory is gone, so the restarts fail until it is back
        valkey_dir, hidden = tmp_path / "valkey", tmp_path / "valkey.hidden"
        valkey_dir.rename(hidden)
        old = int((hidden / "valkey.pid").read_text().strip())
        os.kill(old, signal.SIGKILL)
        try:
            await wait_for_status(http, base + "/readyz", 503, timeout=15)
            async with http.delete(f"{base}/api/v1/tokens/{victim_id}",
                                   headers={"Authorization": f"Bearer {admin}"}) as resp:
                assert resp.status in (200, 204), await resp.text()
            async with http.get(me, headers={"Authorization": f"Bearer {victim}"}) as resp:
                assert resp.status == 401, "a token revoked while Valkey is down must be refused"
            async with http.get(me, headers={"Authorization": f"Bearer {admin}"}) as resp:
                assert resp.status == 200, "authentication works without the cache"
        finally:
            hidden.rename(valkey_dir)
        await _wait(lambda: _valkey_pid(tmp_path) != old and _alive(_valkey_pid(tmp_path)), 30, "valkey back")
        await wait_for_status(http, base + "/readyz", 200, timeout=30)
        for _ in range(3):
            async with http.get(me, headers={"Authorization": f"Bearer {victim}"}) as resp:
                assert resp.status == 401, "a stale cache entry from before the outage was served"
        async with http.get(me, headers={"Authorization": f"Bearer {admin}"}) as resp:
            assert resp.status == 200


@pytest.mark.parametrize("child", ["valkey", "postgres"])
async def test_healthz_fails_only_when_a_child_cannot_be_brought_back(
    tmp_path: Path, http: aiohttp.ClientSession, child: str
) -> None:
    bound = 3.0
    with _serve(tmp_path, CORRAL_EMBEDDED_RESTART_GIVEUP_SECONDS=str(bound)) as server:
        base = server.base_url
        # a directory the child needs is gone: every restart fails
        if child == "valkey":
            needed, pid = tmp_path / "valkey", _valkey_pid(tmp_path)
        else:
            needed, pid = tmp_path / "postgres" / "data", _pg_pid(tmp_path)
        hidden = needed.with_name(needed.name + ".hidden")
        needed.rename(hidden)
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        try:
            async with http.get(base + "/healthz") as resp:
                assert resp.status == 200, "not given up on yet"
            body = await wait_for_status(http, base + "/healthz", 503, timeout=bound + 15)
            given_up = time.monotonic() - killed
            assert given_up >= bound - 0.5
            name = "Valkey" if child == "valkey" else "PostgreSQL"
            assert name in body["detail"] and "could not be restarted" in body["detail"], body
        finally:
            hidden.rename(needed)
        # the supervisor keeps trying: once the child can start again the process is live again
        await wait_for_status(http, base + "/healthz", 200, timeout=30)
        await wait_for_status(http, base + "/readyz", 200, timeout=30)
        print(f"{child}: /healthz failed {given_up:.1f} s after the kill (bound {bound} s)")


def _worth_showing(line: str) -> bool:
    """Corral's log without its access log (but with errors, which the access logger also reports)."""
    return '"corral.http"' not in line or '"error"' in line


async def _push(repo: Path, env: dict[str, str], url: str, branch: str, deadline: float) -> tuple[bool, str]:
    """One real ``git push`` of a new commit to a new branch: (succeeded, stderr); a hang fails the test."""
    (repo / "f.txt").write_text(branch)
    for args in (["add", "f.txt"], ["commit", "-qm", branch]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, timeout=30)
    try:
        done = await asyncio.to_thread(
            subprocess.run, ["git", "push", "-q", url, f"HEAD:refs/heads/{branch}"], cwd=repo, env=env,
            capture_output=True, text=True, timeout=deadline,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"git push of {branch} hung for more than {deadline} s") from exc
    return done.returncode == 0, done.stderr


async def test_git_pushes_across_a_postgres_kill9_are_recorded_once(tmp_path: Path) -> None:
    import asyncpg

    from corral.entrypoints.bootstrap import read_runtime
    from tests.e2e.gitkit import git_env
    from tests.e2e.outage_load import ADMIN, PROJECT

    with _serve(tmp_path, CORRAL_GIT_PUSH_RECOVERY_SECONDS="1", CORRAL_GIT_PUSH_RECOVERY_GRACE_SECONDS="3") as server:
        base = server.base_url
        token, _ = await admin_token(base)
        await Load(base, token).create_project()
        host = base.split("://", 1)[1]
        url = f"http://git:{token}@{host}/{ADMIN[0]}/{PROJECT}.git"
        repo = tmp_path / "client"
        repo.mkdir()
        env = git_env(tmp_path / "home")
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, env=env, check=True, timeout=30)
        seen: dict[str, bool] = {}
        errors: list[str] = []
        ok, err = await _push(repo, env, url, "main", 60)
        assert ok, err

        old_pg = _pg_pid(tmp_path)
        killed: list[float] = []
        first_ok: list[float] = []  # seconds from the kill to the first push that succeeded after it

        async def pushes() -> None:
            n = 0
            while True:
                n += 1
                branch = f"b{n}"
                ok, err = await _push(repo, env, url, branch, 60)
                seen[branch] = ok
                if ok and killed and not first_ok:
                    first_ok.append(time.monotonic() - killed[0])
                if not ok:
                    assert err.strip(), "a failed push says why"
                    errors.append(err.strip().splitlines()[-1])
                if killed and ok and time.monotonic() > killed[0] + 1 and sum(seen.values()) >= 8:
                    return

        async def kill() -> None:  # mid-push, most likely: pushes run back to back
            await asyncio.sleep(2.0)
            killed.append(time.monotonic())
            os.kill(old_pg, signal.SIGKILL)

        await asyncio.wait_for(asyncio.gather(pushes(), kill()), 120)
        await _wait(lambda: _pg_pid(tmp_path) != old_pg and _alive(_pg_pid(tmp_path)), 10, "a new postmaster")

        running = read_runtime(tmp_path)
        assert running is not None
        conn = await asyncpg.connect(running["database_url"])
        try:
            deadline = time.monotonic() + 60
            while await conn.fetchval("SELECT count(*) FROM git_push_intents"):
                assert time.monotonic() < deadline, "push intents left after recovery"
                await asyncio.sleep(0.5)
            audited = Counter(await conn.fetch(
                "SELECT r->>'ref' AS ref FROM audit_log, jsonb_array_elements(detail::jsonb->'refs') r "
                "WHERE action = 'repo.push'"))
            events = Counter(row["ref"] for row in await conn.fetch(
                "SELECT payload::jsonb->>'ref' AS ref FROM outbox WHERE topic = 'push'"))
        finally:
            await conn.close()
        audited = Counter(row["ref"] for row in audited.elements())
        for branch, ok in seen.items():
            ref = f"refs/heads/{branch}"
            if ok:
                assert audited[ref] == 1 and events[ref] == 1, (branch, audited[ref], events[ref])
            else:
                assert audited[ref] <= 1 and events[ref] <= 1, (branch, audited[ref], events[ref])
        assert any(not ok for ok in seen.values()) or errors == [], seen
        print(f"git pushes across a PostgreSQL kill -9: {sum(seen.values())}/{len(seen)} succeeded, the first "
              f"after the kill {first_ok[0]:.2f} s after it; failures said: {sorted(set(errors))[:5]}")
