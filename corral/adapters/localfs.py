"""LocalFsObjectStore: the ObjectStore port on a local directory (the embedded default).

Layout under ``root``: each key segment is percent-encoded (``quote(segment, safe="")``);
directories carry a trailing ``@`` and files do not, so ``a`` and ``a/b`` can both exist,
as in S3. Writes go to ``root/#staging`` first and are moved into place with
``os.replace`` after an fsync, so a reader sees the old or the new object, never
a mix, and a crash leaves no half-written object. Content types live in the
``user.corral.content_type`` extended attribute (None where the filesystem has none).
Every file operation runs in a worker thread: the event loop never waits on the disk.

Signed URLs have the form ``{base_url}/api/v1/objects/{key}?expires={unix}&signature={hex}``
(see corral.core.storage.signing); the web route serving it calls ``verify_signed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote

import attrs

from corral.core.clock import Clock
from corral.core.errors import InvalidInput, NotFound, Unavailable
from corral.core.storage.keys import (
    check_range,
    decode_list_token,
    encode_list_token,
    resolve_range,
    validate_key,
    validate_limit,
    validate_prefix,
)
from corral.core.storage.ports import ObjectInfo, ObjectListing
from corral.core.storage.signing import ObjectUrlSigner

__all__ = ["LocalFsObjectStore"]

_STAGING = "#staging"  # '#' never appears in an encoded segment, so no key maps here
_DIR_MARK = "@"  # likewise: '@' is always percent-encoded, so only directories end with it
_XATTR = "user.corral.content_type"
_FLUSH_BYTES = 1024 * 1024
_STALE_STAGING_SECONDS = 3600


def _encode(segment: str) -> str:
    name = quote(segment, safe="")
    if len(name.encode()) > 254:
        raise InvalidInput(
            "a key segment is too long for the local object store (255 bytes once encoded)", field="key"
        )
    return name


def _unavailable(exc: OSError) -> Unavailable:
    return Unavailable(f"the local object store failed: {exc.strerror or exc}")


def _info_from_stat(key: str, st: os.stat_result, content_type: str | None) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=st.st_size,
        modified_at=datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC),
        etag=f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}",
        content_type=content_type,
    )


def _read_content_type(target: int | Path) -> str | None:
    try:
        return os.getxattr(target, _XATTR).decode()
    except OSError:
        return None


@attrs.define
class LocalFsObjectStore:
    """Objects as files under ``root`` (created on first write)."""

    root: Path = attrs.field(converter=Path)
    signing_key: bytes = attrs.field(repr=False)
    base_url: str
    clock: Clock | None = None
    chunk_size: int = 256 * 1024
    fsync: bool = True  # durability of each put; tests may turn it off for speed
    _signer: ObjectUrlSigner = attrs.field(init=False)
    _prepared: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        self._signer = ObjectUrlSigner(self.signing_key, self.base_url, self.clock)

    # ---------------------------------------------------------------------------------------- paths

    def _path(self, key: str) -> Path:
        segments = validate_key(key).split("/")
        parts = [_encode(s) + _DIR_MARK for s in segments[:-1]]
        parts.append(_encode(segments[-1]))
        return self.root.joinpath(*parts)

    def _prepare(self) -> Path:
        """Create root and the staging directory; sweep temp files a crash left behind (thread)."""
        staging = self.root / _STAGING
        if not self._prepared:
            staging.mkdir(parents=True, exist_ok=True)
            cutoff = time.time() - _STALE_STAGING_SECONDS
            with os.scandir(staging) as entries:
                for entry in entries:
                    with contextlib.suppress(OSError):
                        if entry.stat().st_mtime < cutoff:
                            os.unlink(entry.path)
            self._prepared = True
        return staging

    # ---------------------------------------------------------------------------------------- writing

    def _open_temp(self) -> tuple[BinaryIO, Path]:
        staging = self._prepare()
        temp = staging / f"{uuid.uuid4().hex}.part"
        return open(temp, "xb"), temp

    def _commit(
        self, fh: BinaryIO, temp: Path, target: Path, key: str, content_type: str | None
    ) -> ObjectInfo:
        fh.flush()
        if content_type:
            with contextlib.suppress(OSError):
                os.setxattr(fh.fileno(), _XATTR, content_type.encode())
        if self.fsync:
            os.fsync(fh.fileno())
        st = os.fstat(fh.fileno())
        fh.close()
        for _ in range(5):  # a concurrent delete may prune the parent directory between mkdir and replace
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(temp, target)
                break
            except FileNotFoundError:
                continue
        else:
            raise Unavailable("the local object store could not place the object (directory kept vanishing)")
        return _info_from_stat(key, st, content_type)

    @staticmethod
    def _discard(fh: BinaryIO, temp: Path) -> None:
        with contextlib.suppress(OSError):
            fh.close()
        with contextlib.suppress(OSError):
            temp.unlink()

    def _put_bytes(self, key: str, target: Path, data: bytes, content_type: str | None) -> ObjectInfo:
        fh, temp = self._open_temp()
        try:
            fh.write(data)
            return self._commit(fh, temp, target, key, content_type)
        except BaseException:
            self._discard(fh, temp)
            raise

    async def put(
        self, key: str, data: bytes | AsyncIterator[bytes], *, content_type: str | None = None
    ) -> ObjectInfo:
        target = self._path(key)
        try:
            if isinstance(data, (bytes, bytearray, memoryview)):
                return await asyncio.to_thread(self._put_bytes, key, target, bytes(data), content_type)
            fh, temp = await asyncio.to_thread(self._open_temp)
            try:
                buffer = bytearray()
                async for chunk in data:
                    buffer += chunk
                    if len(buffer) >= _FLUSH_BYTES:
                        await asyncio.to_thread(fh.write, bytes(buffer))
                        buffer.clear()
                if buffer:
                    await asyncio.to_thread(fh.write, bytes(buffer))
                return await asyncio.to_thread(self._commit, fh, temp, target, key, content_type)
            except BaseException:
                self._discard(fh, temp)  # two quick syscalls; also runs on cancellation
                raise
        except OSError as exc:
            raise _unavailable(exc) from exc

    # ---------------------------------------------------------------------------------------- reading

    @staticmethod
    def _open_existing(path: Path, key: str) -> tuple[int, os.stat_result]:
        try:
            fd = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFound(f"object {key!r} does not exist") from exc
        return fd, os.fstat(fd)

    async def get(
        self, key: str, *, start: int | None = None, end: int | None = None
    ) -> AsyncIterator[bytes]:
        path = self._path(key)
        check_range(start, end)
        try:
            fd, st = await asyncio.to_thread(self._open_existing, path, key)
        except OSError as exc:
            raise _unavailable(exc) from exc
        try:
            span = resolve_range(st.st_size, start, end)
            offset, last = span if span is not None else (0, st.st_size - 1)
            while offset <= last:
                try:
                    chunk = await asyncio.to_thread(
                        os.pread, fd, min(self.chunk_size, last - offset + 1), offset
                    )
                except OSError as exc:
                    raise _unavailable(exc) from exc
                if not chunk:
                    break
                offset += len(chunk)
                yield chunk
        finally:
            os.close(fd)

    def _read_sync(self, path: Path, key: str) -> bytes:
        fd, _ = self._open_existing(path, key)
        with os.fdopen(fd, "rb") as fh:
            return fh.read()

    async def read(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(self._read_sync, path, key)
        except OSError as exc:
            raise _unavailable(exc) from exc

    def _head_sync(self, path: Path, key: str) -> ObjectInfo:
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFound(f"object {key!r} does not exist") from exc
        return _info_from_stat(key, st, _read_content_type(path))

    async def head(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            return await asyncio.to_thread(self._head_sync, path, key)
        except OSError as exc:
            raise _unavailable(exc) from exc

    async def exists(self, key: str) -> bool:
        path = self._path(key)
        return await asyncio.to_thread(path.is_file)

    # ---------------------------------------------------------------------------------------- listing

    def _walk(
        self, directory: str, key_prefix: str, name_prefix: str, after: str | None
    ) -> Iterator[tuple[str, str]]:
        """(key, path) of the files under ``directory`` in key order, keys > ``after`` only."""
        entries: list[tuple[str, bool, str]] = []
        try:
            with os.scandir(directory) as scan:
                for entry in scan:
                    name = entry.name
                    if "#" in name:
                        continue
                    is_dir = name.endswith(_DIR_MARK)
                    if not (
                        entry.is_dir(follow_symlinks=False)
                        if is_dir
                        else entry.is_file(follow_symlinks=False)
                    ):
                        continue
                    segment = unquote(name[:-1] if is_dir else name)
                    if not segment.startswith(name_prefix):
                        continue
                    # Sorting a directory as "segment/" puts "a-b" before "a/…" exactly as whole keys sort.
                    entries.append((key_prefix + segment + ("/" if is_dir else ""), is_dir, entry.path))
        except (FileNotFoundError, NotADirectoryError):
            return
        entries.sort()
        for sort_key, is_dir, path in entries:
            if is_dir:
                if after is not None and sort_key < after and not after.startswith(sort_key):
                    continue  # every key under this directory sorts before `after`
                yield from self._walk(path, sort_key, "", after)
            elif after is None or sort_key > after:
                yield sort_key, path

    def _list_sync(self, prefix: str, limit: int, after: str | None) -> ObjectListing:
        segments = prefix.split("/")
        directory = self.root.joinpath(*(_encode(s) + _DIR_MARK for s in segments[:-1]))
        key_prefix = "".join(s + "/" for s in segments[:-1])
        found: list[ObjectInfo] = []
        for key, path in self._walk(str(directory), key_prefix, segments[-1], after):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue  # deleted while we listed
            if len(found) == limit:
                return ObjectListing(found, encode_list_token(found[-1].key))
            found.append(_info_from_stat(key, st, None))
        return ObjectListing(found, None)

    async def list(self, prefix: str = "", *, limit: int = 1000, token: str | None = None) -> ObjectListing:
        validate_prefix(prefix)
        validate_limit(limit)
        after = decode_list_token(token)
        try:
            return await asyncio.to_thread(self._list_sync, prefix, limit, after)
        except OSError as exc:
            raise _unavailable(exc) from exc

    # ---------------------------------------------------------------------------------------- deleting

    def _delete_sync(self, path: Path) -> None:
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        parent = path.parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    return
                raise
            parent = parent.parent

    async def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            await asyncio.to_thread(self._delete_sync, path)
        except OSError as exc:
            raise _unavailable(exc) from exc

    def _move_sync(self, src: Path, target: Path, source: str) -> bool:
        if not src.is_file():
            raise NotFound(f"object {source!r} does not exist")
        placed = False
        for _ in range(5):  # a concurrent delete may prune the parent directory between mkdir and link
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, target)  # atomic, and fails when the target exists: put-if-absent
                placed = True
                break
            except FileExistsError:
                break
            except FileNotFoundError:
                if not src.is_file():
                    raise NotFound(f"object {source!r} does not exist") from None
                continue
            except OSError as exc:  # no hard links on this filesystem: a check, then a rename
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
                if target.exists():
                    break
                os.replace(src, target)
                return True
        else:
            raise Unavailable("the local object store could not place the object (directory kept vanishing)")
        self._delete_sync(src)
        return placed

    async def move_if_absent(self, source: str, key: str) -> bool:
        src, target = self._path(source), self._path(key)
        try:
            return await asyncio.to_thread(self._move_sync, src, target, source)
        except OSError as exc:
            raise _unavailable(exc) from exc

    # ---------------------------------------------------------------------------------------- URLs, health

    async def signed_url(self, key: str, *, method: str = "GET", expires_in: int = 3600) -> str:
        self._path(key)  # the same key rules (segment length) as put
        return self._signer.sign(key, method=method, expires_in=expires_in)

    def verify_signed(self, key: str, method: str, expires: str | int, signature: str) -> bool:
        """Whether ``method`` on ``key`` is allowed with these ``expires`` and ``signature`` query values.

        The route ``/api/v1/objects/{key}`` passes the URL-decoded key and the raw query values.
        """
        return self._signer.verify(key, method, expires, signature)

    def _ping_sync(self) -> None:
        staging = self._prepare()
        if not os.access(staging, os.W_OK):
            raise PermissionError(errno.EACCES, "the object directory is not writable")

    async def ping(self) -> None:
        try:
            await asyncio.to_thread(self._ping_sync)
        except OSError as exc:
            raise _unavailable(exc) from exc
