"""A pipe into a git process, written by a worker thread with blocking writes.

A pack program reads its input a few KiB at a time (``index-pack`` 4 KiB). Written from the event loop, a
full pipe wakes the loop each time git frees one page, and the loop refills that page: hundreds of wake-ups
and small writes per MiB, all on the event loop while git wants the same CPU. Here a worker thread makes
one blocking ``write`` of everything the request has delivered so far (up to ``max_piece``); the kernel
refills the pipe as git reads, and the loop hears back once per piece.

The thread releases the GIL while it blocks. A write in flight when the pipe is closed (the client went
away) ends with EPIPE once git is stopped; the descriptor is closed only after that write returns. EPIPE (git
stopped reading) reaches the caller as corral.core.git.transport.GitProtocolError, the port's error.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading

from corral.core.git.transport import GitProtocolError

__all__ = ["PipeWriter"]

_POOL_LOCK = threading.Lock()
_POOL: concurrent.futures.ThreadPoolExecutor | None = None
_POOL_THREADS = 64  # concurrent pushes writing at once; more wait for a thread (their git waits too)


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = concurrent.futures.ThreadPoolExecutor(_POOL_THREADS, thread_name_prefix="corral-git-pipe")
        return _POOL


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class PipeWriter:
    """The write end of a pipe (a blocking descriptor this object owns); a corral.core.git.transport.PackInput."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, True)
        self.fd = fd
        self._inflight: concurrent.futures.Future[None] | None = None
        self._closed = False

    async def write(self, data: bytes) -> None:
        """Write all of ``data``; returns when git has room for the last byte. GitProtocolError: git stopped
        reading (or the pipe was closed)."""
        if self._closed:
            raise GitProtocolError("the pipe to git is closed")
        if not data:
            return
        self._inflight = _pool().submit(_write_all, self.fd, data)
        try:
            await asyncio.wrap_future(self._inflight)
        except BrokenPipeError as exc:
            raise GitProtocolError("git stopped reading its input") from exc

    def close(self) -> None:
        """Close now, or right after a write still in flight returns (never under a running write)."""
        if self._closed:
            return
        self._closed = True
        if self._inflight is not None:  # runs at once if the write is over, else when it returns
            self._inflight.add_done_callback(lambda _: os.close(self.fd))
        else:
            os.close(self.fd)
