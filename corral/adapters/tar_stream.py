"""Tar streams of a directory, produced and consumed on a worker thread with bounded memory.

``pack_directory`` yields an uncompressed tar of the files matching glob patterns; ``unpack_directory``
extracts such a stream into a directory, refusing absolute names, ``..``, links leading outside and device
files (tarfile's ``data`` filter). At most ``_QUEUE_CHUNKS`` chunks of ``_CHUNK`` bytes are in flight
between the thread and the event loop: a slow consumer (or producer) blocks the other side.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import tarfile
import threading
from collections.abc import AsyncIterator, Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from corral.core.errors import InvalidInput

__all__ = ["check_patterns", "pack_directory", "unpack_directory"]

_CHUNK = 64 * 1024
_QUEUE_CHUNKS = 8
_END = b""


class _Closed(Exception):
    """The other side went away: stop the thread's work."""


def check_patterns(paths: Iterable[str]) -> tuple[str, ...]:
    """The glob patterns, refused when one is empty, absolute or climbs out with ``..``."""
    checked = []
    for pattern in paths:
        parts = PurePosixPath(pattern).parts
        if not pattern or pattern.startswith("/") or ".." in parts:
            raise InvalidInput(f"path pattern {pattern!r} must be relative to the workspace, without '..'",
                               field="paths")
        checked.append(pattern)
    return tuple(checked)


def _selected(root: Path, patterns: tuple[str, ...]) -> list[str]:
    """Workspace-relative names matching the patterns, without entries inside an already selected directory."""
    root_real = root.resolve()
    found: set[str] = set()
    for pattern in patterns:
        for path in root.glob(pattern):
            # a match reached through a symlinked directory may lie outside the workspace: skip it
            if not path.parent.resolve().is_relative_to(root_real):
                continue
            found.add(path.relative_to(root).as_posix())
    chosen: list[str] = []
    for name in sorted(found):
        if any(name.startswith(parent + "/") for parent in chosen):
            continue
        chosen.append(name)
    return chosen


class _QueueWriter(io.RawIOBase):
    """A write-only file whose bytes go, in chunks, to an asyncio queue (blocking the thread when it is full)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes], closed: threading.Event):
        self._loop, self._queue, self._closed = loop, queue, closed
        self._buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._buffer += data
        while len(self._buffer) >= _CHUNK:
            self._send(bytes(self._buffer[:_CHUNK]))
            del self._buffer[:_CHUNK]
        return len(data)

    def flush_all(self) -> None:
        if self._buffer:
            self._send(bytes(self._buffer))
            self._buffer.clear()

    def _send(self, chunk: bytes) -> None:
        if self._closed.is_set():
            raise _Closed
        asyncio.run_coroutine_threadsafe(self._queue.put(chunk), self._loop).result()


async def pack_directory(root: Path, paths: tuple[str, ...]) -> AsyncIterator[bytes]:
    """Yield a tar stream of the files under ``root`` matching ``paths`` (symlinks are stored, not followed)."""
    patterns = check_patterns(paths)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=_QUEUE_CHUNKS)
    closed = threading.Event()

    def produce() -> None:
        writer = _QueueWriter(loop, queue, closed)
        try:
            with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for name in _selected(root, patterns):
                    tar.add(str(root / name), arcname=name, recursive=True)
            writer.flush_all()
        except _Closed:
            return

    worker = loop.run_in_executor(None, produce)
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            racing: set[asyncio.Future[Any]] = {getter, worker}
            await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield getter.result()
                continue
            getter.cancel()
            await worker  # raises the thread's error, if any
            while not queue.empty():
                yield queue.get_nowait()
            return
    finally:
        closed.set()
        while not queue.empty():  # unblock a thread waiting on a full queue
            queue.get_nowait()
        with contextlib.suppress(Exception):
            await worker


class _QueueReader(io.RawIOBase):
    """A read-only file fed, chunk by chunk, from an asyncio queue (``_END`` ends it)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes]):
        self._loop, self._queue = loop, queue
        self._pending = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._eof:
            chunk = asyncio.run_coroutine_threadsafe(self._queue.get(), self._loop).result()
            if not chunk:
                self._eof = True
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


async def unpack_directory(root: Path, chunks: AsyncIterator[bytes]) -> None:
    """Extract the tar stream ``chunks`` into ``root``; a member that would land outside is an InvalidInput."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=_QUEUE_CHUNKS)

    def consume() -> None:
        reader = io.BufferedReader(_QueueReader(loop, queue), buffer_size=_CHUNK)
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tar:
                for member in tar:
                    if member.name.startswith("/"):
                        raise InvalidInput(f"refused archive member {member.name!r}: an absolute name", field="chunks")
                    try:
                        tar.extract(member, path=str(root), filter="data")
                    except tarfile.FilterError as exc:
                        raise InvalidInput(f"refused archive member {member.name!r}: {exc}", field="chunks") from None
        except tarfile.ReadError as exc:
            raise InvalidInput(f"not a tar stream: {exc}", field="chunks") from None
        # drain what is left (tar padding) so the feeding side never blocks
        while reader.read(_CHUNK):
            pass

    worker = loop.run_in_executor(None, consume)
    try:
        async for chunk in chunks:
            if not chunk:
                continue
            putter = asyncio.ensure_future(queue.put(chunk))
            await asyncio.wait({putter, worker}, return_when=asyncio.FIRST_COMPLETED)
            if not putter.done():  # the thread ended early (an error): stop feeding it
                putter.cancel()
                break
        if not worker.done():
            putter = asyncio.ensure_future(queue.put(_END))
            await asyncio.wait({putter, worker}, return_when=asyncio.FIRST_COMPLETED)
            if not putter.done():
                putter.cancel()
    finally:
        if not worker.done():
            # the caller gave up (cancelled): feed the end so the thread finishes and releases the files
            while not worker.done():
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(_END)
                await asyncio.sleep(0.01)
    await worker
