"""The pipe into git (a worker thread's blocking writes) and the pidfd child watcher."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

from corral.adapters.git_pipe import PipeWriter
from corral.core.git.transport import GitProtocolError
from corral.entrypoints.child_watcher import install_child_watcher


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


async def test_pipe_writer_delivers_everything_to_a_slow_reader() -> None:
    read_end, write_end = os.pipe()
    received = bytearray()

    def slow_reader() -> None:
        while piece := os.read(read_end, 4096):  # as index-pack reads
            received.extend(piece)
            if len(received) % (256 * 1024) < 4096:
                time.sleep(0.001)
        os.close(read_end)

    reader = threading.Thread(target=slow_reader)
    reader.start()
    writer = PipeWriter(write_end)
    data = os.urandom(3 * 1024 * 1024 + 17)
    await writer.write(data[:1000])
    await writer.write(data[1000:])  # far more than a pipe holds: the thread blocks, the loop does not
    writer.close()
    await asyncio.to_thread(reader.join)
    assert bytes(received) == data
    assert not _is_open(write_end)
    with pytest.raises(GitProtocolError):
        await writer.write(b"late")


async def test_pipe_writer_close_waits_for_the_write_in_flight() -> None:
    read_end, write_end = os.pipe()
    writer = PipeWriter(write_end)
    task = asyncio.create_task(writer.write(b"x" * (1024 * 1024)))  # blocks: nobody reads yet
    await asyncio.sleep(0.05)
    assert not task.done()
    task.cancel()  # the client went away
    writer.close()
    assert _is_open(write_end)  # not closed under the blocked write
    os.close(read_end)  # git is stopped: the write ends with EPIPE, then the descriptor closes
    for _ in range(200):
        if not _is_open(write_end):
            break
        await asyncio.sleep(0.01)
    assert not _is_open(write_end)


def test_child_watcher_serves_one_loop_after_another() -> None:
    install_child_watcher()
    install_child_watcher()  # idempotent

    threads = threading.active_count()

    async def run() -> tuple[int, bytes]:
        proc = await asyncio.create_subprocess_exec("sh", "-c", "sleep 0.05; echo hi; exit 3",
                                                    stdout=asyncio.subprocess.PIPE)
        assert threading.active_count() == threads  # the child runs and no thread waits for it
        out, _ = await proc.communicate()
        return proc.returncode or 0, out

    for _ in range(3):  # several loops in turn, as tests and CLI commands run them
        assert asyncio.run(run()) == (3, b"hi\n")


async def test_pipe_writer_maps_git_gone_to_the_ports_error() -> None:
    """EPIPE (git stopped reading) reaches the caller as the GitTransport port's error, not an OSError."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    writer = PipeWriter(write_end)
    with pytest.raises(GitProtocolError) as caught:
        await writer.write(b"x")
    assert isinstance(caught.value.__cause__, BrokenPipeError)
    writer.close()
    assert not _is_open(write_end)
