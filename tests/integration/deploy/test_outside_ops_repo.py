"""An outside ops repository fetched with its credential secret: Corral itself serves a private project over
smart HTTP (the "outside" server), the deployer registers its URL with a token kept as a global secret, fetches
it through the real git CLI and applies what it holds. The token never appears on a git command line or in an
error; a missing or wrong credential fails the fetch."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import aiohttp
import pytest

from corral.adapters.crypto import AesGcmCipher, AesGcmKeyWrapper
from corral.adapters.deploy_git import GitOpsSource
from corral.adapters.git_cli import GitCli
from corral.core.deploy.commands import DesiredState, NewOpsRepo
from corral.core.deploy.model import DeployStatus
from corral.core.errors import Unavailable
from corral.core.secrets.commands import PutSecret
from corral.core.secrets.envelope import Envelope
from corral.core.secrets.model import SecretScope
from corral.core.secrets.reader import SecretReader
from corral.core.secrets.service import SecretsService
from corral.entrypoints.deploy_wiring import SecretCredentials
from corral.fakes.secrets import AllowAllAuthorizer
from tests.e2e.gitkit import git, start_corral, stop_corral, write
from tests.unit.deploy.test_reconciler import WEB
from tests.unit.deploy.world import ANN, DEPLOYMENT_YAML, SERVICE_YAML, VALUES_YAML, make_world
from tests.unit.secrets_support import Who

pytestmark = pytest.mark.e2e


async def test_outside_repository_is_fetched_with_its_token_secret(tmp_path: Path) -> None:
    server = await start_corral(tmp_path / "server")
    try:
        alice = await server.user("alice", admin=True)
        async with aiohttp.ClientSession() as s, s.post(
            f"{server.base}/api/v1/projects", json={"name": "ops", "visibility": "private"},
            headers={"Authorization": f"Bearer {alice}"},
        ) as r:
            assert r.status == 201, await r.text()
        url = server.url("alice/ops")
        work = tmp_path / "work"
        await git(tmp_path, "init", "-q", "-b", "main", str(work))
        write(work / "apps/web/deployment.yaml", DEPLOYMENT_YAML)
        write(work / "apps/web/service.yaml", SERVICE_YAML)
        write(work / "apps/web/values.yaml", VALUES_YAML)
        await git(work, "add", ".")
        await git(work, "commit", "-q", "-m", "ops")
        await git(work, "push", "-q", url, "main", token=alice)

        w = await make_world()
        assert w.cluster is not None
        envelope = Envelope(AesGcmCipher(), AesGcmKeyWrapper([os.urandom(32)]))
        secrets = SecretsService(w.uow, envelope, w.clock)
        admin = Who(ANN.id, ANN.name)
        await secrets.put(admin, None, "OPS_TOKEN", PutSecret(value=alice, scope=SecretScope.DEPLOY))
        wrong = PutSecret(value="crl_wrong-token-value", scope=SecretScope.DEPLOY)
        await secrets.put(admin, None, "WRONG_TOKEN", wrong)
        reader = SecretReader(w.uow, envelope, AllowAllAuthorizer(), w.clock)
        await w.service.register_ops_repo(ANN, NewOpsRepo(name="outside", url=url, credential_secret="OPS_TOKEN"))

        # git through a wrapper recording its command lines
        argv_log = tmp_path / "git-argv.log"
        wrapper = tmp_path / "git-wrapper"
        wrapper.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{argv_log}'\nexec git \"$@\"\n")
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
        root = tmp_path / "deployer-repos"
        source = GitOpsSource(GitCli(root), w.uow, root, git=str(wrapper), credentials=SecretCredentials(reader))
        reconciler = w.reconciler_twin()
        reconciler.source = source

        await w.service.set_desired(ANN, w.project, "staging", DesiredState(
            ops_repo="outside", app_path="apps/web", image_ref="registry.example/web:7", namespace="web"))
        report = await reconciler.run_once()
        assert report is not None and report.applied == 1 and report.failed == 0, (await w.current()).last_error
        live = await w.cluster.get(WEB)
        assert live is not None and live["spec"]["template"]["spec"]["containers"][0]["image"] == \
            "registry.example/web:7"
        assert (await w.current()).status is DeployStatus.SYNCING
        assert ("GET", "/alice/ops.git/info/refs") in server.requests
        # the token went through the environment only, and its read was audited as Corral's
        logged = argv_log.read_text()
        assert "fetch" in logged and alice not in logged
        reads = [e for e in w.uow.db.audit.entries.values() if e.action == "secret.read"]
        assert reads and reads[-1].detail["secret_name"] == "OPS_TOKEN"
        assert reads[-1].detail["reason"] == "fetch ops repository outside" and reads[-1].detail["purpose"] == "deploy"

        async with w.uow() as uow:
            repo = await uow.deploy.ops_repo_by_name("outside")
        assert repo is not None
        # without the credential, or with a wrong one, the private repository cannot be fetched
        for name, secret in (("anonymous", None), ("wrong", "WRONG_TOKEN")):
            await w.service.register_ops_repo(ANN, NewOpsRepo(name=name, url=url, credential_secret=secret))
            async with w.uow() as uow:
                other = await uow.deploy.ops_repo_by_name(name)
            assert other is not None
            with pytest.raises(Unavailable, match="git fetch of an ops repository failed") as failed:
                await source.head(other)
            assert "crl_wrong-token-value" not in failed.value.message and alice not in failed.value.message
        assert "crl_wrong-token-value" not in argv_log.read_text()
    finally:
        await stop_corral(server)


async def test_plain_http_urls_only_on_this_machine() -> None:
    from corral.core.errors import InvalidInput

    w = await make_world()
    with pytest.raises(InvalidInput, match="https://"):
        await w.service.register_ops_repo(ANN, NewOpsRepo(name="far", url="http://git.example.com/ops.git"))
    with pytest.raises(InvalidInput, match="https://"):
        await w.service.register_ops_repo(ANN, NewOpsRepo(name="cred", url="https://u:p@git.example.com/ops.git"))
    await w.service.register_ops_repo(ANN, NewOpsRepo(name="near", url="http://127.0.0.1:3000/acme/ops.git"))
