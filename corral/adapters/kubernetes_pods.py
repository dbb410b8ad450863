"""Kubernetes manifests for workloads, and how to read a pod's state: pure functions over plain dicts.

Kept apart from the executor (which does the API calls) so the fail-fast rules can be read, and tested, on
their own.
"""

from __future__ import annotations

import base64
import hashlib
import math
import posixpath
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from corral.core.errors import InvalidInput
from corral.core.workloads.model import ExitStatus, Outcome, Sandbox, WorkloadSpec

__all__ = [
    "ANNOTATION_NAME",
    "FAIL_FAST_WAITING",
    "INPUT_WRAPPER",
    "MANAGED_BY",
    "POD_LABEL",
    "STDIN_DIR",
    "WORKSPACE_MOUNT",
    "claim_manifest",
    "classify_pod",
    "event_failure",
    "network_policy_manifest",
    "network_policy_name",
    "own_labels",
    "pod_manifest",
    "pod_name",
    "secret_manifest",
    "secret_name",
    "workspace_claim_name",
]

MANAGED_BY = {"app.kubernetes.io/managed-by": "corral"}
ANNOTATION_NAME = "corral.dev/workload-name"
ANNOTATION_WORKSPACE = "corral.dev/workspace-key"
WORKSPACE_MOUNT = "/workspace"
STDIN_DIR = "/var/run/corral-stdin"
CONTAINER = "main"
POD_LABEL = "corral.dev/pod"  # on sandboxed pods: what their NetworkPolicy selects
SCRATCH_TMP = "/tmp"  # noqa: S108 - inside the pod: an emptyDir of its own

# The command of an interactive pod: ``sh -c INPUT_WRAPPER sh <end-of-input line> <argv...>``. The attach
# WebSocket cannot close a container's stdin (``stdinOnce: false`` keeps it open across attaches, so a dropped
# connection can attach again), so the end of the input is a line of its own, unique to the pod, that this
# wrapper turns into an end of file for the program. It also starts the program only once the first line came,
# i.e. once Corral is attached: no output is written before anyone reads it. The program's exit code is the
# pod's; SIGTERM (pod deletion) is passed on to it (a shell as PID 1 would ignore it). The wrapper's own
# stderr (job notices such as "Terminated") goes nowhere; the program's is the container's.
INPUT_WRAPPER = """\
end=$1; shift; exec 3<&0 4>&2 2>/dev/null
[ -z "$HOME" ] || mkdir -p "$HOME"
fifo="${TMPDIR:-/tmp}/corral-stdin.$$"
mkfifo "$fifo" || exit 125
IFS= read -r line <&3 || { rm -f "$fifo"; exit 0; }
( [ "$line" = "$end" ] || { printf '%s\\n' "$line"
    while IFS= read -r line && [ "$line" != "$end" ]; do printf '%s\\n' "$line"; done; } ) <&3 >"$fifo" 4>&- &
feeder=$!
"$@" <"$fifo" 2>&4 3<&- 4>&- &
program=$!
trap 'kill -TERM "$program"' TERM INT
code=0
while kill -0 "$program"; do wait "$program"; code=$?; done
kill "$feeder"
rm -f "$fifo"
exit "$code"
"""

# Container waiting reasons that never get better by waiting: fail the workload at once with the reason
# (Woodpecker's Kubernetes backend waits for the step timeout on these).
FAIL_FAST_WAITING = frozenset({
    "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull",
    "CreateContainerConfigError", "CreateContainerError",
})


def _dns_label(text: str, limit: int) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:limit].strip("-") or "w"


def pod_name(workload_name: str) -> str:
    """A fresh, valid pod name (DNS-1123 label) that still shows the workload's name."""
    return f"corral-{_dns_label(workload_name, 40)}-{uuid.uuid4().hex[:8]}"


def secret_name(pod: str) -> str:
    return f"{pod}-env"


def network_policy_name(pod: str) -> str:
    return f"{pod}-egress"


def workspace_claim_name(key: str) -> str:
    return f"corral-ws-{_dns_label(key, 40)}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def own_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """A pod's labels without the ones this executor adds."""
    return {k: v for k, v in labels.items() if k not in MANAGED_BY and k != POD_LABEL}


def workdir_path(workdir: str) -> str:
    """The container's working directory for ``workdir`` (relative to the workspace), refusing escapes."""
    normal = posixpath.normpath(workdir or ".")
    if workdir.startswith("/") or normal == ".." or normal.startswith("../"):
        raise InvalidInput(f"workdir {workdir!r} leaves the workspace", field="workdir")
    return WORKSPACE_MOUNT if normal == "." else f"{WORKSPACE_MOUNT}/{normal}"


