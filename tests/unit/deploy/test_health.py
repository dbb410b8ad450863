"""Argo CD's health rules, one Kubernetes object of our own per case."""

from __future__ import annotations

import json
from typing import Any

import pytest

from corral.core.deploy.health import Health, assess, worst


def deployment(*, generation: int = 2, observed: int = 2, replicas: int | None = 3, updated: int = 3, total: int = 3,
               available: int = 3, paused: bool = False, conditions: list[dict[str, Any]] | None = None,
               api: str = "apps/v1") -> dict[str, Any]:
    spec: dict[str, Any] = {"paused": paused}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": api, "kind": "Deployment", "metadata": {"name": "web", "generation": generation},
            "spec": spec, "status": {"observedGeneration": observed, "replicas": total, "updatedReplicas": updated,
                                     "availableReplicas": available, "conditions": conditions or []}}


@pytest.mark.parametrize(("obj", "status", "fragment"), [
    (deployment(), "Healthy", ""),
    (deployment(paused=True), "Suspended", "paused"),
    (deployment(generation=3, observed=2), "Progressing", "generation"),
    (deployment(conditions=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]),
     "Degraded", "progress deadline"),
    (deployment(updated=1), "Progressing", "1 out of 3 new replicas"),
    (deployment(total=4), "Progressing", "1 old replicas"),
    (deployment(available=2), "Progressing", "2 of 3 updated replicas"),
    (deployment(api="extensions/v1beta1", available=2), "Progressing", "available"),
])
def test_deployment(obj: dict[str, Any], status: str, fragment: str) -> None:
    health = assess(obj)
    assert health is not None and health.status == status and fragment in health.message


def statefulset(**kw: Any) -> dict[str, Any]:
    spec = {"replicas": kw.get("replicas", 2), "updateStrategy": kw.get("strategy", {"type": "RollingUpdate"})}
    status = {"observedGeneration": kw.get("observed", 1), "readyReplicas": kw.get("ready", 2),
              "updatedReplicas": kw.get("updated", 2), "currentReplicas": 2,
              "updateRevision": kw.get("update_rev", "r1"), "currentRevision": "r1"}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "generation": 1},
            "spec": spec, "status": status}


@pytest.mark.parametrize(("obj", "status"), [
    (statefulset(), "Healthy"),
    (statefulset(observed=0), "Progressing"),
    (statefulset(ready=1), "Progressing"),
    (statefulset(update_rev="r2"), "Progressing"),
    (statefulset(update_rev="r2", strategy={"type": "OnDelete"}), "Healthy"),  # OnDelete counts as rolled out
    (statefulset(updated=0, strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}), "Progressing"),
    (statefulset(updated=1, strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}), "Healthy"),
])
def test_statefulset(obj: dict[str, Any], status: str) -> None:
    assert assess(obj) is not None and assess(obj).status == status  # type: ignore[union-attr]


def daemonset(*, updated: int = 3, available: int = 3, observed: int = 1, strategy: str = "RollingUpdate") -> dict:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "generation": 1},
            "spec": {"updateStrategy": {"type": strategy}},
            "status": {"observedGeneration": observed, "desiredNumberScheduled": 3, "updatedNumberScheduled": updated,
                       "numberAvailable": available}}


@pytest.mark.parametrize(("obj", "status"), [
    (daemonset(), "Healthy"), (daemonset(updated=2), "Progressing"), (daemonset(available=1), "Progressing"),
    (daemonset(observed=0), "Progressing"), (daemonset(updated=0, strategy="OnDelete"), "Healthy"),
])
def test_daemonset(obj: dict[str, Any], status: str) -> None:
    assert assess(obj) == Health(status, assess(obj).message)  # type: ignore[arg-type,union-attr]


def replicaset(*, available: int = 2, failure: bool = False, observed: int = 1) -> dict[str, Any]:
    conditions = [{"type": "ReplicaFailure", "status": "True", "message": "quota exceeded"}] if failure else []
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-1", "generation": 1},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": observed, "availableReplicas": available, "conditions": conditions}}


def test_replicaset() -> None:
    assert assess(replicaset()).status == "Healthy"  # type: ignore[union-attr]
    assert assess(replicaset(available=1)).status == "Progressing"  # type: ignore[union-attr]
    assert assess(replicaset(observed=0)).status == "Progressing"  # type: ignore[union-attr]
    assert assess(replicaset(failure=True)) == Health("Degraded", "quota exceeded")


