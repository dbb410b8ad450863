"""Staged LFS uploads never verified (the client went away after the signed PUT) are swept after a day; objects
and recent uploads are left alone."""

from __future__ import annotations

from corral.entrypoints.web.routes.lfs import sweep_staging
from corral.fakes.clock import FakeClock
from corral.fakes.objectstore import InMemoryObjectStore


async def test_only_stale_staged_uploads_are_swept() -> None:
    clock = FakeClock()
    store = InMemoryObjectStore(clock=clock)
    await store.put("lfs-staging/p/" + "a" * 64 + "/" + "0" * 32, b"abandoned")
    await store.put("lfs/p/aa/aa/" + "a" * 64, b"an object")
    clock.advance(25 * 3600)
    await store.put("lfs-staging/p/" + "b" * 64 + "/" + "1" * 32, b"being uploaded")
    assert await sweep_staging(store, clock) == 1
    assert [o.key for o in (await store.list("")).objects] == [
        "lfs-staging/p/" + "b" * 64 + "/" + "1" * 32, "lfs/p/aa/aa/" + "a" * 64]
