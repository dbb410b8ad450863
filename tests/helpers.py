"""Small helpers shared by the test layers: bounded waiting, and tools a test cannot run without.

Every wait in a test has a deadline: ``await wait_until(lambda: ..., timeout=10, what="the record")`` polls a
condition (a plain or async callable) and fails the test, naming what it waited for, when the deadline
passes; ``wait_until_sync`` is the same for synchronous tests. ``InMemoryUsers`` gives a store contract on the
in-memory stores its ``make_user``; ``embedded_data_dir`` is a data directory an embedded PostgreSQL can use.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import NoReturn, TypeVar

import pytest

from corral.core.ids import uuid7
from corral.core.projects.ports import UserRef

__all__ = [
    "REQUIRE_SERVICES", "InMemoryUsers", "embedded_data_dir", "require_tool", "service_missing", "wait_until",
    "wait_until_sync",
]

REQUIRE_SERVICES = os.environ.get("TEST_REQUIRE_SERVICES") == "1"

T = TypeVar("T")


def service_missing(name: str, exc: BaseException | str) -> NoReturn:
    """Skip the test, or fail it under TEST_REQUIRE_SERVICES=1 (``./dev test``, CI)."""
    message = f"{name} is not available: {exc}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (TEST_REQUIRE_SERVICES=1 makes a missing service an error)", pytrace=False)
    pytest.skip(f"{message} (set TEST_REQUIRE_SERVICES=1 to fail instead of skipping)")


def require_tool(name: str, hint: str = "") -> str:
    """The path of the executable ``name``; when it is missing the test skips (fails with TEST_REQUIRE_SERVICES=1)."""
    path = shutil.which(name)
    if path is None:
        service_missing(name, f"{name} is not on PATH" + (f" ({hint})" if hint else ""))
    return path


async def wait_until(
    predicate: Callable[[], T | Awaitable[T]], *, timeout: float = 10.0, interval: float = 0.02, what: str = "",
) -> T:
    """Poll ``predicate`` (sync or async) until it returns something truthy, which is returned;
    after ``timeout`` seconds fail the test naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what or getattr(predicate, '__name__', '?')}")
        await asyncio.sleep(interval)


def wait_until_sync(predicate: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.05, what: str = "") -> T:
    """``wait_until`` for synchronous tests."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what or getattr(predicate, '__name__', '?')}")
        time.sleep(interval)


class InMemoryUsers:
    """Mix into a store contract's test class on the in-memory stores: ``make_user`` (no user table to fill)."""

    @pytest.fixture
    def make_user(self) -> Callable[[str], Awaitable[UserRef]]:
        async def make(name: str) -> UserRef:
            return UserRef(uuid7(), name, f"{name}@example.com")

        return make


@contextlib.contextmanager
def embedded_data_dir(prefix: str) -> Iterator[Path]:
    """A private temporary directory outside pytest's own, removed afterwards.

    As root the embedded PostgreSQL runs as an unprivileged account that must traverse the path, and pytest
    resets /tmp/pytest-of-<user> to 0700 whenever a session starts."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
