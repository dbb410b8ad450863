"""Agent sessions on the local runtime (LocalExecutor, PostgreSQL store): how long from ``create`` until the
provider process runs (goal: p50 < 500 ms), and the fan-out of one session's events to 20 live viewers (events/s
delivered to all of them) beside the provider's raw output rate, same run.

The provider is a tiny stand-in speaking stream-json (no model); the workspace is a clone of a small local
repository (three git processes: clone, checkout, remote), as a real session's is.

    ./dev bench bench_agents [sessions] [events]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from corral.adapters.claude_code import ClaudeCodeProvider
from corral.adapters.clock import SystemClock
from corral.adapters.local_executor import LocalExecutor
from corral.adapters.postgres.migrator import apply_migrations
from corral.adapters.postgres.pool import connect, create_pool
from corral.adapters.postgres.uow import PostgresUnitOfWorkFactory
from corral.core.agents.commands import NewAgentSession
from corral.core.agents.ports import AgentGrant
from corral.core.agents.runner import AgentRunner, RunnerSettings
from corral.core.agents.service import AgentService
from corral.core.identity.model import AuthMethod, Principal
from corral.core.ids import uuid7
from corral.core.projects.model import Project, Visibility
from corral.fakes.agents import InMemoryAgentIdentity, InMemoryAgentRepository
from tests.servicekit import PostgresServer

VIEWERS = 20

PROVIDER = """\
import json, sys, time
session = next(a.split("=", 1)[1] for a in sys.argv if a.startswith(("--session-id=", "--resume=")))
print(json.dumps({"type": "system", "subtype": "init", "session_id": session, "tools": [], "model": "bench"}),
      flush=True)
first = sys.stdin.readline()
n = int(json.loads(first)["message"]["content"].split()[-1])
start = time.perf_counter()
out = sys.stdout
for i in range(n):
    out.write(json.dumps({"type": "assistant", "message": {"id": f"msg_{i // 100}", "role": "assistant",
              "content": [{"type": "text", "text": f"event {i} " + "x" * 80}]}, "session_id": session}) + "\\n")
out.flush()
raw = time.perf_counter() - start
print(json.dumps({"type": "result", "subtype": "success", "is_error": False, "num_turns": 1, "duration_ms": 1,
                  "result": f"raw {raw:.6f}", "total_cost_usd": 0.0, "session_id": session}), flush=True)
for _ in sys.stdin:
    pass
"""


@attrs.define
class _UsersIdentity(InMemoryAgentIdentity):
    """The in-memory identity, plus the agent user's row (the sessions table refers to it)."""

    pool: Any = None

    async def provision(self, *args: Any) -> AgentGrant:
        grant = await super().provision(*args)
        await self.pool.execute("INSERT INTO users (id, name, email, password_hash) VALUES ($1, $2, $3, 'x') "
                                "ON CONFLICT DO NOTHING", grant.agent_user_id, grant.agent_user_name,
                                f"{grant.agent_user_name}@x")
        return grant


def _repo(root: Path) -> Path:
    work, bare = root / "seed", root / "repos" / "p.git"
    env = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x",
           "PATH": "/usr/bin:/bin", "HOME": str(root)}
    work.mkdir(parents=True)
    (work / "README.md").write_text("bench\n")
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "."], ["git", "commit", "-qm", "seed"],
                 ["git", "clone", "-q", "--bare", str(work), str(bare)]):
        subprocess.run(argv, cwd=work, env=env, check=True)
    return bare


async def main(sessions: int, events: int) -> None:
    server = PostgresServer.start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-agents-"))
    try:
        conn = await connect(server.dsn())
        await apply_migrations(conn)
        owner = uuid7()
        await conn.execute("INSERT INTO users (id, name, email, password_hash) VALUES ($1, 'ann', 'a@x', 'x')", owner)
        await conn.close()
        pool = await create_pool(server.dsn(), min_size=4, max_size=8)
        clock = SystemClock()
        uow = PostgresUnitOfWorkFactory(pool, clock)
        bare = _repo(tmp)
        now = datetime.now(UTC)
        project = Project(id=uuid7(), owner_id=owner, owner_name="ann", name="p", visibility=Visibility.PRIVATE,
                          default_branch="main", repo_path="p.git", created_at=now, updated_at=now)
        async with uow() as unit:
            await unit.projects.add(project)
            await unit.commit()
        provider = tmp / "bin" / "claude"
        provider.parent.mkdir()
        provider.write_text(f"#!{sys.executable}\n{PROVIDER}")
        provider.chmod(0o755)
        requester = Principal(user_id=owner, name="ann", method=AuthMethod.TOKEN)
        identity = _UsersIdentity(held={owner: {"project:read"}}, pool=pool)
        runner = AgentRunner(uow, clock, LocalExecutor(tmp / "executor"),
                             {"claude-code": ClaudeCodeProvider(str(provider))}, identity, InMemoryAgentRepository(),
                             RunnerSettings(base_url="http://127.0.0.1:1", owner="bench",
                                            git_source=lambda p: str(bare), mcp=False))
        service = AgentService(runner)
        command = NewAgentSession(prompt="count 1", permissions=["project:read"], open_merge_request=False)

        # 1. create → provider process running (its init event stored)
        latencies = []
        for _ in range(sessions):
            start = time.perf_counter()
            created = await service.create(requester, project, command)
            while not any(e.type == "system" for e in await service.events(created.id)):
                await asyncio.sleep(0.002)
            latencies.append((time.perf_counter() - start) * 1000)
            await service.stop(requester, created.id)
        latencies.sort()
        p50 = statistics.median(latencies)
        p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
        print(f"create → provider started: p50 {p50:.0f} ms, p95 {p95:.0f} ms over {sessions} sessions "
              f"(goal p50 < 500 ms){'' if p50 < 500 else '  ** above the goal **'}")

        # 2. one session's events fanned out to VIEWERS live viewers
        created = await service.create(requester, project, NewAgentSession(
            prompt=f"flood {events}", permissions=["project:read"], open_merge_request=False, max_turns=1000))
        started = time.perf_counter()

        async def viewer() -> int:
            last, seen = 0, 0
            while True:
                batch = await service.wait_events(created.id, after=last, timeout=1.0)
                if batch:
                    last, seen = batch[-1].id, seen + len(batch)
                    if any(e.type == "status" and e.content != "running" for e in batch):
                        return seen
                elif (await service.get(created.id)).status.finished:
                    return seen

        counts = await asyncio.wait_for(asyncio.gather(*(viewer() for _ in range(VIEWERS))), 600)
        elapsed = time.perf_counter() - started
        result = next(e for e in await service.events(created.id, limit=500, after=events)
                      if e.type == "result")
        raw = float(result.content.split()[-1])
        alone = time.perf_counter()  # the same provider writing to /dev/null (no reader holding it back)
        subprocess.run([str(provider), "--session-id=x"], input=(json.dumps({"type": "user", "message": {
            "role": "user", "content": f"flood {events}"}}) + "\n").encode(), stdout=subprocess.DEVNULL, check=True)
        alone = time.perf_counter() - alone
        print(f"fan-out: {events} events to {VIEWERS} viewers in {elapsed:.2f} s: "
              f"{sum(counts) / elapsed:,.0f} events/s delivered ({events / elapsed:,.0f} events/s stored); "
              f"the provider's output while read by Corral: {events / raw:,.0f} events/s; alone, into /dev/null: "
              f"{events / alone:,.0f} events/s (process start-up included)")
        await runner.aclose()
        await pool.close()
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20, int(sys.argv[2]) if len(sys.argv) > 2
                     else 5000))
