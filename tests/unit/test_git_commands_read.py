"""The receive-pack route reads the ref update commands (the body's start) before git starts."""

from __future__ import annotations

from types import SimpleNamespace

from corral.core.git.model import ZERO_SHA
from corral.core.git.service import parse_commands
from corral.entrypoints.web.routes.git_http import _read_commands


def pkt(line: bytes) -> bytes:
    return f"{len(line) + 4:04x}".encode() + line


class Trickle:
    """A request body arriving ``step`` bytes at a time."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.reads = data, step, 0

    async def readany(self) -> bytes:
        self.reads += 1
        piece, self.data = self.data[: self.step], self.data[self.step :]
        return piece


def request(data: bytes, step: int) -> SimpleNamespace:
    return SimpleNamespace(content=Trickle(data, step))


COMMANDS = b"".join(pkt(f"{ZERO_SHA} {'b' * 40} refs/heads/f{i}\n".encode()) for i in range(200)) + b"0000"
PACK = b"PACK" + bytes(5000)


async def test_reads_up_to_the_flush_however_the_body_arrives() -> None:
    for step in (1, 7, 4096, 1 << 20):
        req = request(COMMANDS[10:] + PACK, step)
        head = await _read_commands(req, COMMANDS[:10])  # the probe check may have read a few bytes already
        assert head.startswith(COMMANDS), step
        assert len(head) - len(COMMANDS) < max(step, 1)  # stops at the flush, not at the pack's end
        updates, complete = parse_commands(head)
        assert complete and len(updates) == 200
    slow = request(COMMANDS + PACK, 1)
    await _read_commands(slow, b"")
    assert slow.content.reads == len(COMMANDS)  # one read per byte up to the flush, no re-reading


async def test_stops_at_what_is_not_a_pkt_line_or_at_the_end() -> None:
    assert await _read_commands(request(b"", 1), b"zzzz garbage") == b"zzzz garbage"
    assert await _read_commands(request(b"", 1), COMMANDS[:50]) == COMMANDS[:50]  # body ended early
