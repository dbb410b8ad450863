from corral.fakes.observe import InMemoryRecentRequests


async def test_remembered_keys_are_seen_and_the_memory_is_bounded():
    recent = InMemoryRecentRequests(max_keys=3)
    assert not await recent.seen("a")
    await recent.remember("a", 600)
    assert await recent.seen("a")
    await recent.remember("gone", 0)  # expires at once
    assert not await recent.seen("gone")
    for key in "bcd":
        await recent.remember(key, 600)
    assert len(recent.keys) <= 3
    assert await recent.seen("d")