def claim_manifest(name: str, key: str, size: str, storage_class: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "labels": dict(MANAGED_BY), "annotations": {ANNOTATION_WORKSPACE: key}},
            "spec": spec}


def secret_manifest(name: str, spec: WorkloadSpec) -> dict[str, Any]:
    """The Secret holding ``secret_env`` (keys ``e0``, ``e1``... so any variable name works) and stdin."""
    data = {f"e{i}": value for i, value in enumerate(spec.secret_env.values())}
    manifest: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "labels": {**MANAGED_BY, **spec.labels}},
        "stringData": data,
    }
    if spec.stdin is not None:
        manifest["data"] = {"stdin": base64.b64encode(spec.stdin).decode()}
    return manifest


def _resources(spec: WorkloadSpec) -> dict[str, dict[str, str]]:
    res = spec.resources
    if res is None:
        return {}
    requests = {k: v for k, v in (("cpu", res.cpu_request), ("memory", res.memory_request)) if v}
    limits = {k: v for k, v in (("cpu", res.cpu_limit), ("memory", res.memory_limit)) if v}
    return {k: v for k, v in (("requests", requests), ("limits", limits)) if v}


def _sandboxed(container: dict[str, Any], pod_spec: dict[str, Any], sandbox: Sandbox) -> None:
    """Non-root, read-only root filesystem (writable: the workspace, a scratch ``/tmp``), ``$HOME`` in the
    workspace, no privilege escalation, no capabilities, the runtime's default seccomp profile."""
    uid = sandbox.user_id
    pod_spec["securityContext"] = {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
                                   "seccompProfile": {"type": "RuntimeDefault"}}
    container["securityContext"] = {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid,
                                    "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}, "privileged": False}
    container["volumeMounts"].append({"name": "tmp", "mountPath": SCRATCH_TMP})
    pod_spec["volumes"].append({"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}})
    if not any(e["name"] == "HOME" for e in container["env"]):
        container["env"].insert(0, {"name": "HOME", "value": workdir_path(sandbox.home)})


def pod_manifest(
    name: str, spec: WorkloadSpec, *, claim: str, image: str, secret: str | None, grace_seconds: float,
    end_of_input: str | None = None,
) -> dict[str, Any]:
    """One pod running ``spec`` to completion (``restartPolicy: Never``) on the workspace's claim.

    An interactive spec keeps its stdin open for the attach WebSocket (``stdin: true, stdinOnce: false,
    tty: false``) and runs under ``INPUT_WRAPPER`` with ``end_of_input`` (its ``spec.stdin`` is sent through
    the attach too, not stored); a sandboxed one gets the securityContext of ``_sandboxed`` and the label its
    NetworkPolicy selects."""
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in spec.env.items()]
    env += [{"name": k, "valueFrom": {"secretKeyRef": {"name": secret, "key": f"e{i}"}}}
            for i, k in enumerate(spec.secret_env)]
    mounts: list[dict[str, Any]] = [{"name": "workspace", "mountPath": WORKSPACE_MOUNT}]
    volumes: list[dict[str, Any]] = [{"name": "workspace", "persistentVolumeClaim": {"claimName": claim}}]
    command = list(spec.argv)
    if spec.interactive:
        if not end_of_input:
            raise InvalidInput("an interactive workload needs its end-of-input line")
        command = ["/bin/sh", "-c", INPUT_WRAPPER, "sh", end_of_input, *command]
    elif spec.stdin is not None:
        # stdin without an attach stream: the bytes come from the Secret as a file (needs /bin/sh in the image)
        command = ["/bin/sh", "-c", f'exec "$@" < {STDIN_DIR}/stdin', "sh", *command]
        mounts.append({"name": "stdin", "mountPath": STDIN_DIR, "readOnly": True})
        volumes.append({"name": "stdin",
                        "secret": {"secretName": secret, "items": [{"key": "stdin", "path": "stdin"}]}})
    container: dict[str, Any] = {
        "name": CONTAINER, "image": image, "command": command, "workingDir": workdir_path(spec.workdir),
        "env": env, "volumeMounts": mounts,
    }
    if resources := _resources(spec):
        container["resources"] = resources
    if spec.interactive:
        container.update({"stdin": True, "stdinOnce": False, "tty": False})
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": max(0, math.ceil(grace_seconds)),
        "containers": [container],
        "volumes": volumes,
    }
    labels = {**spec.labels, **MANAGED_BY}
    if spec.sandbox is not None:
        _sandboxed(container, pod_spec, spec.sandbox)
        labels[POD_LABEL] = name
    if spec.timeout_seconds:
        # a backstop for when Corral is not there to enforce the timeout (crash): the kubelet ends the pod
        pod_spec["activeDeadlineSeconds"] = math.ceil(spec.timeout_seconds) + 60
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels,
                     "annotations": {ANNOTATION_NAME: spec.name, ANNOTATION_WORKSPACE: spec.workspace.key,
                                     "corral.dev/image": image}},
        "spec": pod_spec,
    }


