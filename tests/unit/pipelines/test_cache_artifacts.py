"""Step caches and artifacts: restored and saved through the fake executor's pack/unpack into the object store."""

from __future__ import annotations

import io
import tarfile
from collections.abc import AsyncIterator

import pytest

from corral.core.errors import Unavailable
from corral.core.pipelines.service import PipelineService
from corral.core.pipelines.step_files import cache_key
from corral.core.pipelines.tar_reader import TarFormatError, tar_files
from corral.core.workloads.model import Workspace
from corral.fakes.executor import InMemoryExecutor
from corral.fakes.objectstore import InMemoryObjectStore
from tests.unit.pipelines.engine_support import Engine, Script, ScriptedExecutor, make_engine

CACHED = """
skip_clone: true
steps:
  build:
    image: alpine
    commands:
      - cat deps/lib.txt || echo no cache
      - echo fetched > deps/lib.txt
    cache:
      key: deps
      paths: [deps]
"""

ARTIFACTS = """
skip_clone: true
steps:
  build:
    image: alpine
    commands:
      - echo binary > dist/app.bin
      - echo notes > dist/notes.txt
      - echo other > other.bin
    artifacts:
      paths: ["dist/*.bin", "missing/**"]
      expire_in: 1h
"""


async def _log(engine: Engine, number: int, step: str) -> list[str]:
    service = PipelineService(engine.uow_factory, None, None, engine.clock, engine.logs)  # type: ignore[arg-type]
    return [text async for _, text in await service.log_lines(engine.project, number, step, wait=False)]


async def test_a_cache_saved_on_the_default_branch_is_restored_on_another_branch() -> None:
    objects = InMemoryObjectStore()
    engine = await make_engine(executor=InMemoryExecutor(), objects=objects)
    first = await engine.create(CACHED, branch="main")
    await engine.run_all()
    assert (await engine.statuses(first.number))["build"] == "success"
    log = await _log(engine, first.number, "build")
    assert "cache deps: nothing to restore yet" in log
    assert "no cache" in log
    assert any(line.startswith("cache deps: saved (") for line in log)
    assert await objects.exists(cache_key(engine.project.id, "main", "deps"))

    second = await engine.create(CACHED, branch="feature/x")
    await engine.run_all()
    log = await _log(engine, second.number, "build")
    assert "cache deps: restored (from the default branch main)" in log
    assert "fetched" in log and "no cache" not in log
    # saved under its own branch now, and restored from there next time
    assert await objects.exists(cache_key(engine.project.id, "feature/x", "deps"))
    third = await engine.create(CACHED, branch="feature/x")
    await engine.run_all()
    assert "cache deps: restored" in await _log(engine, third.number, "build")


async def test_a_failed_step_saves_no_cache() -> None:
    objects = InMemoryObjectStore()
    engine = await make_engine(executor=InMemoryExecutor(), objects=objects)
    p = await engine.create(CACHED.replace("echo fetched > deps/lib.txt", "echo x > deps/a; exit 3"))
    await engine.run_all()
    assert (await engine.statuses(p.number))["build"] == "failure"
    assert not await objects.exists(cache_key(engine.project.id, "main", "deps"))
    assert not any(line.startswith("cache deps: saved") for line in await _log(engine, p.number, "build"))


async def test_artifacts_are_uploaded_per_file_listed_downloadable_and_expire() -> None:
    objects = InMemoryObjectStore()
    engine = await make_engine(executor=InMemoryExecutor(), objects=objects)
    p = await engine.create(ARTIFACTS)
    await engine.run_all()
    assert (await engine.statuses(p.number))["build"] == "success"
    service = PipelineService(engine.uow_factory, None, None, engine.clock, engine.logs,  # type: ignore[arg-type]
                              objects=objects)
    listed = await service.artifacts(engine.project, p.number)
    assert [(a.name, a.size, a.step) for a in listed] == [("dist/app.bin", 7, "build")]
    expires = listed[0].expires_at
    assert expires is not None
    assert 3590 <= (expires - engine.clock.now()).total_seconds() <= 3600
    artifact, chunks = await service.artifact(engine.project, p.number, "dist/app.bin")
    assert b"".join([c async for c in chunks]) == b"binary\n"
    assert any(line.startswith("artifacts: 1 file(s) uploaded (7 bytes), kept until")
               for line in await _log(engine, p.number, "build"))

    files = engine.scheduler.files
    assert files is not None
    assert await files.expire() == 0
    engine.clock.advance(3601)
    assert await files.expire() == 1
    assert await service.artifacts(engine.project, p.number) == []
    assert not await objects.exists(artifact.key)


async def test_artifacts_of_a_failed_step_are_uploaded_too() -> None:
    objects = InMemoryObjectStore()
    engine = await make_engine(executor=InMemoryExecutor(), objects=objects)
    p = await engine.create(ARTIFACTS.replace("echo other > other.bin", "exit 1"))
    await engine.run_all()
    assert (await engine.statuses(p.number))["build"] == "failure"
    async with engine.uow_factory() as uow:
        assert [a.name for a in await uow.pipelines.artifacts(p.id)] == ["dist/app.bin"]


class _NoPack(ScriptedExecutor):
    async def pack(self, workspace: Workspace, paths: tuple[str, ...]) -> AsyncIterator[bytes]:
        raise Unavailable("pack is not available on Kubernetes yet")
        yield b""  # pragma: no cover


async def test_an_executor_without_pack_says_so_in_the_log_and_the_step_succeeds() -> None:
    objects = InMemoryObjectStore()
    engine = await make_engine(executor=_NoPack({"build": Script(output="done\n")}), objects=objects)
    p = await engine.create(ARTIFACTS.replace("paths: [\"dist/*.bin\", \"missing/**\"]", "paths: [dist]")
                            + "    cache: {key: k, paths: [x]}\n")
    await engine.run_all()
    assert (await engine.statuses(p.number))["build"] == "success"
    log = await _log(engine, p.number, "build")
    assert "cache k: not saved, the executor cannot pack files (pack is not available on Kubernetes yet)" in log
    assert "artifacts: not uploaded, the executor cannot pack files (pack is not available on Kubernetes yet)" in log
    assert not any(op == "put" for op, _ in objects.calls)


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def _tar(files: dict[str, bytes], fmt: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        directory = tarfile.TarInfo("adir")
        directory.type = tarfile.DIRTYPE
        tar.addfile(directory)
    return buffer.getvalue()


async def test_the_tar_reader_streams_files_with_long_names_in_every_format() -> None:
    long = "d/" + "x" * 150 + "/ünïcode.txt"
    files = {"a.txt": b"A" * 1000, long: bytes(range(256)) * 700, "empty": b""}
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        seen = {}
        async for member in tar_files(_chunks(_tar(files, fmt), 333)):
            seen[member.name] = b"".join([c async for c in member.chunks])
        assert seen == files


async def test_the_tar_reader_skips_unread_members_and_refuses_garbage() -> None:
    data = _tar({"one": b"1" * 5000, "two": b"2"}, tarfile.PAX_FORMAT)
    names = [m.name async for m in tar_files(_chunks(data, 100))]  # bodies left unread
    assert names == ["one", "two"]
    with pytest.raises(TarFormatError, match=r"checksum|header"):
        async for _ in tar_files(_chunks(b"not a tar" * 100, 50)):
            pass
