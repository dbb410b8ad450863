"""Rendering rules of the deployer that do not depend on the template engine: the values, secret references
(only inside Secret objects), the inventory labels, sync-wave order and the comparison used for drift."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from corral.core.deploy.model import Deployment, ObjectRef
from corral.core.deploy.ports import RenderedObject
from corral.core.errors import InvalidInput

__all__ = [
    "DEPLOYMENT_LABEL",
    "MANAGED_BY",
    "RenderError",
    "SecretRefs",
    "comparable",
    "context_of",
    "drifted",
    "label",
    "merge_values",
    "order_by_wave",
    "protect_secret_refs",
    "ref_of",
    "substitute_secrets",
]

MANAGED_BY: Final = ("app.kubernetes.io/managed-by", "corral")
DEPLOYMENT_LABEL: Final = "corral.dev/deployment"
WAVE_ANNOTATIONS: Final = ("corral.dev/sync-wave", "argocd.argoproj.io/sync-wave")


class RenderError(InvalidInput):
    """A template that cannot be rendered: names the file, the line and the missing value."""

    def __init__(self, message: str, *, file: str, line: int | None = None, missing: str | None = None) -> None:
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {message}", field="template")
        self.file = file
        self.line = line
        self.missing = missing


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, mappings merged key by key (like Helm), anything else replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_values(out[key], value)
        else:
            out[key] = value
    return out


def context_of(deployment: Deployment, project: str, values_file: Mapping[str, Any]) -> dict[str, Any]:
    """The template variables: ``values`` (values.yaml ← values_override), and over everything ``image_ref``,
    ``environment``, ``project`` (owner/name) and ``namespace``."""
    values = merge_values(values_file, deployment.values_override)
    fixed = {"image_ref": deployment.image_ref, "environment": deployment.environment, "project": project,
             "namespace": deployment.namespace}
    return {**values, "values": values, **fixed}


_SECRET_REF = re.compile(r"\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_TOKEN = re.compile(r"__CORRAL_SECRET_(\d+)__")


@attrs.frozen
class SecretUse:
    file: str
    line: int
    name: str


@attrs.define
class SecretRefs:
    """The ``${{ secrets.NAME }}`` references of the templates, each replaced by a token before templating."""

    uses: dict[int, SecretUse] = attrs.field(factory=dict)

    @property
    def names(self) -> set[str]:
        return {u.name for u in self.uses.values()}


def protect_secret_refs(files: Mapping[str, str]) -> tuple[dict[str, str], SecretRefs]:
    """Replace every secret reference by a token the template engine leaves alone (it would read
    ``{{ secrets.NAME }}`` as one of its own expressions)."""
    refs = SecretRefs()
    out: dict[str, str] = {}
    for file, text in files.items():
        def token(match: re.Match[str], file: str = file, text: str = text) -> str:
            n = len(refs.uses)
            refs.uses[n] = SecretUse(file, text.count("\n", 0, match.start()) + 1, match.group(1))
            return f"__CORRAL_SECRET_{n}__"

        out[file] = _SECRET_REF.sub(token, text)
    return out, refs


def _walk_strings(value: Any, fn: Any) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: _walk_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk_strings(v, fn) for v in value]
    return value


def _tokens_in(value: Any) -> list[int]:
    found: list[int] = []

    def collect(text: str) -> str:
        found.extend(int(m) for m in _TOKEN.findall(text))
        return text

    _walk_strings(value, collect)
    return found


def substitute_secrets(objects: list[RenderedObject], refs: SecretRefs,
                       values: Mapping[str, str] | None) -> list[RenderedObject]:
    """Put secret values in place of their tokens; a reference outside a Secret object is a RenderError.
    ``values`` None: a preview; every value shows as ``<secret:NAME>``. Values under a Secret's ``data`` are
    base64-encoded (Kubernetes' form there)."""
    out: list[RenderedObject] = []
    for item in objects:
        used = _tokens_in(item.obj)
        if not used:
            out.append(item)
            continue
        if item.obj.get("kind") != "Secret" or item.obj.get("apiVersion") != "v1":
            use = refs.uses[used[0]]
            raise RenderError(f"secrets.{use.name} may only be used in a Secret object (it is in a "
                              f"{item.obj.get('kind')})", file=use.file, line=use.line, missing=None)

        def plain(text: str) -> str:
            def one(m: re.Match[str]) -> str:
                name = refs.uses[int(m.group(1))].name
                return f"<secret:{name}>" if values is None else values[name]
            return _TOKEN.sub(one, text)

        obj = dict(item.obj)
        for key, value in obj.items():
            if key == "data" and isinstance(value, dict):
                obj[key] = {k: (base64.b64encode(plain(v).encode()).decode()
                                if isinstance(v, str) and _TOKEN.search(v) else v) for k, v in value.items()}
            elif key not in ("apiVersion", "kind"):
                obj[key] = _walk_strings(value, plain)
        out.append(attrs.evolve(item, obj=obj))
    return out


def ref_of(obj: Mapping[str, Any]) -> ObjectRef:
    meta = obj.get("metadata") or {}
    return ObjectRef(str(obj.get("apiVersion", "")), str(obj.get("kind", "")), str(meta.get("name", "")),
                     meta.get("namespace"))


_CLUSTER_SCOPED: Final = frozenset({
    "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "PersistentVolume",
    "StorageClass", "PriorityClass", "APIService", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
    "IngressClass", "RuntimeClass",
})


def label(item: RenderedObject, deployment: Deployment) -> dict[str, Any]:
    """The object as it is applied: its namespace (the deployment's when the template names none, for
    namespaced kinds) and the inventory labels."""
    obj = dict(item.obj)
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            raise RenderError(f"a document has no {key}", file=item.file, line=item.line, missing=key)
    meta = dict(obj.get("metadata") or {})
    if not isinstance(meta.get("name"), str) or not meta["name"]:
        raise RenderError(f"the {obj['kind']} has no metadata.name", file=item.file, line=item.line,
                          missing="metadata.name")
    if obj["kind"] not in _CLUSTER_SCOPED and not meta.get("namespace"):
        meta["namespace"] = deployment.namespace
    labels = dict(meta.get("labels") or {})
    labels[MANAGED_BY[0]] = MANAGED_BY[1]
    labels[DEPLOYMENT_LABEL] = str(deployment.id)
    meta["labels"] = labels
    obj["metadata"] = meta
    return obj


# Argo CD's kind order within a wave (abridged): namespaces and definitions, then config, then workloads.
_KIND_ORDER: Final = [
    "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy", "PodDisruptionBudget",
    "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass", "PersistentVolume",
    "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
    "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod",
    "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job",
    "CronJob", "IngressClass", "Ingress", "APIService",
]
_RANK: Final = {kind: i for i, kind in enumerate(_KIND_ORDER)}


def _wave(obj: Mapping[str, Any]) -> int:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    for key in WAVE_ANNOTATIONS:
        raw = annotations.get(key)
        if raw is not None:
            try:
                return int(str(raw).strip())
            except ValueError:
                return 0
    return 0


def order_by_wave(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sync order: by sync wave (Corral's annotation, else Argo CD's; default 0), then kind (namespaces,
    definitions, config and secrets before workloads; unknown kinds last), then name."""
    return sorted(objects, key=lambda o: (_wave(o), _RANK.get(str(o.get("kind")), len(_KIND_ORDER)),
                                          str((o.get("metadata") or {}).get("name"))))


_SERVER_META: Final = frozenset({"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp",
                                 "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences"})


def comparable(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``obj`` without status and the fields the server sets (what drift compares)."""
    if obj is None:
        return None
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _SERVER_META}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k not in ("kubectl.kubernetes.io/last-applied-configuration",
                                "deployment.kubernetes.io/revision")}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    out["metadata"] = meta
    return out


def drifted(would_be: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """Whether the live object differs from what applying the template would make of it (a dry-run apply),
    ignoring status and fields the server sets."""
    return comparable(would_be) != comparable(live)
