"""LiveTailContract: what every LiveTail does.

Needs a fixture ``live_tails``: two LiveTail handles on the same fan-out, standing for two replicas (the first
publishes, the second serves the tails; a single-process implementation may hand out the same object twice).
Items travel as JSON would carry them, so the contract publishes JSON values only.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["LiveTailContract"]

WAIT = 5.0  # seconds; ``listening`` may be a second stale


def _item(n: int, **extra: Any) -> dict[str, Any]:
    return {"timestamp": f"2026-12-07T10:00:{n:02d}+00:00", "level": "info", "message": f"line {n}",
            "service": "api", "trace_id": None, "project_id": "0190a0b0-0000-7000-8000-000000000001",
            "attributes": {"n": n, "tags": ["a", "b"], "ok": True}, **extra}


async def _until(check: Any, want: bool) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT
    while await check() is not want:
        assert asyncio.get_running_loop().time() < deadline, f"listening() did not become {want}"
        await asyncio.sleep(0.05)


class _Tail:
    """One subscriber of ``tail.subscribe()``, reading one item at a time."""

    def __init__(self, tail: Any) -> None:
        self.stream: AsyncIterator[dict[str, Any]] = tail.subscribe()
        self.pending: asyncio.Future[dict[str, Any]] | None = asyncio.ensure_future(anext(self.stream))

    async def take(self, count: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(count):
            if self.pending is None:
                self.pending = asyncio.ensure_future(anext(self.stream))
            out.append(await asyncio.wait_for(self.pending, WAIT))
            self.pending = None
        return out

    async def idle(self) -> bool:
        """True when nothing more arrives within a short while."""
        if self.pending is None:
            self.pending = asyncio.ensure_future(anext(self.stream))
        done, _ = await asyncio.wait({self.pending}, timeout=0.3)
        return not done

    async def close(self) -> None:
        if self.pending is not None:
            self.pending.cancel()
            await asyncio.gather(self.pending, return_exceptions=True)
        await self.stream.aclose()  # type: ignore[attr-defined]


async def _open(publisher: Any, *servers: Any) -> list[_Tail]:
    """Tails on ``servers``, each known to be subscribed: probes are published until every tail got one, then
    a marker every tail reads up to, so each starts with nothing left over."""
    tails = [_Tail(server) for server in servers]
    await _until(publisher.listening, True)
    waiting = list(tails)
    deadline = asyncio.get_running_loop().time() + WAIT
    while waiting:
        assert asyncio.get_running_loop().time() < deadline, "a tail never received what was published"
        await publisher.publish([{"probe": True}])
        for tail in list(waiting):
            assert tail.pending is not None
            done, _ = await asyncio.wait({tail.pending}, timeout=0.1)
            if done:
                assert tail.pending.result() == {"probe": True}
                tail.pending = None
                waiting.remove(tail)
    await publisher.publish([{"ready": True}])
    for tail in tails:
        while (await tail.take(1)) != [{"ready": True}]:
            pass
    return tails


class LiveTailContract:
    async def test_nobody_listens_until_a_tail_opens_and_after_it_closes(self, live_tails: tuple[Any, Any]) -> None:
        publisher, server = live_tails
        assert await publisher.listening() is False
        (tail,) = await _open(publisher, server)
        assert await publisher.listening() is True
        await tail.close()
        await _until(publisher.listening, False)

    async def test_published_items_reach_a_tail_in_order(self, live_tails: tuple[Any, Any]) -> None:
        publisher, server = live_tails
        (tail,) = await _open(publisher, server)
        try:
            await publisher.publish([_item(1), _item(2)])
            await publisher.publish([])
            await publisher.publish([_item(3)])
            assert await tail.take(3) == [_item(1), _item(2), _item(3)]
            assert await tail.idle()
        finally:
            await tail.close()

    async def test_every_tail_gets_every_item_as_its_own_copy(self, live_tails: tuple[Any, Any]) -> None:
        publisher, server = live_tails
        first, second = await _open(publisher, server, publisher)
        try:
            sent = [_item(1), _item(2)]
            await publisher.publish(sent)
            got_first = await first.take(2)
            for item in got_first:  # what a tail does to its items (the web route rewrites them) stays its own
                item.pop("project_id")
                item["attributes"]["n"] = -1
            assert await second.take(2) == [_item(1), _item(2)]
            assert sent == [_item(1), _item(2)]
        finally:
            await first.close()
            await second.close()

    async def test_items_published_before_a_tail_opens_are_not_replayed(self, live_tails: tuple[Any, Any]) -> None:
        publisher, server = live_tails
        await publisher.publish([_item(1)])  # nobody listens: dropped
        (tail,) = await _open(publisher, server)
        try:
            await publisher.publish([_item(2)])
            assert await tail.take(1) == [_item(2)]
        finally:
            await tail.close()

    async def test_a_closed_tail_receives_nothing_more_and_others_go_on(self, live_tails: tuple[Any, Any]) -> None:
        publisher, server = live_tails
        leaving, staying = await _open(publisher, server, server)
        try:
            await publisher.publish([_item(1)])
            assert await leaving.take(1) == [_item(1)]
            await leaving.close()
            original = _item(2, message="after one tail left")
            await publisher.publish([copy.deepcopy(original)])
            assert await staying.take(2) == [_item(1), original]
        finally:
            await staying.close()
