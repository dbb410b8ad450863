"""The reconciler on fakes: apply, fake-time rollout, prune, drift, failed rollout and auto rollback,
render errors, backoff, no cluster, leader hand-over."""

from __future__ import annotations

from corral.core.deploy.model import DeployStatus, HistoryResult, ObjectRef, SyncStatus
from tests.unit.deploy.world import ANN, make_world

WEB = ObjectRef("apps/v1", "Deployment", "web", "web")
SVC = ObjectRef("v1", "Service", "web", "web")


async def test_apply_then_rollout_over_fake_time() -> None:
    w = await make_world()
    assert w.cluster is not None
    d = await w.deploy()
    assert d.status is DeployStatus.PENDING and d.sync is SyncStatus.OUT_OF_SYNC
    report = await w.reconciler.run_once()
    assert report is not None and report.applied == 1
    # the Service (config) is applied before the Deployment (workload)
    assert w.cluster.calls == [("apply", "Service web/web"), ("apply", "Deployment web/web")]
    live = await w.cluster.get(WEB)
    assert live is not None
    labels = live["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "corral" and labels["corral.dev/deployment"] == str(d.id)
    container = live["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/web:1" and container["env"][0]["value"] == "staging"
    d = await w.current()
    assert d.status is DeployStatus.SYNCING and d.health == "Progressing" and d.sync is SyncStatus.SYNCED
    w.clock.advance(31)
    await w.reconciler.run_once()
    d = await w.current()
    assert d.status is DeployStatus.HEALTHY and d.health == "Healthy"
    history = await w.service.history(w.project, "staging")
    assert [h.result for h in history] == [HistoryResult.HEALTHY]
    # nothing to change: a pass applies nothing
    calls = len(w.cluster.calls)
    report = await w.reconciler.run_once()
    assert report is not None and report.applied == 0 and len(w.cluster.calls) == calls


async def test_transitions_are_announced() -> None:
    w = await make_world()
    await w.deploy()
    await w.reconciler.run_once()
    w.clock.advance(31)
    await w.reconciler.run_once()
    events = [(e.topic, e.payload.get("action")) for e in w.uow.db.outbox.events.values()]
    assert ("deployment", "update") in events and ("deploy_status", "syncing") in events
    assert ("deployment", "healthy") in events and ("deploy_status", "healthy") in events
    audit = [e.action for e in w.uow.db.audit.entries.values()]
    assert "deploy.update" in audit


async def test_prune_removes_objects_that_left_the_templates() -> None:
    w = await make_world()
    assert w.cluster is not None
    await w.deploy(prune=True)
    await w.reconciler.run_once()
    assert await w.cluster.get(SVC) is not None
    w.push({"apps/web/service.yaml": None})
    report = await w.reconciler.run_once()
    assert report is not None and report.pruned == 1
    assert await w.cluster.get(SVC) is None and await w.cluster.get(WEB) is not None


async def test_without_prune_a_leftover_is_out_of_sync_and_kept() -> None:
    w = await make_world()
    assert w.cluster is not None
    await w.deploy()
    await w.reconciler.run_once()
    w.push({"apps/web/service.yaml": None})
    await w.reconciler.run_once()
    assert await w.cluster.get(SVC) is not None
    assert (await w.current()).sync is SyncStatus.OUT_OF_SYNC


async def test_drift_is_detected_and_put_back_with_self_heal() -> None:
    w = await make_world()
    assert w.cluster is not None
    await w.deploy()
    await w.reconciler.run_once()
    w.cluster.edit(WEB, {"spec": {"replicas": 9}})
    await w.reconciler.run_once()
    assert (await w.current()).sync is SyncStatus.OUT_OF_SYNC
    assert (await w.cluster.get(WEB))["spec"]["replicas"] == 9  # type: ignore[index]
    await w.deploy(self_heal=True)  # same image, self-heal on: a new revision, applied
    await w.reconciler.run_once()
    w.cluster.edit(WEB, {"spec": {"replicas": 5}})
    report = await w.reconciler.run_once()
    assert report is not None and report.healed == 1
    assert (await w.cluster.get(WEB))["spec"]["replicas"] == 2  # type: ignore[index]
    assert (await w.current()).sync is SyncStatus.SYNCED


async def test_a_degraded_rollout_fails_and_rolls_back_to_the_previous_healthy_image() -> None:
    w = await make_world()
    assert w.cluster is not None
    await w.deploy("registry.example/web:1", auto_rollback=True)
    await w.reconciler.run_once()
    w.clock.advance(31)
    await w.reconciler.run_once()
    assert (await w.current()).status is DeployStatus.HEALTHY
    w.cluster.failing_images.add("registry.example/web:2")
    await w.deploy("registry.example/web:2", auto_rollback=True)
    await w.reconciler.run_once()
    w.clock.advance(121)
    await w.reconciler.run_once()  # Degraded: failed, and the previous image is written back
    d = await w.current()
    assert d.image_ref == "registry.example/web:1" and d.status is DeployStatus.PENDING
    history = await w.service.history(w.project, "staging")
    assert [(h.image_ref, h.result, h.reason) for h in history] == [
        ("registry.example/web:1", HistoryResult.PENDING, "auto_rollback"),
        ("registry.example/web:2", HistoryResult.FAILED, "update"),
        ("registry.example/web:1", HistoryResult.HEALTHY, "update"),
    ]
    assert any(e.topic == "deploy_status" and e.payload["status"] == "failed" for e in w.uow.db.outbox.events.values())
    await w.reconciler.run_once()
    live = await w.cluster.get(WEB)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/web:1"  # type: ignore
    w.clock.advance(31)
    await w.reconciler.run_once()
    assert (await w.current()).status is DeployStatus.HEALTHY


async def test_a_failed_rollout_without_auto_rollback_stays_failed() -> None:
    w = await make_world()
    assert w.cluster is not None
    w.cluster.failing_images.add("registry.example/web:9")
    await w.deploy("registry.example/web:9")
    await w.reconciler.run_once()
    w.clock.advance(121)
    await w.reconciler.run_once()
    d = await w.current()
    assert d.status is DeployStatus.FAILED and d.health == "Degraded"
    assert d.last_error is not None and "progress deadline" in d.last_error


async def test_render_error_names_file_line_and_value_and_changes_nothing() -> None:
    w = await make_world()
    assert w.cluster is not None
    w.push({"apps/web/service.yaml": b"apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ values.missing }}\n"})
    await w.deploy()
    report = await w.reconciler.run_once()
    assert report is not None and report.failed == 1
    d = await w.current()
    assert d.status is DeployStatus.FAILED and w.cluster.calls == []
    assert d.last_error is not None and "apps/web/service.yaml:4" in d.last_error and "missing" in d.last_error
    # backoff: 5 s, then 10 s
    report = await w.reconciler.run_once()
    assert report is not None and report.skipped == 1
    w.clock.advance(5)
    await w.reconciler.run_once()
    d = await w.current()
    assert d.attempts == 2 and d.next_attempt_at is not None
    assert (d.next_attempt_at - w.clock.now()).total_seconds() == 10


async def test_secrets_only_inside_secret_objects() -> None:
    w = await make_world()
    assert w.cluster is not None
    w.push({"apps/web/secret.yaml": b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n"
                                    b"stringData:\n  password: ${{ secrets.DB_PASSWORD }}\n"
                                    b"data:\n  raw: ${{ secrets.DB_PASSWORD }}\n"})
    await w.deploy()
    await w.reconciler.run_once()
    live = await w.cluster.get(ObjectRef("v1", "Secret", "db", "web"))
    assert live is not None and live["stringData"]["password"] == "s3cr3t" and live["data"]["raw"] == "czNjcjN0"
    assert w.cluster.calls[0] == ("apply", "Secret web/db")  # secrets before workloads
    w.push({"apps/web/config.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"
                                    b"data:\n\n  password: ${{ secrets.DB_PASSWORD }}\n"})
    await w.reconciler.run_once()
    d = await w.current()
    assert d.status is DeployStatus.FAILED
    assert d.last_error is not None and "apps/web/config.yaml:7" in d.last_error and "Secret" in d.last_error


async def test_without_a_cluster_everything_but_the_apply_works() -> None:
    w = await make_world(cluster=False)
    d = await w.deploy()
    assert d.cluster == "not configured"
    await w.reconciler.run_once()
    d = await w.current()
    assert d.cluster == "not configured" and d.sync is SyncStatus.UNKNOWN and d.last_error is None
    await w.deploy("registry.example/web:2")
    rolled = await w.service.rollback(ANN, w.project, "staging", (await w.service.history(w.project, "staging"))[1].id)
    assert rolled.image_ref == "registry.example/web:1"
    w.push({"apps/web/service.yaml": b"kind: {{ nope }}\n"})
    await w.reconciler.run_once()
    d = await w.current()
    assert d.status is DeployStatus.FAILED and "nope" in (d.last_error or "")


async def test_leader_hand_over_between_two_reconcilers() -> None:
    w = await make_world()
    assert w.cluster is not None
    other = w.reconciler_twin()
    await w.deploy()
    async with w.leader.lead("deployer") as leading:  # replica A holds the lock (mid-pass)
        assert leading
        assert await other.run_once() is None  # B does nothing
        assert w.cluster.calls == []
    # A died: its lock is gone; B takes over at its next pass
    report = await other.run_once()
    assert report is not None and report.applied == 1 and len(w.cluster.calls) == 2


async def test_cluster_down_retries_with_backoff() -> None:
    w = await make_world()
    assert w.cluster is not None
    w.cluster.down = True
    await w.deploy()
    await w.reconciler.run_once()
    d = await w.current()
    assert d.status is DeployStatus.FAILED and "cannot be reached" in (d.last_error or "")
    w.cluster.down = False
    w.clock.advance(5)
    await w.reconciler.run_once()
    assert (await w.current()).status is DeployStatus.SYNCING
