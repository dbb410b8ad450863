"""CORRAL_EXECUTOR and the Kubernetes settings; the bootstrap registers the chosen Executor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import punq
import pytest

from corral.adapters.kubernetes_executor import KubernetesExecutor
from corral.adapters.local_executor import LocalExecutor
from corral.core.workloads.ports import Executor
from corral.entrypoints.config import ConfigError, load_settings
from corral.entrypoints.workloads_wiring import wire_workloads
from corral.fakes.executor import InMemoryExecutor


@attrs.define
class _Platform:
    settings: Any
    container: punq.Container = attrs.field(factory=punq.Container)
    closers: list[Any] = attrs.field(factory=list)

    def register(self, key: Any, instance: Any) -> None:
        self.container.register(key, instance=instance)


def test_defaults() -> None:
    settings = load_settings({})
    assert (settings.executor, settings.kubernetes_namespace, settings.kubernetes_workspace_size,
            settings.kubernetes_storage_class) == ("local", "corral", "1Gi", None)


def test_kubernetes_settings_are_read() -> None:
    settings = load_settings({"CORRAL_EXECUTOR": "kubernetes", "CORRAL_KUBERNETES_NAMESPACE": "ci",
                              "CORRAL_KUBERNETES_WORKSPACE_SIZE": "20Gi", "CORRAL_KUBERNETES_STORAGE_CLASS": "fast"})
    assert (settings.executor, settings.kubernetes_namespace, settings.kubernetes_workspace_size,
            settings.kubernetes_storage_class) == ("kubernetes", "ci", "20Gi", "fast")


@pytest.mark.parametrize(("name", "value"), [("CORRAL_EXECUTOR", "docker"), ("CORRAL_KUBERNETES_NAMESPACE", "Bad_NS"),
                                             ("CORRAL_KUBERNETES_WORKSPACE_SIZE", "lots"),
                                             ("CORRAL_AGENT_CPU_LIMIT", "two"), ("CORRAL_AGENT_MEMORY_LIMIT", "4GB"),
                                             ("CORRAL_KUBERNETES_AGENT_MODEL_API_CIDRS", "api.anthropic.com"),
                                             ("CORRAL_KUBERNETES_AGENT_CORRAL_POD_LABELS", "app corral")])
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({name: value})
    assert name in str(caught.value)


async def test_local_is_the_default_executor(tmp_path: Path) -> None:
    platform = _Platform(load_settings({"CORRAL_DATA_DIR": str(tmp_path)}))
    await wire_workloads(platform)
    executor = platform.container.resolve(Executor)
    assert isinstance(executor, LocalExecutor)
    assert executor.root_dir == tmp_path / "workloads"
    assert platform.closers == [executor.aclose]


async def test_kubernetes_is_chosen_by_setting(tmp_path: Path) -> None:
    platform = _Platform(load_settings({"CORRAL_DATA_DIR": str(tmp_path), "CORRAL_EXECUTOR": "kubernetes",
                                        "CORRAL_KUBERNETES_NAMESPACE": "ci"}))
    await wire_workloads(platform)
    executor = platform.container.resolve(Executor)
    assert isinstance(executor, KubernetesExecutor)
    assert executor.namespace == "ci"


async def test_the_agent_egress_settings_reach_the_kubernetes_executor(tmp_path: Path) -> None:
    defaults = _Platform(load_settings({"CORRAL_DATA_DIR": str(tmp_path), "CORRAL_EXECUTOR": "kubernetes"}))
    await wire_workloads(defaults)
    default = defaults.container.resolve(Executor).settings
    assert default.model_api_cidrs == ("160.79.104.0/23", "2607:6bc0::/48")  # api.anthropic.com, as published
    assert (default.corral_cidrs, dict(default.corral_pod_labels)) == ((), {"app.kubernetes.io/name": "corral"})
    assert (default.dns_namespace, dict(default.dns_pod_labels)) == ("kube-system", {"k8s-app": "kube-dns"})
    platform = _Platform(load_settings({
        "CORRAL_DATA_DIR": str(tmp_path), "CORRAL_EXECUTOR": "kubernetes",
        "CORRAL_KUBERNETES_AGENT_CORRAL_CIDRS": "10.0.0.5/32, 10.0.1.0/24",
        "CORRAL_KUBERNETES_AGENT_CORRAL_POD_LABELS": "app=corral,tier=web",
        "CORRAL_KUBERNETES_AGENT_CORRAL_NAMESPACE": "platform",
        "CORRAL_KUBERNETES_AGENT_MODEL_API_CIDRS": "203.0.113.0/24", "CORRAL_KUBERNETES_AGENT_DNS_POD_LABELS": ""}))
    await wire_workloads(platform)
    chosen = platform.container.resolve(Executor).settings
    assert chosen.corral_cidrs == ("10.0.0.5/32", "10.0.1.0/24")
    assert dict(chosen.corral_pod_labels) == {"app": "corral", "tier": "web"} and chosen.corral_namespace == "platform"
    assert chosen.model_api_cidrs == ("203.0.113.0/24",) and dict(chosen.dns_pod_labels) == {}


async def test_the_memory_profile_uses_the_fake(tmp_path: Path) -> None:
    platform = _Platform(load_settings({"CORRAL_DATA_DIR": str(tmp_path), "CORRAL_PROFILE": "memory"}))
    await wire_workloads(platform)
    assert isinstance(platform.container.resolve(Executor), InMemoryExecutor)


async def test_the_bootstrap_registers_the_executor_the_engine_resolves(tmp_path: Path) -> None:
    from corral.entrypoints.bootstrap import start_platform
    from corral.entrypoints.config import Settings

    platform = await start_platform(Settings(profile="memory", data_dir=tmp_path))
    try:
        assert isinstance(platform.resolve_optional(Executor), InMemoryExecutor)
    finally:
        await platform.aclose()


def test_agent_workloads_are_confined_in_a_cluster_only() -> None:
    from corral.core.workloads.model import Resources, Sandbox
    from corral.entrypoints.agents_wiring import confinement

    settings = load_settings({"CORRAL_EXECUTOR": "kubernetes", "CORRAL_AGENT_MEMORY_LIMIT": "8Gi",
                              "CORRAL_AGENT_RUN_AS_USER": "4242"})
    assert confinement(settings, local=False) == (
        Resources(cpu_request="500m", cpu_limit="2", memory_request="1Gi", memory_limit="8Gi"), Sandbox(user_id=4242))
    assert confinement(settings, local=True) == (None, None)
