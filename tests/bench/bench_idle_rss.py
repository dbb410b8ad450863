"""Idle memory of `corral serve` on the embedded default, against a bare-drivers baseline.

Starts `python -m corral serve` with a throwaway CORRAL_DATA_DIR on a free port, waits for
GET /healthz, lets it idle, then reads VmRSS of the Corral main process (the goal applies to it)
and of the whole Corral process tree: the main process plus its Python children (the OTLP decoder
processes and multiprocessing's resource tracker). The embedded PostgreSQL and Valkey are listed
apart, not counted. The baselines, measured in the same run: an idle interpreter, and one that
imported only aiohttp, asyncpg and redis.

    ./dev bench bench_idle_rss [--idle SECONDS] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

GOAL_MB = 120.0
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rpartition(")")[2].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def is_python(pid: int) -> bool:
    """True for a process running this interpreter (Corral's own children), not PostgreSQL or Valkey."""
    try:
        return os.path.realpath(f"/proc/{pid}/exe") == os.path.realpath(sys.executable)
    except OSError:
        return False


def running(pid: int) -> bool:
    """True while pid runs (a zombie waiting for a non-reaping init does not count)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"corral serve exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer 200 within {timeout:.0f} s")


def baseline(code: str, idle: float) -> float:
    proc = subprocess.Popen([sys.executable, "-c", code + "\nprint('ready', flush=True)\nimport time; time.sleep(600)"],
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        time.sleep(min(idle, 2.0))
        return rss_mb(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=5.0, help="seconds to idle before measuring")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="corral-bench-rss-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}  # the embedded default
    env.update(CORRAL_DATA_DIR=str(data_dir), CORRAL_PORT=str(port), CORRAL_LOG_LEVEL="warning")
    log_path = data_dir / "serve.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "corral", "serve"], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            ready_after = wait_healthy(f"http://127.0.0.1:{port}/healthz", proc, timeout=120)
        except SystemExit:
            print(log_path.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        time.sleep(args.idle)
        corral_mb = rss_mb(proc.pid)
        kids = [(pid, comm(pid)) for pid in descendants(proc.pid)]
        ours = [(pid, rss_mb(pid)) for pid, _ in kids if running(pid) and is_python(pid)]
        services = [(pid, name, rss_mb(pid)) for pid, name in kids if running(pid) and not is_python(pid)]
    finally:
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        stopped_after = time.monotonic() - t0

    bare_mb = baseline("pass", args.idle)
    drivers_mb = baseline("import aiohttp, asyncpg, redis.asyncio", args.idle)
    verdict = "OK" if corral_mb <= GOAL_MB else "OVER"
    print(f"corral serve idle RSS: {corral_mb:.1f} MB main process (goal <= {GOAL_MB:.0f} MB: {verdict}), "
          f"process {proc.pid}, after {args.idle:.0f} s idle; healthy {ready_after:.1f} s after launch "
          f"({time.monotonic() - started:.0f} s total run)")
    tree_mb = corral_mb + sum(mb for _, mb in ours)
    print(f"corral process tree: {tree_mb:.1f} MB = main {corral_mb:.1f} MB + {len(ours)} Python children "
          f"({', '.join(f'{mb:.1f}' for _, mb in ours) or 'none'} MB: OTLP decoders, resource tracker)")
    by_name: dict[str, list[float]] = {}
    for _, name, mb in services:
        by_name.setdefault(name, []).append(mb)
    listed = ", ".join(f"{name} x{len(mbs)} {sum(mbs):.1f} MB" for name, mbs in sorted(by_name.items()))
    print(f"  not counted: embedded services {listed or 'none'} "
          "(PostgreSQL's shared buffers are counted once per process that touched them)")
    print(f"baseline: bare python idle RSS {bare_mb:.1f} MB; python with aiohttp+asyncpg+redis imported "
          f"{drivers_mb:.1f} MB")
    left = [pid for pid, _ in kids if running(pid)]
    print(f"SIGTERM: exit code {code} after {stopped_after:.1f} s; children still running: {left or 'none'}")
    if args.keep:
        print(f"data kept in {data_dir}")
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
