"""SpooledStepLogs: step logs spooled to a temporary file while the step runs, then kept in the object store.

Memory is bounded whatever a step prints: lines go to the spool file as they come, live readers on this
replica read the file (waiting for more until the step ends), and the finished log is streamed to the object
store in chunks. A reader that arrives after the end reads the stored object (any replica).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import IO

from corral.core.storage.ports import ObjectStore

__all__ = ["SpooledStepLogs"]

_CHUNK = 1024 * 1024
_KEEP_AFTER_END_SECONDS = 60.0  # live readers finish from the spool while the log's key is being recorded


class _Live:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.done = False
        self.changed = asyncio.Event()

    def poke(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class _Writer:
    def __init__(self, owner: SpooledStepLogs, step_id: uuid.UUID, live: _Live, key: str) -> None:
        self.owner = owner
        self.step_id = step_id
        self.live = live
        self.key = key
        self.file: IO[bytes] = live.path.open("wb")  # closed in finish

    async def append(self, lines: Sequence[str]) -> None:
        self.file.write("".join(line + "\n" for line in lines).encode("utf-8", "replace"))
        self.file.flush()
        self.live.poke()

    async def finish(self) -> str | None:
        self.file.close()
        path = self.live.path

        async def chunks() -> AsyncIterator[bytes]:
            fh = await asyncio.to_thread(path.open, "rb")
            try:
                while block := await asyncio.to_thread(fh.read, _CHUNK):
                    yield block
            finally:
                fh.close()

        key: str | None = self.key
        try:
            await self.owner.objects.put(self.key, chunks(), content_type="text/plain; charset=utf-8")
        except Exception:
            key = None
        self.live.done = True
        self.live.poke()
        asyncio.get_running_loop().call_later(_KEEP_AFTER_END_SECONDS, self.owner.forget, self.step_id)
        return key


class SpooledStepLogs:
    """The StepLogs port (corral.core.pipelines.engine_ports) over a spool directory and an ObjectStore."""

    def __init__(self, objects: ObjectStore, spool_dir: Path | None = None) -> None:
        self.objects = objects
        self.spool_dir = Path(spool_dir or tempfile.gettempdir()) / f"corral-step-logs-{os.getpid()}"
        self.spool_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.live: dict[uuid.UUID, _Live] = {}

    def open(self, step_id: uuid.UUID, key: str) -> _Writer:
        live = _Live(self.spool_dir / f"{step_id}.log")
        self.live[step_id] = live
        return _Writer(self, step_id, live, key)

    def forget(self, step_id: uuid.UUID) -> None:
        live = self.live.pop(step_id, None)
        if live is not None and live.done:
            with contextlib.suppress(OSError):
                live.path.unlink()

    async def follow(self, step_id: uuid.UUID, key: str | None, after: int = 0,
                     wait: bool = True) -> AsyncIterator[tuple[int, str]]:
        live = self.live.get(step_id)
        if live is not None:
            async for item in self._follow_live(live, after, wait):
                yield item
            return
        if key is None:
            return
        n = 0
        rest = b""
        try:
            async for chunk in self.objects.get(key):
                rest += chunk
                *lines, rest = rest.split(b"\n")
                for line in lines:
                    n += 1
                    if n > after:
                        yield n, line.decode("utf-8", "replace")
        except Exception:  # the stored log is gone: nothing more to show
            return
        if rest:
            n += 1
            if n > after:
                yield n, rest.decode("utf-8", "replace")

    async def _follow_live(self, live: _Live, after: int, wait: bool) -> AsyncIterator[tuple[int, str]]:
        n = 0
        fh = await asyncio.to_thread(live.path.open, "rb")
        with fh:
            pending = b""
            while True:
                changed = live.changed
                done = live.done
                block = fh.read(_CHUNK)
                if block:
                    pending += block
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        n += 1
                        if n > after:
                            yield n, line.decode("utf-8", "replace")
                    continue
                if done or not wait:
                    return
                await changed.wait()
