"""Webhook configuration, fan-out, signed delivery, retries and redelivery on fakes."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from corral.core.errors import InvalidInput
from corral.core.outbox import topics
from corral.core.projects.commands import NewIssue
from corral.core.projects.issues import IssueService
from corral.core.projects.model import WEBHOOK_EVENTS, DeliveryStatus, event_for_topic
from corral.core.projects.service import ProjectService
from corral.core.projects.webhooks import WebhookService


@pytest.fixture
def hooks(world, transport, clock) -> WebhookService:
    return WebhookService(world, transport, clock, retry_base_seconds=10, max_attempts=3)


@pytest.fixture
async def project(world, repos, clock, alice):
    return await ProjectService(world, repos, clock).create(alice, name="todo")


async def _relay(world, hooks) -> None:
    """What the outbox relay does: hand each event to the webhook fan-out in a unit of work."""
    async with world() as uow:
        events = await uow.outbox.claim(1000)
        for event in events:
            await hooks.fan_out(uow, event)
        await uow.outbox.mark_processed([e.id for e in events])
        await uow.commit()


def test_topics_map_to_events_exactly() -> None:
    assert event_for_topic(topics.PUSH) == "push"
    assert event_for_topic(topics.PIPELINE) == "pipeline"
    assert event_for_topic(topics.DEPLOYMENT) == "deployment"
    # no prefix matching: notification topics and look-alikes are not webhook events
    for topic in (topics.MR_MERGED, topics.BUILD_FAILED, topics.DEPLOY_STATUS, "deployment.promoted", "pipelines",
                  "push.mirror", "issue_x", "user.created"):
        assert event_for_topic(topic) is None, topic
    assert set(WEBHOOK_EVENTS) == set(topics.WEBHOOK_EVENT_OF_TOPIC.values())


async def test_pipeline_and_deployment_events_reach_their_subscribers(hooks, world, project, alice, transport) -> None:
    ci = await hooks.create(alice, project, {"url": "http://example.com/ci", "events": ["pipeline"]})
    cd = await hooks.create(alice, project, {"url": "http://example.com/cd", "events": ["deployment"]})
    async with world() as uow:
        await uow.outbox.add(topics.PIPELINE, {"action": "completed", "pipeline": {"number": 7, "status": "success"}},
                             project_id=project.id)
        await uow.outbox.add(topics.DEPLOYMENT, {"action": "succeeded", "deployment": {"environment": "prod"}},
                             project_id=project.id)
        await uow.outbox.add(topics.BUILD_FAILED, {"pipeline": 8}, project_id=project.id)
        await uow.outbox.add(topics.DEPLOY_STATUS, {"deployment": 9}, project_id=project.id)
        await uow.commit()
    await _relay(world, hooks)
    assert await hooks.deliver_due() == 2
    sent = {p.url: (p.headers["X-Corral-Event"], p.headers["X-GitHub-Event"], json.loads(p.body))
            for p in transport.posts}
    assert sent["http://example.com/ci"][:2] == ("pipeline", "workflow_run")
    assert sent["http://example.com/ci"][2]["pipeline"]["number"] == 7
    assert sent["http://example.com/cd"][:2] == ("deployment", "deployment")
    assert [d.event for d in (await hooks.deliveries(project, ci.id)).items] == ["pipeline"]
    assert [d.event for d in (await hooks.deliveries(project, cd.id)).items] == ["deployment"]


async def test_create_validates(hooks, project, alice, transport) -> None:
    for spec, field in [
        ({"url": "ftp://x"}, "url"),
        ({"url": "http://127.0.0.1/hook"}, "url"),
        ({"url": "http://10.1.2.3/hook"}, "url"),
        ({"url": "http://169.254.169.254/latest"}, "url"),
        ({"url": "http://example.com", "events": ["nope"]}, "events"),
        ({"url": "http://example.com", "events": []}, "events"),
        ({"url": "http://example.com", "color": "red"}, "color"),
    ]:
        with pytest.raises(InvalidInput) as err:
            await hooks.create(alice, project, spec)
        assert err.value.field == field
    assert await hooks.list(project) == []


async def test_signed_delivery(hooks, world, clock, users, project, alice, transport) -> None:
    hook = await hooks.create(alice, project, {"url": "http://example.com/h", "events": ["issue"], "secret": "s3"})
    await IssueService(world, users, clock).create(alice, project, NewIssue(title="bug"))
    await _relay(world, hooks)
    assert await hooks.deliver_due() == 1
    post = transport.posts[0]
    expected = hmac.new(b"s3", post.body, hashlib.sha256).hexdigest()
    assert post.headers["X-Gitea-Signature"] == expected
    assert post.headers["X-Hub-Signature-256"] == f"sha256={expected}"
    assert post.headers["X-Corral-Event"] == "issue"
    assert post.headers["X-GitHub-Event"] == "issues"
    body = json.loads(post.body)
    assert body["event"] == "issue"
    assert body["issue"]["title"] == "bug"
    assert body["action"] == "opened"
    log = (await hooks.deliveries(project, hook.id)).items
    assert log[0].status is DeliveryStatus.DELIVERED
    assert log[0].status_code == 200
    assert post.headers["X-Corral-Delivery"] == str(log[0].id)
    assert await hooks.deliver_due() == 0


async def test_unsubscribed_and_inactive_hooks_get_nothing(hooks, world, clock, users, project, alice) -> None:
    await hooks.create(alice, project, {"url": "http://example.com/h", "events": ["push"]})
    await hooks.create(alice, project, {"url": "http://example.com/i", "events": ["issue"], "active": False})
    await IssueService(world, users, clock).create(alice, project, NewIssue(title="bug"))
    await _relay(world, hooks)
    assert await hooks.deliver_due() == 0


async def test_retries_with_backoff_then_fail_then_redeliver(hooks, world, clock, users, project, alice,
                                                             transport) -> None:
    hook = await hooks.create(alice, project, {"url": "http://example.com/h", "events": ["issue"]})
    transport.script = [500, 0, 503]
    await IssueService(world, users, clock).create(alice, project, NewIssue(title="bug"))
    await _relay(world, hooks)
    assert await hooks.deliver_due() == 1
    (d,) = (await hooks.deliveries(project, hook.id)).items
    assert d.status is DeliveryStatus.PENDING
    assert d.attempts == 1
    assert d.status_code == 500
    clock.advance(9)
    assert await hooks.deliver_due() == 0  # backoff: 10 s
    clock.advance(1)
    assert await hooks.deliver_due() == 1
    clock.advance(19)
    assert await hooks.deliver_due() == 0  # backoff: 20 s
    clock.advance(1)
    assert await hooks.deliver_due() == 1
    (d,) = (await hooks.deliveries(project, hook.id)).items
    assert d.status is DeliveryStatus.FAILED
    assert d.attempts == 3
    assert d.status_code == 503
    assert len({p.headers["X-Corral-Delivery"] for p in transport.posts}) == 1
    again = await hooks.redeliver(alice, project, hook.id, d.id)
    assert await hooks.deliver_due() == 1
    latest = (await hooks.deliveries(project, hook.id)).items[0]
    assert latest.id == again.id
    assert latest.status is DeliveryStatus.DELIVERED
    assert latest.redelivery_of == d.id
    assert transport.posts[-1].body == transport.posts[0].body


async def test_a_push_delivery_carries_its_commits_read_once(world, transport, clock, repos, project, alice,
                                                             monkeypatch) -> None:
    from corral.core.git.model import RefUpdate
    from corral.core.git.service import record_push

    hooks = WebhookService(world, transport, clock, retry_base_seconds=10, max_attempts=3, repos=repos)
    first = repos.commit(project.repo_path, "main", {"a": b"1"}, "one")
    second = repos.commit(project.repo_path, "main", {"a": b"2"}, "two")
    await hooks.create(alice, project, {"url": "http://example.com/h", "events": ["push"]})
    await hooks.create(alice, project, {"url": "http://example.com/i", "events": ["push"]})
    reads: list[str] = []
    original = type(repos).commits_between

    async def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(args[2])
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(type(repos), "commits_between", counting)
    async with world() as uow:
        await record_push(uow, project, alice, [RefUpdate(first, second, "refs/heads/main")], clock=clock)
        await uow.commit()
    await _relay(world, hooks)
    assert await hooks.deliver_due() == 2
    bodies = [json.loads(post.body) for post in transport.posts]
    assert [[c["message"] for c in b["commits"]] for b in bodies] == [["two"], ["two"]]
    assert bodies[0]["head_commit"]["sha"] == second and bodies[0]["after"] == second
    assert reads == [second]  # once for both webhooks
