"""Cluster over kubernetes-asyncio: server-side apply (field manager ``corral``, forced conflicts), dry-run
apply for drift, get/list by inventory label/delete. Also the one place that builds an ApiClient from the
deployer's setting (kubeconfig, in-cluster service account, or none)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client.exceptions import ApiException

from corral.core.deploy.model import ObjectRef
from corral.core.errors import Conflict, InvalidInput, PermissionDenied, Unavailable

__all__ = ["FIELD_MANAGER", "KubernetesCluster", "api_client_from_settings", "cluster_mode"]

FIELD_MANAGER = "corral"
_SA_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")

# plural and scope of the kinds templates usually hold; anything else is discovered once
_KNOWN: dict[tuple[str, str], tuple[str, bool]] = {
    ("", "Namespace"): ("namespaces", False), ("", "ConfigMap"): ("configmaps", True),
    ("", "Secret"): ("secrets", True), ("", "Service"): ("services", True), ("", "Pod"): ("pods", True),
    ("", "ServiceAccount"): ("serviceaccounts", True),
    ("", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("", "PersistentVolume"): ("persistentvolumes", False),
    ("apps", "Deployment"): ("deployments", True), ("apps", "StatefulSet"): ("statefulsets", True),
    ("apps", "DaemonSet"): ("daemonsets", True), ("apps", "ReplicaSet"): ("replicasets", True),
    ("batch", "Job"): ("jobs", True), ("batch", "CronJob"): ("cronjobs", True),
    ("networking.k8s.io", "Ingress"): ("ingresses", True),
    ("networking.k8s.io", "NetworkPolicy"): ("networkpolicies", True),
    ("autoscaling", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("policy", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("rbac.authorization.k8s.io", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): ("customresourcedefinitions", False),
    ("apiregistration.k8s.io", "APIService"): ("apiservices", False),
}


def cluster_mode(setting: str, environ: Mapping[str, str] | None = None) -> str:
    """``auto`` → in-cluster inside a pod, kubeconfig when one exists, else none."""
    env = os.environ if environ is None else environ
    if setting != "auto":
        return setting
    if env.get("KUBERNETES_SERVICE_HOST") and _SA_TOKEN.exists():
        return "in-cluster"
    kubeconfig = env.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    if any(Path(p).is_file() for p in kubeconfig.split(os.pathsep) if p):
        return "kubeconfig"
    return "none"


async def api_client_from_settings(setting: str) -> tuple[k8s.ApiClient | None, str]:
    """An ApiClient for the deployer's cluster setting and the mode it resolved to (None for none)."""
    mode = cluster_mode(setting)
    if mode == "none":
        return None, mode
    configuration = k8s.Configuration()
    if mode == "in-cluster":
        k8s_config.load_incluster_config(client_configuration=configuration)
    else:
        await k8s_config.load_kube_config(client_configuration=configuration)
    return k8s.ApiClient(configuration=configuration), mode


def _translate(exc: ApiException, what: str) -> Exception:
    try:
        message = json.loads(exc.body or "{}").get("message") or exc.reason
    except (ValueError, AttributeError):
        message = exc.reason
    if exc.status in (401, 403):
        return PermissionDenied(f"the cluster refused {what}: {message}")
    if exc.status == 409:
        return Conflict(f"{what}: {message}")
    if exc.status in (400, 404, 422):
        return InvalidInput(f"the cluster refused {what}: {message}", field="template")
    return Unavailable(f"the Kubernetes API failed {what}: {exc.status} {message}")


class KubernetesCluster:
    """See corral.core.deploy.ports.Cluster."""

    def __init__(self, api: k8s.ApiClient, name: str = "default") -> None:
        self.api = api
        self.name = name
        self._resources: dict[tuple[str, str], tuple[str, bool]] = dict(_KNOWN)

    async def _call(self, method: str, path: str, *, query: list[tuple[str, Any]] | None = None,
                    body: Any = None, content_type: str | None = None) -> Any:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            return await self.api.call_api(
                path, method, query_params=query or [], header_params=headers, body=body,
                response_types_map={200: "object", 201: "object", 202: "object"}, auth_settings=["BearerToken"],
                _return_http_data_only=True)
        except ApiException:
            raise
        except (OSError, TimeoutError) as exc:
            raise Unavailable(f"the Kubernetes API server cannot be reached: {exc}") from exc

    async def _resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        found = self._resources.get((group, kind))
        if found is not None:
            return found
        base = f"/apis/{api_version}" if group else f"/api/{api_version}"
        try:
            listing = await self._call("GET", base)
        except ApiException as exc:
            raise _translate(exc, f"discovering {api_version}") from exc
        for res in (listing or {}).get("resources", []):
            if "/" not in res.get("name", ""):
                self._resources[(group, res["kind"])] = (res["name"], bool(res.get("namespaced")))
        if (group, kind) not in self._resources:
            raise InvalidInput(f"the cluster serves no {kind} in {api_version}", field="template")
        return self._resources[(group, kind)]

    async def _path(self, api_version: str, kind: str, namespace: str | None, name: str | None) -> str:
        plural, namespaced = await self._resource(api_version, kind)
        base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
        if namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{plural}"
        return f"{base}/{name}" if name else base

    async def apply(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        ref = ObjectRef(str(obj["apiVersion"]), str(obj["kind"]), str(obj["metadata"]["name"]),
                        obj["metadata"].get("namespace"))
        path = await self._path(ref.api_version, ref.kind, ref.namespace, ref.name)
        query: list[tuple[str, Any]] = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        if dry_run:
            query.append(("dryRun", "All"))
        try:
            result = await self._call("PATCH", path, query=query, body=dict(obj),
                                      content_type="application/apply-patch+yaml")
        except ApiException as exc:
            raise _translate(exc, f"applying {ref}") from exc
        return dict(result or {})

    async def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        path = await self._path(ref.api_version, ref.kind, ref.namespace, ref.name)
        try:
            return dict(await self._call("GET", path) or {})
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _translate(exc, f"reading {ref}") from exc

    async def list_labelled(self, kinds: Iterable[tuple[str, str]], labels: Mapping[str, str]) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        out: list[dict[str, Any]] = []
        for api_version, kind in kinds:
            path = await self._path(api_version, kind, None, None)
            try:
                listing = await self._call("GET", path, query=[("labelSelector", selector)])
            except ApiException as exc:
                if exc.status == 404:
                    continue
                raise _translate(exc, f"listing {kind}") from exc
            for item in (listing or {}).get("items", []):
                have = (item.get("metadata") or {}).get("labels") or {}
                if all(have.get(k) == v for k, v in labels.items()):  # also when a server ignores the selector
                    out.append({"apiVersion": api_version, "kind": kind, **item})
        return out

    async def delete(self, ref: ObjectRef) -> None:
        path = await self._path(ref.api_version, ref.kind, ref.namespace, ref.name)
        try:
            await self._call("DELETE", path, query=[("propagationPolicy", "Background")])
        except ApiException as exc:
            if exc.status != 404:
                raise _translate(exc, f"deleting {ref}") from exc