def pod(phase: str, *, policy: str | None = "Always", ready: bool = False, waiting: str | None = None,
        terminated: dict[str, Any] | None = None, last_terminated: bool = False, message: str = "",
        deleting: bool = False) -> dict[str, Any]:
    ctr: dict[str, Any] = {"name": "app", "state": {}}
    if waiting:
        ctr["state"] = {"waiting": {"reason": waiting, "message": f"{waiting} of app"}}
    if terminated:
        ctr["state"] = {"terminated": terminated}
    if last_terminated:
        ctr["lastState"] = {"terminated": {"exitCode": 1}}
    meta: dict[str, Any] = {"name": "p"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    spec = {"restartPolicy": policy} if policy else {}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
            "status": {"phase": phase, "message": message, "containerStatuses": [ctr],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


@pytest.mark.parametrize(("obj", "status"), [
    (pod("Succeeded"), "Healthy"),
    (pod("Failed", message="evicted"), "Degraded"),
    (pod("Pending"), "Progressing"),
    (pod("Running", ready=True), "Healthy"),
    (pod("Running", policy=None, ready=True), "Healthy"),  # the default restart policy is Always
    (pod("Running"), "Progressing"),
    (pod("Running", last_terminated=True), "Degraded"),
    (pod("Running", policy="Never", ready=True), "Progressing"),
    (pod("Running", policy="OnFailure"), "Progressing"),
    (pod("Running", waiting="CrashLoopBackOff"), "Degraded"),
    (pod("Pending", waiting="ImagePullBackOff"), "Degraded"),
    (pod("Pending", waiting="ErrImagePull"), "Degraded"),
    (pod("Pending", waiting="CreateContainerConfigError"), "Degraded"),
    (pod("Pending", policy="Never", waiting="ImagePullBackOff"), "Progressing"),  # a hook pod is not failed yet
    (pod("Running", ready=True, deleting=True), "Progressing"),
    (pod("Weird"), "Unknown"),
])
def test_pod(obj: dict[str, Any], status: str) -> None:
    assert assess(obj).status == status  # type: ignore[union-attr]


def test_failed_pod_messages() -> None:
    assert assess(pod("Failed", terminated={"reason": "OOMKilled"})) == Health("Degraded", "OOMKilled")
    msg = assess(pod("Failed", terminated={"exitCode": 3})).message  # type: ignore[union-attr]
    assert msg == 'container "app" failed with exit code 3'
    assert assess(pod("Running", waiting="CrashLoopBackOff")).message == "CrashLoopBackOff of app"  # type: ignore


def job(*conds: tuple[str, str], suspend: bool = False) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"}, "spec": {"suspend": suspend},
            "status": {"conditions": [{"type": t, "status": "True", "message": m} for t, m in conds]}}


def test_job() -> None:
    assert assess(job()).status == "Progressing"  # type: ignore[union-attr]
    assert assess(job(("Complete", "done"))) == Health("Healthy", "done")
    assert assess(job(("Failed", "BackoffLimitExceeded"))) == Health("Degraded", "BackoffLimitExceeded")
    assert assess(job(suspend=True)).status == "Suspended"  # type: ignore[union-attr]


def lb(kind: str, api: str, *, ingress: list[Any], type_: str | None = None) -> dict[str, Any]:
    spec = {"type": type_} if type_ else {}
    return {"apiVersion": api, "kind": kind, "metadata": {"name": "x"}, "spec": spec,
            "status": {"loadBalancer": {"ingress": ingress}}}


def test_service_and_ingress() -> None:
    assert assess(lb("Service", "v1", ingress=[], type_="ClusterIP")).status == "Healthy"  # type: ignore
    assert assess(lb("Service", "v1", ingress=[], type_="LoadBalancer")).status == "Progressing"  # type: ignore
    assert assess(lb("Service", "v1", ingress=[{"ip": "1.2.3.4"}], type_="LoadBalancer")).status == "Healthy"  # type: ignore
    assert assess(lb("Ingress", "networking.k8s.io/v1", ingress=[])).status == "Progressing"  # type: ignore
    assert assess(lb("Ingress", "networking.k8s.io/v1", ingress=[{"hostname": "a"}])).status == "Healthy"  # type: ignore


def test_kinds_are_matched_with_their_group() -> None:
    assert assess(lb("Service", "serving.knative.dev/v1", ingress=[])) is None
    assert assess({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}) is None
    assert assess({"apiVersion": "example.com/v1", "kind": "Deployment"}) is None


def test_pvc() -> None:
    def claim(phase: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "d"},
                "status": {"phase": phase}}

    assert [assess(claim(p)).status for p in ("Bound", "Pending", "Lost", "")] == [  # type: ignore[union-attr]
        "Healthy", "Progressing", "Degraded", "Unknown"]


def test_hpa() -> None:
    def hpa(*conds: tuple[str, str]) -> dict[str, Any]:
        return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
                "status": {"conditions": [{"type": t, "reason": r, "message": r} for t, r in conds]}}

    assert assess(hpa()).status == "Progressing"  # type: ignore[union-attr]
    assert assess(hpa(("AbleToScale", "SucceededRescale"))).status == "Healthy"  # type: ignore[union-attr]
    assert assess(hpa(("ScalingActive", "FailedGetResourceMetric"))).status == "Degraded"  # type: ignore
    v1 = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
          "metadata": {"name": "h", "annotations": {"autoscaling.alpha.kubernetes.io/conditions": json.dumps(
              [{"type": "ScalingLimited", "reason": "DesiredWithinRange", "message": "ok"}])}}}
    assert assess(v1) == Health("Healthy", "ok")


def test_apiservice() -> None:
    def svc(status: str | None) -> dict[str, Any]:
        conds = [] if status is None else [{"type": "Available", "status": status, "reason": "Passed",
                                            "message": "all checks passed"}]
        return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1.x"},
                "status": {"conditions": conds}}

    assert assess(svc("True")) == Health("Healthy", "Passed: all checks passed")
    assert assess(svc("False")).status == "Progressing"  # type: ignore[union-attr]
    assert assess(svc(None)) == Health("Progressing", "Waiting to be processed")


def test_worst_and_malformed() -> None:
    assert worst([Health("Healthy"), Health("Progressing"), Health("Suspended")]).status == "Progressing"
    assert worst([Health("Missing"), Health("Degraded", "x")]) == Health("Degraded", "x")
    assert worst([]).status == "Healthy"
    assert assess({"apiVersion": "apps/v1", "kind": "Deployment", "spec": "nonsense", "status": 3}) is not None
