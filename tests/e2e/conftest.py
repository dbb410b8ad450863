"""Fixtures shared by the e2e tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.gitkit import Corral, start_corral, stop_corral


@pytest.fixture
async def corral(tmp_path: Path) -> AsyncIterator[Corral]:
    """A running Corral on in-memory stores with real git repositories (tests/e2e/gitkit.py), stopped after the
    test. Modules needing another setup define their own ``corral`` (test_lfs_direct.py, observe/)."""
    c = await start_corral(tmp_path)
    yield c
    await stop_corral(c)
