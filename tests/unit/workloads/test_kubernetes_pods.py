"""How the Kubernetes executor reads pod states (pure functions over the API's JSON)."""

from __future__ import annotations

import pytest

from corral.adapters.kubernetes_pods import classify_pod, event_failure, pod_name, workdir_path, workspace_claim_name
from corral.core.errors import InvalidInput
from corral.core.workloads.model import ExitStatus, Outcome


def _pod(phase: str, state: dict[str, object] | None = None, **status: object) -> dict[str, object]:
    container = {"name": "main", "image": "alpine", "ready": False, "restartCount": 0, "state": state}
    containers = [container] if state else []
    return {"status": {"phase": phase, "containerStatuses": containers, **status}}


def test_pending_without_news_is_undecided() -> None:
    assert classify_pod(_pod("Pending", {"waiting": {"reason": "ContainerCreating"}})) == (None, False)
    assert classify_pod({}) == (None, False)


def test_running_has_started() -> None:
    assert classify_pod(_pod("Running", {"running": {"startedAt": "2026-01-01T00:00:00Z"}})) == (None, True)


def test_an_oom_kill_is_an_exit_with_the_reason() -> None:
    pod = _pod("Failed", {"terminated": {"exitCode": 137, "reason": "OOMKilled"}})
    assert classify_pod(pod) == (ExitStatus(Outcome.EXITED, 137, "OOMKilled"), True)


def test_a_plain_error_exit_has_no_noise_reason() -> None:
    pod = _pod("Failed", {"terminated": {"exitCode": 2, "reason": "Error"}})
    assert classify_pod(pod) == (ExitStatus(Outcome.EXITED, 2), True)


def test_an_evicted_pod_is_lost_with_the_reason() -> None:
    status, _ = classify_pod(_pod("Failed", None, reason="Evicted", message="The node was low on resource: memory."))
    assert status == ExitStatus(Outcome.LOST, None, "pod Failed: Evicted The node was low on resource: memory.")


def test_a_transient_waiting_reason_does_not_fail() -> None:
    assert classify_pod(_pod("Pending", {"waiting": {"reason": "PodInitializing"}}))[0] is None


def test_a_scheduled_pod_is_not_unschedulable() -> None:
    pod = _pod("Pending", None, conditions=[{"type": "PodScheduled", "status": "True"}])
    assert classify_pod(pod)[0] is None


def test_events_of_other_pods_are_ignored() -> None:
    events = [{"involvedObject": {"name": "other"}, "reason": "FailedAttachVolume", "message": "Multi-Attach error"},
              {"involvedObject": {"name": "mine"}, "reason": "Scheduled", "message": "assigned"}]
    assert event_failure(events, "mine") is None
    events.append({"involvedObject": {"name": "mine"}, "reason": "FailedMount",
                   "message": "Multi-Attach error for volume pvc-1"})
    assert event_failure(events, "mine") == ExitStatus(Outcome.FAILED_TO_START, None,
                                                       "FailedAttachVolume: Multi-Attach error for volume pvc-1")


def test_names_are_valid_kubernetes_names() -> None:
    name = pod_name("Build & Test / Python 3.11 (matrix: a=b)" * 3)
    assert len(name) <= 63 and name.replace("-", "").isalnum() and name == name.lower()
    assert pod_name("x") != pod_name("x")
    claim = workspace_claim_name("pipeline-1/Build")
    assert claim == workspace_claim_name("pipeline-1/Build") != workspace_claim_name("pipeline-1/build")
    assert len(claim) <= 63


def test_workdir_stays_under_the_workspace() -> None:
    assert workdir_path("") == "/workspace"
    assert workdir_path("src/./app/") == "/workspace/src/app"
    for bad in ("..", "../x", "/etc", "a/../../b"):
        with pytest.raises(InvalidInput):
            workdir_path(bad)


def test_a_network_policy_without_a_corral_peer_or_dns_selector_allows_only_dns_and_the_model_api() -> None:
    from corral.adapters.kubernetes_pods import network_policy_manifest

    policy = network_policy_manifest("corral-agent-x-1", {"corral.agent-session": "s"}, corral_cidrs=(),
                                     corral_pod_labels={}, corral_namespace=None,
                                     model_api_cidrs=("160.79.104.0/23",), dns_pod_labels={})
    assert policy["metadata"]["name"] == "corral-agent-x-1-egress"
    assert policy["spec"]["egress"] == [
        {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},  # any resolver
        {"to": [{"ipBlock": {"cidr": "160.79.104.0/23"}}], "ports": [{"protocol": "TCP", "port": 443}]}]


def test_corral_pods_in_another_namespace_are_selected_there() -> None:
    from corral.adapters.kubernetes_pods import network_policy_manifest

    policy = network_policy_manifest("p", {}, corral_cidrs=(), corral_pod_labels={"app": "corral"},
                                     corral_namespace="platform", model_api_cidrs=())
    assert policy["spec"]["egress"][1] == {"to": [{
        "podSelector": {"matchLabels": {"app": "corral"}},
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "platform"}}}]}
    assert len(policy["spec"]["egress"]) == 2  # no model API CIDRs: no rule for it


def test_an_interactive_pod_needs_its_end_of_input_line_and_runs_under_the_wrapper() -> None:
    from corral.adapters.kubernetes_pods import INPUT_WRAPPER, pod_manifest
    from corral.core.workloads.model import WorkloadSpec, Workspace

    spec = WorkloadSpec(name="a", argv=("claude", "-p"), workspace=Workspace("k", "claim"), interactive=True,
                        stdin=b"{}\n")
    with pytest.raises(InvalidInput):
        pod_manifest("pod", spec, claim="claim", image="img", secret=None, grace_seconds=5)
    pod = pod_manifest("pod", spec, claim="claim", image="img", secret=None, grace_seconds=5, end_of_input="\x04e")
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["/bin/sh", "-c", INPUT_WRAPPER, "sh", "\x04e", "claude", "-p"]
    assert "securityContext" not in pod["spec"] and "corral.dev/pod" not in pod["metadata"]["labels"]  # no sandbox
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["workspace"]  # stdin is not a file from a Secret
