"""Git over Corral's smart HTTP against git's own file:// transport, same repository, same run.

Run: ./dev bench bench_git [--runs 7] [--push-runs 15] [--commits 500] [--megabytes 30] [--large-push-kb 200]

1. Bare clone of a ~30 MB, 500-commit repository: ``git clone --bare`` through Corral (token auth, project
   lookup, RBAC, upload-pack streamed) vs ``git clone --bare --no-local file://`` of the same bare repository.
   Goal: <= 1.15x.
2. Push of 50 new commits (each like the repository's: one ~60 KB file) to a new branch: through Corral
   (project:write check, branch protection in the pre-receive hook, push event and audit row written before
   the response ends) vs a push to a file:// copy.
   Goal: <= 1.3x. That push takes ~0.07 s over file:// here, so fixed per-push costs of HTTP (git's
   remote-http helper, three requests, the probe before a chunked body) weigh heavily; the same push with
   commits of ``--large-push-kb`` (200 KB: ~0.2 s over file://, the size of LIMITS.md's reference
   measurement "HTTP 0.23-0.26 s vs file:// 0.19-0.21 s") is printed as well. Both figures, always.

Each push figure also prints the least HTTP server (``floor_app``: refs from the ref files, receive-pack fed
by a thread, no auth, no checks, no events) and plain ``git http-backend`` behind a minimal aiohttp streaming
proxy, as references for what HTTP itself costs here. Last, a push with nothing to send (the
branch is already there) shows the fixed cost of git's HTTP transport per push (starting git-remote-http and
discovery), which no server removes.

Corral runs in this process on the production bootstrap (PostgreSQL + Valkey from tests/servicekit, the
real identity domain, repositories on disk); git runs as separate processes. Medians of ``--runs`` interleaved runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiohttp import web

from corral.core.identity.commands import NewToken, NewUser
from corral.core.identity.kit import IdentityServices
from corral.core.identity.service import SYSTEM
from corral.entrypoints.bootstrap import Platform, start_platform
from corral.entrypoints.config import Settings
from corral.entrypoints.web.app import create_app
from tests.servicekit import PostgresServer, ValkeyServer

ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com", "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com", "LC_ALL": "C",
}


async def git(cwd: Path, *args: str, token: str | None = None, stdin: bytes | None = None) -> bytes:
    cred = ["-c", "credential.helper="]
    if token:  # sent up front, as agents configure it (a credential helper costs one 401 round trip more)
        cred += ["-c", f"http.extraHeader=Authorization: Bearer {token}"]
    proc = await asyncio.create_subprocess_exec(
        "git", *cred, *args, cwd=cwd, env=ENV, stdin=asyncio.subprocess.PIPE if stdin is not None else None,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {err.decode()}")
    return out


def fast_import_stream(commits: int, total_bytes: int, prefix: str, parent: str | None = None,
                       branch: str = "refs/heads/main") -> bytes:
    """``commits`` commits on ``branch``, each adding one incompressible file of total_bytes/commits."""
    per = max(total_bytes // commits, 1)
    parts: list[bytes] = []
    for i in range(commits):
        data = os.urandom(per)
        msg = f"{prefix} commit {i}".encode()
        parts.append(f"commit {branch}\n".encode())
        parts.append(f"committer Bench <bench@example.com> {1_700_000_000 + i} +0000\n".encode())
        parts.append(b"data %d\n%s\n" % (len(msg), msg))
        if i == 0 and parent:
            parts.append(f"from {parent}\n".encode())
        parts.append(b"M 100644 inline %s/f%04d.bin\ndata %d\n" % (prefix.encode(), i, per) + data + b"\n")
    return b"".join(parts)


async def _relay(request: web.Request, response: web.StreamResponse, proc: asyncio.subprocess.Process,
                 feeder: asyncio.Task[None]) -> web.StreamResponse:
    """Stream git's answer to the client, then wait for the request body and git to finish."""
    assert proc.stdout is not None
    await response.prepare(request)
    while chunk := await proc.stdout.read(1024 * 1024):
        await response.write(chunk)
    await feeder
    await proc.wait()
    await response.write_eof()
    return response


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on a free loopback port; returns its runner and base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]


