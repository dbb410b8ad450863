"""Health of Kubernetes objects, with Argo CD's built-in rules (gitops-engine ``pkg/health``).

``assess(obj)`` takes one object as the API server returns it (a mapping, status included) and says
how healthy it is, or None for a kind without a rule. Kinds are matched with their API group: a
Knative ``Service`` (serving.knative.dev) is not a core Service. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

import attrs

__all__ = [
    "DEGRADED",
    "HEALTHY",
    "MISSING",
    "PROGRESSING",
    "SUSPENDED",
    "UNKNOWN",
    "Health",
    "HealthStatus",
    "assess",
    "is_worse",
    "worst",
]

HealthStatus = Literal["Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"]

HEALTHY: Final = "Healthy"
PROGRESSING: Final = "Progressing"
DEGRADED: Final = "Degraded"
SUSPENDED: Final = "Suspended"
MISSING: Final = "Missing"
UNKNOWN: Final = "Unknown"

# most healthy first (Argo CD's healthOrder): an application is as healthy as its worst object
_ORDER: Final[tuple[str, ...]] = (HEALTHY, SUSPENDED, PROGRESSING, MISSING, DEGRADED, UNKNOWN)


@attrs.frozen
class Health:
    """The health of one object (or of an application: its worst object)."""

    status: HealthStatus
    message: str = ""


def is_worse(current: str, new: str) -> bool:
    """Whether ``new`` is a worse health status than ``current``."""
    return _ORDER.index(new) > _ORDER.index(current)


def worst(healths: Iterable[Health]) -> Health:
    """The worst of ``healths``; Healthy when there is none."""
    out = Health(HEALTHY)
    for health in healths:
        if is_worse(out.status, health.status):
            out = health
    return out


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in _list(status.get("conditions")):
        if isinstance(cond, Mapping) and cond.get("type") == kind:
            return cond
    return None


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def _generation(obj: Mapping[str, Any]) -> int:
    return _int(_map(obj.get("metadata")).get("generation"))


def _name(obj: Mapping[str, Any]) -> str:
    return _str(_map(obj.get("metadata")).get("name"))


def _deployment(obj: Mapping[str, Any]) -> Health:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    if spec.get("paused") is True:
        return Health(SUSPENDED, "Deployment is paused")
    if _generation(obj) > _int(status.get("observedGeneration")):
        return Health(PROGRESSING, "Waiting for rollout to finish: observed deployment generation less than desired "
                                   "generation")
    cond = _condition(status, "Progressing")
    replicas = _opt_int(spec.get("replicas"))
    updated, total = _int(status.get("updatedReplicas")), _int(status.get("replicas"))
    available = _int(status.get("availableReplicas"))
    if cond is not None and cond.get("reason") == "ProgressDeadlineExceeded":
        return Health(DEGRADED, f'Deployment "{_name(obj)}" exceeded its progress deadline')
    if replicas is not None and updated < replicas:
        return Health(PROGRESSING, f"Waiting for rollout to finish: {updated} out of {replicas} new replicas have "
                                   "been updated...")
    if total > updated:
        return Health(PROGRESSING, f"Waiting for rollout to finish: {total - updated} old replicas are pending "
                                   "termination...")
    if available < updated:
        return Health(PROGRESSING, f"Waiting for rollout to finish: {available} of {updated} updated replicas are "
                                   "available...")
    return Health(HEALTHY)


def _statefulset(obj: Mapping[str, Any]) -> Health:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    observed = _int(status.get("observedGeneration"))
    if observed == 0 or _generation(obj) > observed:
        return Health(PROGRESSING, "Waiting for statefulset spec update to be observed...")
    replicas = _opt_int(spec.get("replicas"))
    ready, updated = _int(status.get("readyReplicas")), _int(status.get("updatedReplicas"))
    if replicas is not None and ready < replicas:
        return Health(PROGRESSING, f"Waiting for {replicas - ready} pods to be ready...")
    strategy = _map(spec.get("updateStrategy"))
    rolling = strategy.get("rollingUpdate")
    if strategy.get("type") == "RollingUpdate" and isinstance(rolling, Mapping):
        partition = _opt_int(rolling.get("partition"))
        if replicas is not None and partition is not None and updated < replicas - partition:
            return Health(PROGRESSING, f"Waiting for partitioned roll out to finish: {updated} out of "
                                       f"{replicas - partition} new pods have been updated...")
        return Health(HEALTHY, f"partitioned roll out complete: {updated} new pods have been updated...")
    if strategy.get("type") == "OnDelete":
        return Health(HEALTHY, f"statefulset has {ready} ready pods")
    update_rev, current_rev = _str(status.get("updateRevision")), _str(status.get("currentRevision"))
    if update_rev != current_rev:
        return Health(PROGRESSING, f"waiting for statefulset rolling update to complete {updated} pods at revision "
                                   f"{update_rev}...")
    return Health(HEALTHY, f"statefulset rolling update complete {_int(status.get('currentReplicas'))} pods at "
                           f"revision {current_rev}...")


def _daemonset(obj: Mapping[str, Any]) -> Health:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    if _generation(obj) > _int(status.get("observedGeneration")):
        return Health(PROGRESSING, "Waiting for rollout to finish: observed daemon set generation less than desired "
                                   "generation")
    updated, desired = _int(status.get("updatedNumberScheduled")), _int(status.get("desiredNumberScheduled"))
    available = _int(status.get("numberAvailable"))
    if _map(spec.get("updateStrategy")).get("type") == "OnDelete":
        return Health(HEALTHY, f"daemon set {updated} out of {desired} new pods have been updated")
    if updated < desired:
        return Health(PROGRESSING, f'Waiting for daemon set "{_name(obj)}" rollout to finish: {updated} out of '
                                   f"{desired} new pods have been updated...")
    if available < desired:
        return Health(PROGRESSING, f'Waiting for daemon set "{_name(obj)}" rollout to finish: {available} of '
                                   f"{desired} updated pods are available...")
    return Health(HEALTHY)


def _replicaset(obj: Mapping[str, Any]) -> Health:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    if _generation(obj) > _int(status.get("observedGeneration")):
        return Health(PROGRESSING, "Waiting for rollout to finish: observed replica set generation less than desired "
                                   "generation")
    failure = _condition(status, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        return Health(DEGRADED, _str(failure.get("message")))
    replicas = _opt_int(spec.get("replicas"))
    available = _int(status.get("availableReplicas"))
    if replicas is not None and available < replicas:
        return Health(PROGRESSING, f"Waiting for rollout to finish: {available} out of {replicas} new replicas are "
                                   "available...")
    return Health(HEALTHY)


def _container_failure(ctr: Mapping[str, Any]) -> str:
    terminated = _map(_map(ctr.get("state")).get("terminated"))
    if not terminated:
        return ""
    if _str(terminated.get("message")):
        return _str(terminated.get("message"))
    if terminated.get("reason") == "OOMKilled":
        return "OOMKilled"
    code = _int(terminated.get("exitCode"))
    return f'container "{_str(ctr.get("name"))}" failed with exit code {code}' if code else ""


def _pod_ready(status: Mapping[str, Any]) -> bool:
    cond = _condition(status, "Ready")
    return cond is not None and cond.get("status") == "True"


def _pod(obj: Mapping[str, Any]) -> Health:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    policy = _str(spec.get("restartPolicy")) or "Always"  # the API server's default
    message = _str(status.get("message"))
    containers = [c for c in _list(status.get("containerStatuses")) if isinstance(c, Mapping)]
    if policy == "Always":
        # CrashLoopBackOff, ImagePullBackOff, ErrImagePull, CreateContainerConfigError, ...
        errors = []
        for ctr in containers:
            waiting = _map(_map(ctr.get("state")).get("waiting"))
            reason = _str(waiting.get("reason"))
            if waiting and (reason.startswith("Err") or reason.endswith("Error") or reason.endswith("BackOff")):
                errors.append(_str(waiting.get("message")) or reason)
        if errors:
            return Health(DEGRADED, ", ".join(errors))
    phase = status.get("phase")
    if phase == "Pending":
        return Health(PROGRESSING, message)
    if phase == "Succeeded":
        return Health(HEALTHY, message)
    if phase == "Failed":
        if message:
            return Health(DEGRADED, message)
        init = [c for c in _list(status.get("initContainerStatuses")) if isinstance(c, Mapping)]
        for ctr in [*init, *containers]:
            if failure := _container_failure(ctr):
                return Health(DEGRADED, failure)
        return Health(DEGRADED, "")
    if phase == "Running":
        if policy == "Always":
            if _pod_ready(status):
                return Health(HEALTHY, message)
            if any(_map(_map(c.get("lastState")).get("terminated")) for c in containers):
                return Health(DEGRADED, message)
            return Health(PROGRESSING, message)
        return Health(PROGRESSING, message)  # OnFailure / Never: expected to finish
    return Health(UNKNOWN, message)


def _job(obj: Mapping[str, Any]) -> Health:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    failed = complete = False
    fail_message = message = ""
    for cond in _list(status.get("conditions")):
        if not isinstance(cond, Mapping) or cond.get("status", "True") != "True":
            continue
        if cond.get("type") == "Failed":
            failed = complete = True
            fail_message = _str(cond.get("message"))
        elif cond.get("type") == "Complete":
            complete = True
            message = _str(cond.get("message"))
    if failed:
        return Health(DEGRADED, fail_message)
    if complete:
        return Health(HEALTHY, message)
    if spec.get("suspend") is True:
        return Health(SUSPENDED, "Job is suspended")
    return Health(PROGRESSING, message)


def _load_balanced(obj: Mapping[str, Any]) -> bool:
    ingress = _map(_map(obj.get("status")).get("loadBalancer")).get("ingress")
    return isinstance(ingress, list) and len(ingress) > 0


def _service(obj: Mapping[str, Any]) -> Health:
    if _map(obj.get("spec")).get("type") == "LoadBalancer" and not _load_balanced(obj):
        return Health(PROGRESSING, "Waiting for the load balancer's address")
    return Health(HEALTHY)


def _ingress(obj: Mapping[str, Any]) -> Health:
    if _load_balanced(obj):
        return Health(HEALTHY)
    return Health(PROGRESSING, "Waiting for the load balancer's address")


def _pvc(obj: Mapping[str, Any]) -> Health:
    phase = _map(obj.get("status")).get("phase")
    if phase == "Bound":
        return Health(HEALTHY)
    if phase == "Pending":
        return Health(PROGRESSING)
    if phase == "Lost":
        return Health(DEGRADED, "the claim lost its volume")
    return Health(UNKNOWN)


_HPA_DEGRADED = {("AbleToScale", "FailedGetScale"), ("AbleToScale", "FailedUpdateScale"),
                 ("ScalingActive", "FailedGetResourceMetric"), ("ScalingActive", "InvalidSelector")}
_HPA_HEALTHY = {("AbleToScale", "SucceededRescale"), ("ScalingLimited", "DesiredWithinRange"),
                ("ScalingLimited", "TooFewReplicas"), ("ScalingLimited", "TooManyReplicas")}


def _hpa(obj: Mapping[str, Any]) -> Health:
    conditions: list[Any] = _list(_map(obj.get("status")).get("conditions"))
    if obj.get("apiVersion") == "autoscaling/v1":
        raw = _map(_map(obj.get("metadata")).get("annotations")).get("autoscaling.alpha.kubernetes.io/conditions")
        conditions = _decode_conditions(raw)
    for cond in conditions:
        if not isinstance(cond, Mapping):
            continue
        key = (_str(cond.get("type")), _str(cond.get("reason")))
        if key in _HPA_DEGRADED:
            return Health(DEGRADED, _str(cond.get("message")))
        if key in _HPA_HEALTHY:
            return Health(HEALTHY, _str(cond.get("message")))
    return Health(PROGRESSING, "Waiting to Autoscale")


def _decode_conditions(raw: Any) -> list[Any]:
    import json

    if not isinstance(raw, str):
        return []
    try:
        decoded = json.loads(raw)
    except ValueError:
        return []
    return decoded if isinstance(decoded, list) else []


def _apiservice(obj: Mapping[str, Any]) -> Health:
    cond = _condition(_map(obj.get("status")), "Available")
    if cond is None:
        return Health(PROGRESSING, "Waiting to be processed")
    text = f"{_str(cond.get('reason'))}: {_str(cond.get('message'))}"
    return Health(HEALTHY if cond.get("status") == "True" else PROGRESSING, text)


_RULES: Final = {
    ("apps", "Deployment"): _deployment,
    ("extensions", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("extensions", "DaemonSet"): _daemonset,
    ("apps", "ReplicaSet"): _replicaset,
    ("extensions", "ReplicaSet"): _replicaset,
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("", "PersistentVolumeClaim"): _pvc,
    ("batch", "Job"): _job,
    ("networking.k8s.io", "Ingress"): _ingress,
    ("extensions", "Ingress"): _ingress,
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa,
    ("apiregistration.k8s.io", "APIService"): _apiservice,
}


def assess(obj: Mapping[str, Any]) -> Health | None:
    """The health of ``obj`` by Argo CD's rules; None for a kind without a rule.

    An object being deleted is Progressing ("Pending deletion") whatever its kind has as a rule.
    """
    rule = _RULES.get((_group(_str(obj.get("apiVersion"))), _str(obj.get("kind"))))
    if rule is None:
        return None
    if _map(obj.get("metadata")).get("deletionTimestamp"):
        return Health(PROGRESSING, "Pending deletion")
    try:
        return rule(obj)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # a malformed object: say so, never raise
        return Health(UNKNOWN, f"cannot assess {obj.get('kind')}: {exc}")
