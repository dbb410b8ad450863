"""Process groups on Linux, read from /proc: who is in a group, is it ours, end it.

A workload runs in its own session (``start_new_session``), so its process group id is its leader's pid and
every process it starts (unless it calls setsid itself) stays in that group. Zombies count as gone: they
hold no resources and, when the leader's parent is not a reaping init, may never be reaped.
"""

from __future__ import annotations

import asyncio
import os
import signal

import attrs

__all__ = ["ProcStat", "end_group", "group_members", "proc_stat", "same_group_owner"]


@attrs.frozen
class ProcStat:
    pid: int
    state: str
    pgrp: int
    session: int
    start_ticks: int  # since boot, in clock ticks: with the pid, identifies one process over time


def proc_stat(pid: int) -> ProcStat | None:
    """The /proc/<pid>/stat fields we use, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name (field 2) is in parentheses and may contain spaces or parentheses itself
    fields = text[text.rindex(")") + 2 :].split()
    return ProcStat(pid=pid, state=fields[0], pgrp=int(fields[2]), session=int(fields[3]),
                    start_ticks=int(fields[19]))


def group_members(pgid: int) -> list[ProcStat]:
    """Live (non-zombie) processes of the process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = proc_stat(int(entry))
        if stat is not None and stat.pgrp == pgid and stat.state not in ("Z", "X"):
            members.append(stat)
    return members


def same_group_owner(pgid: int, leader_start_ticks: int) -> bool:
    """Whether the live group ``pgid`` is still the one whose leader started at ``leader_start_ticks``.

    While the leader lives its start time must match (a reused pid has another). Once it is gone, Linux
    does not hand its pid out again while the group still has members, so the members are that group's.
    """
    leader = proc_stat(pgid)
    if leader is not None and leader.state not in ("Z", "X"):
        return leader.start_ticks == leader_start_ticks and leader.pgrp == pgid
    return bool(group_members(pgid))


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def _gone(pgid: int, deadline: float) -> bool:
    loop = asyncio.get_running_loop()
    while True:
        if not group_members(pgid):
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.02)


async def end_group(pgid: int, grace_seconds: float) -> bool:
    """SIGTERM the group, SIGKILL what is left after ``grace_seconds``; True once no member is left."""
    loop = asyncio.get_running_loop()
    if not group_members(pgid):
        return True
    _signal_group(pgid, signal.SIGTERM)
    # a stopped process does not act on SIGTERM until continued
    _signal_group(pgid, signal.SIGCONT)
    if await _gone(pgid, loop.time() + max(grace_seconds, 0.0)):
        return True
    _signal_group(pgid, signal.SIGKILL)
    return await _gone(pgid, loop.time() + 10.0)
