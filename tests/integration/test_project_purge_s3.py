"""Deleting a project leaves nothing behind, on PostgreSQL (the purge record, the cascades) with a real S3
(SeaweedFS: listing and deleting the project's prefixes) and real git repositories (tests/purgekit.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from corral.adapters.clock import SystemClock
from corral.adapters.git_cli import GitCli
from corral.adapters.s3 import S3ObjectStore
from tests.integration.platformkit import PostgresStoreFixtures
from tests.purgekit import PurgeRig, deleting_a_project_leaves_nothing_behind


class TestProjectPurgeOnPostgresAndS3(PostgresStoreFixtures):
    async def test_deleting_a_project_leaves_nothing_behind(self, uow_factory: Any, make_user: Any, s3: Any,
                                                            s3_bucket: str, tmp_path: Path) -> None:
        async with S3ObjectStore(endpoint=s3.endpoint, bucket=s3_bucket, access_key=s3.access_key,
                                 secret_key=s3.secret_key, region=s3.region) as store:
            git = GitCli(tmp_path / "repos")
            rig = PurgeRig(uow_factory, store, git, SystemClock(), make_user,
                           repo_exists=lambda path: git.path(path).exists())
            await deleting_a_project_leaves_nothing_behind(rig)
