"""The Kubernetes adapter against kmock (an emulated API server): server-side apply, dry-run for drift, get,
list by inventory label, delete; and the reconciler driving it (apply, prune, drift put back, a failed rollout
rolled back)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp.web
import kmock
import pytest

from corral.adapters.kubernetes_cluster import FIELD_MANAGER, KubernetesCluster
from corral.core.deploy.model import DeployStatus, ObjectRef


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in patch.items()}}
    return patch


class ApplyingEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with what server-side apply adds: a PATCH creates a missing object, and
    ``dryRun=All`` answers the result without storing it."""

    async def _handle(self, request: Any) -> Any:
        if request.resource is not None and request.action == kmock.action.UPDATE and request.name:
            key = (request.resource, request.namespace, request.name)
            data = request.data if isinstance(request.data, dict) else json.loads(request.data or b"{}")
            exists = key in self.objects and not self.objects[key].deleted
            if request.params.get("dryRun") == "All":
                return aiohttp.web.json_response(_merge(dict(self.objects[key].raw) if exists else {}, data))
            if not exists:
                self.objects[key] = data
                return aiohttp.web.json_response(dict(self.objects[key].raw))
        return await super()._handle(request)


pytestmark = pytest.mark.kmock(cls=ApplyingEmulator)

CM = {"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "cfg", "namespace": "web", "labels": {"corral.dev/deployment": "d1"}}, "data": {"a": "1"}}


async def test_apply_get_list_delete(kmock: Any, kube_api: Any) -> None:
    cluster = KubernetesCluster(kube_api)
    applied = await cluster.apply(CM)
    assert applied["data"] == {"a": "1"}
    patches = [r for r in kmock if r.method == "PATCH"]
    assert patches and patches[0].params["fieldManager"] == FIELD_MANAGER and patches[0].params["force"] == "true"
    assert patches[0].headers["Content-Type"] == "application/apply-patch+yaml"
    ref = ObjectRef("v1", "ConfigMap", "cfg", "web")
    assert (await cluster.get(ref))["data"] == {"a": "1"}  # type: ignore[index]
    dry = await cluster.apply({**CM, "data": {"a": "2"}}, dry_run=True)
    assert dry["data"] == {"a": "2"} and (await cluster.get(ref))["data"] == {"a": "1"}  # type: ignore[index]
    listed = await cluster.list_labelled([("v1", "ConfigMap")], {"corral.dev/deployment": "d1"})
    assert [o["metadata"]["name"] for o in listed] == ["cfg"]
    assert await cluster.list_labelled([("v1", "ConfigMap")], {"corral.dev/deployment": "other"}) == []
    await cluster.delete(ref)
    assert await cluster.get(ref) is None
    await cluster.delete(ref)  # missing: nothing to do


async def test_reconciler_on_kmock(kmock: Any, kube_api: Any) -> None:
    from tests.unit.deploy.world import make_world

    w = await make_world()
    cluster = KubernetesCluster(kube_api, name="kmock")
    w.reconciler.cluster = cluster
    await w.deploy(prune=True, self_heal=True)
    report = await w.reconciler.run_once()
    assert report is not None and report.applied == 1, (await w.current()).last_error
    web = ObjectRef("apps/v1", "Deployment", "web", "web")
    svc = ObjectRef("v1", "Service", "web", "web")
    live = await cluster.get(web)
    assert live is not None and live["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "corral"
    # the emulator runs no controller: the Deployment has no status yet, so it is still rolling out
    assert (await w.current()).status is DeployStatus.SYNCING
    # drift: someone scales it by hand; self-heal puts it back
    kmock.objects[kmock.resource("apps", "v1", "deployments"), "web", "web"].patch({"spec": {"replicas": 7}})
    report = await w.reconciler.run_once()
    assert report is not None and report.healed >= 1
    assert (await cluster.get(web))["spec"]["replicas"] == 2  # type: ignore[index]
    # prune: the service leaves the templates
    w.push({"apps/web/service.yaml": None})
    report = await w.reconciler.run_once()
    assert report is not None and report.pruned == 1 and await cluster.get(svc) is None
    # the controller reports a failed rollout: Degraded → failed
    kmock.objects[kmock.resource("apps", "v1", "deployments"), "web", "web"].patch({"status": {
        "observedGeneration": 0, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 0,
        "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}})
    await w.reconciler.run_once()
    d = await w.current()
    assert d.status is DeployStatus.FAILED and d.health == "Degraded"
