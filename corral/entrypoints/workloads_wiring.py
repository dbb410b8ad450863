"""Wiring of the workloads domain: the one Executor that pipeline steps and agent sessions run through.

``CORRAL_EXECUTOR=local`` (default): process groups under ``$CORRAL_DATA_DIR/workloads``;
``kubernetes``: pods in ``CORRAL_KUBERNETES_NAMESPACE``; the memory profile: the in-memory fake.
"""

from __future__ import annotations

from typing import Any

from corral.core.workloads.ports import Executor
from corral.entrypoints.config import Settings, label_pairs
from corral.entrypoints.platform import Platform, resolve_optional

__all__ = ["build_executor", "wire_workloads"]


def build_executor(settings: Settings) -> Any:
    """The Executor the settings choose (not started: the Kubernetes client is made on first use)."""
    if settings.profile == "memory":
        from corral.fakes.executor import InMemoryExecutor

        return InMemoryExecutor()
    if settings.executor == "kubernetes":
        from corral.adapters.kubernetes_executor import (
            KubernetesExecutor,
            KubernetesExecutorSettings,
            default_api_client,
        )

        def cidrs(value: str) -> tuple[str, ...]:
            return tuple(part.strip() for part in value.split(",") if part.strip())

        return KubernetesExecutor(default_api_client, KubernetesExecutorSettings(
            namespace=settings.kubernetes_namespace, workspace_size=settings.kubernetes_workspace_size,
            storage_class=settings.kubernetes_storage_class,
            corral_cidrs=cidrs(settings.kubernetes_agent_corral_cidrs),
            corral_pod_labels=label_pairs(settings.kubernetes_agent_corral_pod_labels),
            corral_namespace=settings.kubernetes_agent_corral_namespace,
            model_api_cidrs=cidrs(settings.kubernetes_agent_model_api_cidrs),
            dns_namespace=settings.kubernetes_agent_dns_namespace,
            dns_pod_labels=label_pairs(settings.kubernetes_agent_dns_pod_labels)))
    from corral.adapters.local_executor import LocalExecutor

    return LocalExecutor(settings.data_dir / "workloads")


async def wire_workloads(platform: Platform) -> None:
    executor = build_executor(platform.settings)
    platform.register(Executor, executor)
    from corral.entrypoints.web.project_access import ProjectsKit

    kit = resolve_optional(platform.container, ProjectsKit)
    if kit is not None and kit.projects.purger is not None:
        kit.projects.purger.executor = executor  # deletes the workspaces of deleted projects
    if hasattr(executor, "aclose"):
        platform.closers.append(executor.aclose)
