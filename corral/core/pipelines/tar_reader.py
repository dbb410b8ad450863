"""Reading a tar stream (the executor's ``pack``) one regular file at a time, with bounded memory.

Each file's bytes are handed out as an async iterator of chunks that must be consumed (or not: it is skipped)
before the next member is read. Understands ustar, PAX extended headers (long paths, large sizes) and GNU
long names; directories, links and other members are skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs

__all__ = ["TarFile", "TarFormatError", "tar_files"]

_BLOCK = 512
_CHUNK = 64 * 1024
_MAX_HEADER_DATA = 1024 * 1024  # a PAX or GNU long-name record larger than this is not a real one


class TarFormatError(Exception):
    """The stream is not a tar archive Corral can read."""


@attrs.define
class _Input:
    chunks: AsyncIterator[bytes]
    buffer: bytearray = attrs.field(factory=bytearray)
    ended: bool = False

    async def fill(self, size: int) -> None:
        while len(self.buffer) < size and not self.ended:
            try:
                self.buffer += await anext(self.chunks)
            except StopAsyncIteration:
                self.ended = True

    async def exactly(self, size: int) -> bytes:
        await self.fill(size)
        if len(self.buffer) < size:
            raise TarFormatError("the tar stream ended in the middle of a member")
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    async def stream(self, size: int) -> AsyncIterator[bytes]:
        left = size
        while left > 0:
            await self.fill(min(left, _CHUNK))
            if not self.buffer:
                raise TarFormatError("the tar stream ended in the middle of a member")
            take = min(left, len(self.buffer), _CHUNK)
            data = bytes(self.buffer[:take])
            del self.buffer[:take]
            left -= take
            yield data


@attrs.define
class TarFile:
    """A regular file of the archive; ``chunks`` yields its bytes (read it before asking for the next file)."""

    name: str
    size: int
    chunks: AsyncIterator[bytes]


def _number(field: bytes) -> int:
    if field and field[0] & 0x80:  # base-256 (GNU) for large values
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def _pax(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        length = int(data[pos:space])
        if length <= 0:
            break
        record = data[space + 1:pos + length - 1]  # without the trailing newline
        key, _, value = record.partition(b"=")
        out[key.decode("utf-8", errors="replace")] = value.decode("utf-8", errors="replace")
        pos += length
    return out


async def tar_files(chunks: AsyncIterator[bytes]) -> AsyncIterator[TarFile]:
    """The regular files of the tar stream ``chunks``, in order; raises TarFormatError on a broken stream."""
    source = _Input(chunks)
    pending: dict[str, str] = {}
    while True:
        await source.fill(_BLOCK)
        if not source.buffer:
            return  # no end-of-archive blocks: a truncated but clean end
        header = await source.exactly(_BLOCK)
        if header == b"\0" * _BLOCK:
            return
        stored = sum(header[:148]) + 8 * 32 + sum(header[156:])
        try:
            if _number(header[148:156]) != stored:
                raise TarFormatError("bad tar header checksum")
            size = _number(header[124:136])
        except ValueError:
            raise TarFormatError("bad tar header") from None
        kind = header[156:157]
        padded = (size + _BLOCK - 1) // _BLOCK * _BLOCK
        if kind in (b"x", b"L", b"g"):
            if size > _MAX_HEADER_DATA:
                raise TarFormatError("oversized tar extension header")
            data = (await source.exactly(padded))[:size]
            if kind == b"x":
                pending.update(_pax(data))
            elif kind == b"L":
                pending["path"] = data.split(b"\0", 1)[0].decode("utf-8", errors="replace")
            continue
        name = _text(header[0:100])
        prefix = _text(header[345:500]) if header[257:262] == b"ustar" else ""
        if prefix:
            name = f"{prefix}/{name}"
        name = pending.pop("path", name)
        if "size" in pending:
            size = int(pending.pop("size"))
            padded = (size + _BLOCK - 1) // _BLOCK * _BLOCK
        pending.clear()
        if kind in (b"0", b"\0", b"7"):
            body = source.stream(size)
            yield TarFile(name.removeprefix("./"), size, body)
            async for _ in body:  # whatever the consumer left unread
                pass
            await source.exactly(padded - size)
        else:
            await source.exactly(padded)