def network_policy_manifest(
    pod: str, labels: Mapping[str, str], *, corral_cidrs: Iterable[str], corral_pod_labels: Mapping[str, str],
    corral_namespace: str | None, model_api_cidrs: Iterable[str], dns_namespace: str | None = "kube-system",
    dns_pod_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The NetworkPolicy of one sandboxed pod (selected by its ``POD_LABEL``): no ingress; egress only to DNS
    (UDP/TCP 53; to the ``dns_pod_labels`` pods in ``dns_namespace`` when given, e.g. kube-dns, else to any
    address), to Corral (its CIDRs and/or its pods, any port) and to the model API's CIDRs on 443.
    NetworkPolicies take addresses, not names: the model API is a CIDR list (``api.anthropic.com``: Anthropic
    publishes 160.79.104.0/23 and 2607:6bc0::/48)."""
    corral: list[dict[str, Any]] = [{"ipBlock": {"cidr": c}} for c in corral_cidrs]
    if corral_pod_labels:
        peer: dict[str, Any] = {"podSelector": {"matchLabels": dict(corral_pod_labels)}}
        if corral_namespace:
            peer["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": corral_namespace}}
        corral.append(peer)
    dns: dict[str, Any] = {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    if dns_pod_labels:
        dns_peer: dict[str, Any] = {"podSelector": {"matchLabels": dict(dns_pod_labels)}}
        if dns_namespace:
            dns_peer["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": dns_namespace}}
        dns["to"] = [dns_peer]
    egress: list[dict[str, Any]] = [dns]
    if corral:
        egress.append({"to": corral})
    model = [{"ipBlock": {"cidr": c}} for c in model_api_cidrs]
    if model:
        egress.append({"to": model, "ports": [{"protocol": "TCP", "port": 443}]})
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": network_policy_name(pod), "labels": {**labels, **MANAGED_BY}},
        "spec": {"podSelector": {"matchLabels": {POD_LABEL: pod}}, "policyTypes": ["Ingress", "Egress"],
                 "ingress": [], "egress": egress},
    }


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def classify_pod(pod: Mapping[str, Any]) -> tuple[ExitStatus | None, bool]:
    """``(final status or None, whether the container has started)`` from a pod (API dict form)."""
    status = pod.get("status") or {}
    phase = status.get("phase")
    containers = status.get("containerStatuses") or []
    main = next((c for c in containers if c.get("name") == CONTAINER), containers[0] if containers else {})
    terminated = _get(main, "state", "terminated")
    waiting = _get(main, "state", "waiting")
    started = _get(main, "state", "running") is not None or terminated is not None
    if terminated and phase in ("Succeeded", "Failed", None, "Running"):
        code = terminated.get("exitCode")
        reason = terminated.get("reason") or ""
        if reason in ("Completed", "Error"):
            reason = ""
        if terminated.get("message"):
            reason = f"{reason}: {terminated['message']}" if reason else terminated["message"]
        if isinstance(code, int):
            return ExitStatus(Outcome.EXITED, code, reason), True
    if phase in ("Succeeded", "Failed"):
        reason = status.get("reason") or ""
        message = status.get("message") or ""
        if reason == "DeadlineExceeded":
            return ExitStatus(Outcome.TIMED_OUT, None, f"{reason}: {message}".rstrip(": ")), started
        return ExitStatus(Outcome.LOST, None, f"pod {phase}: {reason} {message}".strip()), started
    if waiting and waiting.get("reason") in FAIL_FAST_WAITING:
        message = waiting.get("message") or ""
        return ExitStatus(Outcome.FAILED_TO_START, None, f"{waiting['reason']}: {message}".rstrip(": ")), False
    for condition in status.get("conditions") or []:
        if (condition.get("type") == "PodScheduled" and condition.get("status") == "False"
                and condition.get("reason") == "Unschedulable"):
            message = condition.get("message") or ""
            return ExitStatus(Outcome.FAILED_TO_START, None, f"Unschedulable: {message}".rstrip(": ")), False
    return None, started


def event_failure(events: Iterable[Mapping[str, Any]], pod: str) -> ExitStatus | None:
    """A start failure visible only in events: the workspace volume is attached to another node."""
    for event in events:
        if _get(event, "involvedObject", "name") != pod:
            continue
        reason = event.get("reason") or ""
        message = event.get("message") or ""
        if reason == "FailedAttachVolume" or "Multi-Attach error" in message:
            return ExitStatus(Outcome.FAILED_TO_START, None, f"FailedAttachVolume: {message}".rstrip(": "))
    return None
