"""``corral deploy render|diff``: the report computed by the reconciler (fake cluster, no cluster), secrets
masked, one-line usage errors with exit code 2."""

from __future__ import annotations

import base64
import json

import pytest

from corral.entrypoints.cli import main
from corral.entrypoints.commands.deploy import deploy_report, format_report
from tests.unit.deploy.test_reconciler import WEB
from tests.unit.deploy.world import make_world

SECRET_YAML = (b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n"
               b"stringData:\n  password: ${{ secrets.DB_PASSWORD }}\n")


async def test_render_lists_the_objects_in_sync_order_with_secrets_masked() -> None:
    w = await make_world()
    w.push({"apps/web/secret.yaml": SECRET_YAML})
    await w.deploy()
    report = await deploy_report(w.reconciler, w.uow, "acme/web", "staging", diff=False)
    assert [o["ref"] for o in report["objects"]] == ["Secret web/db", "Service web/web", "Deployment web/web"]
    assert report["cluster"] == "fake" and len(report["commit"]) == 40
    secret = report["objects"][0]["object"]
    assert secret["stringData"] == {"password": "***"}
    text = format_report(report, diff=False)
    assert "s3cr3t" not in text and "image: registry.example/web:1" in text and "kind: Secret" in text
    assert w.secrets.reads == []  # a preview reads no secret
    assert w.cluster is not None and w.cluster.calls == []  # and changes nothing


async def test_diff_against_the_live_cluster() -> None:
    w = await make_world()
    assert w.cluster is not None
    w.push({"apps/web/secret.yaml": SECRET_YAML})
    await w.deploy()
    first = await deploy_report(w.reconciler, w.uow, "acme/web", "staging", diff=True)
    assert {c["change"] for c in first["changes"]} == {"create"}
    await w.reconciler.run_once()
    w.cluster.edit(WEB, {"spec": {"replicas": 7}})  # drift
    await w.deploy("registry.example/web:2")
    report = await deploy_report(w.reconciler, w.uow, "acme/web", "staging", diff=True)
    changes = {c["ref"]: c for c in report["changes"]}
    assert changes["Service web/web"]["change"] == "unchanged" and changes["Service web/web"]["diff"] == []
    assert changes["Secret web/db"]["change"] == "unknown"  # its values are not read for a preview
    web = changes["Deployment web/web"]
    assert web["change"] == "update"
    assert "-  replicas: 7" in web["diff"] and "+  replicas: 2" in web["diff"]
    assert any(line.startswith("+") and "registry.example/web:2" in line for line in web["diff"])
    assert report["summary"]["update"] == 1
    # the live Secret holds the real value: never printed
    text = format_report(report, diff=True)
    assert "s3cr3t" not in text and base64.b64encode(b"s3cr3t").decode() not in text
    assert "update    Deployment web/web" in text


async def test_diff_lists_what_prune_would_delete() -> None:
    w = await make_world()
    await w.deploy(prune=True)
    await w.reconciler.run_once()
    w.push({"apps/web/service.yaml": None})
    report = await deploy_report(w.reconciler, w.uow, "acme/web", "staging", diff=True)
    assert {c["ref"]: c["change"] for c in report["changes"]}["Service web/web"] == "prune"


async def test_without_a_cluster_diff_says_so() -> None:
    w = await make_world(cluster=False)
    await w.deploy()
    report = await deploy_report(w.reconciler, w.uow, "acme/web", "staging", diff=True)
    assert report["cluster"] == "not configured"
    assert {c["change"] for c in report["changes"]} == {"unknown"}
    assert "cluster: not configured" in format_report(report, diff=True)
    json.dumps(report, default=str)


async def test_unknown_project_or_environment_is_not_found() -> None:
    from corral.core.errors import NotFound

    w = await make_world()
    with pytest.raises(NotFound, match="acme/nope"):
        await deploy_report(w.reconciler, w.uow, "acme/nope", "staging", diff=False)
    with pytest.raises(NotFound, match="no deployment in production"):
        await deploy_report(w.reconciler, w.uow, "acme/web", "production", diff=False)


@pytest.mark.parametrize("argv", [
    ["deploy", "render", "not-a-slug", "staging"],
    ["deploy", "diff", "acme/web", "Bad Env"],
    ["deploy", "explode", "acme/web", "staging"],
    ["deploy", "render", "acme/web"],
])
def test_usage_errors_are_one_line_and_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("corral deploy: ")
