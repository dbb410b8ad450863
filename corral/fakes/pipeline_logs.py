"""InMemoryStepLogs: the StepLogs port over lists (tests and the memory profile), objects in an ObjectStore."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence

import attrs

from corral.core.storage.ports import ObjectStore

__all__ = ["InMemoryStepLogs"]


@attrs.define
class _Live:
    lines: list[str] = attrs.field(factory=list)
    done: bool = False
    changed: asyncio.Event = attrs.field(factory=asyncio.Event)

    def poke(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


@attrs.define
class _Writer:
    owner: InMemoryStepLogs
    live: _Live
    key: str

    async def append(self, lines: Sequence[str]) -> None:
        self.live.lines.extend(lines)
        self.live.poke()

    async def finish(self) -> str | None:
        data = "".join(line + "\n" for line in self.live.lines).encode()
        if self.owner.objects is not None:
            await self.owner.objects.put(self.key, data, content_type="text/plain; charset=utf-8")
        self.owner.stored[self.key] = list(self.live.lines)
        self.live.done = True
        self.live.poke()
        return self.key


@attrs.define
class InMemoryStepLogs:
    objects: ObjectStore | None = None
    live: dict[uuid.UUID, _Live] = attrs.field(factory=dict)
    stored: dict[str, list[str]] = attrs.field(factory=dict)

    def open(self, step_id: uuid.UUID, key: str) -> _Writer:
        live = self.live[step_id] = _Live()
        return _Writer(self, live, key)

    async def follow(self, step_id: uuid.UUID, key: str | None, after: int = 0,
                     wait: bool = True) -> AsyncIterator[tuple[int, str]]:
        live = self.live.get(step_id)
        if live is None:
            if key is not None:
                for n, line in enumerate(self.stored.get(key, []), 1):
                    if n > after:
                        yield n, line
            return
        n = after
        while True:
            while n < len(live.lines):
                n += 1
                yield n, live.lines[n - 1]
            if live.done or not wait:
                return
            await live.changed.wait()