async def http_backend_app(root: Path) -> tuple[web.AppRunner, str]:
    """The reference: aiohttp streaming to/from plain ``git http-backend`` (no auth, no checks, no events)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        env = {**ENV, "GIT_PROJECT_ROOT": str(root), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": request.path,
               "REQUEST_METHOD": request.method, "QUERY_STRING": request.query_string, "REMOTE_USER": "bench",
               "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": request.headers.get("Content-Type", "")}
        if request.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = request.headers["Git-Protocol"]
        proc = await asyncio.create_subprocess_exec(
            "/usr/lib/git-core/git-http-backend", env=env, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, limit=1024 * 1024,
        )
        assert proc.stdin is not None and proc.stdout is not None

        async def feed() -> None:
            async for chunk in request.content.iter_chunked(65536):
                proc.stdin.write(chunk)
                await proc.stdin.drain()
            proc.stdin.close()

        feeder = asyncio.create_task(feed())
        status, headers = 200, {}
        while (line := (await proc.stdout.readline()).rstrip(b"\r\n")):
            name, _, value = line.decode().partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            else:
                headers[name] = value.strip()
        return await _relay(request, web.StreamResponse(status=status, headers=headers), proc, feeder)

    app = web.Application(client_max_size=1 << 30)
    app.router.add_route("*", "/{tail:.*}", handler)
    return await _serve(app)


async def floor_app(root: Path) -> tuple[web.AppRunner, str]:
    """The least a smart HTTP push server can do with this stack: the ref advertisement read from the ref files,
    the probe answered, ``receive-pack`` fed by a worker thread (Corral's own adapters), and nothing else: no
    authentication, no project or permission lookup, no branch protection, no push event. What Corral adds on
    top of it is the cost of its checks and records; what it costs over ``file://`` is HTTP's."""
    from corral.adapters.git_cli import GitCli
    from corral.adapters.git_refs import advertisement

    cli = GitCli(root)
    caps = await cli._ask_receive_caps()

    async def refs(request: web.Request) -> web.Response:
        listed = advertisement(root / request.match_info["repo"], caps)
        assert listed is not None
        line = b"# service=git-receive-pack\n"
        return web.Response(body=b"%04x" % (len(line) + 4) + line + b"0000" + listed,
                            headers={"Content-Type": "application/x-git-receive-pack-advertisement"})

    async def rpc(request: web.Request) -> web.StreamResponse:
        if request.content_length == 4:  # git's probe before a chunked body
            await request.content.read()
            return web.Response(body=b"", headers={"Content-Type": "application/x-git-receive-pack-result"})
        spawned = await cli.spawn_service(request.match_info["repo"], "receive-pack", advertise=False, protocol=None,
                                          auto_gc=False)
        stdin, proc = spawned.stdin, spawned.process
        assert stdin is not None and proc.stdout is not None

        async def feed() -> None:
            try:
                while chunk := await request.content.readany():
                    await stdin.write(chunk)
            finally:
                stdin.close()

        response = web.StreamResponse(headers={"Content-Type": "application/x-git-receive-pack-result"})
        return await _relay(request, response, proc, asyncio.create_task(feed()))

    app = web.Application(client_max_size=1 << 30)
    app.router.add_get("/{repo}/info/refs", refs)
    app.router.add_post("/{repo}/git-receive-pack", rpc)
    return await _serve(app)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--commits", type=int, default=500)
    parser.add_argument("--megabytes", type=int, default=30)
    parser.add_argument("--push-runs", type=int, default=15)
    parser.add_argument("--large-push-kb", type=int, default=200,
                        help="also push 50 commits of this many KB each (0: skip)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-git-"))
    pg = await asyncio.to_thread(PostgresServer.start)
    valkey = await asyncio.to_thread(ValkeyServer.start)
    try:
        settings = Settings(database_url=pg.dsn(), valkey_url=valkey.url(), data_dir=tmp / "data",
                            log_level=os.environ.get("BENCH_LOG", "warning"))
        from corral.entrypoints.observability import configure_logging

        configure_logging(settings.log_level, "text")
        platform = await start_platform(settings)
        runner = web.AppRunner(create_app(platform), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        try:
            await run(platform, base, tmp, args)
        finally:
            await runner.cleanup()
            await platform.aclose()
    finally:
        await asyncio.to_thread(valkey.stop)
        await asyncio.to_thread(pg.stop)
        shutil.rmtree(tmp, ignore_errors=True)


async def run(platform: Platform, base: str, tmp: Path, args: argparse.Namespace) -> None:
    ids: IdentityServices = platform.resolve(IdentityServices)
    await ids.users.create(SYSTEM, NewUser(name="bench", email="bench@example.com", password="bench bench bench",
                                           admin=True))
    held = await ids.authorizer.user_permissions((await ids.users.get("bench")).id, None)
    token = (await ids.tokens.create(SYSTEM, NewToken(name="bench", scopes=sorted(held), user="bench"))).secret
    from corral.core.projects.commands import NewBranchProtection, NewProject
    from corral.core.projects.model import Actor
    from corral.entrypoints.web.project_access import ProjectsKit

    kit: ProjectsKit = platform.resolve(ProjectsKit)
    user = await ids.users.get("bench")
    actor = Actor(user.id, user.name)
    project = await kit.projects.create(actor, NewProject(name="big"))
    await kit.protections.create(actor, project, NewBranchProtection(pattern="main"))
    corral_url = f"{base}/bench/big.git"

    # the source repository, pushed through Corral once; file:// reads Corral's own bare repository
    source = tmp / "source.git"
    await git(tmp, "init", "-q", "--bare", "-b", "main", str(source))
    stream = fast_import_stream(args.commits, args.megabytes * 1024 * 1024, "big")
    await git(source, "fast-import", "--quiet", stdin=stream)
    await git(source, "push", "-q", corral_url, "main", token=token)
    served = kit.git.path(project.repo_path)
    size = sum(f.stat().st_size for f in served.rglob("*") if f.is_file()) / 1e6
    print(f"repository: {args.commits} commits, {size:.1f} MB on disk")

    clones = tmp / "clones"
    clones.mkdir()

    async def clone_file(i: int) -> None:
        await git(clones, "clone", "-q", "--bare", "--no-local", f"file://{served}", f"f{i}.git")

    async def clone_http(i: int) -> None:
        await git(clones, "clone", "-q", "--bare", corral_url, f"h{i}.git", token=token)

    ref_runner, ref_base = await http_backend_app(served.parent)

    async def clone_ref(i: int) -> None:
        await git(clones, "clone", "-q", "--bare", f"{ref_base}/{served.name}", f"r{i}.git")

    await clone_file(99)  # warm the page cache for all
    await clone_http(99)
    await clone_ref(99)
    file_times, http_times, ref_times = [], [], []
    for i in range(args.runs):  # interleaved in a rotating order, so background load hits all alike
        order = [(clone_file, file_times), (clone_http, http_times), (clone_ref, ref_times)]
        for fn, sink in order[i % 3:] + order[: i % 3]:
            started = time.perf_counter()
            await fn(i)
            sink.append(time.perf_counter() - started)
    t_file, t_http, t_ref = (statistics.median(x) for x in (file_times, http_times, ref_times))
    print(f"bare clone   file:// {t_file:.3f} s   corral {t_http:.3f} s   ratio {t_http / t_file:.2f}x (goal <= 1.15)"
          f"   [plain git http-backend {t_ref:.3f} s = {t_ref / t_file:.2f}x]")

    # push 50 commits: the same new commits to a file:// copy, to Corral and to plain http-backend, each run a
    # new branch, in a rotating order (whoever goes first finds colder caches)
    work = tmp / "work.git"
    await git(tmp, "clone", "-q", "--bare", "--no-local", f"file://{served}", str(work))
    mirror = tmp / "mirror.git"
    await git(tmp, "clone", "-q", "--bare", "--no-local", f"file://{served}", str(mirror))
    ref_repo = served.parent / "reference.git"
    await git(tmp, "clone", "-q", "--bare", "--no-local", f"file://{served}", str(ref_repo))
    floor_root = tmp / "floor"
    floor_root.mkdir()
    await git(tmp, "clone", "-q", "--bare", "--no-local", f"file://{served}", str(floor_root / "floor.git"))
    floor_runner, floor_base = await floor_app(floor_root)
    targets = {"file": (f"file://{mirror}", None), "corral": (corral_url, token),
               "floor": (f"{floor_base}/floor.git", None), "ref": (f"{ref_base}/reference.git", None)}

    async def round_of(i: int, branch: str, sink: dict[str, list[float]] | None) -> None:
        order = list(targets)
        for name in order[i % len(order):] + order[: i % len(order)]:  # rotating: who goes first finds colder caches
            url, auth = targets[name]
            started = time.perf_counter()
            await git(work, "push", "-q", url, f"{branch}:{branch}", token=auth)
            if sink is not None:
                sink[name].append(time.perf_counter() - started)

    head = (await git(work, "rev-parse", "main")).decode().strip()
    sizes = [("like the repository's", args.megabytes * 1024 * 1024 // args.commits)]
    if args.large_push_kb:  # LIMITS.md's reference push took 0.19-0.21 s over file:// here; ours above ~0.07 s
        sizes.append((f"{args.large_push_kb} KB each", args.large_push_kb * 1024))
    for label, per_commit in sizes:
        times: dict[str, list[float]] = {name: [] for name in targets}
        for i in range(-1, args.push_runs):  # run -1 warms up and is not counted
            branch = f"refs/heads/push{per_commit}-{i + 1}"
            await git(work, "fast-import", "--quiet", stdin=fast_import_stream(
                50, 50 * per_commit, f"push{per_commit}-{i + 1}", parent=head, branch=branch))
            await round_of(i, branch, times if i >= 0 else None)
        t = {name: statistics.median(v) for name, v in times.items()}
        print(f"push 50 ({label}, {50 * per_commit / 1e6:.1f} MB)   file:// {t['file']:.3f} s   corral "
              f"{t['corral']:.3f} s   ratio {t['corral'] / t['file']:.2f}x (goal <= 1.3)   [least HTTP server "
              f"{t['floor']:.3f} s = {t['floor'] / t['file']:.2f}x; plain git http-backend {t['ref']:.3f} s = "
              f"{t['ref'] / t['file']:.2f}x]   (medians of {args.push_runs})")
    # what git's HTTP transport costs a push before any pack moves: the client starts git-remote-http (libcurl)
    # and asks for the refs; a push with nothing to send does exactly that (and prints "Everything up-to-date")
    branch = f"refs/heads/push{sizes[-1][1]}-{args.push_runs}"
    noop: dict[str, list[float]] = {name: [] for name in targets}
    for i in range(args.push_runs):
        await round_of(i, branch, noop)
    n = {name: statistics.median(v) * 1000 for name, v in noop.items()}
    print(f"push with nothing to send (git's fixed cost per push)   file:// {n['file']:.1f} ms   corral "
          f"{n['corral']:.1f} ms   [least HTTP server {n['floor']:.1f} ms; plain git http-backend {n['ref']:.1f} ms]: "
          f"over HTTP every push starts {n['floor'] - n['file']:.0f} ms later (git-remote-http and discovery), and "
          f"git holds back a pack larger than http.postBuffer (1 MiB) until it has that MiB")
    await floor_runner.cleanup()
    await ref_runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
